"""Procedural twins: the whole dSprites twin and the 3D Shapes twin's throughput.

Each figure is printed beside a straightforward counterpart run in the same process:

- dSprites: the vectorised renderer (one 32x32 window per sprite, thousands of sprites per
  numpy call) against a per-image Python loop evaluating the same shape test over the full
  64x64 canvas, timed on a sample and extrapolated to all 737,280 images. The two produce
  identical pixels on the sample (checked before timing counts).
- 3D Shapes: rendering random batches (grouped by the 480 geometries) against one
  image per call.
"""
from __future__ import annotations

import time

import numpy as np
from disbench.datasets import dsprites as dsp
from disbench.datasets import shapes3d as s3
from disbench.datasets.ground_truth import grid_factors


def _dsprites_one(f: np.ndarray) -> np.ndarray:
    """The straightforward renderer: one image, the same shape test on every pixel."""
    shape, sc, orient, kx, ky = (int(v) for v in f)
    scale = dsp.SCALES[sc]
    theta = np.array([[dsp.ORIENTATIONS[orient]]])
    j = np.arange(64)[None, :]
    dx = (62 * j - 961 - 64 * kx) / 62.0 / scale
    dy = -(62 * j - 961 - 64 * ky) / 62.0 / scale
    x, y = dsp._frame(shape, np.cos(theta), np.sin(theta), dx, dy)
    return dsp._inside(shape, x, y)[0]


def _time(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def run(quick: bool) -> list[dict]:
    rows = []
    grid = grid_factors(dsp.ALL_SIZES[1:])
    n = len(grid)
    rng = np.random.default_rng(0)
    sample = grid[rng.choice(n, 300 if quick else 2000, replace=False)]
    loop = [None]

    def baseline():
        loop[0] = np.stack([_dsprites_one(f) for f in sample])

    t_base = _time(baseline) * n / len(sample)
    if not np.array_equal(loop[0], dsp.render_masks(sample)):
        raise AssertionError("per-image and vectorised dSprites renderers disagree")
    part = grid[: n // 16] if quick else grid

    def vectorised():
        for s in range(0, len(part), 32768):
            dsp.render(part[s:s + 32768])

    t_vec = _time(vectorised) * n / len(part)
    rows.append({
        "name": "dsprites twin: all 737,280 images",
        "baseline": round(t_base, 1), "value": round(t_vec, 1), "unit": "s",
        "ratio": round(t_base / t_vec, 1),
        "note": f"baseline: per-image loop on {len(sample)} images, extrapolated"
                + ("; value extrapolated from 1/16 of the grid (--quick)" if quick else
                   "; value: whole grid, uint8 0/255, 1 process"),
    })

    t0 = time.perf_counter()
    s3._region_weights()
    t_maps = time.perf_counter() - t0
    full = grid_factors(s3.FACTOR_SIZES)
    batch = full[rng.choice(len(full), 2048 if quick else 16384, replace=False)]
    single = batch[: 100 if quick else 400]
    t_single = _time(lambda: [s3.render(f[None]) for f in single])
    t_batch = _time(lambda: [s3.render(batch[s:s + 4096]) for s in range(0, len(batch), 4096)])
    rate_single, rate_batch = len(single) / t_single, len(batch) / t_batch
    rows.append({
        "name": "shapes3d twin: random batches of 4096",
        "baseline": round(rate_single), "value": round(rate_batch), "unit": "img/s",
        "ratio": round(rate_batch / rate_single, 1),
        "note": f"baseline: one image per call; geometry maps built once in {t_maps:.1f} s; "
                f"whole grid ~{len(full) / rate_batch:.0f} s",
    })
    return rows
