"""Vectorised drawing for the procedural twins: strokes, filled polygons, random warps.

Coordinates are in the unit square, x to the right and y down. A template is drawn once
per (class, style variant); samples are random affine warps of templates through
``torch.nn.functional.grid_sample`` in chunks, so no Python loop runs per sample.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pixel_centres(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) grids of pixel centres in unit coordinates, each (size, size)."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(c, c, indexing="ij")


def polyline_distance(points: np.ndarray, size: int) -> np.ndarray:
    """Distance (unit coordinates) from each pixel centre to a polyline.

    ``points`` is (P, 2) of (x, y); returns (size, size) float32.
    """
    pts = np.asarray(points, dtype=np.float32)
    a, b = pts[:-1], pts[1:]
    yy, xx = pixel_centres(size)
    p = np.stack([xx.ravel(), yy.ravel()], axis=1)[:, None, :]  # (HW, 1, 2)
    ab = (b - a)[None]
    ap = p - a[None]
    denom = np.maximum((ab * ab).sum(-1), 1e-12)
    t = np.clip((ap * ab).sum(-1) / denom, 0.0, 1.0)
    d = np.linalg.norm(ap - t[..., None] * ab, axis=-1).min(axis=1)
    return d.reshape(size, size)


def draw_strokes(strokes: Sequence[np.ndarray], size: int, width: float) -> np.ndarray:
    """Anti-aliased ink (0..1) of polylines of half-width ``width`` (unit coordinates)."""
    d = np.full((size, size), np.inf, dtype=np.float32)
    for s in strokes:
        d = np.minimum(d, polyline_distance(s, size))
    soft = 1.0 / size  # one pixel of ramp
    return np.clip((width - d) / soft + 0.5, 0.0, 1.0).astype(np.float32)


def fill_polygon(vertices: np.ndarray, size: int, supersample: int = 4) -> np.ndarray:
    """Coverage (0..1) of a polygon (even-odd rule), by supersampling each pixel."""
    v = np.asarray(vertices, dtype=np.float64)
    n = size * supersample
    yy, xx = pixel_centres(n)
    inside = np.zeros((n, n), dtype=bool)
    x0, y0 = v[:, 0], v[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    for i in range(len(v)):  # loop over edges, vectorised over pixels
        crosses = (y0[i] > yy) != (y1[i] > yy)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = x0[i] + (yy - y0[i]) * (x1[i] - x0[i]) / (y1[i] - y0[i])
        inside ^= crosses & (xx < xc)
    return inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3)).astype(
        np.float32)


def ellipse_points(cx: float, cy: float, rx: float, ry: float, start: float = 0.0,
                   end: float = 2 * np.pi, n: int = 24) -> np.ndarray:
    """Points of an elliptic arc (angles in radians, y down)."""
    t = np.linspace(start, end, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def random_affines(rng: np.random.Generator, n: int, *, rotation: float, scale: tuple[float, float],
                   shear: float, shift: float, aspect: float = 0.0) -> np.ndarray:
    """(n, 2, 3) float32 affine maps for ``affine_grid`` (output -> input coordinates).

    ``rotation`` (radians) and ``shear`` are half-ranges of uniform draws, ``scale`` a
    range, ``shift`` the half-range of the translation in normalised [-1, 1] units,
    ``aspect`` the half-range of a log aspect-ratio change.
    """
    ang = rng.uniform(-rotation, rotation, n)
    s = rng.uniform(scale[0], scale[1], n)
    asp = np.exp(rng.uniform(-aspect, aspect, n)) if aspect else np.ones(n)
    sh = rng.uniform(-shear, shear, n)
    t = rng.uniform(-shift, shift, (n, 2))
    c, si = np.cos(ang), np.sin(ang)
    # forward map: rotation @ shear @ scale; the grid needs its inverse.
    fwd = np.zeros((n, 2, 2))
    fwd[:, 0, 0] = s * asp * c
    fwd[:, 0, 1] = s / asp * (c * sh - si)
    fwd[:, 1, 0] = s * asp * si
    fwd[:, 1, 1] = s / asp * (si * sh + c)
    inv = np.linalg.inv(fwd)
    theta = np.concatenate([inv, -(inv @ t[..., None])], axis=2)
    return theta.astype(np.float32)


def warp_templates(templates: np.ndarray, index: np.ndarray, theta: np.ndarray, out_size: int,
                   chunk: int = 4096) -> np.ndarray:
    """Sample ``templates[index[i]]`` through affine ``theta[i]`` at ``out_size``.

    ``templates`` is (T, C, S, S) float32 in 0..1; returns (N, C, out, out) float32.
    Bilinear sampling; outside the template is 0.
    """
    import torch
    import torch.nn.functional as F

    tmpl = torch.from_numpy(np.ascontiguousarray(templates, dtype=np.float32))
    n, c = len(index), templates.shape[1]
    out = np.empty((n, c, out_size, out_size), dtype=np.float32)
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        th = torch.from_numpy(theta[lo:hi])
        grid = F.affine_grid(th, [hi - lo, c, out_size, out_size], align_corners=False)
        src = tmpl[torch.from_numpy(index[lo:hi].astype(np.int64))]
        out[lo:hi] = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros",
                                   align_corners=False).numpy()
    return out


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Float 0..1 -> uint8 0..255 (rounded, clipped)."""
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def draw_stroke_sets(stroke_sets: Sequence[Sequence[np.ndarray]], size: int,
                     widths: np.ndarray, chunk: int = 16) -> np.ndarray:
    """:func:`draw_strokes` for many glyphs at once (torch, chunked): (G, size, size).

    ``stroke_sets[g]`` is the list of polylines of glyph ``g``; ``widths[g]`` its half-width.
    """
    import torch

    segs = []
    for strokes in stroke_sets:
        s = [np.stack([p[:-1], p[1:]], axis=1) for p in strokes]  # (P-1, 2 ends, 2)
        segs.append(np.concatenate(s).astype(np.float32))
    smax = max(len(s) for s in segs)
    # pad with a far-away zero-length segment (never the nearest)
    padded = np.full((len(segs), smax, 2, 2), 1e3, dtype=np.float32)
    for g, s in enumerate(segs):
        padded[g, : len(s)] = s
    yy, xx = pixel_centres(size)
    p = torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], axis=1))[None, :, None, :]
    out = np.empty((len(segs), size, size), dtype=np.float32)
    w = torch.from_numpy(np.asarray(widths, dtype=np.float32))
    for lo in range(0, len(segs), chunk):
        seg = torch.from_numpy(padded[lo:lo + chunk])
        a, b = seg[:, None, :, 0, :], seg[:, None, :, 1, :]  # (g, 1, S, 2)
        ab = b - a
        ap = p - a
        t = ((ap * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)).clamp(0.0, 1.0)
        d = (ap - t[..., None] * ab).norm(dim=-1).amin(dim=2)  # (g, HW)
        ink = ((w[lo:lo + chunk, None] - d) * size + 0.5).clamp(0.0, 1.0)
        out[lo:lo + chunk] = ink.reshape(-1, size, size).numpy()
    return out
