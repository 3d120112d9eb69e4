"""dSprites (Matthey et al. 2017): 737,280 binary 64x64 sprites on a full factor grid.

Official file
    ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` from the deepmind/dsprites-dataset
    GitHub repository. The authors publish no checksum; we pin the MD5
    ``7da33b31b13a06f4b04a70402ce90c2e`` that the widely used loaders record for this
    file. Keys: ``imgs`` (737280, 64, 64) uint8 0/1, ``latents_values`` (737280, 6)
    float64, ``latents_classes`` (737280, 6) int64 and ``metadata`` (a Python-2 pickle).
    **The pickle is never loaded** (it could run code: a cache folder is writable by
    others and the checksum sidecar is trusted without re-hashing): every member is read
    with ``allow_pickle=False``, the arrays are validated first (the latents against the
    known grid, the images' header), and the metadata dict is rebuilt from the known grid
    (:func:`grid_metadata`), which the validated latents equal anyway.
    Factors color(1), shape(3: square, ellipse, heart), scale(6: 0.5..1), orientation(40:
    linspace(0, 2*pi) both ends), posX(32), posY(32) (values linspace(0, 1)); row-major,
    posY fastest. The dataset exposes the five non-constant factors (K = 5).

Random-access layout
    The npz is compressed (each load would inflate 3 GB), so it is converted once, in
    chunks, to an uncompressed ``.npy`` of uint8 0/255 of shape (N, 1, 64, 64) in the cache
    and opened with ``mmap_mode="r"``; a JSON stamp beside it names the source it came from.

Twin (``source="synthetic"``)
    Binary, no anti-aliasing, all 737,280 images, deterministic (no seed is involved). Each
    pixel is on when its centre lies inside the rotated, scaled shape (implicit-function
    sampling of the shape itself, not a rotated raster, so the area is constant under
    rotation up to boundary pixels). Geometry (measured on official renders): sprite centre
    at pixel ``15.5 + 32 * pos`` on each axis (pixel centres at integer coordinates, rows
    downwards, posX along columns and posY along rows); square side ``20 * scale``;
    ellipse semi-axes ``13 * scale`` (along x at orientation 0) by ``7 * scale``; heart the
    curve ``x^2 + (y - 1.25 |x|^(2/3))^2 <= 1`` stretched to 20 x 17.8 (17 pixel rows at
    most positions) at scale 1 with its bounding box centred on the sprite centre (its
    centroid lies ~1.8 px above); orientation turns the shape counter-clockwise on screen
    about the sprite centre. The per-pixel test runs in float32 on offsets computed
    exactly from integers, so any batch of rows renders bit-identical pixels.

    Without ``prepare`` the twin's ``images`` is a lazy :class:`RenderedImages`: any rows
    are rendered on demand (about 0.1 ms per image), so tests and
    small experiments never render the whole grid. ``prepare("synthetic")`` renders the
    whole grid into the official container (an npz with the same four keys; ``metadata``
    is stored as a JSON string instead of a pickle), loads that
    through the same parser as the official file, and caches the random-access layout.
"""
from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from disbench.atomic import atomic_path
from disbench.datasets.download import OfficialFile
from disbench.datasets.grid import GridDataset
from disbench.datasets.ground_truth import grid_factors
from disbench.datasets.registry import register
from disbench.errors import DisbenchError

log = logging.getLogger(__name__)

OFFICIAL = OfficialFile(
    name="dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
    url="https://raw.githubusercontent.com/deepmind/dsprites-dataset/master/"
        "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
    md5="7da33b31b13a06f4b04a70402ce90c2e",
)
TWIN_VERSION = "dsprites1"

ALL_NAMES = ("color", "shape", "scale", "orientation", "posX", "posY")
ALL_SIZES = (1, 3, 6, 40, 32, 32)
NUM_IMAGES = int(np.prod(ALL_SIZES))
SHAPE_NAMES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)
ALL_VALUES = (np.ones(1), np.arange(1.0, 4.0), SCALES, ORIENTATIONS, POSITIONS, POSITIONS)
KEYS = ("imgs", "latents_values", "latents_classes", "metadata")

# heart curve x^2 + (y - K |x|^(2/3))^2 = 1; K sets how far the centroid sits above the
# box centre (K = 1.25: ~1.8 px at 20 x 17 px; the official hearts measure about 2 px).
_HEART_K = 1.25
_HEART_W, _HEART_H = 20.0, 17.8  # 17.8 continuous -> 17 pixel rows at most positions


def _heart_top(k: float) -> float:
    """max over x in [0, 1] of k x^(2/3) + sqrt(1 - x^2) (the top of the lobes)."""
    x = np.linspace(0.0, 1.0, 200001)
    i = int(np.argmax(k * np.cbrt(x * x) + np.sqrt(1.0 - x * x)))
    x = np.linspace(x[max(i - 1, 0)], x[min(i + 1, len(x) - 1)], 200001)
    return float(np.max(k * np.cbrt(x * x) + np.sqrt(1.0 - x * x)))


_HEART_YMAX = _heart_top(_HEART_K)
_RADIUS = 10.0 * np.sqrt(2.0)  # farthest sprite pixel from the centre at scale 1 (square)
_CHUNK = 4096


# ---------------------------------------------------------------------------- rendering
def _half_window(scale: float) -> int:
    # the largest sprite reaches 10 * sqrt(2) * scale px from its centre (square corner)
    return int(np.ceil(_RADIUS * scale)) + 1


def _window_origin(k: np.ndarray, half: int) -> np.ndarray:
    # first pixel of the window: floor(centre) - half + 1 with centre = 15.5 + 32 k / 31
    return (961 + 64 * k) // 62 - half + 1


def _offsets(k: np.ndarray, origin: np.ndarray, width: int) -> np.ndarray:
    """Offsets (px) of the window's pixel centres from the sprite centre, (n, width).

    ``j - (15.5 + 32 k / 31) = (62 j - 961 - 64 k) / 62``: computed from integers so every
    code path gets bit-identical offsets (odd multiples of 1/62: never exactly on an
    axis-aligned edge).
    """
    j = origin[:, None] + np.arange(width)
    return (62 * j - 961 - 64 * k[:, None]) / 62.0


# Each shape is tested in its own normalised frame X = AX * u, Y = AY * v + BY (u to the
# right, v up, in pixels of a scale-1 sprite); the affine maps are folded into the
# per-row / per-column factors so the per-pixel work is only the shape test itself.
_FRAMES = {
    0: (1 / 10.0, 1 / 10.0, 0.0),  # square, side 20: |X| <= 1 and |Y| <= 1
    1: (1 / 13.0, 1 / 7.0, 0.0),  # ellipse, semi-axes 13 x 7: X^2 + Y^2 <= 1
    # heart x^2 + (y - K |x|^(2/3))^2 <= 1, x in [-1, 1], y in [-1, YMAX], its box centred
    2: (2.0 / _HEART_W, (_HEART_YMAX + 1.0) / _HEART_H, (_HEART_YMAX - 1.0) / 2.0),
}


def _inside(shape: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Membership of points in the normalised frame of ``shape`` (arrays are overwritten)."""
    if shape == 0:
        np.abs(x, out=x)
        np.abs(y, out=y)
        return (x <= 1.0) & (y <= 1.0)
    if shape == 1:
        np.multiply(x, x, out=x)
        np.multiply(y, y, out=y)
        x += y
        return x <= 1.0
    # heart, cube-root free: t = K |x|^(2/3) lies in [y - w, y + w] (w = sqrt(1 - x^2))
    # <=> K^3 x^2 lies in [(y - w)^3, (y + w)^3], the cube being monotone; |x| > 1 gives
    # w = nan and fails both comparisons.
    np.multiply(x, x, out=x)
    with np.errstate(invalid="ignore"):
        w = np.sqrt(1.0 - x)
    lo = y - w
    hi = np.add(y, w, out=w)
    x *= np.float32(_HEART_K ** 3)
    lo3 = lo * lo
    lo3 *= lo
    hi3 = hi * hi
    hi3 *= hi
    return (lo3 <= x) & (x <= hi3)


def _frame(shape: int, c: np.ndarray, sn: np.ndarray, dx: np.ndarray,
           dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres (n, W, W) in the shape's normalised frame, float32.

    The inverse rotation u = c dx + s dy, v = c dy - s dx is split into a per-column and a
    per-row term, scaled by the frame's factors before broadcasting.
    """
    ax, ay, by = _FRAMES[shape]
    xc = (ax * c * dx).astype(np.float32)[:, None, :]
    xr = (ax * sn * dy).astype(np.float32)[:, :, None]
    yc = (-ay * sn * dx).astype(np.float32)[:, None, :]
    yr = (ay * c * dy + by).astype(np.float32)[:, :, None]
    return xc + xr, yc + yr


def render_masks(factors: np.ndarray) -> np.ndarray:
    """bool (n, 64, 64) sprites for (n, 5) factor classes (shape, scale, orientation, posX,
    posY). Vectorised per chunk of rows of one scale; only a window around each sprite
    (32x32 at scale 1, 18x18 at scale 0.5) is evaluated."""
    factors = np.asarray(factors, dtype=np.int64)
    out = np.zeros((len(factors), 64, 64), dtype=bool)
    for sc in np.unique(factors[:, 1]) if len(factors) else ():
        rows_of_scale = np.flatnonzero(factors[:, 1] == sc)
        for s in range(0, len(rows_of_scale), _CHUNK):
            dst = rows_of_scale[s:s + _CHUNK]
            _render_window(factors[dst], int(sc), out, dst)
    return out


def _render_window(f: np.ndarray, sc: int, out: np.ndarray, dst: np.ndarray) -> None:
    scale = SCALES[sc]
    half = _half_window(scale)
    t = np.arange(2 * half)
    theta = ORIENTATIONS[f[:, 2]]
    c = np.cos(theta)[:, None]
    sn = np.sin(theta)[:, None]
    x0 = _window_origin(f[:, 3], half)
    y0 = _window_origin(f[:, 4], half)
    dx = _offsets(f[:, 3], x0, 2 * half) / scale
    dy = -_offsets(f[:, 4], y0, 2 * half) / scale  # rows go down, v goes up
    for shape in range(3):
        sel = np.flatnonzero(f[:, 0] == shape)
        if not sel.size:
            continue
        x, y = _frame(shape, c[sel], sn[sel], dx[sel], dy[sel])
        win = _inside(shape, x, y)
        rows = (y0[sel, None] + t)[:, :, None]
        cols = (x0[sel, None] + t)[:, None, :]
        out[dst[sel, None, None], rows, cols] = win


def render(factors: np.ndarray) -> np.ndarray:
    """uint8 (n, 1, 64, 64) images in 0/255 for (n, 5) factor classes."""
    return (render_masks(factors).view(np.uint8) * np.uint8(255))[:, None]


# ---------------------------------------------------------------------------- container
def grid_metadata() -> dict:
    """The metadata of the official file as far as the known grid determines it (names,
    sizes, possible values): what the parser returns instead of unpickling the file's own."""
    return {
        "latents_names": list(ALL_NAMES),
        "latents_sizes": list(ALL_SIZES),
        "latents_possible_values": {n: v.tolist() for n, v in zip(ALL_NAMES, ALL_VALUES,
                                                                   strict=True)},
        "note": "rebuilt by disbench from the known factor grid; the file's pickled "
                "metadata is never loaded",
    }


def _metadata() -> dict:
    return {
        "title": "dSprites dataset (disbench procedural twin)",
        "description": "Procedural twin of dSprites rendered by disbench; same factors, "
                       "order and array layout as the official file.",
        "version": 1,
        "author": "disbench",
        "date": "synthetic",
        "latents_names": list(ALL_NAMES),
        "latents_sizes": list(ALL_SIZES),
        "latents_possible_values": {n: v.tolist() for n, v in zip(ALL_NAMES, ALL_VALUES, strict=True)},
    }


def _latents(num_images: int) -> tuple[np.ndarray, np.ndarray]:
    classes = grid_factors(ALL_SIZES)[:num_images]
    values = np.stack([ALL_VALUES[k][classes[:, k]] for k in range(6)], axis=1)
    return classes, values


def write_npz(path: str | Path, *, num_images: int | None = None, progress: bool = True) -> Path:
    """Render the twin's first ``num_images`` grid rows into the official npz container.

    ``imgs`` is streamed into the zip member chunk by chunk (never all 3 GB in memory);
    ``metadata`` is a JSON string (no pickle). Written atomically.
    """
    from tqdm.auto import tqdm

    path = Path(path)
    num_images = NUM_IMAGES if num_images is None else int(num_images)
    classes, values = _latents(num_images)
    with atomic_path(path) as tmp, zipfile.ZipFile(
        tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True
    ) as zf:
        with zf.open("imgs.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "|u1", "fortran_order": False, "shape": (num_images, 64, 64)})
            with tqdm(total=num_images, desc="dsprites twin", unit="img",
                      disable=not progress, leave=False) as bar:
                for s in range(0, num_images, 8 * _CHUNK):
                    rows = classes[s:s + 8 * _CHUNK, 1:]
                    f.write(render_masks(rows).view(np.uint8).tobytes())
                    bar.update(len(rows))
        for key, arr in (("latents_values", values), ("latents_classes", classes),
                         ("metadata", np.array(json.dumps(_metadata())))):
            with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, arr, allow_pickle=False)
    return path


def _read_member(zf: zipfile.ZipFile, key: str, path: Path) -> Any:
    """A member read with ``allow_pickle=False`` (an object array is refused, never loaded)."""
    with zf.open(f"{key}.npy") as f:
        try:
            return np.lib.format.read_array(f, allow_pickle=False)
        except ValueError as exc:
            if "pickle" in str(exc).lower():
                raise DisbenchError(f"{path}: '{key}' is a pickled object array; disbench "
                                    f"never loads pickles (they can run code)") from None
            raise DisbenchError(f"{path}: cannot read '{key}' ({exc})") from None


def _member_header(zf: zipfile.ZipFile, key: str, path: Path) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) from the ``.npy`` header of a member, data unread."""
    with zf.open(f"{key}.npy") as f:
        return _read_header(f, path, key)


def _read_header(f: Any, path: Path, key: str) -> tuple[tuple, bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(f)
        reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)
        return reader(f)
    except ValueError as exc:
        raise DisbenchError(f"{path}: '{key}' is not a valid .npy member ({exc})") from None


def convert_npz(path: str | Path, dest: str | Path, *, num_images: int | None = None,
                progress: bool = True) -> dict:
    """Parse a dSprites npz and write its images as uint8 0/255 (N, 1, 64, 64) ``.npy``.

    Nothing is unpickled: the latents (read with ``allow_pickle=False``) are checked against
    the official grid and the images' header against (N, 64, 64) uint8 before anything else
    is read; an official pickled ``metadata`` member is left unread (its header only must be
    an object scalar) and the metadata returned is :func:`grid_metadata`; a twin's JSON
    ``metadata`` is read as text and checked.

    Parameters
    ----------
    path : path of the npz (official file or a twin in the same container).
    dest : the ``.npy`` to write (atomically).
    num_images : expected row count, default the full 737,280 (what the loaders use); a
        smaller value is a test hook for a prefix of the grid (a short file is otherwise an
        error).

    Returns the metadata dict. Raises :class:`DisbenchError` naming the file on a missing
    key, wrong shape/dtype, values other than 0/1, or latents off the official grid.
    """
    path, dest = Path(path), Path(dest)
    num_images = NUM_IMAGES if num_images is None else int(num_images)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DisbenchError(f"{path}: not a readable npz archive ({exc}); delete it and "
                            f"download again from {OFFICIAL.url}") from None
    with zf:
        members = {n.removesuffix(".npy") for n in zf.namelist()}
        missing = [k for k in KEYS if k not in members]
        if missing:
            raise DisbenchError(f"{path}: missing key(s) {', '.join(missing)}; expected "
                                f"{', '.join(KEYS)} (is this the dSprites npz?)")
        _check_latents(zf, path, num_images)
        with zf.open("imgs.npy") as f:
            _check_imgs_header(f, path, num_images)
        meta = _metadata_of(zf, path)
        with zf.open("imgs.npy") as f:
            _check_imgs_header(f, path, num_images)
            _copy_imgs(f, dest, path, num_images, progress)
    return meta


def _metadata_of(zf: zipfile.ZipFile, path: Path) -> dict:
    """The metadata without unpickling: the grid's for an object (pickled) member, the
    parsed JSON for a twin's string member."""
    shape, _, dtype = _member_header(zf, "metadata", path)
    if dtype.hasobject:
        if shape != ():
            raise DisbenchError(f"{path}: 'metadata' is an object array of shape {shape}, "
                                f"expected a scalar")
        return grid_metadata()
    return _metadata_dict(_read_member(zf, "metadata", path), path)


def _check_latents(zf: zipfile.ZipFile, path: Path, num_images: int) -> None:
    """The latents must be the official grid of classes and values, row-major."""
    for key in ("latents_classes", "latents_values"):
        shape, _, dtype = _member_header(zf, key, path)
        if dtype.hasobject or shape != (num_images, 6):
            raise DisbenchError(f"{path}: '{key}' has shape {shape} dtype {dtype}, expected "
                                f"({num_images}, 6) {'int64' if key[8] == 'c' else 'float64'}")
    classes = _read_member(zf, "latents_classes", path)
    values = _read_member(zf, "latents_values", path)
    exp_classes, exp_values = _latents(num_images)
    for key, arr, dtype in (("latents_classes", classes, "i"),
                            ("latents_values", values, "f")):
        if arr.shape != (num_images, 6) or arr.dtype.kind != dtype:
            raise DisbenchError(f"{path}: '{key}' has shape {arr.shape} dtype {arr.dtype}, "
                                f"expected ({num_images}, 6) {'int64' if dtype == 'i' else 'float64'}")
    if not np.array_equal(classes, exp_classes):
        raise DisbenchError(f"{path}: 'latents_classes' is not the row-major grid of sizes "
                            f"{ALL_SIZES} (posY fastest)")
    if not np.allclose(values, exp_values, rtol=0, atol=1e-6):
        raise DisbenchError(f"{path}: 'latents_values' differ from the official factor values")


def _check_imgs_header(f: Any, path: Path, num_images: int) -> None:
    """Read the ``.npy`` header of ``imgs`` from the open member ``f``; it must be
    (num_images, 64, 64) uint8 in C order."""
    shape, fortran, dtype = _read_header(f, path, "imgs")
    if shape != (num_images, 64, 64) or dtype != np.uint8 or fortran:
        raise DisbenchError(f"{path}: 'imgs' has shape {shape} dtype {dtype}, expected "
                            f"({num_images}, 64, 64) uint8")


def _copy_imgs(f: Any, dest: Path, path: Path, num_images: int, progress: bool) -> None:
    """Stream the 0/1 ``imgs`` rows from ``f`` into ``dest`` as 0/255 (N, 1, 64, 64),
    atomically, a chunk at a time (never all 3 GB in memory)."""
    from tqdm.auto import tqdm

    with atomic_path(dest) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                        shape=(num_images, 1, 64, 64))
        step = 16384
        with tqdm(total=num_images, desc=f"converting {path.name}", unit="img",
                  disable=not progress, leave=False) as bar:
            for s in range(0, num_images, step):
                m = min(step, num_images - s)
                buf = f.read(m * 4096)
                if len(buf) != m * 4096:
                    raise DisbenchError(f"{path}: 'imgs' is truncated")
                chunk = np.frombuffer(buf, np.uint8).reshape(m, 1, 64, 64)
                if chunk.max(initial=0) > 1:
                    raise DisbenchError(f"{path}: 'imgs' holds values other than 0/1")
                out[s:s + m] = chunk * np.uint8(255)
                bar.update(m)
        out.flush()
        del out


def _metadata_dict(meta: np.ndarray, path: Path) -> dict:
    obj = meta.item() if isinstance(meta, np.ndarray) and meta.shape == () else meta
    if isinstance(obj, str):
        try:
            obj = json.loads(obj)
        except json.JSONDecodeError:
            raise DisbenchError(f"{path}: 'metadata' is neither a dict nor JSON") from None
    if not isinstance(obj, dict):
        raise DisbenchError(f"{path}: 'metadata' is {type(obj).__name__}, expected a dict")
    obj = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    sizes = obj.get("latents_sizes")
    if sizes is not None and tuple(int(s) for s in np.asarray(sizes).ravel()) != ALL_SIZES:
        raise DisbenchError(f"{path}: metadata latents_sizes {list(sizes)} != {list(ALL_SIZES)}")
    return obj


# ---------------------------------------------------------------------------- dataset
@register("dsprites")
class DSprites(GridDataset):
    """dSprites: factors shape(3), scale(6), orientation(40), posX(32), posY(32)."""

    summary = "dSprites: 737,280 binary 64x64 2D shapes; 5 factors (Matthey et al. 2017)"
    homepage = "https://github.com/deepmind/dsprites-dataset"
    licence = "Apache License 2.0 (the repository's LICENSE)"
    citation = ("Loic Matthey, Irina Higgins, Demis Hassabis, Alexander Lerchner. dSprites: "
                "Disentanglement testing Sprites dataset. "
                "https://github.com/deepmind/dsprites-dataset/, 2017")
    files = (OFFICIAL,)
    splits: ClassVar[dict[str, tuple[str, ...]]] = {"train": (OFFICIAL.name,)}
    split_sizes: ClassVar[dict[str, int]] = {"train": NUM_IMAGES}
    factor_names = ("shape", "scale", "orientation", "posX", "posY")
    factor_sizes = (3, 6, 40, 32, 32)
    factor_values = (np.arange(1.0, 4.0), SCALES, ORIENTATIONS, POSITIONS, POSITIONS)
    image_shape = observation_shape = (1, 64, 64)
    binary = True
    twin_version = TWIN_VERSION
    twin_summary = (f"{TWIN_VERSION}: implicit-function renders of the three shapes, binary, "
                    f"deterministic; rendered on demand, 'prepare --source synthetic' "
                    f"caches the whole grid (~3 GB)")

    render_factors = staticmethod(render)

    @staticmethod
    def convert_official(paths: list[Path], dest: Path, *, progress: bool) -> dict:
        # never unpickles: the metadata is rebuilt from the grid (see convert_npz)
        return convert_npz(paths[0], dest, progress=progress)

    @staticmethod
    def write_twin(folder: Path, *, progress: bool) -> list[Path]:
        return [write_npz(folder / OFFICIAL.name, progress=progress)]
