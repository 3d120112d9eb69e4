"""Pixel-level image helpers: uint8 conversion, padded grids, PNG and GIF files.

Pictures of models and data (traversals, reconstructions, samples, dataset sheets) are
written as exact pixels with Pillow rather than through matplotlib, so files stay small
and a 64 x 64 observation stays 64 x 64 (the site scales them up in the browser).

The grid layout follows disentanglement_lib's ``visualize/visualize_util.py``
(``padded_grid``, ``best_num_rows``, ``pad_around``: white padding between and around
the tiles, rows chosen so the grid is as square as the tile count allows).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from disbench.atomic import atomic_path

#: white padding between tiles, in pixels (disentanglement_lib's ``padding_px`` default)
PADDING = 10


def to_uint8(images: Any) -> np.ndarray:
    """``images`` as uint8: floats are taken to be in [0, 1]; torch tensors are moved to CPU."""
    if hasattr(images, "detach"):
        images = images.detach().float().cpu().numpy()
    a = np.asarray(images)
    if a.dtype == np.uint8:
        return a
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError("images contain NaN or inf")
    return np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)


def hwc(images: Any) -> np.ndarray:
    """(N, C, H, W) images (C = 1 or 3) as uint8 (N, H, W, 3)."""
    a = to_uint8(images)
    if a.ndim != 4 or a.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (N, C, H, W) with C 1 or 3, got {a.shape}")
    a = a.transpose(0, 2, 3, 1)
    return np.repeat(a, 3, axis=3) if a.shape[3] == 1 else a


def zoom(images: np.ndarray, factor: int) -> np.ndarray:
    """(N, H, W, 3) images with every pixel repeated ``factor`` times along H and W."""
    if factor == 1:
        return images
    return images.repeat(factor, axis=1).repeat(factor, axis=2)


def best_num_rows(n: int, max_ratio: int = 4) -> int:
    """Rows for ``n`` tiles: the divisor of ``n`` nearest below ``sqrt(n)``, else the count
    with the fewest empty cells (disentanglement_lib ``visualize_util.best_num_rows``)."""
    best_remainder, best_i = n, 1
    i = int(np.sqrt(n))
    while i >= 1:
        if n > max_ratio * i * i:
            return best_i
        remainder = (i - n % i) % i
        if remainder == 0:
            return i
        if remainder < best_remainder:
            best_remainder, best_i = remainder, i
        i -= 1
    return best_i


def padded_grid(tiles: np.ndarray, num_rows: int | None = None, pad: int = PADDING,
                border: int = 0) -> np.ndarray:
    """Tile (N, H, W, 3) uint8 tiles row by row into one image with white padding.

    ``num_rows`` defaults to :func:`best_num_rows`; empty cells stay white; ``border``
    adds white space around the whole grid.
    """
    n, h, w, c = tiles.shape
    rows = num_rows or best_num_rows(n)
    cols = -(-n // rows)
    out = np.full((rows * h + (rows - 1) * pad + 2 * border,
                   cols * w + (cols - 1) * pad + 2 * border, c), 255, np.uint8)
    for k in range(n):  # a few dozen tiles per picture: not a hot path
        r, q = divmod(k, cols)
        y, x = border + r * (h + pad), border + q * (w + pad)
        out[y:y + h, x:x + w] = tiles[k]
    return out


def quantize(image: np.ndarray, levels: int | None) -> np.ndarray:
    """Keep ``levels`` evenly spaced intensities per channel (None: all 256). The smooth
    greys of decoded images then compress two to three times better."""
    if levels is None:
        return np.asarray(image, dtype=np.uint8)
    step = 256 // levels
    return (np.asarray(image) // step * step + step // 2).astype(np.uint8)


def save_png(image: np.ndarray, path: str | os.PathLike, *, levels: int | None = None) -> Path:
    """Write an (H, W, 3) uint8 image as PNG (atomically; ``levels``: :func:`quantize`); grey
    images are stored as one channel, which keeps the file small."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        _pil(quantize(image, levels)).save(tmp, format="PNG", optimize=True)
    return path


def save_gif(frames: Sequence[np.ndarray] | np.ndarray, path: str | os.PathLike, *,
             duration_ms: int = 100, levels: int | None = None) -> Path:
    """Write (H, W, 3) uint8 frames as a looping GIF (atomically; ``levels``:
    :func:`quantize`); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [_pil(quantize(f, levels)) for f in frames]
    if not images:
        raise ValueError(f"{path}: no frames to write")
    if any(im.mode != "L" for im in images):
        images = [im.convert("RGB") for im in images]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=duration_ms, loop=0)
    return path


def _pil(image: np.ndarray) -> Any:
    from PIL import Image

    a = np.asarray(image, dtype=np.uint8)
    if a.ndim == 3 and a.shape[2] == 3 and np.array_equal(a[..., 0], a[..., 1]) \
            and np.array_equal(a[..., 0], a[..., 2]):
        a = a[..., 0]
    return Image.fromarray(a)


def label_strip(labels: Sequence[str], height: int, width: int, *, pad: int = PADDING,
                size: int = 12, align: str = "right") -> np.ndarray:
    """A white (H, width, 3) column of text labels, one per row of ``height`` pixels with
    ``pad`` pixels between rows: the left edge of a :func:`padded_grid` with one column."""
    from PIL import Image, ImageDraw, ImageFont

    n = len(labels)
    canvas = Image.new("RGB", (width, n * height + (n - 1) * pad), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=size)
    for i, text in enumerate(labels):
        y = i * (height + pad) + height // 2
        box = draw.textbbox((0, 0), text, font=font)
        x = width - (box[2] - box[0]) - 4 if align == "right" else 2
        draw.text((x, y), text, fill="black", font=font, anchor="lm")
    return np.asarray(canvas)


def text_line(text: str, width: int, *, size: int = 13) -> np.ndarray:
    """A white (size + 8, width, 3) strip holding ``text`` on the left (a caption)."""
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("RGB", (width, size + 8), "white")
    ImageDraw.Draw(canvas).text((2, 4), text, fill="black",
                                font=ImageFont.load_default(size=size))
    return np.asarray(canvas)


def hstack(parts: Sequence[np.ndarray], gap: int = 0) -> np.ndarray:
    """Place (H_i, W_i, 3) images side by side, top-aligned, on white."""
    h = max(p.shape[0] for p in parts)
    w = sum(p.shape[1] for p in parts) + gap * (len(parts) - 1)
    out = np.full((h, w, 3), 255, np.uint8)
    x = 0
    for p in parts:
        out[:p.shape[0], x:x + p.shape[1]] = p
        x += p.shape[1] + gap
    return out


def vstack(parts: Sequence[np.ndarray], gap: int = 0) -> np.ndarray:
    """Stack (H_i, W_i, 3) images top to bottom, left-aligned, on white."""
    w = max(p.shape[1] for p in parts)
    h = sum(p.shape[0] for p in parts) + gap * (len(parts) - 1)
    out = np.full((h, w, 3), 255, np.uint8)
    y = 0
    for p in parts:
        out[y:y + p.shape[0], :p.shape[1]] = p
        y += p.shape[0] + gap
    return out
