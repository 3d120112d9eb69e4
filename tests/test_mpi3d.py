"""MPI3D: NPZs in the official layout built here, memory-mapped in place (never read whole),
the factor order of ``reshape([6, 6, 2, 3, 3, 40, 40, ...])``, compressed files converted,
checksum failures, mpi3d_real pinned on first use, import, the twins."""
import hashlib

import numpy as np
import pytest
from disbench import datasets as D
from disbench.cli import main
from disbench.datasets import mpi3d
from disbench.datasets.download import OfficialFile
from disbench.errors import DisbenchError

SIZES = (2, 3, 1, 2, 1, 2, 2)  # a tiny grid in the official factor order
N = int(np.prod(SIZES))


@pytest.fixture
def tiny(monkeypatch):
    for cls in (mpi3d.MPI3DToy, mpi3d.MPI3DRealistic, mpi3d.MPI3DReal):
        monkeypatch.setattr(cls, "factor_sizes", SIZES)


def _images():
    """(N, 64, 64, 3): pixel [0, 0, 0] = flat index, [0, 0, 1] = colour factor, [1, 0, 2] =
    second dof, the rest zero."""
    imgs = np.zeros((N, 64, 64, 3), np.uint8)
    grid = np.stack(np.unravel_index(np.arange(N), SIZES), 1)
    imgs[:, 0, 0, 0] = np.arange(N)
    imgs[:, 0, 0, 1] = grid[:, 0]
    imgs[:, 1, 0, 2] = grid[:, 6]
    return imgs


def _npz(path, compressed=False, **extra):
    (np.savez_compressed if compressed else np.savez)(path, images=_images(), **extra)
    return path


def _use(monkeypatch, cls, path, **kw):
    spec = OfficialFile(cls.official().name, f"http://127.0.0.1:9/{path.name}", **kw)
    monkeypatch.setitem(mpi3d.FILES, cls.variant, spec)
    monkeypatch.setattr(cls, "files", (spec,))
    return spec


@pytest.mark.usefixtures("tiny")
def test_memory_mapped_in_place_with_the_official_factor_order(tmp_path):
    path = _npz(tmp_path / "mpi3d_toy.npz")
    imgs = mpi3d.npz_images(path, N)
    assert isinstance(imgs, np.memmap) and str(imgs.filename) == str(path)  # not a copy
    np.testing.assert_array_equal(imgs, _images())
    # the image at a factor index is the one reshape(...) of the README puts there
    grid = _images().reshape(*SIZES, 64, 64, 3)
    ds = mpi3d.MPI3DToy(imgs.transpose(0, 3, 1, 2), source="official", split="train",
                        fingerprint="t")
    for f in ([1, 2, 0, 1, 0, 0, 1], [0, 1, 0, 0, 0, 1, 0]):
        got = ds.sample_observations_from_factors([f])[0]
        np.testing.assert_array_equal(got, grid[tuple(f)].transpose(2, 0, 1))
    assert ds.image_shape == (3, 64, 64)


@pytest.mark.usefixtures("tiny")
def test_npz_structure_errors_name_the_file(tmp_path):
    p = tmp_path / "x.npz"
    np.savez(p, imgs=_images())
    with pytest.raises(DisbenchError, match=f"{p}: no key 'images' \\(keys: imgs\\)"):
        mpi3d.npz_images(p, N)
    np.savez(p, images=_images()[:, :32])
    with pytest.raises(DisbenchError, match=f"{p}: 'images' is uint8 \\({N}, 32, 64, 3\\)"):
        mpi3d.npz_images(p, N)
    np.savez(p, images=_images().astype(np.int16))
    with pytest.raises(DisbenchError, match="'images' is int16"):
        mpi3d.npz_images(p, N)
    _npz(p)
    p.write_bytes(p.read_bytes()[:-5000])
    with pytest.raises(DisbenchError, match=str(p)):
        mpi3d.npz_images(p, N)
    p.write_bytes(b"nope")
    with pytest.raises(DisbenchError, match=f"{p}: not a readable npz"):
        mpi3d.npz_images(p, N)


@pytest.mark.usefixtures("tiny")
def test_official_flow_compressed_file_and_checksum(tmp_path, empty_cache, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    path = _npz(src / "mpi3d_realistic.npz", compressed=True)
    cls = mpi3d.MPI3DRealistic
    spec = _use(monkeypatch, cls, path, md5=hashlib.md5(path.read_bytes()).hexdigest())
    with pytest.raises(DisbenchError) as err:
        cls.load_official(download=False)
    assert spec.url in str(err.value) and str(empty_cache / "mpi3d_realistic" / spec.name) \
        in str(err.value)
    assert cls.import_dir(src).imported == [spec.name]
    ds = D.get("mpi3d_realistic")
    assert ds.source == "official" and ds.images.shape == (N, 3, 64, 64)
    layout = empty_cache / "mpi3d_realistic" / "official_images.npy"
    assert layout.is_file()  # the compressed member was converted once, to an uncompressed map
    np.testing.assert_array_equal(np.asarray(ds.images).transpose(0, 2, 3, 1), _images())
    cached = empty_cache / "mpi3d_realistic" / spec.name
    cached.write_bytes(b"corrupt")
    with pytest.raises(DisbenchError, match=f"{cached}: md5 .* does not match"):
        cls.load_official(download=False)


@pytest.mark.usefixtures("tiny")
def test_mpi3d_real_is_pinned_on_first_use_and_verified_after(tmp_path, empty_cache,
                                                              monkeypatch, capsys):
    src = tmp_path / "src"
    src.mkdir()
    path = _npz(src / "mpi3d_real.npz")
    cls = mpi3d.MPI3DReal
    _use(monkeypatch, cls, path)
    assert cls.official().expected is None
    assert main(["datasets", "import", "mpi3d_real", str(src)]) == 0
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"mpi3d_real.npz: sha256 {sha}" in capsys.readouterr().out
    pin = empty_cache / "mpi3d_real" / "mpi3d_real.npz.sha256"
    assert pin.read_text().strip() == sha
    ds = D.get("mpi3d_real", source="official")
    assert isinstance(ds.base, np.ndarray) and ds.fingerprint == f"sha256-{sha[:12]}"
    assert main(["datasets", "info", "mpi3d_real"]) == 0
    assert sha in capsys.readouterr().out
    # another copy no longer matches the pin: named, with how to accept it on purpose
    other = tmp_path / "other"
    other.mkdir()
    np.savez(other / "mpi3d_real.npz", images=_images()[::-1].copy())
    with pytest.raises(DisbenchError, match=f"SHA-256 pinned in {pin}.*delete {pin}"):
        cls.import_dir(other)


def test_twins_render_on_demand_with_the_official_shapes():
    for name in ("mpi3d_toy", "mpi3d_realistic", "mpi3d_real"):
        ds = D.get(name, source="synthetic")
        assert ds.images.shape == (1036800, 3, 64, 64) and ds.images.dtype == np.uint8
        assert ds.factor_sizes == (6, 6, 2, 3, 3, 40, 40)
        assert ds.factor_names == mpi3d.FACTOR_NAMES
    f = np.array([[0, 0, 0, 0, 0, 0, 0], [5, 5, 1, 2, 2, 39, 39], [1, 2, 0, 1, 1, 20, 10]])
    a = ds.sample_observations_from_factors(f)
    np.testing.assert_array_equal(a, ds.images[ds.index_of(f)])
    assert len({x.tobytes() for x in a}) == 3
    # the background colour is the factor's: purple, sea green, salmon
    bg = ds.sample_observations_from_factors([[0, 0, 0, 0, b, 39, 0] for b in range(3)])
    assert [tuple(int(v) for v in img[:, 2, 2]) for img in bg] == [
        (128, 76, 153), (46, 140, 115), (250, 128, 115)]


@pytest.mark.usefixtures("empty_cache", "tiny")
def test_prepare_synthetic_caches_a_stamped_layout():
    cls = mpi3d.MPI3DToy
    lazy = cls.load_synthetic()
    assert cls.twin_cached() == []
    (dest,) = cls.prepare("synthetic", progress=False)
    assert cls.twin_cached() == ["train"]
    ds = cls.load_synthetic()
    assert isinstance(ds.base, np.ndarray) and ds.fingerprint == lazy.fingerprint
    np.testing.assert_array_equal(np.asarray(ds.images), np.asarray(lazy.images))
    dest.write_bytes(dest.read_bytes()[:-100])  # truncated: named, then rendered on demand
    again = cls.load_synthetic()
    assert not dest.exists() and not isinstance(again.base, np.ndarray)
