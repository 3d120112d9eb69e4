"""FactorVAE disentanglement metric.

Kim & Mnih 2018, "Disentangling by Factorising" (ICML), Sec. 4 / Fig. 2, as implemented by
disentanglement_lib (Locatello et al. 2019, ``compute_factor_vae``) with its study settings:

1. global variances: Var (ddof 1) of each code over ``num_variance_estimate`` = 10,000 random
   observations; dimensions whose std is below ``prune_factor`` = 0.05 (an absolute threshold,
   ``prune_dims.threshold``) are pruned as collapsed;
2. a vote: pick a factor k uniformly, draw ``batch_size`` = 64 factor vectors with factor k fixed
   to the first one's value, encode them, take the per-dimension variance (ddof 1) divided by the
   global variance, and vote (k, argmin over active dimensions);
3. the majority-vote classifier maps each dimension to the factor it got most votes from;
   accuracy = correctly classified votes / all votes, on ``num_train`` = 10,000 training votes
   and ``num_eval`` = 5,000 fresh evaluation votes.

Returns ``{"train_accuracy", "eval_accuracy", "num_active_dims"}``; the score is
``eval_accuracy`` (higher is better). If no dimension is active all three are 0, as the
reference. ``num_active_dims`` here is the number of active dimensions (the reference reports
the length of its boolean mask, i.e. always D).

Implementation: all votes' factors are drawn in one go (factor indices first, then every batch's
factor vectors), then rendered and encoded in chunks of
:data:`disbench.metrics._sampling.CHUNK_IMAGES` images; no per-vote Python loop.
The representation function receives uint8 (n, C, H, W) observations (see ``_sampling``).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from disbench.errors import check_random_state, random_integers

from ._sampling import encode_factors, num_factors
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["factor_vae_score"]


def _check_positive(**kw: int) -> None:
    for name, v in kw.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: must be a positive integer, got {v!r}")


def _draw_fixed_factor_batches(
    dataset: Any, rng: Any, num_points: int, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(factor index (n,), factors (n, B, K)) with the chosen factor shared within each batch."""
    k = num_factors(dataset)
    index = random_integers(rng, k, num_points)
    factors = np.asarray(dataset.sample_factors(num_points * batch_size, rng), dtype=np.int64)
    factors = factors.reshape(num_points, batch_size, k).copy()
    rows = np.arange(num_points)
    factors[rows, :, index] = factors[rows, 0, index][:, None]
    return index, factors


def _votes(
    dataset: Any,
    representation_fn: Callable,
    rng: Any,
    batch_size: int,
    num_points: int,
    global_variances: np.ndarray,
    active: np.ndarray,
) -> np.ndarray:
    """(K, D) vote counts."""
    k = num_factors(dataset)
    index, factors = _draw_fixed_factor_batches(dataset, rng, num_points, batch_size)
    codes = encode_factors(dataset, representation_fn, factors.reshape(-1, k), rng)
    codes = codes.reshape(num_points, batch_size, -1)
    local = np.var(codes, axis=1, ddof=1)  # (n, D)
    active_idx = np.flatnonzero(active)
    ratio = local[:, active_idx] / global_variances[active_idx]
    dims = active_idx[np.argmin(ratio, axis=1)]
    votes = np.zeros((k, len(global_variances)), dtype=np.int64)
    np.add.at(votes, (index, dims), 1)
    return votes


def factor_vae_score(
    dataset: Any,
    representation_fn: Callable[[np.ndarray], Any],
    random_state: Any,
    *,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
    prune_factor: float = 0.05,
) -> dict[str, float]:
    """FactorVAE metric of a representation on a ground-truth dataset.

    Parameters
    ----------
    dataset
        Ground-truth dataset with ``factor_sizes``, ``sample_factors(n, rng)`` and
        ``sample_observations_from_factors(factors, rng)``.
    representation_fn : callable
        uint8 observations (n, C, H, W) -> codes (n, D) (numpy or torch).
    random_state : int, np.random.RandomState or np.random.Generator
        Explicit randomness (an int seeds a RandomState).
    batch_size, num_train, num_eval, num_variance_estimate, prune_factor
        Reference defaults 64, 10,000, 5,000, 10,000 and 0.05 (see module docstring).

    Returns
    -------
    dict with "train_accuracy", "eval_accuracy" (the score) and "num_active_dims".
    """
    _check_positive(
        batch_size=batch_size, num_train=num_train, num_eval=num_eval,
        num_variance_estimate=num_variance_estimate,
    )
    if batch_size < 2:
        raise ValueError("batch_size: needs at least 2 observations per vote (a variance)")
    if num_variance_estimate < 2:
        raise ValueError("num_variance_estimate: needs at least 2 observations (a variance)")
    rng = check_random_state(random_state)
    factors = np.asarray(dataset.sample_factors(num_variance_estimate, rng), dtype=np.int64)
    global_variances = np.var(encode_factors(dataset, representation_fn, factors, rng), axis=0, ddof=1)
    active = np.sqrt(global_variances) >= prune_factor
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    train_votes = _votes(dataset, representation_fn, rng, batch_size, num_train, global_variances, active)
    classifier = np.argmax(train_votes, axis=0)
    cols = np.arange(train_votes.shape[1])
    train_accuracy = train_votes[classifier, cols].sum() / train_votes.sum()
    eval_votes = _votes(dataset, representation_fn, rng, batch_size, num_eval, global_variances, active)
    eval_accuracy = eval_votes[classifier, cols].sum() / eval_votes.sum()
    return {
        "train_accuracy": float(train_accuracy),
        "eval_accuracy": float(eval_accuracy),
        "num_active_dims": int(active.sum()),
    }



@register_evaluator("factor_vae", needs=("factors", "encoder"), records=[
    Record("factor_vae_score", higher_is_better=True),
    Record("factor_vae_score_train", higher_is_better=True),
])
def _evaluate(ctx: EvalContext) -> list[dict]:
    """``factor_vae_score`` (eval votes) and ``factor_vae_score_train`` from stream "factor_vae"."""
    out = factor_vae_score(
        ctx.dataset, ctx.representation_fn, ctx.rng("factor_vae"), num_train=ctx.num_train,
        num_eval=ctx.num_test, num_variance_estimate=ctx.num_train,
    )
    spec = {"points": ctx.num_train, "test_points": ctx.num_test, "batch_size": 64,
            "prune_factor": 0.05, "num_active_dims": out["num_active_dims"],
            "estimator": "majority vote on argmin of normalised variance"}
    return [ctx.record("factor_vae_score", out["eval_accuracy"], version="1", **spec),
            ctx.record("factor_vae_score_train", out["train_accuracy"], version="1", **spec)]
