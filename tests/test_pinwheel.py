"""The pinwheel dataset: pinwheel.m's generator, its official parameters and the contract."""
import numpy as np
import pytest
from disbench import datasets
from disbench.datasets import pinwheel as P
from disbench.errors import DisbenchError


class _FixedNoise:
    """A stand-in RandomState whose standard_normal returns given values."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)

    def standard_normal(self, shape):
        assert tuple(shape) == self.values.shape
        return self.values


def _pinwheel_m(noise, labels, radial_std, tangential_std, num_classes, rate):
    """pinwheel.m written out per row, as the MATLAB loop does (labels 0-based here)."""
    rads = np.linspace(0, 2 * np.pi, num_classes + 1)[:-1]
    out = []
    for (n1, n2), k in zip(noise, labels, strict=True):
        f = np.array([n1 * tangential_std + 1.0, n2 * radial_std])
        a = rads[k] + rate * np.exp(f[0])
        out.append(f @ np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]))
    return np.array(out)


def test_generator_is_pinwheel_m_with_the_official_parameters():
    labels = np.array([0, 1, 2, 3, 1])
    noise = np.random.default_rng(3).standard_normal((5, 2))
    # the generator draws a (2, N) block (MATLAB fills randn(N, 2) column by column)
    got = P.arm_points(labels, _FixedNoise(noise.T))
    want = _pinwheel_m(noise, labels, 0.1, 0.3, 4, 0.25)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # gen_pinwheel_small.sh: pinwheel(0.1, 0.3, 4, 100, 0.25)
    assert (P.RADIAL_STD, P.TANGENTIAL_STD, P.NUM_CLASSES, P.NUM_PER_CLASS, P.RATE) == \
        (0.1, 0.3, 4, 100, 0.25)
    points, lab = P.pinwheel(0.1, 0.3, 4, 100, 0.25, np.random.default_rng(0))
    assert points.shape == (400, 2) and lab.tolist() == sorted(lab.tolist())
    assert np.bincount(lab).tolist() == [100] * 4
    # the first column (radius, centred at 1) has std 0.3, the second 0.1 before rotation
    radius = np.linalg.norm(points, axis=1)
    assert 0.9 < np.median(radius) < 1.1


def test_quantised_observations_round_trip_within_one_step():
    points, _ = P.pinwheel(0.1, 0.3, 4, 100, 0.25, np.random.default_rng(1))
    obs = P.to_uint8(points)
    assert obs.dtype == np.uint8 and obs.shape == (400, 2, 1, 1)
    back = P.to_points(obs / 255.0)
    assert np.abs(back - points).max() <= P.WINDOW / 255.0 + 1e-12


@pytest.mark.usefixtures("empty_cache")
def test_dataset_object_satisfies_the_ground_truth_contract():
    from disbench.datasets.contract import GroundTruthData, missing_members

    ds = datasets.get("pinwheel")  # auto: there are no official files, so the generator
    assert ds.source == "synthetic" and missing_members(ds, GroundTruthData) == []
    assert ds.factor_names == ("arm",) and ds.factor_sizes == (4,)
    assert ds.images.shape == (400, 2, 1, 1) and ds.factors.shape == (400, 1)
    np.testing.assert_array_equal(ds.factors[ds.index_of([[0], [3], [2]])], [[0], [3], [2]])
    f = ds.sample_factors(500, 0)
    assert f.shape == (500, 1) and set(np.unique(f)) == {0, 1, 2, 3}
    a = ds.sample_observations_from_factors(f, np.random.RandomState(5))
    b = ds.sample_observations_from_factors(f, np.random.RandomState(5))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="random_state"):
        ds.sample_observations_from_factors(f)  # the points are random: a seed is required
    with pytest.raises(ValueError, match=r"0\.\.3"):
        ds.index_of([[4]])
    # the same seed gives the same data (cached after the first load), splits differ
    again = datasets.get("pinwheel", source="synthetic")
    np.testing.assert_array_equal(again.points, ds.points)
    test = datasets.get("pinwheel", split="test")
    assert len(test) == 400 and not np.allclose(test.points, ds.points)
    assert datasets.spec("pinwheel").twin_cached() == ["train", "test"]


@pytest.mark.usefixtures("empty_cache")
def test_no_official_files():
    cls = datasets.spec("pinwheel")
    assert cls.files == () and not cls.official_available("train")
    assert "no official files" in cls.describe()["licence"] or cls.describe()["files"] == {}
    with pytest.raises(DisbenchError, match="no official files"):
        datasets.get("pinwheel", source="official")


@pytest.mark.usefixtures("empty_cache")
def test_ab_vae_pinwheel_network_is_the_official_mlp():
    import torch
    from disbench import baselines

    torch.manual_seed(0)
    model = baselines.create("ab_vae", network="pinwheel", image_shape=(2, 1, 1), latent_dim=2,
                             prior="mixture", likelihood="gaussian", likelihood_scale=0.02)
    enc = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)]
    dec = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)]
    # vae_pinwheel.py with main.py's --num-hidden-layers 1 --hidden-dim 100
    assert [(m.in_features, m.out_features) for m in enc] == [(2, 100), (100, 2), (100, 2)]
    assert [(m.in_features, m.out_features) for m in dec] == [(2, 100), (100, 2)]
    ds = datasets.get("pinwheel")
    x = ds.tensor().float() / 255.0
    mean, logvar = model.encoder(x)
    assert mean.shape == (400, 2) and torch.all(torch.exp(0.5 * logvar) > 0)
    assert model.decode(mean).shape == (400, 2, 1, 1)
    opts = model.make_optimizers(1e-3)
    losses = [float(model.train_step_tensors(x, s, opts)["loss"]) for s in range(30)]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    with pytest.raises(DisbenchError, match=r"\(C, 1, 1\)"):
        baselines.create("ab_vae", network="pinwheel", image_shape=(1, 28, 28))
