"""Shared pieces of the sampler-layer metrics: named random streams and chunked encoding.

Random states are converted by :func:`disbench.errors.check_random_state` (an int seeds a
``RandomState``) and integers drawn by :func:`disbench.errors.random_integers`.

A *representation function* takes uint8 observations (n, C, H, W) in 0..255, exactly as a
ground-truth dataset's ``sample_observations_from_factors`` returns them, and returns codes
(n, D) as a numpy array or torch tensor. :func:`disbench.metrics.evaluate` builds one from a
model (float / 255, ``model.encode`` in batches under ``torch.no_grad`` on the model's device).
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ._validate import to_numpy

#: Images rendered and encoded per call of the representation function. It bounds memory
#: only: all factors are drawn before rendering, so results do not depend on it.
CHUNK_IMAGES = 4096


def stream(seed: int, name: str) -> np.random.RandomState:
    """An independent, reproducible RandomState for the named use of ``seed``."""
    key = zlib.crc32(name.encode("utf-8"))
    state = np.random.SeedSequence([int(seed), key]).generate_state(1)[0]
    return np.random.RandomState(int(state))


def num_factors(dataset: Any) -> int:
    """Number of ground-truth factors of a dataset (``num_factors`` or ``len(factor_sizes)``)."""
    k = getattr(dataset, "num_factors", None)
    if k is None:
        sizes = getattr(dataset, "factor_sizes", None)
        if sizes is None:
            raise ValueError(
                "dataset: not a ground-truth dataset (needs factor_sizes, sample_factors and "
                "sample_observations_from_factors)"
            )
        k = len(sizes)
    return int(k)


def encode_factors(
    dataset: Any,
    representation_fn: Callable[[np.ndarray], Any],
    factors: np.ndarray,
    rng: Any,
    *,
    chunk: int = CHUNK_IMAGES,
) -> np.ndarray:
    """Render ``factors`` (n, K) in chunks, encode them, return float64 codes (n, D)."""
    out = []
    for start in range(0, len(factors), chunk):
        obs = dataset.sample_observations_from_factors(factors[start : start + chunk], rng)
        codes = to_numpy(representation_fn(obs), "representation_fn output")
        if codes.ndim != 2 or codes.shape[0] != len(obs):
            raise ValueError(
                f"representation_fn: must return (n, D) codes for n observations; got shape "
                f"{codes.shape} for {len(obs)} observations"
            )
        out.append(codes.astype(np.float64, copy=False))
    result = np.concatenate(out, axis=0)
    if not np.all(np.isfinite(result)):
        raise ValueError("representation_fn: returned NaN or inf codes")
    return result
