"""Omniglot: real small splits, safe zip handling, the 28x28 view, the twin."""
import io
import stat
import zipfile

import numpy as np
import pytest
from disbench import datasets
from disbench.datasets import omniglot, safe_zip
from disbench.datasets.download import file_hash
from disbench.errors import DisbenchError


@pytest.fixture
def imported(realdata, empty_cache):
    out = datasets.spec("omniglot").import_dir(realdata / "omniglot")
    assert sorted(out.imported) == ["images_background_small1.zip",
                                       "images_background_small2.zip"]
    assert out.splits == ["background_small1", "background_small2"]
    return empty_cache


@pytest.mark.usefixtures("imported")
def test_real_small_splits(realdata):
    for f in omniglot.FILES[2:]:
        assert file_hash(realdata / "omniglot" / f.name, "md5") == f.md5
    for split, n, c in (("background_small1", 2720, 136), ("background_small2", 3120, 156)):
        ds = datasets.get("omniglot", source="official", split=split)
        assert ds.images.shape == (n, 1, 105, 105) and ds.images.dtype == np.uint8
        assert set(np.unique(ds.images)) == {0, 255} and ds.binary
        assert ds.num_classes == c and np.bincount(ds.labels).tolist() == [20] * c
        assert len(np.unique(ds.extras["alphabet"])) == 5
        assert sorted(np.unique(ds.extras["drawer"])) == list(range(20))
        ink = ds.images.mean() / 255
        assert 0.02 < ink < 0.2  # strokes on a blank page (ink = 255)
        x, y = ds[0]
        assert tuple(x.shape) == (1, 105, 105) and y == 0
    ds = datasets.get("omniglot", source="official", split="background_small1")
    assert ds.class_names[0] == "Balinese/character01"
    # the decoded cache gives identical arrays
    again = datasets.get("omniglot", source="official", split="background_small1")
    assert np.array_equal(again.images, ds.images) and np.array_equal(again.labels, ds.labels)
    assert not datasets.spec("omniglot").official_available("background")


@pytest.mark.usefixtures("imported")
def test_28px_view():
    big = datasets.get("omniglot", source="official", split="background_small2")
    ds = datasets.get("omniglot", source="official", split="background_small2", size=28)
    assert ds.images.shape == (3120, 1, 28, 28) and ds.images.dtype == np.uint8
    assert not ds.binary and np.array_equal(ds.labels, big.labels)
    # area averaging keeps the mean ink (up to rounding)
    assert abs(ds.images.mean() - big.images.mean()) < 1.0
    assert ds.fingerprint == big.fingerprint + "-28px"


def _zip_with(tmp_path, name, *, symlink=False):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("images_background/A/character01/0001_01.png", b"fine")
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, b"/etc/passwd" if symlink else b"evil")
    return path


@pytest.mark.parametrize("name,symlink,why", [
    ("../escape.txt", False, "'..'"),
    ("images_background/../../escape.txt", False, "'..'"),
    ("/tmp/absolute.txt", False, "absolute"),
    ("C:/windows.txt", False, "absolute"),
    ("a\\..\\b.txt", False, "backslash"),
    ("images_background/link", True, "symbolic link"),
])
def test_safe_extraction_refuses(tmp_path, name, symlink, why):
    evil = _zip_with(tmp_path, name, symlink=symlink)
    target = tmp_path / "out" / "target"
    with pytest.raises(DisbenchError, match=why) as e:
        safe_zip.extract(evil, target)
    assert str(evil) in str(e.value)
    out = tmp_path / "out"
    assert not target.exists() and (not out.exists() or list(out.iterdir()) == [])
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out" / "escape.txt").exists()
    # the Omniglot parser refuses it too
    with pytest.raises(DisbenchError, match=why):
        omniglot.parse_zip(evil, "background")


def test_safe_extraction_ok(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("a/b/c.txt", b"hello")
        zf.writestr("a/d/", b"")
    out = safe_zip.extract(good, tmp_path / "t")
    assert (out / "a" / "b" / "c.txt").read_bytes() == b"hello" and (out / "a" / "d").is_dir()


def test_wrong_layout_and_counts(tmp_path):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ones((105, 105), dtype=bool)).save(buf, format="PNG")
    path = tmp_path / "images_background_small1.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("images_background_small1/Greek/character01/0001_01.png", buf.getvalue())
    with pytest.raises(DisbenchError, match="official background_small1 split has 2720"):
        omniglot.parse_zip(path, "background_small1")
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("flat.png", buf.getvalue())
    with pytest.raises(DisbenchError, match="not laid out"):
        omniglot.parse_zip(path, "background_small1")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(DisbenchError, match="not a valid zip"):
        omniglot.parse_zip(tmp_path / "junk.zip", "background")


def test_twin_small1_structure():
    ds = datasets.get("omniglot", source="synthetic", split="background_small1")
    assert ds.images.shape == (2720, 1, 105, 105) and ds.num_classes == 136
    assert np.bincount(ds.labels).tolist() == [20] * 136
    assert set(np.unique(ds.images)) == {0, 255}
    assert sorted(np.unique(np.array(ds.class_names).astype(str).tolist())) == sorted(
        f"{a}/character{c + 1:02d}" for a, n in omniglot.ALPHABETS["background_small1"].items()
        for c in range(n))
    assert ds.source == "synthetic" and ds.fingerprint == "synthetic-v1-seed0"
    # official container: a zip of 1-bit PNGs, white background
    zpath = datasets.spec("omniglot").twin_folder(0) / "images_background_small1.zip"
    with zipfile.ZipFile(zpath) as zf:
        from PIL import Image
        name = zf.namelist()[0]
        im = Image.open(io.BytesIO(zf.read(name)))
        assert im.mode == "1" and im.size == (105, 105)
    # deterministic; drawers of one character overlap more than different characters
    t = omniglot.render_twin("background_small1", 0)
    assert np.array_equal(t["ink"], ds.images[:, 0] == 255)
    x = (ds.images[:, 0] > 0).reshape(136, 20, -1).astype(np.float32)

    def iou(a, b):
        return (a * b).sum(-1) / np.maximum(((a + b) > 0).sum(-1), 1)

    same = iou(x[:, 0], x[:, 1]).mean()
    other = iou(x[:, 0], np.roll(x[:, 1], 1, axis=0)).mean()
    assert same > 2 * other
    small = datasets.get("omniglot", source="synthetic", split="background_small1", size=28)
    assert small.images.shape == (2720, 1, 28, 28)
