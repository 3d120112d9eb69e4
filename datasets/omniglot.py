"""Omniglot (Lake et al. 2015): 1,623 handwritten characters from 50 alphabets, 20 drawers each.

Official data: the zips of ``github.com/brendenlake/omniglot/python`` with the md5s
torchvision publishes. Splits (one zip each):

==================  =========  ==========  ======
split               alphabets  characters  images
==================  =========  ==========  ======
background          30         964         19,280
evaluation          20         659         13,180
background_small1   5          136         2,720
background_small2   5          156         3,120
==================  =========  ==========  ======

Layout ``images_<split>/<alphabet>/characterNN/<id>_<drawer>.png``, 105x105 1-bit PNGs
(black strokes on white). PNGs are read straight from the zip after every member name
is checked by :mod:`disbench.datasets.safe_zip` (nothing is extracted); the decoded
split is cached as a bit-packed ``.npz`` next to the zip.

Dataset object (:class:`~disbench.datasets.labelled.LabelledImages`): ``images`` uint8
(N, 1, 105, 105) with **ink = 255 on background 0** (inverted from the files so that,
as in MNIST and in the Omniglot VAE literature, a Bernoulli pixel is 1 on a stroke),
``binary=True``; ``labels`` = character class index within the split (characters
sorted by alphabet then character folder), ``num_classes`` = number of characters,
``extras["alphabet"]`` (alphabet index), ``extras["drawer"]`` (0..19), ``class_names``
(``alphabet/characterNN``).

Views (:mod:`disbench.datasets.views`; options ``size``, ``channels``, ``invert``,
``resize``): ``size=28`` gives the 28x28 view used for VAE experiments (``disbench train
vae --dataset omniglot --dataset-options size=28``): area-averaged down-sampling of the
105x105 images (grey levels, so ``binary=False``). GWAE's OoD protocol feeds Omniglot as
its data library does (ganmodokix/vaetc ``vaetc/data/omniglot.py``: torchvision's
Omniglot, black strokes on white, ``ToTensor``, repeat to 3 channels, ``Resize((64, 64))``
on the tensor): ``size=64, channels=3, invert=False, resize="tensor_bilinear"`` (``invert``
is relative to the files, so the default ``invert=True`` is the ink = 255 convention above
and ``invert=False`` the files' black strokes on white).

Decoded cache: the split's decoded arrays are kept as a bit-packed ``.npz`` next to the
zip, stamped with the SHA-256 of the whole file (:mod:`disbench.datasets.cache`); a cache
that fails the check or cannot be read is deleted with a warning naming it and decoded
again.

Twin (``source="synthetic"``): the same alphabets, characters per alphabet and 20
drawers as each official split; every character is 1-4 random smooth strokes, every
drawer a random affine warp of it, thresholded to 1 bit; written as the official zip of
PNGs and read back by the official parser. The twin zip is a derived cache too, stamped
with its SHA-256: one that fails the check (truncated, emptied) or cannot be parsed is
deleted with a warning naming it and rendered again (on load, and so by ``disbench
datasets prepare omniglot --source synthetic``); it is never to be downloaded.
"""
from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from disbench.atomic import atomic_path
from disbench.datasets import glyphs, views
from disbench.datasets.cache import check as check_cache
from disbench.datasets.cache import discard, write_stamp
from disbench.datasets.contract import Option
from disbench.datasets.download import OfficialFile
from disbench.datasets.entry import DOWNLOAD, PROGRESS, SEED, DatasetSpec
from disbench.datasets.labelled import LabelledImages
from disbench.datasets.registry import register
from disbench.datasets.safe_zip import check_members
from disbench.errors import DisbenchError

log = logging.getLogger(__name__)

_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
_MIRROR = "https://github.com/brendenlake/omniglot/raw/master/python/"
SIZE = 105
DRAWERS = 20
#: what to do about an unreadable zip: the official file is downloaded or imported again,
#: a twin is derived (rendered again from its seed, losing nothing)
OFFICIAL_FIX = "delete it and download or import it again"
TWIN_FIX = ("it is a synthetic twin: it is rendered again on the next load, or now by "
            "'disbench datasets prepare omniglot --source synthetic'")

# Alphabets and their number of characters in each official split.
ALPHABETS: dict[str, dict[str, int]] = {
    "background": {
        "Alphabet_of_the_Magi": 20, "Anglo-Saxon_Futhorc": 29, "Arcadian": 26,
        "Armenian": 41, "Asomtavruli_(Georgian)": 40, "Balinese": 24, "Bengali": 46,
        "Blackfoot_(Canadian_Aboriginal_Syllabics)": 14, "Braille": 26,
        "Burmese_(Myanmar)": 34, "Cyrillic": 33, "Early_Aramaic": 22, "Futurama": 26,
        "Grantha": 43, "Greek": 24, "Gujarati": 48, "Hebrew": 22,
        "Inuktitut_(Canadian_Aboriginal_Syllabics)": 16, "Japanese_(hiragana)": 52,
        "Japanese_(katakana)": 47, "Korean": 40, "Latin": 26, "Malay_(Jawi_-_Arabic)": 40,
        "Mkhedruli_(Georgian)": 41, "N_Ko": 33, "Ojibwe_(Canadian_Aboriginal_Syllabics)": 14,
        "Sanskrit": 42, "Syriac_(Estrangelo)": 23, "Tagalog": 17, "Tifinagh": 55,
    },
    "evaluation": {
        "Angelic": 20, "Atemayar_Qelisayer": 26, "Atlantean": 26, "Aurek-Besh": 26,
        "Avesta": 26, "Ge_ez": 26, "Glagolitic": 45, "Gurmukhi": 45, "Kannada": 41,
        "Keble": 26, "Malayalam": 47, "Manipuri": 40, "Mongolian": 30,
        "Old_Church_Slavonic_(Cyrillic)": 45, "Oriya": 46, "Sylheti": 28,
        "Syriac_(Serto)": 23, "Tengwar": 25, "Tibetan": 42, "ULOG": 26,
    },
    "background_small1": {"Balinese": 24, "Early_Aramaic": 22, "Greek": 24, "Korean": 40,
                          "Latin": 26},
    "background_small2": {"Greek": 24, "Japanese_(katakana)": 47, "Latin": 26,
                          "Sanskrit": 42, "Tagalog": 17},
}
SPLIT_CHARACTERS = {s: sum(a.values()) for s, a in ALPHABETS.items()}
SPLIT_IMAGES = {s: DRAWERS * c for s, c in SPLIT_CHARACTERS.items()}

FILES = tuple(
    OfficialFile(name=f"images_{split}.zip", url=f"{_URL}images_{split}.zip", md5=md5,
                 mirrors=(f"{_MIRROR}images_{split}.zip",))
    for split, md5 in (("background", "68d2efa1b9178cc56df9314c21c6e718"),
                       ("evaluation", "6b91aef0f799c5bb55b94e3f2daec811"),
                       ("background_small1", "e704a628b5459e08445c13499850abc4"),
                       ("background_small2", "b75a71a51d3b13f821f212756fe481fd"))
)


def parse_zip(path: str | Path, split: str, *, progress: bool = False,
              fix: str = OFFICIAL_FIX) -> dict[str, Any]:
    """Decode an Omniglot zip: images uint8 (N, 1, 105, 105) ink=255, labels, alphabets.

    Raises :class:`DisbenchError` naming the file for unsafe members, a wrong layout,
    a wrong image size, or counts that differ from the official split; a file that is not
    a zip (truncated) says ``fix`` (:data:`OFFICIAL_FIX`, or :data:`TWIN_FIX` for a twin).
    """
    from PIL import Image
    from tqdm.auto import tqdm

    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DisbenchError(f"{path}: not a valid zip archive ({exc}); {fix}") from None
    with zf:
        names = sorted(n for n in check_members(zf, path) if n.lower().endswith(".png"))
        if not names:
            raise DisbenchError(f"{path}: holds no PNG images; not an Omniglot archive")
        parts = [n.split("/") for n in names]
        if any(len(p) != 4 for p in parts):
            bad = next(n for n, p in zip(names, parts, strict=True) if len(p) != 4)
            raise DisbenchError(f"{path}: member {bad!r} is not laid out as "
                                f"images_<split>/<alphabet>/characterNN/<id>_<drawer>.png")
        chars = sorted({(p[1], p[2]) for p in parts})
        char_index = {c: i for i, c in enumerate(chars)}
        alphabets = sorted({p[1] for p in parts})
        alpha_index = {a: i for i, a in enumerate(alphabets)}
        n = len(names)
        images = np.empty((n, 1, SIZE, SIZE), dtype=np.uint8)
        for i, name in enumerate(tqdm(names, desc=f"decoding {path.name}", disable=not progress,
                                      leave=False)):
            with Image.open(io.BytesIO(zf.read(name))) as im:
                if im.size != (SIZE, SIZE):
                    raise DisbenchError(f"{path}: {name} is {im.size[0]}x{im.size[1]}, "
                                        f"expected {SIZE}x{SIZE}")
                # white (True/255) background, black strokes -> ink 255 on 0
                images[i, 0] = np.where(np.asarray(im.convert("L")) < 128, 255, 0)
    labels = np.array([char_index[(p[1], p[2])] for p in parts], dtype=np.int64)
    alphabet = np.array([alpha_index[p[1]] for p in parts], dtype=np.int64)
    drawer = np.array([int(p[3].rsplit("_", 1)[-1].split(".")[0]) - 1 for p in parts],
                      dtype=np.int64)
    if split in SPLIT_IMAGES and (n != SPLIT_IMAGES[split] or len(chars) !=
                                  SPLIT_CHARACTERS[split]):
        raise DisbenchError(
            f"{path}: {n} images of {len(chars)} characters, the official {split} split has "
            f"{SPLIT_IMAGES[split]} of {SPLIT_CHARACTERS[split]}; replace it with the "
            f"official file"
        )
    return {"images": images, "labels": labels, "alphabet": alphabet, "drawer": drawer,
            "class_names": np.array([f"{a}/{c}" for a, c in chars])}


def _decoded(zip_path: Path, split: str, key: str, progress: bool,
             fix: str = OFFICIAL_FIX) -> dict[str, Any]:
    """Parse once, then reuse a bit-packed cache keyed by the zip's checksum (stamped with
    its SHA-256; a damaged cache is deleted, naming it, and decoded again)."""
    cache = zip_path.with_name(f".{zip_path.stem}-{key}.decoded.npz")
    if check_cache(cache, key, "decoded Omniglot cache", "decoding the zip again"):
        try:
            return _read_decoded(cache)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            discard(cache, f"decoded Omniglot cache {cache} cannot be read ({exc}); decoding "
                           f"the zip again")
    d = parse_zip(zip_path, split, progress=progress, fix=fix)
    packed = np.packbits(d["images"].reshape(len(d["images"]), -1) > 0, axis=1)
    with atomic_path(cache) as tmp, open(tmp, "wb") as f:
        np.savez(f, n=len(d["images"]), packed=packed, labels=d["labels"],
                 alphabet=d["alphabet"], drawer=d["drawer"], class_names=d["class_names"])
    write_stamp(cache, key, mode="full", zip=zip_path.name)
    return d


def _read_decoded(cache: Path) -> dict[str, Any]:
    with np.load(cache, allow_pickle=False) as z:
        n = int(z["n"])
        bits = np.unpackbits(z["packed"], axis=1, count=SIZE * SIZE)[:n]
        if len(bits) != n:
            raise ValueError(f"{len(bits)} packed images, expected {n}")
        return {"images": (bits.reshape(n, 1, SIZE, SIZE) * 255).astype(np.uint8),
                "labels": z["labels"], "alphabet": z["alphabet"], "drawer": z["drawer"],
                "class_names": z["class_names"]}


def resize_area(images: np.ndarray, size: int) -> np.ndarray:
    """Area-averaged down-sampling of uint8 (N, C, H, W) to ``size`` x ``size`` (uint8)."""
    return views.resize(images, size, "area")


#: the stored convention (ink = 255, native 105x105, area resize for smaller views)
DEFAULT_VIEW = views.View(size=None, channels=1, invert=True, resize="area")


@register("omniglot")
class Omniglot(DatasetSpec):
    """Omniglot handwritten characters (Lake et al. 2015), 105x105 binary, 28x28 view."""

    summary = ("1,623 handwritten characters of 50 alphabets x 20 drawers, 105x105 binary "
               "+ 28x28 view (Lake et al. 2015)")
    kind = "labelled"
    homepage = "https://github.com/brendenlake/omniglot"
    licence = "MIT (the repository's LICENSE)"
    citation = ("Brenden M. Lake, Ruslan Salakhutdinov, Joshua B. Tenenbaum. Human-level "
                "concept learning through probabilistic program induction. Science 350(6266), "
                "2015")
    default_split = "background"
    files = FILES
    splits: ClassVar[dict[str, tuple[str, ...]]] = {
        s: (f"images_{s}.zip",) for s in ALPHABETS}
    split_sizes: ClassVar[dict[str, int]] = SPLIT_IMAGES
    observation_shape = (1, SIZE, SIZE)
    labels_note = ("the character index within the split (" + "; ".join(
        f"{s}: {SPLIT_CHARACTERS[s]} characters of {len(ALPHABETS[s])} alphabets"
        for s in ALPHABETS) + "); extras: alphabet, drawer")
    twin_summary = ("same alphabets / characters / 20 drawers per split; random stroke "
                    "glyphs warped per drawer; official zip of 1-bit PNGs")
    options: ClassVar[dict[str, Option]] = {
        "download": DOWNLOAD, "progress": PROGRESS, "seed": SEED,
        **views.OPTIONS}

    @classmethod
    def _build(cls, d: dict[str, Any], split: str, source: str, fingerprint: str,
               v: views.View) -> LabelledImages:
        return LabelledImages(
            views.apply(d["images"], v, stored_inverted=True), d["labels"],
            num_classes=len(d["class_names"]), name=cls.name, split=split, source=source,
            fingerprint=fingerprint + v.suffix(DEFAULT_VIEW),
            class_names=[str(c) for c in d["class_names"]], binary=v.size is None,
            extras={"alphabet": d["alphabet"], "drawer": d["drawer"]})

    @classmethod
    def load_official(cls, split: str | None = None, *, download: bool = False,
                      progress: bool = True, **view: Any) -> LabelledImages:
        """The published zip of ``split`` (verified), decoded once and cached; ``view``:
        ``size``, ``channels``, ``invert``, ``resize`` (:mod:`disbench.datasets.views`)."""
        split = cls.check_split(split)
        v = views.make_view(cls.name, SIZE, DEFAULT_VIEW, **view)
        (zip_path,) = cls.official_paths(split, download=download, progress=progress)
        spec = cls.split_files(split)[0]
        d = _decoded(zip_path, split, spec.expected[:12], progress)
        return cls._build(d, split, "official", cls.official_fingerprint(split), v)

    @classmethod
    def load_synthetic(cls, split: str | None = None, *, seed: int = 0,
                       progress: bool = True, **view: Any) -> LabelledImages:
        """The twin of ``split``, written once as the official zip (stamped with its
        SHA-256) and read back; a damaged twin zip is rendered again."""
        split = cls.check_split(split)
        v = views.make_view(cls.name, SIZE, DEFAULT_VIEW, **view)
        zip_path = cls.twin_folder(seed) / cls.splits[split][0]
        source = cls.twin_fingerprint(seed)
        if not check_cache(zip_path, source, "Omniglot twin zip", "rendering the twin again"):
            _write_stamped_twin(zip_path, split, seed, source)
        try:
            d = _decoded(zip_path, split, source, progress, TWIN_FIX)
        except DisbenchError as exc:  # stamped, yet unparsable: render it again, once
            discard(zip_path, f"Omniglot twin zip {zip_path} cannot be read ({exc}); "
                              "rendering the twin again")
            _write_stamped_twin(zip_path, split, seed, source)
            d = _decoded(zip_path, split, source, progress, TWIN_FIX)
        return cls._build(d, split, "synthetic", source, v)


def _random_character(rng: np.random.Generator) -> list[np.ndarray]:
    strokes = []
    for _ in range(rng.integers(1, 5)):
        k = rng.integers(3, 6)
        ctrl = rng.uniform(0.15, 0.85, (k, 2))
        # Chaikin corner cutting twice: a smooth pen stroke through the control points
        pts = ctrl
        for _ in range(2):
            q = 0.75 * pts[:-1] + 0.25 * pts[1:]
            r = 0.25 * pts[:-1] + 0.75 * pts[1:]
            pts = np.concatenate([pts[:1], np.stack([q, r], 1).reshape(-1, 2), pts[-1:]])
        strokes.append(pts)
    return strokes


def render_twin(split: str, seed: int = 0) -> dict[str, Any]:
    """The twin of ``split``: binary images (N, 105, 105) bool (True = ink), names."""
    rng = np.random.default_rng([seed, 3, list(ALPHABETS).index(split)])
    chars = [(a, c) for a in sorted(ALPHABETS[split]) for c in range(ALPHABETS[split][a])]
    strokes = [_random_character(rng) for _ in chars]
    widths = rng.uniform(0.01, 0.015, len(chars))
    # templates at half resolution; the per-drawer warp samples them up to 105x105
    templates = glyphs.draw_stroke_sets(strokes, SIZE // 2, widths)[:, None]
    index = np.repeat(np.arange(len(chars)), DRAWERS)
    theta = glyphs.random_affines(rng, len(index), rotation=0.12, scale=(0.88, 1.08),
                                  shear=0.12, shift=0.06, aspect=0.08)
    ink = glyphs.warp_templates(templates, index, theta, SIZE)[:, 0] > 0.5
    names = [f"images_{split}/{a}/character{c + 1:02d}/{i + 1:04d}_{d + 1:02d}.png"
             for i, (a, c) in enumerate(chars) for d in range(DRAWERS)]
    return {"ink": ink, "names": names}


def _write_stamped_twin(path: Path, split: str, seed: int, source: str) -> None:
    """Render the twin zip of ``split`` and stamp it (a derived cache, checked on open)."""
    write_twin_zip(path, split, seed)
    write_stamp(path, source, mode="full")


def write_twin_zip(path: Path, split: str, seed: int = 0) -> None:
    """Write the twin of ``split`` as an official-layout zip of 1-bit PNGs (atomically)."""
    from PIL import Image

    t = render_twin(split, seed)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name, ink in zip(t["names"], t["ink"], strict=True):
            buf = io.BytesIO()
            Image.fromarray(~ink).save(buf, format="PNG")  # white background, black ink
            info = zipfile.ZipInfo(name, date_time=(2015, 12, 11, 0, 0, 0))
            zf.writestr(info, buf.getvalue())
