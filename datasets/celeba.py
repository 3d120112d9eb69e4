"""CelebA (Liu et al. 2015): aligned celebrity faces with 40 binary attributes, 64x64 view.

Official data (Google Drive ids and md5s as torchvision uses them):
``img_align_celeba.zip`` (202,599 JPEGs, 178x218, member ``img_align_celeba/NNNNNN.jpg``),
``list_eval_partition.txt`` (``NNNNNN.jpg k``, k = 0 train / 1 valid / 2 test: 162,770 /
19,867 / 19,962) and ``list_attr_celeba.txt`` (count line, 40 attribute names, then one
row of -1/1 per image). Every split needs all three files.

64x64 view (the choice made here): crop the central 140x140 square of the 178x218 image
(rows 39..178, columns 19..158) and resize it to 64x64 with PIL's bilinear filter
(anti-aliased when shrinking) -- the usual "CelebA 64" pre-processing of VAE work. The
JPEGs are decoded once per split (progress bar) into a cached uint8 ``.npy`` that is
memory-mapped afterwards.

Dataset object (:class:`~disbench.datasets.labelled.LabelledImages`): ``images`` uint8
(N, 3, 64, 64); ``extras["attributes"]`` int64 (N, 40) in {0, 1} (-1 -> 0), names in
``extras["attribute_names"]``; ``labels`` = one attribute as a class (0/1,
``num_classes`` 2), chosen by ``label_attribute`` (default ``"Smiling"``, the most
balanced of the 40: about 48 % positive).

Twin (``source="synthetic"``): procedural faces (skin-tone ellipse, eyes, mouth, hair,
optional glasses, hat, moustache) drawn at the aligned-CelebA landmark positions, written
as the official zip of 178x218 JPEGs plus the two text files and read back by the
official parser. Depicted attributes: Bald, Black_Hair, Blond_Hair, Brown_Hair,
Gray_Hair, Eyeglasses, Male, Mustache, Pale_Skin, Smiling, Wearing_Hat, Mouth_Slightly_Open;
the other 28 are random (p = 0.3) and not depicted. **The twin is smaller than CelebA**:
4,000 images by default (train 3,214 / valid 392 / test 394, the official proportions);
``n_total=`` changes it (the fingerprint then says so).
"""
from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from disbench.atomic import atomic_path, write_text
from disbench.datasets.cache import open_array, write_stamp
from disbench.datasets.contract import Option
from disbench.datasets.download import OfficialFile
from disbench.datasets.entry import DOWNLOAD, PROGRESS, SEED, DatasetSpec
from disbench.datasets.labelled import LabelledImages
from disbench.datasets.registry import register
from disbench.datasets.safe_zip import check_members
from disbench.errors import DisbenchError

log = logging.getLogger(__name__)

ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
    "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
    "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings",
    "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)
SPLITS = {"train": 0, "valid": 1, "test": 2}
SPLIT_SIZES = {"train": 162770, "valid": 19867, "test": 19962}
CROP = 140
SIZE = 64
_W, _H = 178, 218

_ZIP = "img_align_celeba.zip"
_ATTR = "list_attr_celeba.txt"
_PART = "list_eval_partition.txt"


def _drive(name: str, file_id: str, md5: str) -> OfficialFile:
    return OfficialFile(
        name=name, md5=md5,
        url=f"https://drive.usercontent.google.com/download?id={file_id}&export=download"
            f"&confirm=t",
        mirrors=(f"https://drive.google.com/uc?export=download&id={file_id}",))


FILES = (
    _drive(_ZIP, "0B7EVK8r0v71pZjFTYXZWM3FlRnM", "00d2c5bc6d35e252742224ab0c1e8fcb"),
    _drive(_ATTR, "0B7EVK8r0v71pblRyaVFSWGxPY0U", "75e246fa4810816ffd6ee81facbd244c"),
    _drive(_PART, "0B7EVK8r0v71pY0NSMzRuSXJEVkk", "d32c9cbf5e040fd4025c592c306e6668"),
)


def read_partition(path: Path) -> dict[str, int]:
    """``list_eval_partition.txt`` -> {file name: 0/1/2}."""
    out = {}
    for i, line in enumerate(Path(path).read_text().splitlines()):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DisbenchError(f"{path}: line {i + 1} is not '<image>.jpg 0|1|2': {line!r}")
        out[parts[0]] = int(parts[1])
    return out


def read_attributes(path: Path) -> tuple[list[str], np.ndarray]:
    """``list_attr_celeba.txt`` -> (file names, int64 (N, 40) in {0, 1})."""
    lines = Path(path).read_text().splitlines()
    try:
        n = int(lines[0].strip())
        names = lines[1].split()
    except (IndexError, ValueError):
        raise DisbenchError(f"{path}: missing the count and attribute-name header") from None
    if tuple(names) != ATTRIBUTES:
        raise DisbenchError(f"{path}: the attribute names differ from CelebA's 40")
    rows = [ln.split() for ln in lines[2:] if ln.strip()]
    if len(rows) != n or any(len(r) != 41 for r in rows):
        raise DisbenchError(f"{path}: header announces {n} rows of 40 attributes, found "
                            f"{len(rows)} rows (or a short row); the file is truncated")
    values = np.array([r[1:] for r in rows], dtype=np.int64)
    if not np.isin(values, (-1, 1)).all():
        raise DisbenchError(f"{path}: attribute values must be -1 or 1")
    return [r[0] for r in rows], (values > 0).astype(np.int64)


def crop_resize(jpeg: bytes) -> np.ndarray:
    """One 178x218 JPEG -> uint8 (3, 64, 64): central 140x140 crop, bilinear resize."""
    from PIL import Image

    with Image.open(io.BytesIO(jpeg)) as im:
        im = im.convert("RGB")
        w, h = im.size
        left, top = (w - CROP) // 2, (h - CROP) // 2
        im = im.crop((left, top, left + CROP, top + CROP)).resize((SIZE, SIZE),
                                                                   Image.Resampling.BILINEAR)
        return np.asarray(im).transpose(2, 0, 1)


def build_split(folder: Path, split: str, key: str, *, expected: int | None,
                progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images (memmap, uint8 (N, 3, 64, 64)) and attributes of ``split`` from the 3 files.

    The decoded images are a derived cache stamped with a digest
    (:mod:`disbench.datasets.cache`); a damaged one is deleted, naming it, and decoded again.
    """
    part = read_partition(folder / _PART)
    names, attrs = read_attributes(folder / _ATTR)
    keep = [i for i, n in enumerate(names) if part.get(n) == SPLITS[split]]
    if expected is not None and len(keep) != expected:
        raise DisbenchError(f"{folder / _PART}: {len(keep)} images in the {split} split, "
                            f"CelebA has {expected}; replace it with the official file")
    cache = folder / f".celeba{SIZE}-{key}-{split}.npy"
    images = open_array(cache, key, (len(keep), 3, SIZE, SIZE), what="decoded CelebA cache",
                        fix="decoding the JPEGs again")
    if images is None:
        _decode_split(folder, cache, [names[i] for i in keep], split, progress)
        write_stamp(cache, key, split=split)
        images = np.load(cache, mmap_mode="r")
    return images, attrs[keep]


def _decode_split(folder: Path, cache: Path, names: list[str], split: str,
                  progress: bool) -> None:
    """Decode the split's JPEGs from the zip into the uint8 (N, 3, 64, 64) ``cache``."""
    from tqdm.auto import tqdm

    zpath = folder / _ZIP
    try:
        zf = zipfile.ZipFile(zpath)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DisbenchError(f"{zpath}: not a valid zip archive ({exc}); delete it and "
                            f"download or import it again") from None
    with zf:
        members = {Path(m).name: m for m in check_members(zf, zpath)
                   if m.lower().endswith(".jpg")}
        missing = [n for n in names if n not in members]
        if missing:
            raise DisbenchError(f"{zpath}: lacks {len(missing)} images of the {split} "
                                f"split (e.g. {missing[0]}); not the official archive")
        with atomic_path(cache) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                            shape=(len(names), 3, SIZE, SIZE))
            for j, name in enumerate(tqdm(names, desc=f"celeba {split} -> 64x64",
                                          disable=not progress, leave=False)):
                out[j] = crop_resize(zf.read(members[name]))
            out.flush()
            del out


def twin_split_sizes(n_total: int) -> dict[str, int]:
    """Split sizes of a twin of ``n_total`` images, in CelebA's proportions."""
    total = sum(SPLIT_SIZES.values())
    valid = round(n_total * SPLIT_SIZES["valid"] / total)
    test = round(n_total * SPLIT_SIZES["test"] / total)
    return {"train": n_total - valid - test, "valid": valid, "test": test}


@register("celeba")
class CelebA(DatasetSpec):
    """CelebA aligned faces (Liu et al. 2015) with 40 attributes; 3x64x64 view."""

    summary = ("202,599 aligned celebrity faces, 40 binary attributes, 3x64x64 centre-crop "
               "view (Liu et al. 2015)")
    kind = "labelled"
    homepage = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
    licence = ("the CelebA dataset agreement: non-commercial research use only (see the "
               "homepage)")
    citation = ("Ziwei Liu, Ping Luo, Xiaogang Wang, Xiaoou Tang. Deep Learning Face "
                "Attributes in the Wild. ICCV 2015")
    default_split = "train"
    files = FILES
    splits: ClassVar[dict[str, tuple[str, ...]]] = {s: (_ZIP, _ATTR, _PART) for s in SPLITS}
    split_sizes: ClassVar[dict[str, int]] = SPLIT_SIZES
    observation_shape = (3, SIZE, SIZE)
    labels_note = ("one attribute as 0/1 (label_attribute, default Smiling); all 40 in "
                   "extras['attributes']; images: the central 140x140 crop of 178x218, "
                   "bilinear resize to 64x64")
    twin_n_total = 4000
    twin_summary = (f"procedural faces, {twin_n_total} images by default "
                    f"({twin_split_sizes(twin_n_total)}), smaller than CelebA; 12 attributes "
                    f"depicted, 28 random")
    options: ClassVar[dict[str, Option]] = {
        "download": DOWNLOAD, "progress": PROGRESS, "seed": SEED,
        "label_attribute": Option("the attribute used as the label (default Smiling)"),
        "n_total": Option("number of twin images (default 4000)", ("synthetic",))}

    @classmethod
    def _build(cls, images: Any, attrs: np.ndarray, split: str, source: str, fingerprint: str,
               label_attribute: str) -> LabelledImages:
        if label_attribute not in ATTRIBUTES:
            raise DisbenchError(f"celeba: unknown label_attribute {label_attribute!r}; choose "
                                f"one of {', '.join(ATTRIBUTES)}")
        labels = attrs[:, ATTRIBUTES.index(label_attribute)]
        return LabelledImages(images, labels, num_classes=2, name=cls.name, split=split,
                              source=source, fingerprint=fingerprint,
                              class_names=(f"not {label_attribute}", label_attribute),
                              extras={"attributes": attrs, "attribute_names": ATTRIBUTES,
                                      "label_attribute": label_attribute})

    @classmethod
    def load_official(cls, split: str | None = None, *, label_attribute: str = "Smiling",
                      download: bool = False, progress: bool = True) -> LabelledImages:
        """The published files of ``split`` (verified), decoded once to a 64x64 cache."""
        split = cls.check_split(split)
        cls.official_paths(split, download=download, progress=progress)
        images, attrs = build_split(cls.folder(), split, cls.file(_ZIP).expected[:12],
                                    expected=SPLIT_SIZES[split], progress=progress)
        return cls._build(images, attrs, split, "official", cls.official_fingerprint(split),
                          label_attribute)

    @classmethod
    def load_synthetic(cls, split: str | None = None, *, label_attribute: str = "Smiling",
                       seed: int = 0, n_total: int | None = None,
                       progress: bool = True) -> LabelledImages:
        """The twin of ``split``: ``n_total`` faces written as the official files once."""
        split = cls.check_split(split)
        n_total = n_total or cls.twin_n_total
        fp = cls.twin_fingerprint(seed) + ("" if n_total == cls.twin_n_total else
                                           f"-n{n_total}")
        folder = cls.twin_folder(seed) if n_total == cls.twin_n_total else \
            cls.twin_folder(seed).with_name(f"synthetic-{cls.twin_version}-seed{seed}-n{n_total}")
        if not all((folder / f).exists() for f in (_ZIP, _ATTR, _PART)):
            write_twin(folder, n_total, seed, progress=progress)
        images, attrs = build_split(folder, split, fp, expected=twin_split_sizes(n_total)[split],
                                    progress=progress)
        return cls._build(images, attrs, split, "synthetic", fp, label_attribute)


_DEPICTED = ("Bald", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Eyeglasses",
             "Male", "Mustache", "Pale_Skin", "Smiling", "Wearing_Hat", "Mouth_Slightly_Open")


def twin_attributes(rng: np.random.Generator, n: int) -> np.ndarray:
    """int64 (n, 40) in {0, 1}: hair colour exclusive (or bald), others independent."""
    a = (rng.random((n, 40)) < 0.3).astype(np.int64)
    ix = {name: i for i, name in enumerate(ATTRIBUTES)}
    hair = rng.choice(5, n, p=[0.05, 0.3, 0.2, 0.3, 0.15])  # bald, black, blond, brown, gray
    for k, name in enumerate(("Bald", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")):
        a[:, ix[name]] = hair == k
    for name, p in (("Eyeglasses", 0.15), ("Male", 0.42), ("Pale_Skin", 0.1),
                    ("Smiling", 0.48), ("Wearing_Hat", 0.1), ("Mouth_Slightly_Open", 0.48)):
        a[:, ix[name]] = rng.random(n) < p
    a[:, ix["Mustache"]] = a[:, ix["Male"]] * (rng.random(n) < 0.25)
    return a


def render_faces(attrs: np.ndarray, rng: np.random.Generator, chunk: int = 128,
                 step: int = 2) -> np.ndarray:
    """uint8 (n, 218 // step, 178 // step, 3) faces drawn from the attributes.

    Coordinates are those of the full 178x218 aligned image; ``step`` subsamples the
    pixel grid (the writer resizes to full size), vectorised per chunk.
    """
    ix = {name: i for i, name in enumerate(ATTRIBUTES)}
    n = len(attrs)
    yy, xx = (np.mgrid[0:_H // step, 0:_W // step].astype(np.float32) + 0.5) * step
    out = np.empty((n, *yy.shape, 3), dtype=np.uint8)
    hair_rgb = np.array([[0.0, 0.0, 0.0], [0.08, 0.06, 0.05], [0.85, 0.72, 0.42],
                         [0.4, 0.25, 0.13], [0.62, 0.62, 0.62]], dtype=np.float32)
    for lo in range(0, n, chunk):
        a = attrs[lo:lo + chunk]
        b = len(a)

        def u(low, high, shape=(), b=b):
            return rng.uniform(low, high, (b, *shape)).astype(np.float32)

        col = lambda v: v[:, None, None, :]
        par = lambda v: v[:, None, None]
        img = np.broadcast_to(col(u(0.2, 0.95, (3,))), (b, *yy.shape, 3)).copy()
        img += (par(u(-0.15, 0.15)) * (yy / _H - 0.5))[..., None]  # background gradient
        cx, cy = par(89 + u(-3, 3)), par(122 + u(-3, 3))
        rx, ry = par(u(40, 48)), par(u(52, 60))
        hair_k = np.argmax(a[:, [ix["Bald"], ix["Black_Hair"], ix["Blond_Hair"],
                                 ix["Brown_Hair"], ix["Gray_Hair"]]], axis=1)
        long_hair = par((a[:, ix["Male"]] == 0).astype(np.float32))
        hair = (((xx - cx) / (rx + 12)) ** 2 + ((yy - cy + 10) / (ry + 14)) ** 2 < 1) & (
            (yy < cy - 0.2 * ry) | (long_hair > 0))
        hair &= par(hair_k != 0)
        img = np.where(hair[..., None], col(hair_rgb[hair_k] + u(-0.05, 0.05, (3,))), img)
        skin = np.where(a[:, ix["Pale_Skin"], None] == 1, np.array([0.95, 0.85, 0.8]),
                        np.array([0.85, 0.65, 0.5]) * u(0.6, 1.1)[:, None]).astype(np.float32)
        face = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1
        img = np.where(face[..., None], col(skin), img)
        eye_y, eye_dx = par(112 + u(-2, 2)), par(u(17, 22))
        for s in (-1, 1):
            eye = ((xx - cx - s * eye_dx) / 6) ** 2 + ((yy - eye_y) / 3.5) ** 2 < 1
            img = np.where(eye[..., None], np.float32(0.08), img)
            glasses = np.abs(np.sqrt(((xx - cx - s * eye_dx) / 12) ** 2
                                     + ((yy - eye_y) / 9) ** 2) - 1) < 0.12
            img = np.where((glasses & par(a[:, ix["Eyeglasses"]] == 1))[..., None],
                           np.float32(0.05), img)
        mouth_y = par(152 + u(-2, 2))
        smile = par(a[:, ix["Smiling"]].astype(np.float32))
        curve = mouth_y + smile * 6 * (1 - ((xx - cx) / 17) ** 2) - 3 * smile
        open_ = par(1.5 + 3.0 * a[:, ix["Mouth_Slightly_Open"]])
        mouth = (np.abs(xx - cx) < 17) & (np.abs(yy - curve) < open_)
        img = np.where(mouth[..., None], np.array([0.55, 0.15, 0.2], dtype=np.float32), img)
        tache = (np.abs(xx - cx) < 15) & (np.abs(yy - (mouth_y - 8)) < 2.5) & par(
            a[:, ix["Mustache"]] == 1)
        img = np.where(tache[..., None], col(hair_rgb[np.maximum(hair_k, 1)]), img)
        hat = (yy < cy - 0.55 * ry) & (np.abs(xx - cx) < rx + 14) & par(
            a[:, ix["Wearing_Hat"]] == 1)
        img = np.where(hat[..., None], col(u(0.0, 1.0, (3,))), img)
        img += rng.normal(0, 0.02, img.shape).astype(np.float32)
        out[lo:lo + chunk] = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    return out


def write_twin(folder: Path, n_total: int, seed: int = 0, *, progress: bool = True) -> None:
    """Write the twin as the three official files (zip of JPEGs, attributes, partition)."""
    from PIL import Image
    from tqdm.auto import tqdm

    rng = np.random.default_rng([seed, 5])
    sizes = twin_split_sizes(n_total)
    attrs = twin_attributes(rng, n_total)
    part = np.repeat([0, 1, 2], [sizes["train"], sizes["valid"], sizes["test"]])
    names = [f"{i + 1:06d}.jpg" for i in range(n_total)]
    zpath = Path(folder) / _ZIP
    with atomic_path(zpath) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        bar = tqdm(total=n_total, desc="celeba twin", disable=not progress, leave=False)
        for lo in range(0, n_total, 256):
            faces = render_faces(attrs[lo:lo + 256], rng)
            for j, face in enumerate(faces):
                buf = io.BytesIO()
                Image.fromarray(face).resize((_W, _H), Image.Resampling.BILINEAR).save(
                    buf, format="JPEG", quality=95)
                info = zipfile.ZipInfo(f"img_align_celeba/{names[lo + j]}",
                                       date_time=(2015, 1, 1, 0, 0, 0))
                zf.writestr(info, buf.getvalue())
            bar.update(len(faces))
        bar.close()
    rows = [f"{nm} " + " ".join("1" if v else "-1" for v in row) for nm, row in zip(names, attrs, strict=True)]
    write_text(Path(folder) / _ATTR, f"{n_total}\n{' '.join(ATTRIBUTES)}\n" + "\n".join(rows)
               + "\n")
    write_text(Path(folder) / _PART, "".join(f"{nm} {k}\n" for nm, k in zip(names, part, strict=True)))
