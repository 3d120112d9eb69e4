"""MNIST / Fashion-MNIST: official IDX files (real test sets), checksums, Debian files, twins."""
import gzip
import hashlib
import shutil

import numpy as np
import pytest
from disbench import datasets
from disbench.datasets import idx
from disbench.datasets.download import file_hash, verify
from disbench.datasets.mnist import FASHION_FILES, MNIST_FILES, FashionMNIST
from disbench.errors import DisbenchError

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def _spec(files, name):
    return next(f for f in files if f.name == name)


@pytest.mark.parametrize("name,files", [("mnist", MNIST_FILES), ("fashion_mnist", FASHION_FILES)])
def test_real_files_match_published_checksums(realdata, name, files):
    for path in sorted((realdata / name).glob("*.gz")):
        spec = _spec(files, path.name)
        assert file_hash(path, "md5") == spec.md5
        assert file_hash(path, "sha256") == spec.sha256
        assert path.stat().st_size == spec.size
        verify(path, spec)


def test_mnist_official_test_split(realdata, empty_cache):
    out = datasets.spec("mnist").import_dir(realdata / "mnist")
    assert sorted(out.imported) == sorted(
        ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"])
    assert out.splits == ["test"]
    ds = datasets.get("mnist", source="official", split="test")
    assert ds.images.shape == (10000, 1, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64 and ds.num_classes == 10
    assert np.bincount(ds.labels).tolist() == MNIST_TEST_COUNTS
    assert ds.images.max() == 255 and ds.images.min() == 0
    assert ds.source == "official" and ds.split == "test" and ds.name == "mnist"
    assert ds.fingerprint.startswith("official-")
    x, y = ds[0]
    assert tuple(x.shape) == (1, 28, 28) and str(x.dtype) == "torch.uint8" and y == 7
    assert ds.tensor("cpu").shape == (10000, 1, 28, 28)
    # train labels alone: the train split is not available and says which file is missing
    assert idx.read_labels(empty_cache / "mnist" / "train-labels-idx1-ubyte.gz").tolist()[:3] \
        == [5, 0, 4]
    assert np.bincount(idx.read_labels(realdata / "mnist" / "train-labels-idx1-ubyte.gz")
                       ).tolist() == MNIST_TRAIN_COUNTS
    assert not datasets.spec("mnist").official_available("train")
    with pytest.raises(DisbenchError, match="train-images-idx3-ubyte.gz") as e:
        datasets.get("mnist", source="official", split="train")
    assert str(empty_cache / "mnist" / "train-images-idx3-ubyte.gz") in str(e.value)
    assert "http" in str(e.value)


@pytest.mark.usefixtures("empty_cache")
def test_fashion_official_test_split(realdata):
    datasets.spec("fashion_mnist").import_dir(realdata / "fashion_mnist")
    ds = datasets.get("fashion_mnist", source="official", split="test")
    assert ds.images.shape == (10000, 1, 28, 28)
    assert np.bincount(ds.labels).tolist() == [1000] * 10
    assert ds.class_names[9] == "Ankle boot"
    # source="auto" picks the cached official test set
    assert datasets.get("fashion_mnist", split="test").source == "official"


def _strip_gzip_header(src, dest):
    """Rewrite a gzip file the way Debian ships it: no FNAME, another mtime, same stream."""
    raw = src.read_bytes()
    assert raw[3] & 0x08  # FNAME present
    end = raw.index(b"\0", 10) + 1
    dest.write_bytes(b"\x1f\x8b\x08\x00" + (1591348973).to_bytes(4, "little") + raw[8:10]
                     + raw[end:])


@pytest.mark.usefixtures("empty_cache")
def test_debian_style_stripped_header_accepted(realdata, tmp_path):
    deb = tmp_path / "debian"
    deb.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        _strip_gzip_header(realdata / "fashion_mnist" / name, deb / name)
        assert file_hash(deb / name, "md5") != _spec(FASHION_FILES, name).md5
        assert gzip.decompress((deb / name).read_bytes()) == gzip.decompress(
            (realdata / "fashion_mnist" / name).read_bytes())
    out = FashionMNIST.import_dir(deb)
    assert out.splits == ["test"]
    ds = datasets.get("fashion_mnist", source="official", split="test")
    ref = idx.read_images(realdata / "fashion_mnist" / "t10k-images-idx3-ubyte.gz")
    assert np.array_equal(ds.images, ref)


def test_debian_file_with_other_content_rejected(realdata, tmp_path):
    name = "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress((realdata / "fashion_mnist" / name).read_bytes()))
    content[100] = (content[100] + 1) % 10
    bad = tmp_path / name
    bad.write_bytes(gzip.compress(bytes(content), mtime=0))
    spec = _spec(FASHION_FILES, name)
    with pytest.raises(DisbenchError) as e:
        verify(bad, spec)
    msg = str(e.value)
    assert str(bad) in msg and spec.sha256 in msg and spec.gunzip_sha256 in msg
    assert hashlib.sha256(bytes(content)).hexdigest() in msg


def test_corrupted_import_names_file_and_checksums(realdata, empty_cache, tmp_path):
    name = "t10k-labels-idx1-ubyte.gz"
    raw = bytearray((realdata / "mnist" / name).read_bytes())
    raw[-20] ^= 0xFF
    (tmp_path / name).write_bytes(bytes(raw))
    with pytest.raises(DisbenchError) as e:
        datasets.spec("mnist").import_dir(tmp_path)
    msg = str(e.value)
    assert name in msg and _spec(MNIST_FILES, name).sha256 in msg
    assert hashlib.sha256(bytes(raw)).hexdigest() in msg
    assert not (empty_cache / "mnist" / name).exists()


def test_idx_magic_and_count_errors(realdata, tmp_path):
    data = gzip.decompress((realdata / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes())
    wrong = tmp_path / "wrong-magic.gz"
    wrong.write_bytes(gzip.compress(b"\x00\x00\x08\x02" + data[4:]))
    with pytest.raises(DisbenchError, match="magic") as e:
        idx.read_labels(wrong)
    assert str(wrong) in str(e.value) and "0x00000801" in str(e.value)
    # an image file read as labels
    with pytest.raises(DisbenchError, match="0x00000803"):
        idx.read_labels(realdata / "mnist" / "t10k-images-idx3-ubyte.gz")
    short = tmp_path / "short"
    short.write_bytes(data[:-5])  # raw (not gzip) and truncated
    with pytest.raises(DisbenchError, match="truncated") as e:
        idx.read_labels(short)
    assert str(short) in str(e.value)
    with pytest.raises(DisbenchError, match="expected 60000"):
        idx.read_labels(realdata / "mnist" / "t10k-labels-idx1-ubyte.gz", 60000)
    broken = tmp_path / "broken.gz"
    broken.write_bytes((realdata / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()[:-300])
    with pytest.raises(DisbenchError, match="gzip") as e:
        idx.read_labels(broken)
    assert str(broken) in str(e.value)


def test_idx_roundtrip(tmp_path):
    a = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    idx.write_idx_gz(tmp_path / "x.gz", a)
    assert np.array_equal(idx.read_idx(tmp_path / "x.gz", magic=idx.IMAGES_MAGIC), a)
    shutil.copy(tmp_path / "x.gz", tmp_path / "y.gz")
    assert file_hash(tmp_path / "x.gz") == file_hash(tmp_path / "y.gz")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_twin_test_split(name):
    ds = datasets.get(name, source="synthetic", split="test")
    assert ds.images.shape == (10000, 1, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64 and ds.num_classes == 10
    counts = np.bincount(ds.labels, minlength=10)
    assert counts.min() > 800
    assert ds.source == "synthetic" and ds.fingerprint == "synthetic-v1-seed0"
    assert ds.images.max() == 255 and ds.images.min() == 0
    # stored in the official container and read back by the official parser
    folder = datasets.spec(name).twin_folder(0)
    raw = gzip.decompress((folder / "t10k-images-idx3-ubyte.gz").read_bytes())
    assert int.from_bytes(raw[:4], "big") == idx.IMAGES_MAGIC
    # deterministic: a fresh render equals the cached files
    images, labels = datasets.spec(name).render("test", seed=0)
    assert np.array_equal(images, ds.images) and np.array_equal(labels, ds.labels)
    # the classes are distinguishable: nearest class mean on held-out half
    x = ds.images.reshape(len(ds), -1).astype(np.float32)
    means = np.stack([x[:5000][ds.labels[:5000] == c].mean(0) for c in range(10)])
    d = ((x[5000:, None, :] - means[None]) ** 2).sum(-1)
    acc = (d.argmin(1) == ds.labels[5000:]).mean()
    assert acc > 0.6, acc
