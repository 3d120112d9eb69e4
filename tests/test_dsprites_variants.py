"""disentanglement_lib's dSprites variants: the nuisance shape of dsprites_noshape and the
observation models of color/noisy/scream dsprites have the stated distributions, equal
disentanglement_lib's formulas drawn from the same RandomState, and are reproducible from
the random state; the Scream image is pinned on first use."""
import hashlib

import numpy as np
import pytest
from disbench import datasets as D
from disbench.datasets import dsprites as dsp
from disbench.datasets import dsprites_variants as dv
from disbench.errors import DisbenchError


def _sprites(f):
    """The plain dSprites images (n, 64, 64) in {0, 1} of factor rows (shape, ..., posY)."""
    return dsp.render_masks(np.asarray(f)).astype(np.float64)


def test_noshape_draws_shape_uniformly_per_observation():
    ds = D.get("dsprites_noshape", source="synthetic")
    assert ds.factor_names == ("scale", "orientation", "posX", "posY")
    assert ds.factor_sizes == (6, 40, 32, 32) and ds.images.shape == (737280, 1, 64, 64)
    f = np.tile([[5, 0, 16, 16]], (600, 1))
    rs = np.random.RandomState(3)
    obs = ds.sample_observations_from_factors(f, rs)
    # disentanglement_lib: sample_all_factors draws the nuisance with randint(3, size=n)
    shapes = np.random.RandomState(3).randint(3, size=600)
    full = np.column_stack([shapes, f])
    np.testing.assert_array_equal(obs[:, 0], dsp.render_masks(full).view(np.uint8) * 255)
    counts = np.bincount(shapes, minlength=3)
    assert counts.min() > 150  # all three shapes, each about a third
    assert ds.factors.shape == (737280, 4) and ds.factors_of([1]).tolist() == [[0, 0, 0, 1]]
    np.testing.assert_array_equal(ds.index_of([[0, 0, 0, 1]], nuisance=[[2]]),
                                  [2 * 6 * 40 * 32 * 32 + 1])
    with pytest.raises(ValueError, match="random_state is required"):
        ds.sample_observations_from_factors(f[:2])


def test_color_model_and_stream():
    ds = D.get("color_dsprites", source="synthetic")
    assert ds.images.shape == (737280, 3, 64, 64) and ds.factor_sizes == (3, 6, 40, 32, 32)
    f = ds.sample_factors(200, np.random.RandomState(0))
    obs = ds.sample_observations_from_factors(f, np.random.RandomState(1))
    s = _sprites(f)
    colour = np.random.RandomState(1).uniform(0.5, 1, [200, 1, 1, 3])  # disentanglement_lib
    want = np.rint(255 * s[..., None] * colour).astype(np.uint8).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(obs, want)
    on = s.astype(bool)
    for i in range(len(obs)):
        px = obs[i][:, on[i]]
        assert (px >= 128).all() and (px == px[:, :1]).all()  # one colour in [0.5, 1]^3
        assert (obs[i][:, ~on[i]] == 0).all()
    np.testing.assert_array_equal(obs, ds.sample_observations_from_factors(
        f, np.random.RandomState(1)))
    assert not np.array_equal(obs, ds.sample_observations_from_factors(
        f, np.random.RandomState(2)))
    with pytest.raises(ValueError, match="random_state is required"):
        ds.sample_observations_from_factors(f)


def test_noise_model_never_darkens_the_sprite():
    ds = D.get("noisy_dsprites", source="synthetic")
    f = ds.sample_factors(64, np.random.RandomState(0))
    obs = ds.sample_observations_from_factors(f, np.random.RandomState(5))
    s = _sprites(f)
    u = np.random.RandomState(5).uniform(0, 1, [64, 64, 64, 3])
    want = np.rint(255 * np.minimum(s[..., None] + u, 1)).astype(np.uint8).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(obs, want)
    on = np.broadcast_to(s.astype(bool)[:, None], obs.shape)
    assert (obs[on] == 255).all()
    bg = obs[~on].astype(float) / 255
    assert abs(bg.mean() - 0.5) < 0.01 and abs(bg.var() - 1 / 12) < 0.005  # U(0, 1)
    assert np.histogram(bg, bins=10, range=(0, 1))[0].min() > 0.08 * bg.size


def test_scream_model_on_the_twin_texture():
    ds = D.get("scream_dsprites", source="synthetic")
    img = dv.twin_scream()
    assert img.shape == (*dv.TWIN_SCREAM_SHAPE, 3) and 0 <= img.min() and img.max() <= 1
    f = ds.sample_factors(20, np.random.RandomState(0))
    obs = ds.sample_observations_from_factors(f, np.random.RandomState(7))
    s = _sprites(f)
    rs = np.random.RandomState(7)  # disentanglement_lib's loop, per image: x, y, colour
    for i in range(20):
        x = rs.randint(0, img.shape[0] - 64)
        y = rs.randint(0, img.shape[1] - 64)
        bg = (img[x:x + 64, y:y + 64] + rs.uniform(0, 1, size=3)) / 2.0
        mask = np.repeat(s[i][..., None], 3, axis=2) == 1
        bg[mask] = 1 - bg[mask]
        np.testing.assert_array_equal(obs[i], np.rint(255 * bg).astype(np.uint8)
                                      .transpose(2, 0, 1))


def test_training_view_is_one_fixed_realisation_per_cell():
    for name in ("color_dsprites", "noisy_dsprites", "scream_dsprites"):
        ds = D.get(name, source="synthetic")
        idx = np.array([5, 123456, 700000])
        a = ds.images[idx]
        np.testing.assert_array_equal(a, D.get(name, source="synthetic").images[idx[::-1]][::-1])
        np.testing.assert_array_equal(a[1], ds.images[123456])
        on = dsp.render(ds.factors_of(idx))[:, 0] > 0
        if name == "color_dsprites":
            assert all((a[i][:, on[i]] >= 128).all() for i in range(3))
        if name == "noisy_dsprites":
            assert all((a[i][:, on[i]] == 255).all() for i in range(3))
    colors = D.get("color_dsprites", source="synthetic").images[np.arange(0, 737280, 2459)]
    peak = colors.reshape(len(colors), 3, -1).max(axis=2) / 255
    assert peak.min() >= 0.5 and peak.max() <= 1 and peak.std() > 0.1  # they vary over cells


def test_official_views_share_the_dsprites_cache_and_pin_the_scream(tmp_path, empty_cache):
    from PIL import Image

    assert dv.ScreamDSprites.files_folder() == empty_cache / "dsprites"
    assert dv.ScreamDSprites.describe()["files"]["The_Scream.jpg"]["checksum_source"]\
        .startswith("none published")
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (500, 400, 3), dtype=np.uint8)).save(
        src / "The_Scream.jpg", quality=90)
    result = dv.ScreamDSprites.import_dir(src)
    assert result.imported == ["The_Scream.jpg"] and result.splits == []  # no dSprites yet
    sha = hashlib.sha256((src / "The_Scream.jpg").read_bytes()).hexdigest()
    assert (empty_cache / "dsprites" / "The_Scream.jpg.sha256").read_text().strip() == sha
    thumb = dv.read_scream(empty_cache / "dsprites" / "The_Scream.jpg")
    assert thumb.shape == (274, 219, 3)  # 350 x 274 at most, the aspect kept
    with pytest.raises(DisbenchError, match="missing official file dsprites_ndarray"):
        D.get("scream_dsprites", source="official", download=False)
    (src / "small.jpg").write_bytes(b"")
    Image.fromarray(rng.integers(0, 256, (60, 60, 3), dtype=np.uint8)).save(src / "small.jpg")
    with pytest.raises(DisbenchError, match="small.jpg.*at least 65"):
        dv.read_scream(src / "small.jpg")
