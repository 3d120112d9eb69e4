"""CelebA: the parser on a tiny archive written here, the 64x64 crop, the twin."""
import io
import zipfile

import numpy as np
import pytest
from disbench import datasets
from disbench.datasets import celeba
from disbench.errors import DisbenchError
from PIL import Image


def _jpeg(inner, outer=(0, 0, 255)):
    """178x218 image: ``inner`` colour on the central 140x140 square, ``outer`` elsewhere."""
    a = np.empty((218, 178, 3), dtype=np.uint8)
    a[:] = outer
    a[39:179, 19:159] = inner
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _write_fake(folder, *, extra_member=None, rows=None):
    folder.mkdir(parents=True, exist_ok=True)
    colours = [(255, 0, 0), (0, 255, 0), (200, 200, 0), (0, 0, 0)]
    names = [f"{i + 1:06d}.jpg" for i in range(4)]
    with zipfile.ZipFile(folder / "img_align_celeba.zip", "w") as zf:
        for n, c in zip(names, colours, strict=True):
            zf.writestr(f"img_align_celeba/{n}", _jpeg(c))
        if extra_member:
            zf.writestr(extra_member, b"x")
    attrs = np.full((4, 40), -1)
    attrs[[0, 2], celeba.ATTRIBUTES.index("Smiling")] = 1
    attrs[1, celeba.ATTRIBUTES.index("Male")] = 1
    lines = [f"{n} " + " ".join(map(str, r)) for n, r in zip(names, attrs, strict=True)]
    if rows is not None:
        lines = lines[:rows]
    (folder / "list_attr_celeba.txt").write_text(
        "4\n" + " ".join(celeba.ATTRIBUTES) + "\n" + "\n".join(lines) + "\n")
    (folder / "list_eval_partition.txt").write_text(
        "".join(f"{n} {k}\n" for n, k in zip(names, [0, 0, 1, 2], strict=True)))
    return colours


def test_parser_crop_and_attributes(tmp_path):
    colours = _write_fake(tmp_path)
    images, attrs = celeba.build_split(tmp_path, "train", "fake", expected=2, progress=False)
    assert images.shape == (2, 3, 64, 64) and images.dtype == np.uint8
    # the 140x140 centre crop holds only the inner colour (up to JPEG error, which
    # bleeds chroma a few pixels across the colour edge)
    for img, c in zip(images, colours[:2], strict=True):
        diff = np.abs(img.astype(int) - np.array(c)[:, None, None])
        assert diff[:, 3:-3, 3:-3].max() < 12 and diff.mean() < 8
    assert attrs.shape == (2, 40) and attrs.dtype == np.int64
    assert attrs[:, celeba.ATTRIBUTES.index("Smiling")].tolist() == [1, 0]
    assert attrs[:, celeba.ATTRIBUTES.index("Male")].tolist() == [0, 1]
    assert attrs.sum() == 2
    valid, vattrs = celeba.build_split(tmp_path, "valid", "fake", expected=1, progress=False)
    assert len(valid) == 1 and vattrs[0, celeba.ATTRIBUTES.index("Smiling")] == 1
    with pytest.raises(DisbenchError, match="2 images in the train split, CelebA has 162770"):
        celeba.build_split(tmp_path, "train", "fake", expected=162770, progress=False)


def test_parser_errors(tmp_path):
    _write_fake(tmp_path / "a", rows=3)
    with pytest.raises(DisbenchError, match="truncated") as e:
        celeba.build_split(tmp_path / "a", "train", "k", expected=None)
    assert "list_attr_celeba.txt" in str(e.value)
    _write_fake(tmp_path / "b", extra_member="../evil.jpg")
    with pytest.raises(DisbenchError, match="unsafe member"):
        celeba.build_split(tmp_path / "b", "train", "k", expected=None)
    _write_fake(tmp_path / "c")
    (tmp_path / "c" / "list_eval_partition.txt").write_text("000001.jpg 7\n")
    with pytest.raises(DisbenchError, match="line 1"):
        celeba.build_split(tmp_path / "c", "train", "k", expected=None)


def test_official_missing_names_drive_url_and_place(empty_cache):
    with pytest.raises(DisbenchError) as e:
        datasets.get("celeba", source="official", split="test")
    msg = str(e.value)
    assert "drive" in msg and str(empty_cache / "celeba") in msg
    assert not datasets.spec("celeba").official_available("test")


def test_twin():
    sizes = celeba.twin_split_sizes(400)
    assert sizes == {"train": 322, "valid": 39, "test": 39}
    assert celeba.twin_split_sizes(4000) == {"train": 3214, "valid": 392, "test": 394}
    ds = datasets.get("celeba", source="synthetic", split="valid", n_total=400)
    assert ds.images.shape == (39, 3, 64, 64) and ds.images.dtype == np.uint8
    assert ds.num_classes == 2 and ds.labels.dtype == np.int64
    attrs = ds.extras["attributes"]
    assert attrs.shape == (39, 40) and set(np.unique(attrs)) <= {0, 1}
    assert np.array_equal(ds.labels, attrs[:, celeba.ATTRIBUTES.index("Smiling")])
    hair = attrs[:, [celeba.ATTRIBUTES.index(a) for a in
                     ("Bald", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")]]
    assert (hair.sum(1) == 1).all()
    assert ds.fingerprint == "synthetic-v1-seed0-n400"
    male = datasets.get("celeba", source="synthetic", split="valid", n_total=400,
                        label_attribute="Male")
    assert np.array_equal(male.labels, attrs[:, celeba.ATTRIBUTES.index("Male")])
    with pytest.raises(DisbenchError, match="unknown label_attribute"):
        datasets.get("celeba", source="synthetic", split="valid", n_total=400,
                     label_attribute="Happy")
    # deterministic: the twin's attributes are reproducible from the seed
    rng = np.random.default_rng([0, 5])
    assert np.array_equal(celeba.twin_attributes(rng, 400)[322:361], attrs)
    # eyeglasses are drawn: dark rings make the eye band darker on average
    glasses = attrs[:, celeba.ATTRIBUTES.index("Eyeglasses")] == 1
    assert 0 < glasses.sum() < len(glasses)
    band = ds.images[:, :, 20:34, 10:54].astype(float).mean(axis=(1, 2, 3))
    assert band[glasses].mean() < band[~glasses].mean()
