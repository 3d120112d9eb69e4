"""Stochastic observation models of disentanglement_lib's dSprites variants, and their variates.

google-research/disentanglement_lib ``disentanglement_lib/data/ground_truth/dsprites.py``
draws the observation of a factor row in three ways (on the sprite ``s`` in {0, 1}, 64x64,
repeated to 3 channels):

``ColorDSprites``
    ``s * c`` with one colour ``c = random_state.uniform(0.5, 1, [n, 1, 1, 3])`` per image;
``NoisyDSprites``
    ``minimum(s + u, 1)`` with ``u = random_state.uniform(0, 1, [n, 64, 64, 3])`` per pixel
    and channel (so the sprite stays white and only the background is noise);
``ScreamDSprites``
    per image, in this order: ``x = randint(0, H - 64)``, ``y = randint(0, W - 64)``,
    ``c = uniform(0, 1, size=3)``; the background is ``(scream[x:x + 64, y:y + 64] + c) / 2``
    (``scream`` the thumbnail in [0, 1], H rows by W columns) and the sprite's pixels are
    inverted, ``1 - background``.

Each model here is a function of its variates (:func:`color`, :func:`noise`,
:func:`scream`); the variates come either from a random state, drawn in exactly the order
and shapes above (:func:`draw_color` & co.: a ``RandomState`` seeded like
disentanglement_lib's gives its stream), or from a counter-based hash of the image index
(:func:`hashed_uniform`: one fixed realisation per image, the same on every machine and in
every run). Observations are returned as uint8, ``rint(255 * x)``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def hashed_uniform(key: int, rows: Any, k: int) -> np.ndarray:
    """float64 (n, k) in [0, 1): a fixed function of (``key``, row index, column), 53 bits.

    Counter-based (splitmix64 of the counter ``row * k + column`` mixed with ``key``), so any
    subset of rows gives the same values as the whole, in any order.
    """
    rows = np.asarray(rows, dtype=np.int64).ravel().astype(np.uint64)
    with np.errstate(over="ignore"):
        ctr = rows[:, None] * np.uint64(k) + np.arange(k, dtype=np.uint64)[None, :]
    z = _splitmix64(ctr ^ _splitmix64(np.full(1, key, dtype=np.uint64)))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float images in [0, 1] (n, H, W, C) -> uint8 (n, C, H, W), ``rint(255 x)``."""
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8).transpose(0, 3, 1, 2)


def _sprites(base: np.ndarray) -> np.ndarray:
    """uint8 (n, 1, 64, 64) 0/255 -> float (n, 64, 64, 3) 0/1 (the sprite in 3 channels)."""
    s = (np.asarray(base)[:, 0] > 127).astype(np.float64)
    return np.repeat(s[..., None], 3, axis=3)


# ------------------------------------------------------------------------------ models
def color(base: np.ndarray, c: np.ndarray) -> np.ndarray:
    """ColorDSprites: sprite times its colour ``c`` (n, 3) in [0.5, 1]; uint8 (n, 3, 64, 64)."""
    return to_uint8(_sprites(base) * c[:, None, None, :])


def noise(base: np.ndarray, u: np.ndarray) -> np.ndarray:
    """NoisyDSprites: ``minimum(sprite + u, 1)``, ``u`` (n, 64, 64, 3) in [0, 1)."""
    return to_uint8(np.minimum(_sprites(base) + u, 1.0))


def scream(base: np.ndarray, image: np.ndarray, xs: np.ndarray, ys: np.ndarray,
           c: np.ndarray) -> np.ndarray:
    """ScreamDSprites: crops ``image[x:x + 64, y:y + 64]`` (float (H, W, 3) in [0, 1]) mixed
    with colours ``c`` (n, 3), the sprite's pixels inverted; uint8 (n, 3, 64, 64)."""
    s = _sprites(base)
    rows = xs[:, None] + np.arange(64)
    cols = ys[:, None] + np.arange(64)
    bg = (image[rows[:, :, None], cols[:, None, :]] + c[:, None, None, :]) / 2.0
    return to_uint8(np.where(s == 1, 1.0 - bg, bg))


# ---------------------------------------------------------------- variates from a state
def draw_color(rng: Any, n: int) -> np.ndarray:
    """``uniform(0.5, 1, [n, 1, 1, 3])`` as disentanglement_lib draws it, shaped (n, 3)."""
    return rng.uniform(0.5, 1, [n, 1, 1, 3]).reshape(n, 3)


def draw_noise(rng: Any, n: int) -> np.ndarray:
    """``uniform(0, 1, [n, 64, 64, 3])`` as disentanglement_lib draws it."""
    return rng.uniform(0, 1, [n, 64, 64, 3])


def draw_scream(rng: Any, n: int, height: int, width: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image: ``randint(0, H - 64)``, ``randint(0, W - 64)``, ``uniform(0, 1, size=3)``
    (disentanglement_lib's order); a ``Generator`` uses ``integers`` for ``randint``."""
    xs, ys, cs = np.empty(n, np.int64), np.empty(n, np.int64), np.empty((n, 3))
    draw = rng.integers if isinstance(rng, np.random.Generator) else rng.randint
    for i in range(n):
        xs[i] = draw(0, height - 64)
        ys[i] = draw(0, width - 64)
        cs[i] = rng.uniform(0, 1, size=3)
    return xs, ys, cs


# ------------------------------------------------------------ variates from the index
def fixed_color(key: int, rows: Any) -> np.ndarray:
    """One colour in [0.5, 1) per image index (a fixed realisation of :func:`draw_color`)."""
    return 0.5 + 0.5 * hashed_uniform(key, rows, 3)


def fixed_noise(key: int, rows: Any) -> np.ndarray:
    """Per-pixel noise in [0, 1) per image index, (n, 64, 64, 3)."""
    rows = np.asarray(rows, dtype=np.int64).ravel()
    return hashed_uniform(key, rows, 64 * 64 * 3).reshape(len(rows), 64, 64, 3)


def fixed_scream(key: int, rows: Any, height: int, width: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop offsets in [0, H - 64) x [0, W - 64) and a colour in [0, 1)^3 per image index."""
    u = hashed_uniform(key, rows, 5)
    xs = np.minimum((u[:, 0] * (height - 64)).astype(np.int64), height - 65)
    ys = np.minimum((u[:, 1] * (width - 64)).astype(np.int64), width - 65)
    return xs, ys, u[:, 2:]
