"""Animated GIFs of sprite sequences: real, reconstructed, swapped and generated.

Each GIF is a grid of sequences (one tile per sequence) animated over the T frames,
written with Pillow atomically (temp file + rename).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _to_uint8(frames: Any) -> np.ndarray:
    try:
        import torch

        if isinstance(frames, torch.Tensor):
            frames = frames.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    a = np.asarray(frames)
    if a.ndim != 5:
        raise ValueError(f"sequences must have shape (N, T, C, H, W), got {a.shape}")
    if a.dtype != np.uint8:
        if not np.all(np.isfinite(a)):
            raise ValueError("sequences contain NaN or inf")
        a = np.clip(np.rint(a.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    return a


def sequence_grid(sequences: Any, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile (N, T, C, H, W) sequences into frames (T, rows*(H+pad), cols*(W+pad), 3) uint8.

    Floats are taken to be in [0, 1]; one channel is repeated to RGB.
    """
    a = _to_uint8(sequences)
    n, t, c, h, w = a.shape
    if c not in (1, 3):
        raise ValueError(f"sequences must have 1 or 3 channels, got {c}")
    if c == 1:
        a = np.repeat(a, 3, axis=2)
    ncols = ncols or min(n, 8)
    nrows = -(-n // ncols)
    grid = np.zeros((t, nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), np.uint8)
    for k in range(n):  # n tiles, not samples on a hot path
        r, q = divmod(k, ncols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        grid[:, y:y + h, x:x + w] = a[k].transpose(0, 2, 3, 1)
    return grid


def save_sequence_gif(sequences: Any, path: str | Path, *, ncols: int | None = None,
                      duration_ms: int = 100, scale: int = 2) -> Path:
    """Write sequences (N, T, C, H, W) as one animated GIF grid; returns the path."""
    from disbench.report.images import save_gif

    grid = sequence_grid(sequences, ncols=ncols)
    if scale > 1:
        grid = grid.repeat(scale, axis=1).repeat(scale, axis=2)
    return save_gif(list(grid), path, duration_ms=duration_ms)


def write_model_gifs(model: Any, dataset: Any, out_dir: str | Path, *, n: int = 8,
                     seed: int = 0, device: Any = "cpu", scale: int = 2) -> dict[str, Path]:
    """``real.gif``, ``reconstructed.gif``, ``swapped.gif`` and ``generated.gif``.

    ``swapped``: the static code of sequence i decoded with the dynamics of sequence
    (i + 1) mod n, for the same n real sequences.
    """
    import torch

    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(dataset), size=min(n, len(dataset)), replace=False))
    x = torch.from_numpy(np.array(dataset.images[idx])).to(device).float() / 255
    out = Path(out_dir)
    model.eval()
    with torch.no_grad():
        gen = torch.Generator(device=device).manual_seed(seed)
        images = {
            "real": x,
            "reconstructed": model.reconstruct(x),
            "swapped": model.swap(x, torch.roll(x, -1, 0)),
            "generated": model.sample(len(idx), generator=gen),
        }
    return {k: save_sequence_gif(v, out / f"{k}.gif", scale=scale) for k, v in images.items()}
