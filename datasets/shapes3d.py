"""3D Shapes (Burgess & Kim 2018): 480,000 RGB 64x64 renders on a full grid of 6 factors.

Official file
    ``3dshapes.h5`` from the public Google Cloud Storage bucket ``3d-shapes``. DeepMind
    publishes no checksum; we pin the size (267,573,662 bytes) and the SHA-256 recorded by
    TensorFlow Datasets for this URL. Datasets ``images`` (480000, 64, 64, 3) uint8 and
    ``labels`` (480000, 6) float64 holding factor *values*: floor_hue, wall_hue, object_hue
    (10 each, 0.0..0.9), scale (8, linspace(0.75, 1.25)), shape (4: cube, cylinder, sphere,
    capsule; values 0..3), orientation (15, linspace(-30, 30) degrees); row-major,
    orientation fastest.

Random-access layout
    The h5 is gzip-compressed (slow per item), so it is converted once, in chunks with a
    progress bar, to an uncompressed ``.npy`` of shape (N, 3, 64, 64) (stored transposed,
    channels first) opened with ``mmap_mode="r"``; a JSON stamp names its source.

Twin (``source="synthetic"``)
    A fixed light-blue band at the top (sky), two back walls meeting in a corner, a floor,
    and a centred object (cube, cylinder, sphere or capsule) in saturated HSV hues
    (s = v = 1 before shading), with Lambert shading plus a specular highlight from a light
    fixed in the world, and an elliptical shadow on the floor. ``orientation`` turns the
    camera by -30..30 degrees: the wall corner slides sideways, the cube shows more of one
    side, and the light (fixed in the world) moves across every object. All 480,000
    combinations are reachable and deterministic (no seed is involved).

    The twin renders ON DEMAND: its ``images`` is a lazy :class:`RenderedImages` (integer,
    slice and integer-array indexing; ``np.asarray`` renders all 6 GB). Rendering is
    vectorised per batch: the 480 geometries (scale x shape x orientation) are drawn once
    into per-pixel region / shading / highlight maps, and a batch only gathers those maps
    and multiplies in the hues. ``prepare("synthetic")`` writes the whole twin in the
    official h5 container, loads it back through the same parser, and caches the layout.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import ClassVar

import numpy as np
from disbench.atomic import atomic_path
from disbench.datasets.download import OfficialFile
from disbench.datasets.grid import GridDataset
from disbench.datasets.ground_truth import grid_factors
from disbench.datasets.registry import register
from disbench.errors import DisbenchError

log = logging.getLogger(__name__)

OFFICIAL = OfficialFile(
    name="3dshapes.h5",
    url="https://storage.googleapis.com/3d-shapes/3dshapes.h5",
    sha256="0a0f6ed98baff276a50f3a081a7434d788da63cb135a98189b2a5b5769be1785",
    size=267_573_662,
)
TWIN_VERSION = "shapes3d1"

FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
FACTOR_SIZES = (10, 10, 10, 8, 4, 15)
NUM_IMAGES = int(np.prod(FACTOR_SIZES))
SHAPE_NAMES = ("cube", "cylinder", "sphere", "capsule")
HUES = np.linspace(0.0, 0.9, 10)
SCALES = np.linspace(0.75, 1.25, 8)
ORIENTATIONS = np.linspace(-30.0, 30.0, 15)
FACTOR_VALUES = (HUES, HUES, HUES, SCALES, np.arange(4.0), ORIENTATIONS)

_SKY_RGB = np.array([0.62, 0.82, 0.98], np.float32)
_SKY_ROWS = 6
_HORIZON = 33.0  # floor/wall line at the corner (rows, downwards)
_BASE = 52.0  # the object stands on this row
_SIZE = 17.0  # object height (px) at scale 1
_REGIONS = ("sky", "wall", "floor", "object")
_CHUNK = 4096


# ---------------------------------------------------------------------------- rendering
def hsv_to_rgb(h: np.ndarray) -> np.ndarray:
    """Fully saturated, full-value RGB (..., 3) of hues ``h`` in [0, 1)."""
    h = np.asarray(h, dtype=np.float64)[..., None]
    k = np.array([3.0, 2.0, 4.0])
    sign = np.array([1.0, -1.0, -1.0])
    off = np.array([-1.0, 2.0, 2.0])
    return np.clip(sign * np.abs(6.0 * h - k) + off, 0.0, 1.0)


def _normalise(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@functools.lru_cache(maxsize=1)
def geometry_maps() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-geometry maps for the 480 (scale, shape, orientation) cells, row-major.

    Returns ``region`` uint8 (480, 4096) with codes 0 sky, 1 wall, 2 floor, 3 object;
    ``value`` float32 (480, 4096), the shading multiplying the region's hue; ``spec``
    float32 (480, 4096), a white highlight added on top.
    """
    sc, sh, orr = (a.ravel() for a in np.indices((8, 4, 15)))
    g = len(sc)
    phi = np.deg2rad(ORIENTATIONS[orr])[:, None, None]
    size = (_SIZE * SCALES[sc])[:, None, None]
    shape = sh[:, None, None]
    y, x = np.indices((64, 64), dtype=np.float64)
    x = x[None] + 0.5
    y = y[None] + 0.5
    light, half = _light(phi)
    region, value = _background(phi, x, y, g)

    # object silhouettes and surface normals (camera coordinates)
    w = np.where(shape == 0, 0.78, np.where(shape == 1, 0.72, np.where(shape == 2, 1.0, 0.58)))
    w = w * size  # width
    dx = x - 32.0
    top = _BASE - size
    inside = np.zeros((g, 64, 64), bool)
    nx = np.zeros((g, 64, 64))
    ny = np.zeros((g, 64, 64))
    nz = np.ones((g, 64, 64))
    for mask, fx, fy, fz in (_cube(phi, w, dx, y, top, shape), _cylinder(w, dx, y, top, shape),
                             _sphere(w, dx, y, shape), _capsule(w, dx, y, top, shape)):
        nx = np.where(mask, fx, nx)
        ny = np.where(mask, fy, ny)
        nz = np.where(mask, fz, nz)
        inside |= mask
    n = np.stack([nx, ny, nz], -1)
    return _shade(n, inside, light, half, region, value, x, y, w, size, g)


def _light(phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The light direction and the Blinn half vector, per geometry (g, 1, 1, 3).

    The light is fixed in the world and seen from a camera turned by ``phi`` (camera
    coordinates: x right, y down, z towards the viewer).
    """
    world = _normalise(np.array([-0.55, -0.75, 0.65]))
    c, s = np.cos(phi), np.sin(phi)
    light = np.stack(np.broadcast_arrays(c * world[0] - s * world[2], world[1] + 0 * phi,
                                         s * world[0] + c * world[2]), axis=-1)
    return light, _normalise(light + np.array([0.0, 0.0, 1.0]))


def _background(phi: np.ndarray, x: np.ndarray, y: np.ndarray,
                g: int) -> tuple[np.ndarray, np.ndarray]:
    """Region codes (sky, wall, floor) and shading of the empty scene, (g, 64, 64): a sky
    band, two walls meeting in a corner that slides as the view turns, a floor."""
    corner = 32.0 - 60.0 * np.tan(phi)
    horizon = _HORIZON + 0.22 * np.abs(x - corner)
    region = np.where(y < _SKY_ROWS, 0, np.where(y < horizon, 1, 2)).astype(np.uint8)
    region = np.broadcast_to(region, (g, 64, 64)).copy()
    left = x < corner
    wall_v = np.where(left, 0.80 + 0.18 * np.sin(phi + 0.6), 0.80 - 0.18 * np.sin(phi + 0.6))
    wall_v = wall_v - 0.004 * (y - _SKY_ROWS)
    floor_v = 0.62 + 0.38 * np.clip((y - _HORIZON) / (64.0 - _HORIZON), 0.0, 1.0)
    value = np.where(region == 1, wall_v, floor_v)
    return region, np.where(region == 0, 1.0, value)


_Surface = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # mask, normal x, y, z


def _cube(phi: np.ndarray, w: np.ndarray, dx: np.ndarray, y: np.ndarray, top: np.ndarray,
          shape: np.ndarray) -> _Surface:
    """Cube (yaw = phi): front face and a side face, with a lighter top face."""
    a = phi + 0.25  # a quarter-radian yaw at orientation 0, so the cube never looks flat
    front_w = w * np.abs(np.cos(a))
    side_w = w * np.abs(np.sin(a))
    total = front_w + side_w
    xl = -total / 2
    depth = 0.28 * w
    t = np.clip((top - y) / np.maximum(depth, 1e-9), 0.0, 1.0)  # 0 at the top edge
    shift = np.where(np.sin(a) >= 0, 1.0, -1.0) * 0.5 * side_w * t
    in_body = (y >= top) & (y <= _BASE) & (dx >= xl) & (dx <= xl + total)
    in_top = (y < top) & (y >= top - depth) & (dx >= xl + shift) & (dx <= xl + total + shift)
    is_front = np.where(np.sin(a) >= 0, dx <= xl + front_w, dx >= xl + side_w)
    cube = (shape == 0) & (in_body | in_top)
    # face normals of the yawed cube: front (-sin a, 0, cos a); the visible side
    # sign(sin a) * (cos a, 0, sin a); top (0, -1, 0)
    sgn = np.where(np.sin(a) >= 0, 1.0, -1.0)
    fx = np.where(in_top, 0.0, np.where(is_front, -np.sin(a), sgn * np.cos(a)))
    fy = np.where(in_top, -1.0, 0.0)
    fz = np.where(in_top, 0.0, np.where(is_front, np.cos(a), sgn * np.sin(a)))
    return cube, fx, fy, fz


def _cylinder(w: np.ndarray, dx: np.ndarray, y: np.ndarray, top: np.ndarray,
              shape: np.ndarray) -> _Surface:
    """Cylinder: body with elliptical base and lighter elliptical top."""
    r = w / 2
    ry = 0.22 * r
    ex = dx / r
    cyl_body = (np.abs(ex) <= 1) & (y >= top) & (y <= _BASE)
    cyl_base = (ex * ex + ((y - _BASE) / ry) ** 2 <= 1)
    cyl_top = (ex * ex + ((y - top) / ry) ** 2 <= 1)
    cyl = (shape == 1) & (cyl_body | cyl_base | cyl_top)
    cx_ = np.clip(ex, -1, 1)
    return (cyl, np.where(cyl_top, 0.0, cx_), np.where(cyl_top, -1.0, 0.0),
            np.where(cyl_top, 0.0, np.sqrt(1 - cx_ * cx_)))


def _sphere(w: np.ndarray, dx: np.ndarray, y: np.ndarray, shape: np.ndarray) -> _Surface:
    """Sphere resting on the floor."""
    rad = w / 2
    sx, sy = dx / rad, (y - (_BASE - rad)) / rad
    d2 = sx * sx + sy * sy
    return (shape == 2) & (d2 <= 1), sx, sy, np.sqrt(np.clip(1 - d2, 0, 1))


def _capsule(w: np.ndarray, dx: np.ndarray, y: np.ndarray, top: np.ndarray,
             shape: np.ndarray) -> _Surface:
    """Capsule: upright, a vertical segment swept by a disc."""
    rad = w / 2
    cy = np.clip(y, top + rad, _BASE - rad)
    qx, qy = dx / rad, (y - cy) / rad
    q2 = qx * qx + qy * qy
    return (shape == 3) & (q2 <= 1), qx, qy, np.sqrt(np.clip(1 - q2, 0, 1))


def _shade(n: np.ndarray, inside: np.ndarray, light: np.ndarray, half: np.ndarray,
           region: np.ndarray, value: np.ndarray, x: np.ndarray, y: np.ndarray,
           w: np.ndarray, size: np.ndarray, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lambert shading and a specular highlight on the object, its shadow on the floor;
    the flattened (g, 4096) region, value and highlight maps."""
    lam = np.clip((n * light).sum(-1), 0, 1)
    hl = np.clip((n * half).sum(-1), 0, 1)
    obj_v = 0.32 + 0.68 * lam
    spec = np.where(inside, 0.45 * hl ** 24, 0.0)

    # shadow: an ellipse on the floor, cast away from the light
    lx = light[..., 0]
    shx = 32.0 - 0.9 * size * lx
    shadow = ((x - shx) / (0.75 * w + 2)) ** 2 + ((y - _BASE - 1.5) / (0.16 * size + 1)) ** 2 <= 1
    value = np.where(shadow & (region == 2), value * 0.55, value)

    region = np.where(inside, 3, region).astype(np.uint8)
    value = np.where(inside, obj_v, value)
    return (region.reshape(g, -1), value.reshape(g, -1).astype(np.float32),
            spec.reshape(g, -1).astype(np.float32))


@functools.lru_cache(maxsize=1)
def _region_weights() -> tuple[np.ndarray, np.ndarray]:
    """(480, 4, 4096) shading per region (zero outside it) and (480, 4096) highlight, both
    pre-multiplied by 255 (the highlight also carries the +0.5 of rounding)."""
    region, value, spec = geometry_maps()
    w = (region[:, None, :] == np.arange(4)[None, :, None]) * value[:, None, :]
    return (w * 255.0).astype(np.float32), (spec * 255.0 + 0.5).astype(np.float32)


def render(factors: np.ndarray) -> np.ndarray:
    """uint8 (n, 3, 64, 64) twin images for (n, 6) factor classes.

    Vectorised per geometry, not per image: the rows sharing one of the 480 (scale, shape,
    orientation) cells get their pixels from one small product, colours (k*3, 4) times
    region shading (4, 4096), each pixel lying in exactly one region.
    """
    factors = np.asarray(factors, dtype=np.int64)
    n = len(factors)
    weights, spec = _region_weights()
    hue_rgb = hsv_to_rgb(HUES).astype(np.float32)  # (10, 3)
    colours = np.empty((n, 3, 4), np.float32)  # per image and channel: sky, wall, floor, object
    colours[:, :, 0] = _SKY_RGB
    colours[:, :, 1] = hue_rgb[factors[:, 1]]
    colours[:, :, 2] = hue_rgb[factors[:, 0]]
    colours[:, :, 3] = hue_rgb[factors[:, 2]]
    geo = (factors[:, 3] * 4 + factors[:, 4]) * 15 + factors[:, 5]
    order = np.argsort(geo, kind="stable")
    bounds = np.flatnonzero(np.diff(geo[order])) + 1
    out = np.empty((n, 3, 4096), np.uint8)
    for rows in np.split(order, bounds) if n else ():
        g = geo[rows[0]]
        c = colours[rows].reshape(-1, 4, 1)  # (k * 3, 4, 1)
        w = weights[g]
        # four multiply-adds (no BLAS: tiny products, and threads fight on shared cores)
        px = c[:, 0] * w[0] + spec[g]
        for r in range(1, 4):
            px += c[:, r] * w[r]
        np.clip(px, 0.0, 255.0, out=px)
        out[rows] = px.astype(np.uint8).reshape(len(rows), 3, 4096)
    return out.reshape(n, 3, 64, 64)


# ---------------------------------------------------------------------------- container
def _labels(num_images: int) -> np.ndarray:
    classes = grid_factors(FACTOR_SIZES)[:num_images]
    return np.stack([FACTOR_VALUES[k][classes[:, k]] for k in range(6)], axis=1)


def write_h5(path: str | Path, *, num_images: int | None = None, progress: bool = True) -> Path:
    """Render the twin's first ``num_images`` grid rows into the official h5 container
    (gzip-compressed ``images`` (N, 64, 64, 3) uint8 and ``labels`` (N, 6) float64 values),
    atomically, chunk by chunk."""
    import h5py
    from tqdm.auto import tqdm

    path = Path(path)
    n = NUM_IMAGES if num_images is None else int(num_images)
    classes = grid_factors(FACTOR_SIZES)[:n]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        images = h5.create_dataset("images", (n, 64, 64, 3), dtype=np.uint8,
                                   chunks=(min(n, 256), 64, 64, 3), compression="gzip",
                                   compression_opts=1)
        h5.create_dataset("labels", data=_labels(n), dtype=np.float64)
        step = 8 * _CHUNK
        with tqdm(total=n, desc="shapes3d twin", unit="img", disable=not progress,
                  leave=False) as bar:
            for s in range(0, n, step):
                images[s:s + step] = render(classes[s:s + step]).transpose(0, 2, 3, 1)
                bar.update(min(step, n - s))
    return path


def convert_h5(path: str | Path, dest: str | Path, *, num_images: int | None = None,
               progress: bool = True) -> None:
    """Parse a 3D Shapes h5 and write its images as an uncompressed (N, 3, 64, 64) ``.npy``.

    ``num_images`` defaults to the full 480,000 (what the loaders use); a smaller value is a
    test hook for a prefix of the grid. Raises :class:`DisbenchError` naming the file on a
    missing dataset, a wrong shape/dtype or labels off the official grid.
    """
    import h5py
    from tqdm.auto import tqdm

    path, dest = Path(path), Path(dest)
    n = NUM_IMAGES if num_images is None else int(num_images)
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise DisbenchError(f"{path}: not a readable HDF5 file ({exc}); delete it and download "
                            f"again from {OFFICIAL.url}") from None
    with h5:
        missing = [k for k in ("images", "labels") if k not in h5]
        if missing:
            raise DisbenchError(f"{path}: missing dataset(s) {', '.join(missing)}; expected "
                                f"'images' and 'labels' (is this 3dshapes.h5?)")
        images, labels = h5["images"], h5["labels"]
        if images.shape != (n, 64, 64, 3) or images.dtype != np.uint8:
            raise DisbenchError(f"{path}: 'images' has shape {images.shape} dtype "
                                f"{images.dtype}, expected ({n}, 64, 64, 3) uint8")
        if labels.shape != (n, 6) or labels.dtype.kind != "f":
            raise DisbenchError(f"{path}: 'labels' has shape {labels.shape} dtype "
                                f"{labels.dtype}, expected ({n}, 6) float64")
        if not np.allclose(labels[()], _labels(n), rtol=0, atol=1e-4):
            raise DisbenchError(f"{path}: 'labels' are not the row-major grid of factor values "
                                f"{FACTOR_NAMES} (orientation fastest)")
        with atomic_path(dest) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, 3, 64, 64))
            step = 8192
            with tqdm(total=n, desc=f"converting {path.name}", unit="img",
                      disable=not progress, leave=False) as bar:
                for s in range(0, n, step):
                    try:
                        chunk = images[s:s + step]
                    except OSError as exc:
                        raise DisbenchError(f"{path}: cannot read images {s}.. ({exc}); the "
                                            f"file is damaged, download it again") from None
                    out[s:s + len(chunk)] = chunk.transpose(0, 3, 1, 2)
                    bar.update(len(chunk))
            out.flush()
            del out


# ---------------------------------------------------------------------------- dataset
@register("shapes3d")
class Shapes3D(GridDataset):
    """3D Shapes: floor_hue(10), wall_hue(10), object_hue(10), scale(8), shape(4),
    orientation(15)."""

    summary = "3D Shapes: 480,000 RGB 64x64 renders; 6 factors (Burgess & Kim 2018)"
    homepage = "https://github.com/deepmind/3d-shapes"
    licence = "Apache License 2.0 (the repository's LICENSE)"
    citation = ("Chris Burgess, Hyunjik Kim. 3D Shapes Dataset. "
                "https://github.com/deepmind/3dshapes-dataset/, 2018")
    files = (OFFICIAL,)
    splits: ClassVar[dict[str, tuple[str, ...]]] = {"train": (OFFICIAL.name,)}
    split_sizes: ClassVar[dict[str, int]] = {"train": NUM_IMAGES}
    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    factor_values = FACTOR_VALUES
    image_shape = observation_shape = (3, 64, 64)
    binary = False
    twin_version = TWIN_VERSION
    twin_summary = (f"{TWIN_VERSION}: a shaded room with a centred cube, cylinder, sphere or "
                    f"capsule in saturated hues, deterministic; rendered on demand, 'prepare "
                    f"--source synthetic' caches the whole grid (~6 GB)")

    render_factors = staticmethod(render)

    @staticmethod
    def convert_official(paths: list[Path], dest: Path, *, progress: bool) -> None:
        convert_h5(paths[0], dest, progress=progress)

    @staticmethod
    def write_twin(folder: Path, *, progress: bool) -> list[Path]:
        return [write_h5(folder / OFFICIAL.name, progress=progress)]
