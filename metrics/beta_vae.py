"""beta-VAE disentanglement metric.

Higgins et al. 2017, "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational
Framework" (ICLR), Sec. 3 / Eq. 3 and Appendix A.4, as implemented by disentanglement_lib
(Locatello et al. 2019, ``compute_beta_vae_sklearn``) with its study settings:

* a point: pick a factor k uniformly, draw ``batch_size`` = 64 pairs of factor vectors that share
  factor k (the second vector's k-th factor is copied from the first), encode both, and take the
  mean over the batch of |z1 - z2| per dimension (a D-vector) with label k;
* a ``LogisticRegression()`` (scikit-learn defaults) is fitted on ``num_train`` = 10,000 points;
  the score is its accuracy on ``num_eval`` = 5,000 fresh points.

Returns ``{"train_accuracy", "eval_accuracy"}``; the score is ``eval_accuracy`` (higher is
better). All points' factors are drawn in one go (labels, then the first and the second factor
vectors of every batch) and rendered/encoded in chunks; no per-point Python loop. The reference
seeds the logistic regression with the same RandomState; lbfgs (the default solver) does not
use it, so no seed is passed here.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from disbench.errors import check_random_state, random_integers

from ._sampling import encode_factors, num_factors
from .factor_vae import _check_positive
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["beta_vae_score"]


def _points(
    dataset: Any, representation_fn: Callable, rng: Any, batch_size: int, num_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """(features (n, D), labels (n,))."""
    k = num_factors(dataset)
    labels = random_integers(rng, k, num_points)
    total = num_points * batch_size
    f1 = np.asarray(dataset.sample_factors(total, rng), dtype=np.int64).reshape(num_points, batch_size, k)
    f2 = np.asarray(dataset.sample_factors(total, rng), dtype=np.int64).reshape(num_points, batch_size, k)
    rows = np.arange(num_points)
    f2[rows, :, labels] = f1[rows, :, labels]
    z1 = encode_factors(dataset, representation_fn, f1.reshape(-1, k), rng)
    z2 = encode_factors(dataset, representation_fn, f2.reshape(-1, k), rng)
    diff = np.abs(z1 - z2).reshape(num_points, batch_size, -1)
    return diff.mean(axis=1), labels


def beta_vae_score(
    dataset: Any,
    representation_fn: Callable[[np.ndarray], Any],
    random_state: Any,
    *,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
) -> dict[str, float]:
    """beta-VAE metric of a representation on a ground-truth dataset.

    Parameters
    ----------
    dataset
        Ground-truth dataset with ``factor_sizes``, ``sample_factors(n, rng)`` and
        ``sample_observations_from_factors(factors, rng)``.
    representation_fn : callable
        uint8 observations (n, C, H, W) -> codes (n, D) (numpy or torch).
    random_state : int, np.random.RandomState or np.random.Generator
        Explicit randomness (an int seeds a RandomState).
    batch_size, num_train, num_eval
        Reference defaults 64, 10,000 and 5,000.

    Returns
    -------
    dict with "train_accuracy" and "eval_accuracy" (the score).
    """
    _check_positive(batch_size=batch_size, num_train=num_train, num_eval=num_eval)
    rng = check_random_state(random_state)
    x_train, y_train = _points(dataset, representation_fn, rng, batch_size, num_train)
    if np.unique(y_train).size < 2:
        raise ValueError("num_train: too few points, the training labels cover a single factor")
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs max_iter chatter; defaults are the spec
        model = LogisticRegression().fit(x_train, y_train)
    train_accuracy = float(np.mean(model.predict(x_train) == y_train))
    x_eval, y_eval = _points(dataset, representation_fn, rng, batch_size, num_eval)
    eval_accuracy = float(np.mean(model.predict(x_eval) == y_eval))
    return {"train_accuracy": train_accuracy, "eval_accuracy": eval_accuracy}



@register_evaluator("beta_vae", needs=("factors", "encoder"), records=[
    Record("beta_vae_score", higher_is_better=True),
    Record("beta_vae_score_train", higher_is_better=True),
])
def _evaluate(ctx: EvalContext) -> list[dict]:
    """``beta_vae_score`` (eval points) and ``beta_vae_score_train`` from stream "beta_vae"."""
    out = beta_vae_score(
        ctx.dataset, ctx.representation_fn, ctx.rng("beta_vae"), num_train=ctx.num_train,
        num_eval=ctx.num_test,
    )
    spec = {"points": ctx.num_train, "test_points": ctx.num_test, "batch_size": 64,
            "estimator": "LogisticRegression() on mean |z1 - z2| of 64 pairs"}
    return [ctx.record("beta_vae_score", out["eval_accuracy"], version="1", **spec),
            ctx.record("beta_vae_score_train", out["train_accuracy"], version="1", **spec)]
