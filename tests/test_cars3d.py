"""Cars3D: a tar.gz of MATLAB v5 files written with scipy, parsed back; objects by sorted file
name; elevation/azimuth axes; bad archives; checksum failure; import; the twin."""
import hashlib
import io
import tarfile

import numpy as np
import pytest
import scipy.io
from disbench import datasets as D
from disbench.datasets import cars3d
from disbench.datasets.download import OfficialFile
from disbench.errors import DisbenchError

NAMES = ("car_zeta_mesh", "car_alpha_mesh", "car_mid_mesh")  # written in unsorted order


def _im(code):
    """im (128, 128, 3, 24, 4): channel 0 = 40 + code, 1 = 3 * azimuth, 2 = 50 * elevation."""
    im = np.zeros((128, 128, 3, 24, 4), np.uint8)
    im[:, :, 0] = 40 + code
    im[:, :, 1] = (3 * np.arange(24))[:, None]
    im[:, :, 2] = (50 * np.arange(4))[None, :]
    return im


def _tar(path, names=NAMES, extra=()):
    with tarfile.open(path, "w:gz") as tf:
        for m, data in [*((f"data/cars/{n}.mat", _mat(_im(i))) for i, n in enumerate(names)),
                        ("data/cars/list.txt", "\n".join(names).encode()),
                        ("data/shapes48.mat", b"ignored"), *extra]:
            info = tarfile.TarInfo(m)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _mat(im):
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"im": im, "mask": np.zeros((128, 128, 24, 4), np.uint8)})
    return buf.getvalue()


@pytest.fixture
def three_cars(monkeypatch):
    monkeypatch.setattr(cars3d, "NUM_CARS", 3)
    monkeypatch.setattr(cars3d.Cars3D, "factor_sizes", (4, 24, 3))


@pytest.mark.usefixtures("three_cars")
def test_parser_factor_order_and_sorted_objects(tmp_path):
    dest = tmp_path / "out.npy"
    names = cars3d.convert_tar(_tar(tmp_path / "c.tar.gz"), dest, progress=False)
    assert names == sorted(f"{n}.mat" for n in NAMES)
    out = np.load(dest)
    assert out.shape == (4 * 24 * 3, 3, 64, 64) and out.dtype == np.uint8
    el, az, obj = np.unravel_index(np.arange(len(out)), (4, 24, 3))
    # object k is the k-th sorted name: alpha (written 2nd), mid (3rd), zeta (1st)
    code = np.array([1, 2, 0])[obj]
    np.testing.assert_array_equal(out[:, 0, 32, 32], 40 + code)
    np.testing.assert_array_equal(out[:, 1, 32, 32], 3 * az)
    np.testing.assert_array_equal(out[:, 2, 32, 32], 50 * el)


@pytest.mark.usefixtures("three_cars")
def test_parser_rejects_bad_archives(tmp_path):
    with pytest.raises(DisbenchError, match="2 distinct .* expected 3"):
        cars3d.convert_tar(_tar(tmp_path / "a.tar.gz", NAMES[:2]), tmp_path / "x.npy",
                           progress=False)
    with pytest.raises(DisbenchError, match="escape"):
        cars3d.convert_tar(_tar(tmp_path / "b.tar.gz", extra=[("../evil.txt", b"x")]),
                           tmp_path / "x.npy", progress=False)
    p = tmp_path / "c.tar.gz"
    with tarfile.open(p, "w:gz") as tf:
        for i, n in enumerate(NAMES):
            data = _mat(_im(i)[:, :, :, :12]) if i == 1 else _mat(_im(i))
            info = tarfile.TarInfo(f"data/cars/{n}.mat")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with pytest.raises(DisbenchError, match=f"{p}: data/cars/{NAMES[1]}.mat 'im' is uint8"):
        cars3d.convert_tar(p, tmp_path / "x.npy", progress=False)
    p.write_bytes(b"not a tar")
    with pytest.raises(DisbenchError, match=f"{p}: not a readable tar"):
        cars3d.convert_tar(p, tmp_path / "x.npy", progress=False)
    assert not (tmp_path / "x.npy").exists()


@pytest.mark.usefixtures("three_cars")
def test_official_flow_import_checksum_and_damaged_cache(tmp_path, empty_cache, monkeypatch,
                                                         caplog):
    src = tmp_path / "src"
    src.mkdir()
    tar = _tar(src / cars3d.OFFICIAL.name)
    spec = OfficialFile(cars3d.OFFICIAL.name, "http://127.0.0.1:9/c.tar.gz",
                        md5=hashlib.md5(tar.read_bytes()).hexdigest())
    monkeypatch.setattr(cars3d.Cars3D, "files", (spec,))
    with pytest.raises(DisbenchError) as err:
        cars3d.Cars3D.load_official(download=False)
    assert spec.url in str(err.value) and str(empty_cache / "cars3d" / spec.name) in str(err.value)
    assert cars3d.Cars3D.import_dir(src).splits == ["train"]
    ds = D.get("cars3d")
    assert ds.source == "official" and isinstance(ds.images, np.memmap)
    o = ds.sample_observations_from_factors([[3, 5, 0]])
    assert (o[0, 0, 32, 32], o[0, 1, 32, 32], o[0, 2, 32, 32]) == (41, 15, 150)
    # half the layout zeroed: the digest check names it and it is converted again
    layout = empty_cache / "cars3d" / "official_images.npy"
    before = np.array(ds.images)
    raw = bytearray(layout.read_bytes())
    raw[len(raw) // 2:] = bytes(len(raw) - len(raw) // 2)
    layout.write_bytes(bytes(raw))
    caplog.clear()
    again = D.get("cars3d", source="official")
    assert any(str(layout) in r.getMessage() and "damaged" in r.getMessage()
               for r in caplog.records)
    np.testing.assert_array_equal(again.images, before)
    # a corrupt archive in the cache is reported with its checksum, never used
    cached = empty_cache / "cars3d" / spec.name
    cached.write_bytes(b"corrupt")
    with pytest.raises(DisbenchError, match=f"{cached}: md5 .* does not match .*{spec.md5}"):
        cars3d.Cars3D.load_official(download=False)


def test_twin_shapes_grid_and_determinism():
    ds = D.get("cars3d", source="synthetic")
    assert ds.images.shape == (4 * 24 * 183, 3, 64, 64) and ds.images.dtype == np.uint8
    assert dict(zip(ds.factor_names, ds.factor_sizes, strict=True)) == {
        "elevation": 4, "azimuth": 24, "object_type": 183}
    f = np.array([[0, 0, 0], [0, 6, 0], [3, 0, 0], [0, 0, 100]])
    a = ds.sample_observations_from_factors(f)
    np.testing.assert_array_equal(a, ds.images[ds.index_of(f)])
    assert len({x.tobytes() for x in a}) == 4


@pytest.mark.usefixtures("three_cars")
def test_twin_archive_parses_back(tmp_path):
    path = cars3d.write_twin_tar(tmp_path / cars3d.OFFICIAL.name, progress=False)
    cars3d.convert_tar(path, tmp_path / "t.npy", progress=False)
    lazy = D.get("cars3d", source="synthetic")
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), np.asarray(lazy.images))
