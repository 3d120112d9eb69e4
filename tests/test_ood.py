from types import SimpleNamespace

import numpy as np
import pytest
import torch
from disbench.errors import DisbenchError
from disbench.metrics import ood
from disbench.metrics.ood import default_scorer, ood_auroc, ood_scores, roc_curve
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve


def test_separable_scores_give_one_and_zero():
    s_in, s_out = np.array([5.0, 6.0, 7.0]), np.array([1.0, 2.0, 4.9])
    assert ood_auroc(s_in, s_out) == 1.0
    assert ood_auroc(s_out, s_in) == 0.0


def test_identical_distributions_near_half():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(20_000), rng.standard_normal(20_000)
    # sd of the AUROC under H0 is ~0.003 here
    assert abs(ood_auroc(a, b) - 0.5) < 0.02
    assert ood_auroc(a, a) == pytest.approx(0.5, abs=1e-12)  # all ties count one half


def test_equals_sklearn_with_ties():
    rng = np.random.default_rng(1)
    s_in = rng.integers(0, 10, 300).astype(float) + 1.0
    s_out = rng.integers(0, 10, 200).astype(float)
    y = np.r_[np.ones(300), np.zeros(200)]
    expected = roc_auc_score(y, np.r_[s_in, s_out])
    assert ood_auroc(s_in, s_out) == pytest.approx(expected, rel=1e-12)
    assert ood_auroc(torch.from_numpy(s_in), torch.from_numpy(s_out)) == pytest.approx(expected)


def test_roc_curve_matches_sklearn_and_area():
    rng = np.random.default_rng(2)
    s_in = np.round(rng.normal(1.0, 1.0, 150), 1)
    s_out = np.round(rng.normal(0.0, 1.0, 120), 1)
    curve = roc_curve(s_in, s_out)
    fpr, tpr, thr = sk_roc_curve(np.r_[np.ones(150), np.zeros(120)], np.r_[s_in, s_out],
                                 drop_intermediate=False)
    np.testing.assert_allclose(curve.fpr, fpr)
    np.testing.assert_allclose(curve.tpr, tpr)
    np.testing.assert_allclose(curve.thresholds[1:], thr[1:])
    assert curve.fpr[0] == 0 and curve.tpr[-1] == 1 and curve.fpr[-1] == 1
    assert np.trapezoid(curve.tpr, curve.fpr) == pytest.approx(ood_auroc(s_in, s_out), rel=1e-12)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="scores_out is empty"):
        ood_auroc([1.0], [])
    with pytest.raises(ValueError, match="scores_in contains 1 NaN"):
        ood_auroc([1.0, np.nan], [0.0])
    with pytest.raises(ValueError, match="scores_in must be a 1-D"):
        ood_auroc(np.zeros((3, 2)), [0.0])


# ----------------------------------------------------------------------------- model scorers
class _Toy(torch.nn.Module):
    """A stand-in model: encode = per-image mean; the scores are closed-form in x."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def encode(self, x):
        return self.w * x.flatten(1).mean(1, keepdim=True)

    def elbo(self, x):
        return -(x.flatten(1) ** 2).sum(1)


class _ToyPrior:
    def log_prob(self, z):
        return -0.5 * z**2  # per-dimension (N, D): the scorer sums over D


class _ToyAB(_Toy):
    registry_name = "ab_vae"

    def __init__(self):
        super().__init__()
        self.prior = _ToyPrior()


class _ToyGW(_Toy):
    registry_name = "gwae"

    def critic(self, x, z):  # noqa: ARG002 (GWAE.critic's signature)
        return z[:, 0] * 2.0


def _images(n, seed, lo=0, hi=256):
    return np.random.default_rng(seed).integers(lo, hi, (n, 1, 4, 4)).astype(np.uint8)


def test_scorers_compute_the_stated_quantities_batch_independently():
    imgs = _images(37, 0)
    x = torch.from_numpy(imgs).float() / 255
    vae, ab, gw = _Toy(), _ToyAB(), _ToyGW()
    assert (default_scorer(vae), default_scorer(ab), default_scorer(gw)) == (
        "elbo", "prior_log_density", "critic")
    np.testing.assert_allclose(ood_scores(vae, imgs, batch_size=5),
                               -(x.flatten(1) ** 2).sum(1).double().numpy(), rtol=1e-6)
    mean = x.flatten(1).mean(1).double().numpy()
    np.testing.assert_allclose(ood_scores(ab, imgs, batch_size=8), -0.5 * mean**2, rtol=1e-5)
    # critic f is low on data pairs: the score is -f
    np.testing.assert_allclose(ood_scores(gw, imgs, batch_size=64), -2 * mean, rtol=1e-6)
    gw.ood_score = lambda x: x.flatten(1).sum(1)  # a model's own ood_score takes precedence
    np.testing.assert_allclose(ood_scores(gw, imgs), x.flatten(1).sum(1).double().numpy(),
                               rtol=1e-6)
    np.testing.assert_array_equal(ood_scores(vae, imgs, batch_size=1),
                                  ood_scores(vae, imgs, batch_size=37))
    with pytest.raises(DisbenchError, match="unknown OoD scorer"):
        ood_scores(vae, imgs, scorer="nope")
    with pytest.raises(DisbenchError, match="has no OoD score"):
        default_scorer(torch.nn.Linear(2, 2))


class _FakeSet(SimpleNamespace):
    pass


def test_gwae_protocol_record_and_roc_file(tmp_path):
    # in: dark 28x28 digits-like images; out: bright 105x105 images resized to 28x28
    sets = {
        ("mnist", "test"): _FakeSet(images=_images(60, 1, 0, 60).reshape(60, 1, 4, 4).repeat(
            7, 2).repeat(7, 3), source="synthetic", fingerprint="fp-in"),
        ("omniglot", "evaluation"): _FakeSet(images=_images(50, 2, 150, 256).repeat(
            26, 2).repeat(26, 3)[:, :, :105, :105], source="synthetic", fingerprint="fp-out"),
    }
    calls = []

    def fake_get(name, source="auto", split=None, **kw):
        calls.append((name, source, split, kw))
        return sets[(name, split)]

    model = _Toy()  # elbo = -||x||^2: dark images score higher (more "in")
    rec = ood.gwae_ood_protocol(model, load_dataset=fake_get, source="synthetic", num_out=40,
                                out_dir=tmp_path)
    assert calls == [("mnist", "synthetic", "test", {}),
                     ("omniglot", "synthetic", "evaluation", {"size": 28})]
    assert rec["metric"] == "ood_auroc" and rec["higher_is_better"] is True
    assert rec["value"] == 1.0
    spec = rec["spec"]
    assert spec["scorer"] == "elbo" and spec["variant"] == "disbench_v1"  # the only one for elbo
    assert spec["in"]["num_samples"] == 60 and spec["out"]["num_samples"] == 40
    assert spec["out"]["fingerprint"] == "fp-out" and spec["out"]["resized_to"] == [1, 28, 28]
    with np.load(tmp_path / spec["roc_file"]) as z:
        assert z["scores_in"].shape == (60,) and z["scores_out"].shape == (40,)
        assert float(z["auroc"]) == rec["value"]
        assert np.trapezoid(z["tpr"], z["fpr"]) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["vae", "ab_vae", "gwae"])
def test_registered_models_scores(name):
    from disbench import baselines

    if name not in baselines.names():
        pytest.skip(f"model {name} not registered")
    torch.manual_seed(0)
    model = baselines.create(name, image_shape=(1, 28, 28), latent_dim=4)
    expected_scorer = {"vae": "elbo", "ab_vae": "prior_log_density", "gwae": "critic"}[name]
    assert default_scorer(model) == expected_scorer
    imgs = _images(6, 3).repeat(7, 2).repeat(7, 3)
    s = ood_scores(model, imgs, batch_size=4)
    assert s.shape == (6,) and np.isfinite(s).all()
    np.testing.assert_array_equal(s, ood_scores(model, imgs, batch_size=4))  # reproducible
    x = torch.from_numpy(imgs).float() / 255
    model.eval()
    with torch.no_grad():
        if name == "gwae":
            ref = -model.critic(x, model.encode(x))
        elif name == "ab_vae":
            ref = model.prior.log_prob(model.encode(x))
        else:
            ref = None
    if ref is not None:
        np.testing.assert_allclose(s, ref.double().numpy(), rtol=1e-4, atol=1e-5)
