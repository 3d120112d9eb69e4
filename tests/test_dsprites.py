"""dSprites: the factor grid, the twin's geometry and the official npz parser (no network)."""
import hashlib
import io
import os
import pickle
import zipfile

import disbench.datasets as D
import numpy as np
import pytest
import torch
from disbench.cli import main
from disbench.datasets import dsprites as dsp
from disbench.datasets.download import OfficialFile
from disbench.errors import DisbenchError


@pytest.fixture(scope="module")
def twin():
    return dsp.DSprites.load_synthetic()


def _masks(shape, scale, orient, px, py):
    cols = np.broadcast_arrays(*map(np.atleast_1d, (shape, scale, orient, px, py)))
    f = np.stack(cols, axis=1).astype(np.int64)
    return dsp.render_masks(f)


def test_registered_and_factor_grid(twin):
    assert "dsprites" in D.names()
    assert twin.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert twin.factor_sizes == (3, 6, 40, 32, 32)
    assert len(twin) == 737280 and twin.images.shape == (737280, 1, 64, 64)
    assert twin.image_shape == (1, 64, 64) and twin.binary and twin.source == "synthetic"
    assert twin.fingerprint == "synthetic-dsprites1-seed0"
    f = twin.factors
    assert f.shape == (737280, 5) and f.dtype == np.int64
    np.testing.assert_array_equal(twin.index_of(f), np.arange(737280))
    # row-major, posY fastest
    np.testing.assert_array_equal(f[:3], [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 2]])
    np.testing.assert_array_equal(f[32], [0, 0, 0, 1, 0])
    assert all(int(f[:, k].max()) == s - 1 for k, s in enumerate(twin.factor_sizes))


def test_index_of_round_trip_and_validation(twin):
    rng = np.random.default_rng(0)
    f = twin.sample_factors(1000, rng)
    assert f.dtype == np.int64 and f.shape == (1000, 5)
    np.testing.assert_array_equal(twin.factors[twin.index_of(f)], f)
    np.testing.assert_array_equal(twin.factors_of(twin.index_of(f)), f)
    f2 = twin.sample_factors(10, np.random.RandomState(0))
    assert f2.shape == (10, 5) and (f2 < np.array(twin.factor_sizes)).all()
    with pytest.raises(ValueError, match="factors must have shape"):
        twin.index_of(np.zeros((3, 4), np.int64))
    with pytest.raises(ValueError, match="orientation"):
        twin.index_of([[0, 0, 40, 0, 0]])
    with pytest.raises(ValueError, match="out of range"):
        twin.index_of([[-1, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match="integer"):
        twin.index_of([[0.5, 0, 0, 0, 0]])
    # an int seeds a RandomState (disentanglement_lib's convention); anything else that is
    # not a numpy random state is refused, naming the argument
    np.testing.assert_array_equal(twin.sample_factors(10, 0),
                                  twin.sample_factors(10, np.random.RandomState(0)))
    for bad in (None, "0", 1.5, -1):
        with pytest.raises(ValueError, match="random_state"):
            twin.sample_factors(3, bad)


def test_observations_values_and_determinism(twin):
    rng = np.random.default_rng(1)
    f = twin.sample_factors(300, rng)
    x = twin.sample_observations_from_factors(f, rng)
    assert x.shape == (300, 1, 64, 64) and x.dtype == np.uint8
    assert set(np.unique(x)) <= {0, 255} and (x.reshape(300, -1).max(1) == 255).all()
    np.testing.assert_array_equal(x, twin.sample_observations_from_factors(f, rng))
    # the lazy images array renders the same pixels, whatever the batch composition
    idx = twin.index_of(f)
    np.testing.assert_array_equal(twin.images[idx], x)
    np.testing.assert_array_equal(twin.images[int(idx[7])], x[7])
    np.testing.assert_array_equal(np.asarray(twin.images[idx[0]:idx[0] + 2])[0], x[0])
    img, fac = twin[int(idx[5])]
    assert img.dtype == torch.uint8 and img.shape == (1, 64, 64)
    assert fac.dtype == torch.int64 and fac.tolist() == f[5].tolist()
    np.testing.assert_array_equal(img.numpy(), x[5])


def test_distinct_images_on_a_subgrid():
    # every (orientation, posX) cell of a scale-1 heart differs from every other one
    o, px = np.meshgrid(np.arange(40), np.arange(32), indexing="ij")
    m = _masks(2, 5, o.ravel(), px.ravel(), 7).reshape(1280, -1)
    m = m[o.ravel() != 39]  # orientation 2*pi repeats 0 (both ends included)
    assert len(np.unique(m, axis=0)) == len(m)


@pytest.mark.parametrize("scale", range(6))
def test_square_and_ellipse_area_constant_under_rotation(scale):
    s = dsp.SCALES[scale]
    sq = _masks(0, scale, np.arange(40), 12, 19).sum((1, 2))
    el = _masks(1, scale, np.arange(40), 12, 19).sum((1, 2))
    ht = _masks(2, scale, np.arange(40), 12, 19).sum((1, 2))
    assert np.abs(sq / (400 * s * s) - 1).max() < 0.05
    assert np.abs(el / (np.pi * 13 * 7 * s * s) - 1).max() < 0.06
    for a in (sq, el, ht):  # only boundary pixels come and go as the shape turns
        assert a.std() < 0.02 * a.mean() + 1.0
        assert a.max() - a.min() < 0.05 * a.mean() + 6
    # axis-aligned square: exactly (20 s) x (20 s) pixels
    m = _masks(0, scale, 0, 3, 3)[0]
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    assert len(rows) == len(cols) == round(20 * s) and m.sum() == round(20 * s) ** 2


def test_centre_position():
    k = np.arange(32)
    for shape in (0, 1):
        m = _masks(shape, 5, 0, k, 31 - k)
        r, c = np.indices((64, 64))
        cx = (m * c).sum((1, 2)) / m.sum((1, 2))
        cy = (m * r).sum((1, 2)) / m.sum((1, 2))
        assert np.abs(cx - (15.5 + 32 * dsp.POSITIONS)).max() <= 0.5
        assert np.abs(cy - (15.5 + 32 * dsp.POSITIONS[::-1])).max() <= 0.5
    # ellipse is wide at orientation 0 and tall a quarter turn later (orientation 10 ~ pi/2)
    e0, e90 = _masks(1, 5, [0, 10], 16, 16)
    assert e0.any(0).sum() == 26 and e0.any(1).sum() == 14
    assert e90.any(0).sum() in (14, 15, 16) and e90.any(1).sum() in (25, 26, 27)


def test_heart_geometry():
    m = _masks(2, 5, 0, 9, np.arange(32))
    heights = []
    for mm in m:
        rows, cols = np.flatnonzero(mm.any(1)), np.flatnonzero(mm.any(0))
        assert len(cols) == 20 and len(rows) in (16, 17, 18)
        heights.append(len(rows))
        centroid = np.nonzero(mm)[0].mean()
        assert 1.0 < (rows[0] + rows[-1]) / 2 - centroid < 3.0  # mass in the upper lobes
    assert np.bincount(heights).argmax() == 17


# ------------------------------------------------------------------ official container
def test_twin_container_round_trip(tmp_path):
    npz = tmp_path / dsp.OFFICIAL.name
    dsp.write_npz(npz, num_images=2048, progress=False)
    with np.load(npz) as z:  # an ordinary npz, readable without pickles
        assert set(z.files) == set(dsp.KEYS)
        assert z["imgs"].shape == (2048, 64, 64) and z["imgs"].max() == 1
        assert z["latents_classes"].dtype == np.int64 and z["latents_values"].dtype == np.float64
    dest = tmp_path / "images.npy"
    meta = dsp.convert_npz(npz, dest, num_images=2048, progress=False)
    assert tuple(meta["latents_sizes"]) == dsp.ALL_SIZES
    out = np.load(dest, mmap_mode="r")
    grid = dsp.DSprites.load_synthetic().factors[:2048]
    np.testing.assert_array_equal(out, dsp.render(grid))
    # the loaders want all 737,280 rows: a short file is rejected, naming the file
    with pytest.raises(DisbenchError, match=f"{npz.name}.*latents_classes.*737280"):
        dsp.convert_npz(npz, tmp_path / "x.npy", progress=False)


def _write_npz(path, arrays):
    with zipfile.ZipFile(path, "w") as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr, allow_pickle=True)
            zf.writestr(f"{key}.npy", buf.getvalue())


def _small_arrays(n=64):
    classes, values = dsp._latents(n)
    imgs = dsp.render_masks(classes[:, 1:]).astype(np.uint8)
    meta = np.empty((), dtype=object)
    meta[()] = {b"latents_sizes": np.array(dsp.ALL_SIZES), b"title": b"dSprites"}
    return {"imgs": imgs, "latents_values": values, "latents_classes": classes, "metadata": meta}


def test_parser_rejects_bad_files(tmp_path):
    arrays = _small_arrays()
    p = tmp_path / "f.npz"
    dest = tmp_path / "o.npy"
    # a pickled metadata (like the official file) is never unpickled (issue 21, item 1): the
    # metadata is rebuilt from the known grid
    _write_npz(p, arrays)
    meta = dsp.convert_npz(p, dest, num_images=64, progress=False)
    assert "title" not in meta and meta == dsp.grid_metadata()
    assert tuple(meta["latents_sizes"]) == dsp.ALL_SIZES
    np.testing.assert_array_equal(np.load(dest)[:, 0], arrays["imgs"] * 255)
    for broken, match in (
        ({k: v for k, v in arrays.items() if k != "metadata"}, "missing key.*metadata"),
        ({**arrays, "imgs": arrays["imgs"] * 2}, "other than 0/1"),
        ({**arrays, "imgs": arrays["imgs"][:, :32]}, "'imgs' has shape"),
        ({**arrays, "latents_classes": arrays["latents_classes"][::-1]}, "row-major grid"),
        ({**arrays, "latents_values": arrays["latents_values"] * 2}, "latents_values"),
    ):
        _write_npz(p, broken)
        with pytest.raises(DisbenchError, match=match) as err:
            dsp.convert_npz(p, tmp_path / "bad.npy", num_images=64, progress=False)
        assert str(p) in str(err.value)
        assert not (tmp_path / "bad.npy").exists()
    # an object array anywhere else is refused without being loaded
    _write_npz(p, {**arrays, "latents_values": np.array([None] * 64 * 6, dtype=object)
                   .reshape(64, 6)})
    with pytest.raises(DisbenchError, match="latents_values.*object"):
        dsp.convert_npz(p, tmp_path / "bad.npy", num_images=64, progress=False)
    p.write_bytes(b"not a zip")
    with pytest.raises(DisbenchError, match="not a readable npz"):
        dsp.convert_npz(p, dest, num_images=64, progress=False)


class _Payload:
    """Unpickling this object creates the folder ``marker`` (a stand-in for running code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_planted_pickle_with_a_matching_sidecar_never_runs(empty_cache, monkeypatch, tmp_path):
    """Issue 21, item 1: a cache folder holding an npz whose metadata pickle runs code, plus
    a '.verified' sidecar claiming the official MD5 (so the file is not re-hashed): loading
    dsprites must never run the payload."""
    monkeypatch.setattr(dsp, "NUM_IMAGES", 1024)
    monkeypatch.setattr(dsp.DSprites, "factor_sizes", (1, 1, 1, 32, 32))
    marker = tmp_path / "payload-ran"
    arrays = _small_arrays(1024)
    meta = np.empty((), dtype=object)
    meta[()] = _Payload(marker)
    arrays["metadata"] = meta
    folder = empty_cache / "dsprites"
    folder.mkdir(parents=True)
    planted = folder / dsp.OFFICIAL.name
    _write_npz(planted, arrays)
    st = planted.stat()
    (folder / (planted.name + ".verified")).write_text(
        f"{st.st_size} {st.st_mtime_ns} {dsp.OFFICIAL.md5}\n")
    pickle.loads(pickle.dumps(_Payload(marker)))  # the payload is live: unpickling runs it
    assert marker.is_dir()
    marker.rmdir()
    ds = D.get("dsprites", source="official")
    assert ds.source == "official" and not marker.exists()
    np.testing.assert_array_equal(ds.images[:, 0], arrays["imgs"] * 255)
    assert main(["datasets", "prepare", "dsprites"]) == 0
    assert not marker.exists()


def test_official_checksum_mismatch_and_missing(empty_cache):
    cls = dsp.DSprites
    assert not cls.official_available()
    with pytest.raises(DisbenchError) as err:
        cls.load_official(download=False)
    msg = str(err.value)
    assert dsp.OFFICIAL.url in msg and str(empty_cache / "dsprites" / dsp.OFFICIAL.name) in msg
    # auto falls back to the twin when nothing is cached; official never does
    assert D.get("dsprites").source == "synthetic"
    bad = empty_cache / "dsprites" / dsp.OFFICIAL.name
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"corrupt")
    with pytest.raises(DisbenchError, match=f"md5 .*{dsp.OFFICIAL.md5}") as err:
        cls.load_official(download=False)
    assert str(bad) in str(err.value)
    with pytest.raises(DisbenchError, match="only the split 'train'"):
        cls.load_synthetic("test")


def test_official_flow_on_a_verified_file(empty_cache, monkeypatch, tmp_path):
    # the whole official path (verify -> parse -> cache the memmap) on a checksummed file;
    # a short file cannot pass the parser, so the grid size is shrunk for this test only
    arrays = _small_arrays(1024)
    src = tmp_path / dsp.OFFICIAL.name
    _write_npz(src, arrays)
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    spec = OfficialFile(dsp.OFFICIAL.name, "http://127.0.0.1:9/x", md5=md5)
    monkeypatch.setattr(dsp, "OFFICIAL", spec)
    monkeypatch.setattr(dsp.DSprites, "files", (spec,))
    monkeypatch.setattr(dsp, "NUM_IMAGES", 1024)
    monkeypatch.setattr(dsp.DSprites, "factor_sizes", (1, 1, 1, 32, 32))
    dsp.DSprites.import_dir(tmp_path)
    assert dsp.DSprites.official_available()
    ds = D.get("dsprites", source="auto")
    assert ds.source == "official" and ds.fingerprint == f"md5-{md5[:12]}"
    assert isinstance(ds.images, np.memmap)
    np.testing.assert_array_equal(ds.images[:, 0], arrays["imgs"] * 255)
    np.testing.assert_array_equal(ds.sample_observations_from_factors([[0, 0, 0, 3, 4]])[0],
                                  ds.images[3 * 32 + 4])
    assert ds.tensor("cpu").shape == (1024, 1, 64, 64)
    # loaded twice: the cached layout is reused, not converted again
    stamp = empty_cache / "dsprites" / "official_images.json"
    before = stamp.stat().st_mtime_ns
    dsp.DSprites.load_official(download=False)
    assert stamp.stat().st_mtime_ns == before
    with pytest.raises(DisbenchError, match="does not hold"):
        dsp.DSprites.import_dir(tmp_path / "nowhere")
    # prepare: the verified file and its converted layout, nothing converted again
    assert dsp.DSprites.prepare("official", progress=False) == [
        empty_cache / "dsprites" / dsp.OFFICIAL.name, empty_cache / "dsprites" / "official_images.npy"]
    assert stamp.stat().st_mtime_ns == before
    assert dsp.DSprites.describe()["official_cached"] == ["train"]


def test_prepare_synthetic_caches_the_twin_layout(empty_cache, monkeypatch):
    # the whole-twin path (write the official container, parse it back, cache the layout)
    # on the first 1024 grid rows, the grid shrunk for this test only
    monkeypatch.setattr(dsp, "NUM_IMAGES", 1024)
    monkeypatch.setattr(dsp.DSprites, "factor_sizes", (1, 1, 1, 32, 32))
    assert dsp.DSprites.twin_cached() == []
    lazy = dsp.DSprites.load_synthetic()
    paths = dsp.DSprites.prepare("synthetic", progress=False)
    assert paths == [empty_cache / "dsprites" / "synthetic_images.npy"]
    assert (empty_cache / "dsprites" / "synthetic" / dsp.OFFICIAL.name).is_file()
    assert dsp.DSprites.twin_cached() == ["train"]
    ds = dsp.DSprites.load_synthetic()
    assert isinstance(ds.images, np.memmap) and ds.fingerprint == lazy.fingerprint
    np.testing.assert_array_equal(ds.images, np.asarray(lazy.images))
    with pytest.raises(DisbenchError, match="unknown split 'test'"):
        dsp.DSprites.prepare("synthetic", split="test")



def test_ground_truth_base_with_lazy_images():
    from disbench.datasets.ground_truth import GroundTruthDataset, RenderedImages

    class Tiny(GroundTruthDataset):
        name = "tiny"
        factor_names = ("a", "b")
        factor_sizes = (3, 5)
        image_shape = (1, 2, 2)

    calls = []

    def render(idx):
        calls.append(len(idx))
        return np.broadcast_to(idx.astype(np.uint8)[:, None, None, None], (len(idx), 1, 2, 2)).copy()

    ds = Tiny(RenderedImages((15, 1, 2, 2), render), source="synthetic", split="train",
              fingerprint="t")
    assert ds.strides.tolist() == [5, 1] and len(ds) == 15
    np.testing.assert_array_equal(ds.images[-1], np.full((1, 2, 2), 14))
    np.testing.assert_array_equal(ds.images[np.array([[1], [7]])][:, 0, 0, 0, 0], [1, 7])
    np.testing.assert_array_equal(ds.images[np.arange(15) % 4 == 0, 0, 0, 0], [0, 4, 8, 12])
    np.testing.assert_array_equal(ds.images[2:9:3, 0, 1, 1], [2, 5, 8])
    with pytest.raises(IndexError):
        ds.images[15]
    t = ds.tensor("cpu")
    assert t.dtype == torch.uint8 and t.shape == (15, 1, 2, 2)
    np.testing.assert_array_equal(t.numpy(), np.asarray(ds.images))
    f = np.array([[2, 4], [0, 1]])
    np.testing.assert_array_equal(ds.sample_observations_from_factors(f)[:, 0, 0, 0], [14, 1])
    with pytest.raises(ValueError, match="images must have shape"):
        Tiny(np.zeros((14, 1, 2, 2), np.uint8), source="official", split="train", fingerprint="x")
    with pytest.raises(ValueError, match="n must be"):
        ds.sample_factors(-1, np.random.default_rng(0))
