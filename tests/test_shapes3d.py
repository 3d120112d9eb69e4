"""3D Shapes: the factor grid, the on-demand twin and the official h5 parser (no network)."""
import disbench.datasets as D
import h5py
import numpy as np
import pytest
import torch
from disbench.datasets import shapes3d as s3
from disbench.errors import DisbenchError


@pytest.fixture(scope="module")
def twin():
    return s3.Shapes3D.load_synthetic()


def test_registered_and_factor_grid(twin):
    assert "shapes3d" in D.names()
    assert twin.factor_names == ("floor_hue", "wall_hue", "object_hue", "scale", "shape",
                                 "orientation")
    assert twin.factor_sizes == (10, 10, 10, 8, 4, 15)
    assert len(twin) == 480000 and twin.images.shape == (480000, 3, 64, 64)
    assert twin.image_shape == (3, 64, 64) and not twin.binary
    assert twin.source == "synthetic" and twin.fingerprint == "synthetic-shapes3d1-seed0"
    f = twin.factors
    assert f.shape == (480000, 6) and f.dtype == np.int64
    np.testing.assert_array_equal(twin.index_of(f), np.arange(480000))
    np.testing.assert_array_equal(f[1], [0, 0, 0, 0, 0, 1])  # orientation fastest
    np.testing.assert_array_equal(f[15], [0, 0, 0, 0, 1, 0])
    np.testing.assert_allclose(s3.SCALES, np.linspace(0.75, 1.25, 8))
    np.testing.assert_allclose(s3.ORIENTATIONS[[0, 7, 14]], [-30, 0, 30])
    np.testing.assert_allclose(s3.HUES[[0, 9]], [0.0, 0.9])


def test_index_of_round_trip_and_validation(twin):
    rng = np.random.default_rng(3)
    f = twin.sample_factors(2000, rng)
    np.testing.assert_array_equal(twin.factors[twin.index_of(f)], f)
    with pytest.raises(ValueError, match="shape \\(n, 6\\)"):
        twin.index_of(f[:, :5])
    with pytest.raises(ValueError, match="'shape'"):
        twin.index_of([[0, 0, 0, 0, 4, 0]])


def test_observations_determinism_and_protocol(twin):
    rng = np.random.default_rng(0)
    f = twin.sample_factors(500, rng)
    x = twin.sample_observations_from_factors(f, rng)
    assert x.shape == (500, 3, 64, 64) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, twin.sample_observations_from_factors(f, rng))
    idx = twin.index_of(f)
    np.testing.assert_array_equal(twin.images[idx[:40]], x[:40])  # independent of batching
    np.testing.assert_array_equal(twin.images[int(idx[3])], x[3])
    img, fac = twin[int(idx[3])]
    assert img.dtype == torch.uint8 and img.shape == (3, 64, 64)
    assert fac.tolist() == f[3].tolist()
    # different factor rows give different images
    flat = x.reshape(500, -1)
    assert len(np.unique(flat, axis=0)) == len(np.unique(f, axis=0))


def _hue_of(rgb):
    import colorsys

    return colorsys.rgb_to_hsv(*(np.asarray(rgb, float) / 255))[0]


def test_every_factor_changes_the_image_where_expected():
    base = np.array([2, 5, 8, 3, 1, 7])
    ref = s3.render(base[None])[0]
    sky = ref[:, :5]
    np.testing.assert_array_equal(sky, s3.render(np.array([[7, 1, 3, 6, 2, 0]]))[0][:, :5])
    for k, size in enumerate(s3.FACTOR_SIZES):
        rows = np.repeat(base[None], size, 0)
        rows[:, k] = np.arange(size)
        imgs = s3.render(rows).reshape(size, -1)
        assert len(np.unique(imgs, axis=0)) == size, s3.FACTOR_NAMES[k]
    # saturated hues: wall (top left), floor (bottom left) and object centre carry theirs
    for fh, wh, oh in [(0, 3, 6), (5, 9, 2)]:
        img = s3.render(np.array([[fh, wh, oh, 7, 2, 7]]))[0]
        assert abs(_hue_of(img[:, 10, 3]) - s3.HUES[wh]) < 0.02
        assert abs(_hue_of(img[:, 62, 3]) - s3.HUES[fh]) < 0.02
        assert abs(_hue_of(img[:, 42, 32]) - s3.HUES[oh]) < 0.02
    # bigger scale -> more object pixels, for every shape
    region = s3.geometry_maps()[0].reshape(8, 4, 15, 64, 64)
    area = (region == 3).sum((-1, -2))
    assert (np.diff(area, axis=0) > 0).all()


def test_twin_h5_container_round_trip(tmp_path):
    path = tmp_path / "3dshapes.h5"
    s3.write_h5(path, num_images=600, progress=False)
    with h5py.File(path) as h5:
        assert h5["images"].shape == (600, 64, 64, 3) and h5["images"].compression == "gzip"
        np.testing.assert_allclose(h5["labels"][15], [0, 0, 0, 0.75, 1.0, -30.0])
    dest = tmp_path / "images.npy"
    s3.convert_h5(path, dest, num_images=600, progress=False)
    out = np.load(dest, mmap_mode="r")
    np.testing.assert_array_equal(out, s3.render(s3.Shapes3D.load_synthetic().factors[:600]))
    with pytest.raises(DisbenchError, match=f"{path.name}.*'images' has shape.*480000"):
        s3.convert_h5(path, tmp_path / "x.npy", progress=False)
    assert not (tmp_path / "x.npy").exists()


def test_parser_rejects_bad_files(tmp_path):
    p = tmp_path / "bad.h5"
    labels = s3._labels(30)
    images = np.zeros((30, 64, 64, 3), np.uint8)
    for content, match in (
        ({"images": images}, "missing dataset.*labels"),
        ({"images": images, "labels": labels[::-1]}, "row-major grid"),
        ({"images": images.astype(np.float32), "labels": labels}, "'images' has shape"),
        ({"images": images, "labels": labels[:, :5]}, "'labels' has shape"),
    ):
        with h5py.File(p, "w") as h5:
            for k, v in content.items():
                h5[k] = v
        with pytest.raises(DisbenchError, match=match) as err:
            s3.convert_h5(p, tmp_path / "o.npy", num_images=30, progress=False)
        assert str(p) in str(err.value)
    p.write_bytes(b"\x89HDF garbage")
    with pytest.raises(DisbenchError, match="not a readable HDF5"):
        s3.convert_h5(p, tmp_path / "o.npy", num_images=30, progress=False)


def test_official_checksum_mismatch_and_missing(empty_cache):
    cls = s3.Shapes3D
    with pytest.raises(DisbenchError) as err:
        cls.load_official(download=False)
    assert s3.OFFICIAL.url in str(err.value)
    assert str(empty_cache / "shapes3d" / "3dshapes.h5") in str(err.value)
    assert D.get("shapes3d").source == "synthetic"
    bad = empty_cache / "shapes3d" / "3dshapes.h5"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"x" * 100)
    with pytest.raises(DisbenchError, match=f"sha256 .*{s3.OFFICIAL.sha256}") as err:
        cls.load_official(download=False)
    assert str(bad) in str(err.value) and "267573662" in str(err.value)
    describe = cls.describe()
    assert describe["files"]["3dshapes.h5"]["sha256"] == s3.OFFICIAL.sha256
    assert describe["factors"]["orientation"] == 15
