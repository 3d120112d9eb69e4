"""Pairs of factor rows that differ in exactly the factors they say: weak supervision.

Locatello et al. 2020 ("Weakly-Supervised Disentanglement Without Compromises", ICML) train
on pairs of observations that share all but k factors of variation.
:func:`sample_pair_factors` draws such pairs from a factor grid: the first row uniformly
(as :meth:`~disbench.datasets.ground_truth.GroundTruthDataset.sample_factors`, one column
at a time), then a set of factors to change, then for each changed factor a new value drawn
uniformly from the *other* values of that factor. So the pair differs in exactly the factors
of the returned ``changed`` mask, and every draw comes from the ``random_state`` passed in.

``k`` says how many factors change:

- an int: exactly ``k`` factors in every pair;
- ``"random"``: per pair, k drawn uniformly from 1 .. K' - 1 (K' the number of factors
  with more than one value), the range of disentanglement_lib's ``k = -1``;
- ``"one_or_random"``: per pair, k' drawn as for ``"random"``, then 1 or k' with
  probability 1/2 each: what disentanglement_lib's ``simple_dynamics`` does for any k.

Reference: google-research/disentanglement_lib, ``disentanglement_lib/methods/weak/
train_weak_lib.py``, ``simple_dynamics`` (read here). There, ``k == -1`` draws
``k_observed = random_state.randint(1, num_factors)``; the number of factors changed is
``random_state.choice([1, k_observed])``, so 1 or k (also for a fixed k > 1); the factors
are drawn without replacement; but the new values come from ``np.random.choice`` (the global,
unseeded NumPy generator, not ``random_state``), so the pairs are not reproducible from
the seed, and a new value may equal the old one, so a "changed" factor can be unchanged.
Here every draw is from ``random_state`` and a changed factor always takes another value.
The label disentanglement_lib's ``labels`` variants receive is the index of the last
factor changed; here the whole ``changed`` mask is returned.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from disbench.errors import check_random_state, random_integers

#: the per-pair modes of ``k`` besides a fixed number
K_MODES = ("random", "one_or_random")


def check_k(k: Any, factor_sizes: Sequence[int] | None = None) -> str | None:
    """The problem with ``k`` (None when valid; with ``factor_sizes`` also its range)."""
    if isinstance(k, str):
        return None if k in K_MODES else (
            f"must be a positive integer or one of {', '.join(K_MODES)}, got {k!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        return f"must be a positive integer or one of {', '.join(K_MODES)}, got {k!r}"
    if factor_sizes is not None:
        free = sum(int(s) > 1 for s in factor_sizes)
        if k > free:
            return f"must be at most {free} (the factors with more than one value), got {k}"
    return None


def sample_pair_factors(factor_sizes: Sequence[int], n: int, k: Any,
                        random_state: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` pairs of factor rows differing in exactly the factors of ``changed``.

    Parameters
    ----------
    factor_sizes : sequence of int
        Number of values of each of the K factors.
    n : int
        Number of pairs.
    k : int or {"random", "one_or_random"}
        How many factors change (see the module docstring).
    random_state : int, numpy.random.RandomState or numpy.random.Generator
        The source of every draw (:func:`disbench.errors.check_random_state`).

    Returns
    -------
    first, second : int64 (n, K)
    changed : bool (n, K)
        ``first != second`` exactly where ``changed``; each row has k True entries.
    """
    sizes = np.asarray(factor_sizes, dtype=np.int64)
    problem = check_k(k, sizes)
    if problem:
        raise ValueError(f"k {problem}")
    rng = check_random_state(random_state, "random_state")
    num = sizes.size
    first = np.stack([random_integers(rng, s, n) for s in sizes], axis=1).reshape(n, num)
    free = sizes > 1
    count = _counts(int(free.sum()), n, k, rng)
    # a random order of the changeable factors per row (unchangeable ones last): the first
    # ``count`` of them change; the column index breaks ties, so the order is a permutation
    keys = random_integers(rng, 2**31, (n, num)) * num + np.arange(num)
    keys = np.where(free, keys, np.iinfo(np.int64).max)
    rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
    changed = rank < count[:, None]
    # another value of the factor: old + 1 + U{0 .. size - 2}, modulo the size
    offsets = np.stack([random_integers(rng, max(int(s) - 1, 1), n) for s in sizes],
                       axis=1).reshape(n, num)
    second = np.where(changed, (first + 1 + offsets) % sizes, first)
    return first, second, changed


def _counts(free: int, n: int, k: Any, rng: Any) -> np.ndarray:
    """How many factors change in each of ``n`` pairs."""
    if not isinstance(k, str):
        return np.full(n, int(k), dtype=np.int64)
    top = max(free - 1, 1)  # k in 1 .. K' - 1 (1 when only one factor can change)
    drawn = random_integers(rng, top, n) + 1
    if k == "random":
        return drawn
    coin = random_integers(rng, 2, n)  # simple_dynamics: choice([1, k]), index 0 is 1
    return np.where(coin == 0, 1, drawn)


__all__ = ["K_MODES", "check_k", "sample_pair_factors"]
