"""SmallNORB: the NORB binary-matrix parser on small files built here, the factor order of
both conventions, checksum failures, import of a local folder, the twin (no network)."""
import gzip
import hashlib

import numpy as np
import pytest
from disbench import datasets as D
from disbench.datasets import norb
from disbench.datasets.download import OfficialFile
from disbench.errors import DisbenchError


def test_binary_matrix_round_trip_and_header(tmp_path):
    for arr in (np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
                np.arange(7, dtype="<i4"), np.arange(12, dtype="<i4").reshape(3, 4),
                np.arange(2 * 2 * 3 * 3, dtype=np.uint8).reshape(2, 2, 3, 3)):
        raw = norb.encode_matrix(arr)
        # magic, ndim, then max(3, ndim) dims (the unused ones 1), then the data
        head = np.frombuffer(raw[:8], "<i4")
        assert head[0] == (0x1E3D4C55 if arr.dtype == np.uint8 else 0x1E3D4C54)
        assert head[1] == arr.ndim
        dims = np.frombuffer(raw[8:8 + 4 * max(3, arr.ndim)], "<i4")
        assert dims.tolist() == list(arr.shape) + [1] * (3 - arr.ndim) * (arr.ndim < 3)
        p = tmp_path / "m.mat.gz"
        norb.write_matrix_gz(p, arr)
        got = norb.read_matrix(p)
        assert got.dtype == arr.dtype and np.array_equal(got, arr)
        (tmp_path / "m.mat").write_bytes(raw)  # an uncompressed matrix reads too
        assert np.array_equal(norb.read_matrix(tmp_path / "m.mat"), arr)
    bad = tmp_path / "bad.mat"
    bad.write_bytes(np.array([0x12345678, 1, 3, 1, 1], "<i4").tobytes() + b"abc")
    with pytest.raises(DisbenchError, match=f"{bad}.*magic number 0x12345678"):
        norb.read_matrix(bad)
    bad.write_bytes(norb.encode_matrix(np.arange(10, dtype="<i4"))[:-4])
    with pytest.raises(DisbenchError, match=f"{bad}.*header announces"):
        norb.read_matrix(bad)
    noise = np.random.default_rng(0).integers(0, 256, (50, 96, 96), dtype=np.uint8)
    whole = gzip.compress(norb.encode_matrix(noise))
    (tmp_path / "trunc.mat.gz").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(DisbenchError, match="truncated or corrupt"):
        norb.read_matrix(tmp_path / "trunc.mat.gz")


@pytest.fixture
def tiny(monkeypatch):
    """A tiny grid: 2 categories, 2 elevations, 3 azimuths, 2 lightings (x 5 instances)."""
    monkeypatch.setattr(norb, "GRID", {"category": 2, "elevation": 2, "azimuth": 3,
                                        "lighting": 2})
    return norb.per_split()


def _official_split(folder, split, rng):
    """Files of one split in the official format: rows in a random order, each left image
    marking its factors (pixel values 10 * factor), the right camera different."""
    sizes = norb.grid_sizes(split)
    g = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), 1)
    g[:, 1] = np.asarray(norb.SPLIT_INSTANCES[split])[g[:, 1]]
    g = g[rng.permutation(len(g))]
    dat = np.zeros((len(g), 2, 96, 96), np.uint8)
    for k in range(5):
        dat[:, 0, 16 * k:16 * k + 16, :] = (10 * g[:, k] + 5)[:, None, None]
    dat[:, 1] = 250
    info = np.column_stack([g[:, 1], g[:, 2], 2 * g[:, 3], g[:, 4]]).astype("<i4")
    for name, arr in zip(norb.split_names(split), (dat, g[:, 0].astype("<i4"), info),
                         strict=True):
        norb.write_matrix_gz(folder / name, arr)
    return g


def _marks(images):
    """The factors read back from 64x64 images (the centre row of band k)."""
    rows = [int((16 * k + 8) * 64 / 96) for k in range(5)]
    return np.rint((images[:, 0, rows, 32].astype(float) - 5) / 10).astype(int)


@pytest.mark.usefixtures("tiny")
def test_convert_puts_every_image_at_its_grid_cell_both_conventions(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        _official_split(tmp_path, split, rng)
    # disentanglement_lib's convention: both splits, instance a nuisance over 10
    dest = tmp_path / "all.npy"
    norb.convert(tmp_path, "all", dest, "dlib", progress=False)
    out = np.load(dest)
    sizes = norb.grid_sizes("all")
    assert out.shape == (int(np.prod(sizes)), 1, 64, 64) and sizes == (2, 10, 2, 3, 2)
    want = np.stack(np.unravel_index(np.arange(len(out)), sizes), 1)
    np.testing.assert_array_equal(_marks(out), want)  # instance raw == grid column here
    # disent's convention: one split, instance = rank among the split's five instances
    norb.convert(tmp_path, "test", tmp_path / "test.npy", "disent", progress=False)
    out = np.load(tmp_path / "test.npy")
    want = np.stack(np.unravel_index(np.arange(len(out)), norb.grid_sizes("test")), 1)
    want[:, 1] = np.asarray(norb.SPLIT_INSTANCES["test"])[want[:, 1]]
    np.testing.assert_array_equal(_marks(out), want)


@pytest.mark.usefixtures("tiny")
def test_convert_rejects_bad_files(tmp_path):
    g = _official_split(tmp_path, "train", np.random.default_rng(1))
    dat, _, info = (tmp_path / n for n in norb.split_names("train"))
    bad_info = np.column_stack([g[:, 1], g[:, 2], 2 * g[:, 3], g[:, 4]]).astype("<i4")
    bad_info[0] = bad_info[1]  # one cell twice, one missing
    norb.write_matrix_gz(info, bad_info)
    with pytest.raises(DisbenchError, match="exactly once"):
        norb.convert(tmp_path, "train", tmp_path / "x.npy", "dlib", progress=False)
    bad_info = bad_info.copy()
    bad_info[:, 2] = 3  # odd azimuth
    norb.write_matrix_gz(info, bad_info)
    with pytest.raises(DisbenchError, match=f"{info}.*even"):
        norb.convert(tmp_path, "train", tmp_path / "x.npy", "dlib", progress=False)
    _official_split(tmp_path, "train", np.random.default_rng(1))
    norb.write_matrix_gz(dat, np.zeros((3, 2, 96, 96), np.uint8))
    with pytest.raises(DisbenchError, match=f"{dat}.*expected uint8"):
        norb.convert(tmp_path, "train", tmp_path / "x.npy", "dlib", progress=False)
    assert not (tmp_path / "x.npy").exists()


def _install_manifest(monkeypatch, folder):
    """Point the manifest at the test's own files (checksums of the bytes written here)."""
    specs = tuple(OfficialFile(f.name, f"http://127.0.0.1:9/{f.name}",
                               sha256=hashlib.sha256((folder / f.name).read_bytes()).hexdigest())
                  for f in norb.FILES)
    monkeypatch.setattr(norb.SmallNORB, "files", specs)
    return specs


def test_official_flow_import_and_checksum_failure(tmp_path, empty_cache, monkeypatch, tiny):
    src = tmp_path / "src"
    src.mkdir()
    for split in ("train", "test"):
        _official_split(src, split, np.random.default_rng(2))
    specs = _install_manifest(monkeypatch, src)
    cls = norb.SmallNORB
    with pytest.raises(DisbenchError) as err:
        cls.load_official(download=False)
    assert specs[0].url in str(err.value) and str(empty_cache / "smallnorb" / specs[0].name) \
        in str(err.value)
    result = cls.import_dir(src)
    assert sorted(result.imported) == sorted(f.name for f in specs)
    assert result.splits == ["all", "train", "test"]
    ds = D.get("smallnorb", source="auto")
    assert ds.source == "official" and ds.factor_names == ("category", "elevation", "azimuth",
                                                           "lighting")
    assert ds.factor_sizes == (2, 2, 3, 2) and len(ds) == 2 * tiny
    # the observation of a factor row is one of the 10 instances' images, drawn per call
    f = np.array([[1, 0, 2, 1]] * 40)
    o = ds.sample_observations_from_factors(f, np.random.RandomState(0))
    m = _marks(o)
    assert (m[:, [0, 2, 3, 4]] == [1, 0, 2, 1]).all() and len(set(m[:, 1])) > 3
    np.testing.assert_array_equal(o, ds.sample_observations_from_factors(
        f, np.random.RandomState(0)))
    with pytest.raises(ValueError, match="random_state is required"):
        ds.sample_observations_from_factors(f)
    d2 = D.get("smallnorb", source="official", split="train", convention="disent")
    assert d2.factor_names[1] == "instance" and d2.factor_sizes == (2, 5, 2, 3, 2)
    assert d2.fingerprint.endswith("-disent") and d2.fingerprint != ds.fingerprint
    with pytest.raises(DisbenchError, match="disent convention uses one split"):
        D.get("smallnorb", source="official", convention="disent")
    # a corrupted file in the cache: the error names it, the checksum and the fix
    cached = empty_cache / "smallnorb" / specs[1].name
    cached.write_bytes(b"corrupt")
    (empty_cache / "smallnorb" / (specs[1].name + ".verified")).unlink()
    with pytest.raises(DisbenchError, match=f"{cached}: sha256 .* does not match"):
        cls.load_official("train", download=False)


def test_twin_shapes_grid_and_determinism():
    cls = norb.SmallNORB
    ds = D.get("smallnorb", source="synthetic")
    assert ds.images.shape == (48600, 1, 64, 64) and ds.images.dtype == np.uint8
    assert ds.grid_sizes == (5, 10, 9, 18, 6) and ds.factor_sizes == (5, 9, 18, 6)
    assert cls.factor_table() == {"category": 5, "elevation": 9, "azimuth": 18, "lighting": 6}
    a = ds.images[[0, 4321, 48599]]
    np.testing.assert_array_equal(a, D.get("smallnorb", source="synthetic").images[[0, 4321,
                                                                                    48599]])
    assert len({a[i].tobytes() for i in range(3)}) == 3
    d = D.get("smallnorb", source="synthetic", split="test", convention="disent")
    assert d.images.shape == (24300, 1, 64, 64) and d.factor_sizes == (5, 5, 9, 18, 6)


@pytest.mark.usefixtures("tiny", "empty_cache")
def test_twin_written_in_the_official_format_parses_back(tmp_path):
    paths = norb.write_twin(tmp_path, progress=False)
    assert [p.name for p in paths] == list(norb.split_names("all"))
    norb.convert(tmp_path, "all", tmp_path / "all.npy", "dlib", progress=False)
    lazy = D.get("smallnorb", source="synthetic")
    np.testing.assert_array_equal(np.load(tmp_path / "all.npy"), np.asarray(lazy.images))
