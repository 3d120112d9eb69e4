"""disent's xyobject and xysquares: disbench's vectorised renderers equal disent's per-image
``_get_observation`` (re-written here line by line from nmichlo/disent
``disent/dataset/data/_groundtruth__xyobject.py`` and ``_groundtruth__xysquares.py``)."""
import numpy as np
import pytest
from disbench import datasets as D
from disbench.errors import DisbenchError

_R, _G, _B, _Y, _C, _M = ([255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0],
                          [0, 255, 255], [255, 0, 255])


def _disent_xyobject(idx):
    # XYObjectData defaults: grid 64, spacing 2, sizes 7..15 step 2, rgb, "rainbow_4"
    colors = np.array([shade * i // 4 for i in range(1, 5)
                       for shade in np.array([_R, _Y, _G, _C, _B, _M])])
    scales = np.arange(7, 15 + 1, 2)
    placements = (64 - 15) // 2 + 1
    x, y, s, c = np.unravel_index(idx, (placements, placements, len(scales), len(colors)))
    s = scales[s]
    r = (15 - s) // 2
    x, y = 2 * x + r, 2 * y + r
    obs = np.zeros((64, 64, 3), dtype=np.uint8)
    obs[y:y + s, x:x + s] = colors[c]
    return obs


def _disent_xysquares(idx):
    # XYSquaresData defaults: square 8, image 64, spacing 8, 3 squares, rgb, fill 255
    factors = np.unravel_index(idx, (8,) * 6)
    obs = np.zeros((64, 64, 3), dtype=np.uint8)
    for i in range(3):
        fx, fy = factors[2 * i], factors[2 * i + 1]
        x, y = 0 + 8 * fx, 0 + 8 * fy
        obs[y:y + 8, x:x + 8, i] = 255
    return obs


@pytest.mark.parametrize("name, reference, sizes", [
    ("xyobject", _disent_xyobject, (25, 25, 5, 24)),
    ("xysquares", _disent_xysquares, (8, 8, 8, 8, 8, 8)),
])
def test_equal_to_disents_generator(name, reference, sizes):
    ds = D.get(name)  # auto: nothing is published, so the generator itself
    assert ds.source == "synthetic" and ds.factor_sizes == sizes
    assert ds.images.shape == (int(np.prod(sizes)), 3, 64, 64) and ds.images.dtype == np.uint8
    idx = np.unique(np.r_[0, len(ds) - 1, np.random.default_rng(0).integers(0, len(ds), 300)])
    got = ds.images[idx]
    for i, k in enumerate(idx):
        np.testing.assert_array_equal(got[i], reference(int(k)).transpose(2, 0, 1))
    f = ds.factors_of(idx)
    np.testing.assert_array_equal(ds.sample_observations_from_factors(f), got)


@pytest.mark.usefixtures("empty_cache")
def test_no_official_files_and_prepare_caches_the_grid(tmp_path, monkeypatch):
    cls = D.spec("xyobject")
    monkeypatch.setattr(cls, "factor_sizes", (2, 25, 5, 24))  # a slice of the grid: 74 MB
    assert cls.files == () and not cls.official_available()
    with pytest.raises(DisbenchError, match="xyobject is procedural.*--source synthetic"):
        D.get("xyobject", source="official")
    with pytest.raises(DisbenchError, match="no official files to import"):
        cls.import_dir(tmp_path)
    (dest,) = cls.prepare("synthetic", progress=False)
    assert cls.twin_cached() == ["train"] and dest.name == "synthetic_images.npy"
    ds = D.get("xyobject")
    assert isinstance(ds.images, np.memmap) and len(ds) == 6000
    for k in (7, 5999):
        full = np.ravel_multi_index(tuple(ds.factors_of([k])[0]), (25, 25, 5, 24))
        np.testing.assert_array_equal(ds.images[k], _disent_xyobject(full).transpose(2, 0, 1))
