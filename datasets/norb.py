"""SmallNORB (LeCun, Huang and Bottou 2004): 5 toy categories x 10 instances, 96x96 stereo pairs.

Official files
    The six ``smallnorb-5x{46789,01235}x9x18x6x2x96x96-{training,testing}-{dat,cat,info}
    .mat.gz`` of ``https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/`` (the address
    disentanglement_lib's ``bin/dlib_download_data`` and disent use). NYU publishes no
    checksum: the SHA-256 values and sizes are those of TensorFlow Datasets' checksum file
    (tensorflow/datasets ``tensorflow_datasets/url_checksums/smallnorb.txt``); the MD5s,
    shown for reference, are disent's "full" hashes (nmichlo/disent
    ``disent/dataset/data/_groundtruth__norb.py``). Licence: the files carry none; see the
    homepage, and cite the paper.

Binary matrix format (:func:`read_matrix`)
    little-endian int32 magic number (0x1E3D4C55 uint8, 0x1E3D4C54 int32; also 0x1E3D4C56
    int16, 0x1E3D4C51 float32, 0x1E3D4C53 float64, as disent's ``_BINARY_MATRIX_TYPES``),
    int32 ``ndim``, ``max(3, ndim)`` int32 dimensions (the unused ones 1), then the data in
    row-major order. ``dat``: uint8 (24300, 2, 96, 96), the two cameras; ``cat``: int32
    (24300,) category (animal, human, airplane, truck, car); ``info``: int32 (24300, 4):
    instance (0..9; training 4, 6, 7, 8, 9, testing 0, 1, 2, 3, 5), elevation (0..8: 30..70
    degrees), azimuth (0, 2, ..., 34: times 10 degrees), lighting (0..5).
    disentanglement_lib's ``_read_binary_matrix`` (``data/ground_truth/norb.py``) maps the
    first magic to numpy ``int8``; disent to ``uint8``, as the format says and as read here.
    (With Pillow 13, ``Image.fromarray`` of an int8 array gives an ``"I"`` image holding the
    unsigned byte values, so disentanglement_lib's resize sees the same pixels, except that
    mode ``"I"`` does not clip Lanczos overshoot to 0..255 as ``"L"`` does; older Pillow
    versions were not checked.)

Conventions (``convention`` option); the numbers of the two are not comparable
    ``"dlib"`` (default), google-research/disentanglement_lib ``data/ground_truth/norb.py``
        split ``"all"``: both files merged (48,600 images), the left camera (``dat[:, 0]``),
        each image resized to 64x64 with ``PIL.Image.resize((64, 64), ANTIALIAS)``
        (Lanczos), azimuth divided by 2. Factors category (5), elevation (9), azimuth (18),
        lighting (6); the instance (10) is a nuisance drawn per observation. On ``"train"``
        or ``"test"`` alone the same, with that split's 5 instances.
    ``"disent"``, nmichlo/disent ``_groundtruth__norb.py`` (``SmallNorb64Data``)
        one split (``"train"`` or ``"test"``, 24,300 images), the left camera, lexsorted by
        (category, instance, elevation, azimuth, lighting), resized to 64x64 by
        torchvision's ``F_tv.resize`` of a PIL image (PIL bilinear, as
        :mod:`disbench.datasets.views` explains); the instance is a factor with the split's
        5 instances (in increasing order). Factors category (5), instance (5), elevation
        (9), rotation (18), lighting (6).

    Either way the images are stored in the row-major order of the full grid (category,
    instance, elevation, azimuth, lighting), converted once in chunks into a stamped
    ``.npy`` (:mod:`disbench.datasets.cache`); a file that does not cover every grid cell
    exactly once is an error naming it.

Twin (``source="synthetic"``)
    A procedural toy per (category, instance): a silhouette built from ellipses whose
    proportions depend on both, seen under an in-plane turn of 20 degrees per azimuth step,
    a vertical squash of ``sin(30 + 5 e)`` degrees per elevation step and one of six light
    directions; rendered at 96x96 and resized exactly as the official images. It renders on
    demand; ``prepare --source synthetic`` writes the six official ``.mat.gz`` files (rows
    in a fixed shuffled order, the right camera a shifted copy) and parses them back.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np
from disbench.atomic import atomic_path
from disbench.datasets.cache import write_stamp
from disbench.datasets.contract import Option
from disbench.datasets.download import OfficialFile
from disbench.datasets.entry import DOWNLOAD, PROGRESS_OFFICIAL, DatasetSpec
from disbench.datasets.ground_truth import GroundTruthDataset, RenderedImages, cached_layout
from disbench.datasets.registry import register
from disbench.errors import DisbenchError

MAGICS = {0x1E3D4C55: np.dtype(np.uint8), 0x1E3D4C54: np.dtype("<i4"),
          0x1E3D4C56: np.dtype("<i2"), 0x1E3D4C51: np.dtype("<f4"),
          0x1E3D4C53: np.dtype("<f8")}
_BASE = "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"
_PREFIX = {"train": "smallnorb-5x46789x9x18x6x2x96x96-training",
           "test": "smallnorb-5x01235x9x18x6x2x96x96-testing"}
SPLIT_INSTANCES = {"train": (4, 6, 7, 8, 9), "test": (0, 1, 2, 3, 5), "all": tuple(range(10))}
PER_SPLIT = 24300
CONVENTIONS = ("dlib", "disent")
_SOURCE = ("sha256 and size: tensorflow/datasets tensorflow_datasets/url_checksums/"
           "smallnorb.txt; md5: nmichlo/disent _groundtruth__norb.py ('full')")


def _file(split: str, kind: str, sha256: str, size: int, md5: str) -> OfficialFile:
    name = f"{_PREFIX[split]}-{kind}.mat.gz"
    return OfficialFile(name=name, url=_BASE + name, sha256=sha256, size=size, md5=md5,
                        checksum_source=_SOURCE)


FILES = (
    _file("train", "dat", "5ffd6272a07d32695ee1082a26a41a93a37aab8c28da047f8c34ed348d214873",
          131896188, "66054832f9accfe74a0f4c36a75bc0a2"),
    _file("train", "cat", "2784e542c1922060691090952b6cd6278879a216c90f81476f0f00256d42cdaa",
          348, "23c8b86101fbf0904a000b43d3ed2fd9"),
    _file("train", "info", "de7eb932ebe7a4ee16217fead60660d0eb3d23632c2f4d1c51f88c501c17bf32",
          71052, "51dee1210a742582ff607dfd94e332e3"),
    _file("test", "dat", "cf7104eed3e51174d2f65b66d1e5878b9da233b886f161b0d88f4510ba2c7474",
          130799817, "e4ad715691ed5a3a5f138751a4ceb071"),
    _file("test", "cat", "ecaf6d5bb8c3bc5eab9cf0258f6d2198dd474e016e374836fc097f2e5ff509ff",
          347, "5aa791cd7e6016cf957ce9bdb93b8603"),
    _file("test", "info", "16adf314226327ee006d1a44db8cfef52773c06c829951d5653a9f6f310248a2",
          10428, "a9454f3864d7fd4bb3ea7fc3eb84924e"),
)


def split_names(split: str) -> tuple[str, ...]:
    """The (dat, cat, info) file names of a split; "all" is train then test."""
    parts = ("train", "test") if split == "all" else (split,)
    return tuple(f"{_PREFIX[p]}-{k}.mat.gz" for p in parts for k in ("dat", "cat", "info"))


# ------------------------------------------------------------------ binary matrix format
def _open(path: Path) -> BinaryIO:
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_header(f: BinaryIO, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    """(dtype, dims) from the header of an open binary-matrix stream (left after it)."""
    head = f.read(8)
    if len(head) < 8:
        raise DisbenchError(f"{path}: {len(head)} bytes is too short for a NORB binary matrix")
    magic, ndim = (int(v) for v in np.frombuffer(head, "<i4"))
    if magic not in MAGICS:
        raise DisbenchError(f"{path}: magic number 0x{magic & 0xFFFFFFFF:08X} is not a NORB "
                            f"binary matrix (0x1E3D4C55 uint8, 0x1E3D4C54 int32, ...); "
                            f"replace it with the official file")
    if not 1 <= ndim <= 8:
        raise DisbenchError(f"{path}: header announces {ndim} dimensions")
    raw = f.read(4 * max(3, ndim))
    if len(raw) < 4 * max(3, ndim):
        raise DisbenchError(f"{path}: truncated header")
    dims = tuple(int(d) for d in np.frombuffer(raw, "<i4")[:ndim])
    if any(d < 0 for d in dims):
        raise DisbenchError(f"{path}: negative dimension in {dims}")
    return MAGICS[magic], dims


def read_matrix(path: str | Path) -> np.ndarray:
    """A whole binary matrix (``.mat`` or ``.mat.gz``); errors name the file."""
    path = Path(path)
    try:
        with _open(path) as f:
            dtype, dims = read_header(f, path)
            want = int(np.prod(dims)) * dtype.itemsize
            data = f.read(want + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DisbenchError(f"{path}: cannot be read ({exc}); the file is truncated or "
                            f"corrupt, replace it with the official one") from None
    if len(data) != want:
        raise DisbenchError(f"{path}: header announces {dims} {dtype} ({want} bytes of data) "
                            f"but the file holds {len(data) if len(data) <= want else 'more'}")
    return np.frombuffer(data, dtype).reshape(dims)


def encode_matrix(array: np.ndarray) -> bytes:
    """The binary-matrix bytes of ``array`` (uint8 or int32; at least 3 dims in the header)."""
    array = np.ascontiguousarray(array)
    magic = {np.dtype(np.uint8): 0x1E3D4C55, np.dtype("<i4"): 0x1E3D4C54}[array.dtype]
    dims = list(array.shape) + [1] * max(0, 3 - array.ndim)
    return np.array([magic, array.ndim, *dims], "<i4").tobytes() + array.tobytes()


def write_matrix_gz(path: str | Path, array: np.ndarray) -> None:
    """Atomically write ``array`` as a gzip-compressed binary matrix (mtime 0)."""
    with atomic_path(path) as tmp, gzip.GzipFile(tmp, "wb", compresslevel=1, mtime=0) as f:
        f.write(encode_matrix(array))


# ------------------------------------------------------------------------------ factors
def read_factors(cat_path: Path, info_path: Path, n: int) -> np.ndarray:
    """int64 (n, 5): category, instance, elevation, azimuth / 2, lighting, checked."""
    cat = read_matrix(cat_path)
    info = read_matrix(info_path)
    if cat.shape != (n,) or info.shape != (n, 4) or cat.dtype.kind != "i" or \
            info.dtype.kind != "i":
        raise DisbenchError(f"{cat_path} / {info_path}: shapes {cat.shape} and {info.shape}, "
                            f"expected int32 ({n},) and ({n}, 4)")
    f = np.column_stack([cat, info]).astype(np.int64)
    if (f[:, 3] % 2).any():
        raise DisbenchError(f"{info_path}: azimuth values must be even (0, 2, ..., 34)")
    f[:, 3] //= 2
    lo, hi = f.min(axis=0), f.max(axis=0)
    top = np.array([GRID["category"], 10, GRID["elevation"], GRID["azimuth"], GRID["lighting"]])
    if (lo < 0).any() or (hi >= top).any():
        raise DisbenchError(f"{info_path}: factor values out of range (max {hi.tolist()})")
    return f


def grid_index(f: np.ndarray, instances: tuple[int, ...]) -> np.ndarray:
    """Row-major index on (category 5, instance k, elevation 9, azimuth 18, lighting 6),
    the instance replaced by its rank in ``instances``."""
    rank = np.full(10, -1, np.int64)
    rank[list(instances)] = np.arange(len(instances))
    inst = rank[f[:, 1]]
    sizes = (GRID["category"], len(instances), GRID["elevation"], GRID["azimuth"],
             GRID["lighting"])
    g = np.stack([f[:, 0], inst, f[:, 2], f[:, 3], f[:, 4]], axis=1)
    return np.ravel_multi_index(tuple(g.T), sizes) if (inst >= 0).all() else inst


def resize(images: np.ndarray, convention: str) -> np.ndarray:
    """uint8 (n, 96, 96) -> uint8 (n, 1, 64, 64): Lanczos (dlib) or bilinear (disent)."""
    from PIL import Image

    flt = Image.Resampling.LANCZOS if convention == "dlib" else Image.Resampling.BILINEAR
    out = np.empty((len(images), 1, 64, 64), np.uint8)
    for i, img in enumerate(images):
        out[i, 0] = np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((64, 64), flt))
    return out


#: sizes of the grid's factors other than the instance (module-level so tests can shrink it)
GRID = {"category": 5, "elevation": 9, "azimuth": 18, "lighting": 6}
SIDE = 96


def grid_sizes(split: str) -> tuple[int, ...]:
    """Storage grid (category, instance, elevation, azimuth, lighting) of ``split``."""
    return (GRID["category"], len(SPLIT_INSTANCES[split]), GRID["elevation"], GRID["azimuth"],
            GRID["lighting"])


def per_split() -> int:
    """Images in one official split (24,300)."""
    return int(np.prod(grid_sizes("train")))


def convert(folder: Path, split: str, dest: Path, convention: str, *,
            progress: bool = True) -> None:
    """Parse the split's files in ``folder`` into uint8 (N, 1, 64, 64) at ``dest``, rows in
    the grid order of :func:`grid_sizes` (atomically, streaming the ``dat`` files).

    Raises :class:`DisbenchError` naming the file for a wrong header, shape or dtype, factor
    values off the grid, or a grid cell covered twice or not at all.
    """
    names = split_names(split)
    parts = [names[i:i + 3] for i in range(0, len(names), 3)]
    instances = SPLIT_INSTANCES[split]
    sizes = grid_sizes(split)
    total = int(np.prod(sizes))
    n = per_split()
    index = []
    for dat, cat, info in parts:
        idx = grid_index(read_factors(folder / cat, folder / info, n), instances)
        if (idx < 0).any():
            raise DisbenchError(f"{folder / info}: instances other than {list(instances)} in "
                                f"the {split} split; replace it with the official file")
        index.append(idx)
    counts = np.bincount(np.concatenate(index), minlength=total)
    if (counts != 1).any():
        cell = np.unravel_index(int(np.flatnonzero(counts != 1)[0]), sizes)
        raise DisbenchError(f"{folder / parts[0][2]}: the files do not cover every grid cell "
                            f"{sizes} exactly once (cell {tuple(int(c) for c in cell)} "
                            f"appears {counts[np.ravel_multi_index(cell, sizes)]} times)")
    with atomic_path(dest) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(total, 1, 64, 64))
        for (dat, _, _), idx in zip(parts, index, strict=True):
            _copy_dat(folder / dat, out, idx, convention, progress)
        out.flush()
        del out


def _copy_dat(path: Path, out: np.ndarray, idx: np.ndarray, convention: str,
              progress: bool) -> None:
    """Stream the left camera of a ``dat`` file into ``out[idx]``, resized to 64x64."""
    from tqdm.auto import tqdm

    n = len(idx)
    step, frame = 512, 2 * SIDE * SIDE
    try:
        with _open(path) as f:
            dtype, dims = read_header(f, path)
            if dtype != np.uint8 or dims != (n, 2, SIDE, SIDE):
                raise DisbenchError(f"{path}: a {dtype} matrix of shape {dims}, expected uint8 "
                                    f"({n}, 2, {SIDE}, {SIDE}) (is this a smallnorb dat file?)")
            with tqdm(total=n, desc=f"converting {path.name}", unit="img", disable=not progress,
                      leave=False) as bar:
                for s in range(0, n, step):
                    m = min(step, n - s)
                    buf = f.read(m * frame)
                    if len(buf) != m * frame:
                        raise DisbenchError(f"{path}: truncated after {s} images")
                    pairs = np.frombuffer(buf, np.uint8).reshape(m, 2, SIDE, SIDE)
                    out[idx[s:s + m]] = resize(pairs[:, 0], convention)
                    bar.update(m)
    except (OSError, EOFError, zlib.error) as exc:
        raise DisbenchError(f"{path}: cannot be read ({exc}); the file is truncated or corrupt, "
                            f"replace it with the official one") from None


# ------------------------------------------------------------------------------ the twin
# (cx, cy, rx, ry) of up to six ellipses per category, in object coordinates [-1, 1]
_PARTS = {
    0: [(0, 0.05, 0.55, 0.25), (0.6, -0.2, 0.2, 0.18), (-0.35, 0.4, 0.07, 0.25),
        (0.3, 0.4, 0.07, 0.25), (-0.65, -0.05, 0.25, 0.05), (0, 0, 0, 0)],          # animal
    1: [(0, -0.05, 0.2, 0.35), (0, -0.55, 0.14, 0.14), (-0.1, 0.5, 0.07, 0.3),
        (0.1, 0.5, 0.07, 0.3), (-0.3, -0.05, 0.06, 0.3), (0.3, -0.05, 0.06, 0.3)],   # human
    2: [(0, 0, 0.8, 0.1), (0, 0, 0.12, 0.7), (-0.7, 0, 0.06, 0.3), (0.75, 0, 0.1, 0.08),
        (0, 0, 0, 0), (0, 0, 0, 0)],                                                 # airplane
    3: [(-0.15, 0, 0.6, 0.3), (0.6, 0.05, 0.22, 0.25), (-0.5, 0.33, 0.13, 0.13),
        (0.5, 0.33, 0.13, 0.13), (0, 0, 0, 0), (0, 0, 0, 0)],                        # truck
    4: [(0, 0.1, 0.7, 0.17), (0, -0.1, 0.38, 0.15), (-0.45, 0.27, 0.14, 0.14),
        (0.45, 0.27, 0.14, 0.14), (0, 0, 0, 0), (0, 0, 0, 0)],                       # car
}


def _part_table() -> np.ndarray:
    """float (5, 10, 6, 4): each category's parts, jittered per instance (fixed seed)."""
    rng = np.random.default_rng(1004)
    base = np.array([_PARTS[c] for c in range(5)], dtype=np.float64)[:, None]
    jitter = rng.uniform(0.8, 1.2, (5, 10, 6, 4))
    jitter[..., :2] = rng.uniform(-0.06, 0.06, (5, 10, 6, 2))
    table = np.broadcast_to(base, (5, 10, 6, 4)).copy()
    table[..., :2] += jitter[..., :2]
    table[..., 2:] *= jitter[..., 2:]
    return table


_TABLE = _part_table()


def render_toys(f: np.ndarray, side: int = SIDE) -> np.ndarray:
    """uint8 (n, side, side) twin images for (n, 5) raw factors (category, instance 0..9,
    elevation, azimuth step, lighting)."""
    f = np.asarray(f, dtype=np.int64)
    t = (np.arange(side) + 0.5) / side * 2.0 - 1.0
    y, x = np.meshgrid(t, t, indexing="ij")
    theta = np.deg2rad(20.0 * f[:, 3])[:, None, None]
    squash = np.sin(np.deg2rad(30.0 + 5.0 * f[:, 2]))[:, None, None]
    u = (np.cos(theta) * x + np.sin(theta) * y) * 0.9
    v = (-np.sin(theta) * x + np.cos(theta) * y) * 0.9 / squash
    parts = _TABLE[f[:, 0] % 5, f[:, 1] % 10]  # (n, 6, 4)
    inside = np.zeros((len(f), side, side), bool)
    for p in range(parts.shape[1]):
        cx, cy, rx, ry = (parts[:, p, k][:, None, None] for k in range(4))
        with np.errstate(divide="ignore", invalid="ignore"):
            d = ((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2
        inside |= (rx > 0) & (d <= 1.0)
    phi = np.deg2rad(60.0 * f[:, 4])[:, None, None]
    shade = 0.45 + 0.4 * (np.cos(phi) * u + np.sin(phi) * v)
    value = np.where(inside, np.clip(shade, 0.05, 0.98), 0.6 + 0.08 * y)
    return np.rint(value * 255.0).astype(np.uint8)


def write_twin(folder: Path, *, progress: bool = True) -> list[Path]:
    """Write the twin as the six official ``.mat.gz`` files (rows in a fixed shuffled order,
    the right camera the left shifted by 2 pixels)."""
    from tqdm.auto import tqdm

    paths = []
    for split in ("train", "test"):
        sizes = grid_sizes(split)
        g = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), 1)
        g[:, 1] = np.asarray(SPLIT_INSTANCES[split])[g[:, 1]]
        g = g[np.random.default_rng([7, len(paths)]).permutation(len(g))]
        dat = np.empty((len(g), 2, SIDE, SIDE), np.uint8)
        for s in tqdm(range(0, len(g), 1024), desc=f"smallnorb twin {split}",
                      disable=not progress, leave=False):
            left = render_toys(g[s:s + 1024])
            dat[s:s + 1024, 0] = left
            dat[s:s + 1024, 1] = np.roll(left, 2, axis=2)
        info = np.column_stack([g[:, 1], g[:, 2], 2 * g[:, 3], g[:, 4]]).astype("<i4")
        names = split_names(split)
        for name, arr in zip(names, (dat, g[:, 0].astype("<i4"), info), strict=True):
            write_matrix_gz(folder / name, arr)
            paths.append(folder / name)
    return paths


# ------------------------------------------------------------------------------ dataset
@register("smallnorb")
class SmallNORB(DatasetSpec, GroundTruthDataset):
    """SmallNORB: category(5), elevation(9), azimuth(18), lighting(6); instance a nuisance
    (disentanglement_lib's convention; ``convention="disent"`` keeps it as a factor)."""

    summary = ("SmallNORB: 48,600 grey 64x64 toy photos (both splits, left camera); 4 "
               "factors + instance nuisance (LeCun et al. 2004; disentanglement_lib's "
               "convention, disent's as an option)")
    kind: ClassVar[str] = "ground_truth"
    homepage = "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"
    licence = ("none stated in the files; see the homepage (research use) and cite the "
               "paper")
    citation = ("Yann LeCun, Fu Jie Huang, Leon Bottou. Learning Methods for Generic Object "
                "Recognition with Invariance to Pose and Lighting. CVPR 2004")
    files = FILES
    splits: ClassVar[dict[str, tuple[str, ...]]] = {s: split_names(s)
                                                    for s in ("all", "train", "test")}
    default_split: ClassVar[str] = "all"
    split_sizes: ClassVar[dict[str, int]] = {"all": 2 * PER_SPLIT, "train": PER_SPLIT,
                                             "test": PER_SPLIT}
    image_shape = observation_shape = (1, 64, 64)
    binary = False
    factor_names = ("category", "elevation", "azimuth", "lighting")
    factor_sizes = (5, 9, 18, 6)
    storage_sizes = (5, 10, 9, 18, 6)
    storage_names = ("category", "instance", "elevation", "azimuth", "lighting")
    latent = (0, 2, 3, 4)
    twin_version = "smallnorb1"
    twin_summary = ("smallnorb1: procedural toys (ellipse silhouettes per category and "
                    "instance) turned, squashed and lit per factor, 96x96 resized as the "
                    "official images; rendered on demand, 'prepare --source synthetic' writes "
                    "the official .mat.gz files and converts them")
    options: ClassVar[dict[str, Option]] = {
        "download": DOWNLOAD, "progress": PROGRESS_OFFICIAL,
        "convention": Option("'dlib' (default: both splits merged, instance a nuisance) or "
                             "'disent' (one split, instance a factor)")}

    def __init__(self, images: Any, *, split: str, convention: str, source: str,
                 fingerprint: str) -> None:
        self.split_name, self.convention = split, convention
        self.storage_sizes = grid_sizes(split)
        if convention == "disent":
            self.latent = None
            self.storage_names = ("category", "instance", "elevation", "rotation", "lighting")
            self.factor_names = self.storage_names
            self.factor_sizes = self.storage_sizes
        else:
            self.factor_sizes = tuple(self.storage_sizes[i] for i in self.latent)
        GroundTruthDataset.__init__(self, images, source=source, split=split,
                                    fingerprint=fingerprint)

    @classmethod
    def factor_table(cls) -> dict[str, int]:
        return dict(zip(cls.factor_names, cls.factor_sizes, strict=True))

    @classmethod
    def _check(cls, split: str | None, convention: str) -> str:
        split = cls.check_split(split)
        if convention not in CONVENTIONS:
            raise DisbenchError(f"smallnorb: convention must be one of {', '.join(CONVENTIONS)}, "
                                f"got {convention!r}")
        if convention == "disent" and split == "all":
            raise DisbenchError("smallnorb: the disent convention uses one split; pass "
                                "split='train' or 'test' (or convention='dlib' for 'all')")
        return split

    @classmethod
    def load_official(cls, split: str | None = None, *, convention: str = "dlib",
                      download: bool = True, progress: bool = True) -> SmallNORB:
        """The published files of ``split`` (verified), converted once per convention."""
        split = cls._check(split, convention)
        cls.official_paths(split, download=download, progress=progress)
        fp = cls.official_fingerprint(split) + ("" if convention == "dlib" else "-disent")
        dest = cls.folder() / f"official_images-{split}-{convention}.npy"
        shape = (int(np.prod(grid_sizes(split))), 1, 64, 64)
        images = cached_layout(dest, fp, shape)
        if images is None:
            convert(cls.files_folder(), split, dest, convention, progress=progress)
            write_stamp(dest, fp, split=split, convention=convention)
            images = cached_layout(dest, fp, shape)
        return cls(images, split=split, convention=convention, source="official",
                   fingerprint=fp)

    @classmethod
    def load_synthetic(cls, split: str | None = None, *, convention: str = "dlib") -> SmallNORB:
        """The twin: the prepared layout of (split, convention), else rendered on demand."""
        split = cls._check(split, convention)
        fp = cls.twin_fingerprint() + ("" if convention == "dlib" else "-disent")
        shape = (int(np.prod(grid_sizes(split))), 1, 64, 64)
        images = cached_layout(cls.folder() / f"synthetic_images-{split}-{convention}.npy", fp,
                               shape, "the twin renders on demand until 'disbench datasets "
                               "prepare smallnorb --source synthetic' caches it again")
        if images is None:
            sizes, inst = grid_sizes(split), np.asarray(SPLIT_INSTANCES[split])

            def render(idx: np.ndarray) -> np.ndarray:
                g = np.stack(np.unravel_index(idx, sizes), axis=1)
                g[:, 1] = inst[g[:, 1]]
                return resize(render_toys(g), convention)

            images = RenderedImages(shape, render)
        return cls(images, split=split, convention=convention, source="synthetic",
                   fingerprint=fp)

    @classmethod
    def _prepare_official(cls, splits: list[str], *, progress: bool,
                          **options: Any) -> list[Path]:
        convention = options.pop("convention", "dlib")
        super()._prepare_official(splits, progress=progress, **options)
        out = []
        for split in splits:
            if convention == "disent" and split == "all":
                continue
            cls.load_official(split, convention=convention, progress=progress)
            out.append(cls.folder() / f"official_images-{split}-{convention}.npy")
        return out

    @classmethod
    def _prepare_synthetic(cls, splits: list[str], *, progress: bool,
                           **options: Any) -> list[Path]:
        """Write the twin as the official files, parse them back, cache the layouts."""
        convention = options.pop("convention", "dlib")
        cls.load_options("synthetic", options)
        folder = cls.twin_folder()
        write_twin(folder, progress=progress)
        out = []
        for split in splits:
            if convention == "disent" and split == "all":
                continue
            fp = cls.twin_fingerprint() + ("" if convention == "dlib" else "-disent")
            dest = cls.folder() / f"synthetic_images-{split}-{convention}.npy"
            convert(folder, split, dest, convention, progress=progress)
            write_stamp(dest, fp, split=split, convention=convention)
            out.append(dest)
        return out

    @classmethod
    def twin_cached(cls) -> list[str]:
        return [s for s in cls.splits if (cls.folder() / f"synthetic_images-{s}-dlib.npy"
                                          ).is_file()]
