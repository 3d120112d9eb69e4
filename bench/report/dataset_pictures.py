"""Pictures of a dataset (``disbench datasets show NAME --out FILE``): random samples and one
row per factor that varies that factor with the others fixed, so the official data and its
procedural twin can be compared by eye.

- ground-truth grids (dSprites, 3D Shapes, ...): a base factor combination is drawn; row
  ``k`` shows the observations of that combination with factor ``k`` set to (up to
  :data:`MAX_VALUES`) evenly spaced classes;
- sequence data (Sprites): the same, choosing for each value the sequence whose factors
  agree with the base sequence on the most other factors (the data is not a full grid);
  frames are animated in the GIF;
- labelled sets (MNIST, ...): one row per class (up to :data:`MAX_VALUES`) with examples.

PNG: the samples and the rows as one sheet. GIF: ground-truth and labelled data animate
each row in one tile (a factor running through its values, or a class through its
examples); sequence data play the sheet's videos.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from disbench.errors import check_random_state
from disbench.report import images as im

MAX_VALUES = 10
LABEL_WIDTH = 130


@dataclass
class Sheet:
    """What a dataset picture shows: ``samples`` (N, [T,] H, W, 3) and ``rows`` of
    ``(label, tiles (n_k, [T,] H, W, 3))``; ``sequence`` when tiles carry a time axis."""

    title: str
    samples: np.ndarray
    rows: list[tuple[str, np.ndarray]]
    row_note: str
    sequence: bool = False


def _hwc(images: Any) -> np.ndarray:
    """(N, C, H, W) or (N, T, C, H, W) uint8 as (N, [T,] H, W, 3)."""
    a = np.asarray(images)
    if a.ndim == 5:
        n, t = a.shape[:2]
        return im.hwc(a.reshape(n * t, *a.shape[2:])).reshape(n, t, a.shape[3], a.shape[4], 3)
    return im.hwc(a)


def _take(dataset: Any, idx: np.ndarray) -> np.ndarray:
    """``dataset.images`` at ``idx`` (in the given order; fetched in sorted order)."""
    idx = np.asarray(idx, dtype=np.int64)
    order = np.argsort(idx, kind="stable")
    got = np.asarray(dataset.images[idx[order]])
    out = np.empty_like(got)
    out[order] = got
    return out


def _values(size: int, limit: int) -> np.ndarray:
    return np.unique(np.round(np.linspace(0, size - 1, min(size, limit))).astype(np.int64))


def ground_truth_sheet(dataset: Any, title: str, *, n_samples: int, rng: Any) -> Sheet:
    """Samples and factor rows of a full factor grid."""
    factors = dataset.sample_factors(n_samples, rng)
    samples = _hwc(dataset.sample_observations_from_factors(factors, rng))
    base = dataset.sample_factors(1, rng)[0]
    rows = []
    for k, (name, size) in enumerate(zip(dataset.factor_names, dataset.factor_sizes,
                                         strict=True)):
        values = _values(int(size), MAX_VALUES)
        fac = np.repeat(base[None, :], len(values), axis=0)
        fac[:, k] = values
        rows.append((f"{name} ({size})", _hwc(dataset.sample_observations_from_factors(fac,
                                                                                    rng))))
    return Sheet(title, samples, rows, "one factor varied per row (evenly spaced classes, "
                 f"at most {MAX_VALUES}), the others fixed")


def sequence_sheet(dataset: Any, title: str, *, n_samples: int, rng: Any) -> Sheet:
    """Samples and factor rows of sequence data (nearest match per value)."""
    from disbench.errors import random_integers

    n = len(dataset)
    samples = _hwc(_take(dataset, random_integers(rng, n, n_samples)))
    factors = np.asarray(dataset.factors)
    base = factors[int(random_integers(rng, n, 1)[0])]
    rows = []
    for k, (name, size) in enumerate(zip(dataset.factor_names, dataset.factor_sizes,
                                         strict=True)):
        picks = []
        for v in _values(int(size), MAX_VALUES):
            agree = (factors == base).sum(axis=1) - (factors[:, k] == base[k])
            agree = np.where(factors[:, k] == v, agree, -1)
            if agree.max() >= 0:
                picks.append(int(np.argmax(agree)))
        rows.append((f"{name} ({size})", _hwc(_take(dataset, np.array(picks)))))
    return Sheet(title, samples, rows, "one factor varied per row, the other factors as "
                 "close to the first sequence's as the data has", sequence=True)


def labelled_sheet(dataset: Any, title: str, *, n_samples: int, rng: Any) -> Sheet:
    """Samples and a row of examples per class (the first classes)."""
    from disbench.errors import random_integers

    labels = np.asarray(dataset.labels)
    samples = _hwc(_take(dataset, random_integers(rng, len(labels), n_samples)))
    names = list(getattr(dataset, "class_names", None) or range(int(dataset.num_classes)))
    rows = []
    for c in range(min(int(dataset.num_classes), MAX_VALUES)):
        idx = np.flatnonzero(labels == c)
        if len(idx):
            pick = rng.choice(idx, size=min(MAX_VALUES, len(idx)), replace=False)
            rows.append((str(names[c])[:18], _hwc(_take(dataset, pick))))
    return Sheet(title, samples, rows, f"examples of the first {len(rows)} classes, one "
                 "class per row")


def make_sheet(dataset: Any, kind: str, title: str, *, n_samples: int = 16,
               seed: int = 0) -> Sheet:
    """The :class:`Sheet` of ``dataset`` (of registry ``kind``) drawn with ``seed``."""
    rng = check_random_state(seed)
    make = {"ground_truth": ground_truth_sheet, "sequence": sequence_sheet,
            "labelled": labelled_sheet}[kind]
    return make(dataset, title, n_samples=n_samples, rng=rng)


# --------------------------------------------------------------------------- drawing
def sheet_image(sheet: Sheet, frame: int = 0) -> np.ndarray:
    """The sheet as one (H, W, 3) uint8 image (frame ``frame`` of sequences)."""
    pick = (lambda a: a[:, frame]) if sheet.sequence else (lambda a: a)
    samples = pick(sheet.samples)
    cols = min(8, len(samples))
    grid = im.padded_grid(samples, num_rows=-(-len(samples) // cols), pad=2)
    h = sheet.samples.shape[-3]
    rows = [im.padded_grid(pick(tiles), num_rows=1, pad=2) for _, tiles in sheet.rows]
    strip = im.label_strip([label for label, _ in sheet.rows], h, LABEL_WIDTH, pad=2)
    body = im.hstack([strip, im.vstack(rows, gap=2)], gap=6)
    width = max(grid.shape[1], body.shape[1])
    parts = [im.text_line(sheet.title, width, size=14), grid,
             im.text_line(sheet.row_note, width, size=12), body]
    return im.vstack(parts, gap=6)


def animated_frames(sheet: Sheet) -> list[np.ndarray]:
    """GIF frames: sequences play the sheet over time; other data animate each row in one
    tile (labelled beneath), a frame per step through the longest row."""
    if sheet.sequence:
        return [sheet_image(sheet, t) for t in range(sheet.samples.shape[1])]
    steps = max(len(t) for _, t in sheet.rows)
    w = sheet.rows[0][1].shape[2]
    frames = []
    for f in range(steps):
        tiles = [im.vstack([tiles[f * len(tiles) // steps],
                            im.text_line(label.split(" (")[0], max(w, 80), size=11)], gap=2)
                 for label, tiles in sheet.rows]
        row = im.hstack(tiles, gap=8)
        frames.append(im.vstack([im.text_line(sheet.title, row.shape[1], size=12), row],
                                gap=4))
    return frames


def write_dataset_picture(dataset: Any, kind: str, path: str | os.PathLike, *, title: str,
                          n_samples: int = 16, seed: int = 0) -> Path:
    """Write the picture of ``dataset`` as PNG or GIF (from the suffix of ``path``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".gif"):
        raise ValueError(f"--out {path}: the picture is written as .png or .gif")
    sheet = make_sheet(dataset, kind, title, n_samples=n_samples, seed=seed)
    if suffix == ".png":
        return im.save_png(sheet_image(sheet), path)
    return im.save_gif(animated_frames(sheet), path, duration_ms=150)
