"""disent's procedural grids ``xyobject`` and ``xysquares``: cheap, fully known ground truth.

Both are generators, not published files: the images are a function of the factors that
disent defines in code, reproduced here pixel for pixel with disent's default arguments.
There is nothing to download, so ``source="official"`` is refused (naming the twin) and
the twin *is* disent's generator, not a stand-in; ``source="auto"`` picks it. The
images render on demand (any rows, vectorised); ``prepare --source synthetic`` caches the
whole grid as a stamped ``.npy`` (:mod:`disbench.datasets.cache`).

``xyobject`` (nmichlo/disent ``disent/dataset/data/_groundtruth__xyobject.py``,
``XYObjectData`` with its defaults ``grid_size=64, grid_spacing=2, min_square_size=7,
max_square_size=15, square_size_spacing=2, rgb=True, palette="rainbow_4"``)
    factors x (25), y (25), scale (5: square sides 7, 9, 11, 13, 15), color (24): one
    filled square of side ``s`` at row ``2 y + r`` and column ``2 x + r`` with
    ``r = (15 - s) // 2`` (so squares of every side share a centre), on black. The 24
    colours are disent's ``_shades(4, [R, Y, G, C, B, M])``: for brightness level
    ``i = 1..4`` and each hue, ``hue * i // 4`` (hue-fastest order, 255 = full). disent
    notes that shade is deliberately left out as a factor.

``xysquares`` (same repository, ``_groundtruth__xysquares.py``, ``XYSquaresData`` with its
defaults ``square_size=8, image_size=64, grid_spacing=8, num_squares=3, rgb=True``)
    factors x_R, y_R, x_G, y_G, x_B, y_B (8 each; 262,144 images): three 8x8 squares, one
    per colour channel, at row ``8 y`` and column ``8 x`` (offset 0), value 255. The
    squares never overlap in the reconstruction loss space, which disent describes as
    adversarial to pixel-wise auto-encoders.

Factor order: disent's ``StateSpace.idx_to_pos`` is ``np.unravel_index`` over the factor
sizes (``disent/dataset/util/state_space.py``), the row-major order used here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from disbench.atomic import atomic_path
from disbench.datasets.cache import write_stamp
from disbench.datasets.grid import TWIN_LAYOUT, GridDataset
from disbench.datasets.registry import register
from disbench.errors import DisbenchError

_R, _G, _B, _Y, _C, _M = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0),
                          (0, 255, 255), (255, 0, 255))
#: disent's ``_shades(4, [R, Y, G, C, B, M])``: level-major, hue-fastest
XYOBJECT_COLORS = np.array([[c * i // 4 for c in hue] for i in range(1, 5)
                            for hue in (_R, _Y, _G, _C, _B, _M)], dtype=np.uint8)
XYOBJECT_SIDES = np.arange(7, 16, 2)
_CHUNK = 8192


def _square_masks(top: np.ndarray, left: np.ndarray, side: np.ndarray) -> np.ndarray:
    """bool (n, 64, 64): the squares ``[top, top + side) x [left, left + side)``."""
    t = np.arange(64)
    rows = (t >= top[:, None]) & (t < (top + side)[:, None])
    cols = (t >= left[:, None]) & (t < (left + side)[:, None])
    return rows[:, :, None] & cols[:, None, :]


def render_xyobject(factors: np.ndarray) -> np.ndarray:
    """uint8 (n, 3, 64, 64) for (n, 4) factor classes (x, y, scale, color)."""
    f = np.asarray(factors, dtype=np.int64)
    side = XYOBJECT_SIDES[f[:, 2]]
    r = (XYOBJECT_SIDES[-1] - side) // 2
    mask = _square_masks(2 * f[:, 1] + r, 2 * f[:, 0] + r, side)
    colors = XYOBJECT_COLORS[f[:, 3]]  # (n, 3)
    return (mask[:, None] * colors[:, :, None, None]).astype(np.uint8)


def render_xysquares(factors: np.ndarray) -> np.ndarray:
    """uint8 (n, 3, 64, 64) for (n, 6) factor classes (x_R, y_R, x_G, y_G, x_B, y_B)."""
    f = np.asarray(factors, dtype=np.int64)
    out = np.zeros((len(f), 3, 64, 64), dtype=np.uint8)
    side = np.full(len(f), 8)
    for c in range(3):
        out[:, c] = _square_masks(8 * f[:, 2 * c + 1], 8 * f[:, 2 * c], side) * np.uint8(255)
    return out


class ProceduralGrid(GridDataset):
    """A grid whose images are a generator's output: no files, the twin is the generator."""

    files = ()
    splits: ClassVar[dict[str, tuple[str, ...]]] = {"train": ()}
    options: ClassVar[dict[str, Any]] = {}

    @classmethod
    def official_available(cls, split: str | None = None) -> bool:
        cls.check_split(split)
        return False  # nothing is published: auto picks the generator (the twin)

    @classmethod
    def load_official(cls, split: str | None = None, **options: Any) -> GridDataset:
        del options
        cls.check_split(split)
        raise DisbenchError(f"{cls.name} is procedural ({cls.homepage}): it has no official "
                            f"files; use --source synthetic (what auto picks), which is the "
                            f"reference generator itself")

    @classmethod
    def _import_files(cls, src: Path) -> list[str]:
        raise DisbenchError(f"{cls.name} is procedural: there are no official files to import "
                            f"from {src}")

    @classmethod
    def _prepare_synthetic(cls, splits: list[str], *, progress: bool,
                           **options: Any) -> list[Path]:
        """Render the whole grid into the stamped random-access layout."""
        from tqdm.auto import tqdm

        cls.load_options("synthetic", options)
        del splits
        dest = cls.folder() / TWIN_LAYOUT
        n = cls.num_images()
        with atomic_path(dest) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                            shape=(n, *cls.image_shape))
            for s in tqdm(range(0, n, _CHUNK), desc=f"{cls.name} grid", disable=not progress,
                          leave=False):
                out[s:s + _CHUNK] = cls._render_indices(np.arange(s, min(s + _CHUNK, n)))
            out.flush()
            del out
        write_stamp(dest, cls.twin_version, file="rendered by disbench")
        return [dest]


_DISENT = "https://github.com/nmichlo/disent"
_DISENT_CITATION = ("Nathan Juraj Michlo. Disent - A modular disentangled representation "
                    "learning framework for pytorch. https://github.com/nmichlo/disent, 2021")


@register("xyobject")
class XYObject(ProceduralGrid):
    """disent's XYObject: one coloured square; x(25), y(25), scale(5), color(24)."""

    summary = ("disent's XYObject: a coloured square on black, 75,000 RGB 64x64; 4 factors "
               "(procedural)")
    homepage = _DISENT
    licence = "MIT (disent's LICENSE.txt; the generator, reproduced here)"
    citation = _DISENT_CITATION
    split_sizes: ClassVar[dict[str, int]] = {"train": 25 * 25 * 5 * 24}
    factor_names = ("x", "y", "scale", "color")
    factor_sizes = (25, 25, 5, 24)
    image_shape = observation_shape = (3, 64, 64)
    binary = False
    twin_version = "xyobject1"
    twin_summary = ("xyobject1: disent's XYObjectData generator with its defaults, "
                    "reproduced exactly; rendered on demand, 'prepare --source synthetic' "
                    "caches the grid (~0.9 GB)")
    render_factors = staticmethod(render_xyobject)


@register("xysquares")
class XYSquares(ProceduralGrid):
    """disent's XYSquares: three 8x8 squares (R, G, B) on an 8x8 grid each."""

    summary = ("disent's XYSquares: three non-overlapping RGB squares, 262,144 RGB 64x64; "
               "6 factors (procedural)")
    homepage = _DISENT
    licence = "MIT (disent's LICENSE.txt; the generator, reproduced here)"
    citation = _DISENT_CITATION
    split_sizes: ClassVar[dict[str, int]] = {"train": 8 ** 6}
    factor_names = ("x_R", "y_R", "x_G", "y_G", "x_B", "y_B")
    factor_sizes = (8, 8, 8, 8, 8, 8)
    image_shape = observation_shape = (3, 64, 64)
    binary = True
    twin_version = "xysquares1"
    twin_summary = ("xysquares1: disent's XYSquaresData generator with its defaults, "
                    "reproduced exactly; rendered on demand, 'prepare --source synthetic' "
                    "caches the grid (~3.2 GB)")
    render_factors = staticmethod(render_xysquares)
