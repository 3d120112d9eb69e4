"""Z-max Variance: a FactorVAE-style vote on the code that varies *most* with one free factor.

Kim, Wang, Sahu & Pavlovic 2019, "Relevance Factor VAE: Learning and Identifying Disentangled
Factors" (arXiv:1902.01568), as implemented by ubisoft/ubisoft-laforge-disentanglement-metrics
``src/metrics/z_max_var.py`` with the settings of ``src/experiments/config.py``
(``continuous_factors=True``, ``nb_bins=10``, ``batch_size=200``, ``nb_training=800``,
``nb_eval=800``, ``nb_variance_estimate=10000``, ``std_threshold=0.02`` (the function's own
default is 0.05), ``scale=True``), on a fixed set of (codes, factors):

* factors are min-max scaled and binned into ``num_bins`` bins as in
  :func:`disbench.metrics.mig_variants.minmax_bin` (if ``continuous_factors``);
* global variances (ddof 1) of the codes over ``num_variance_estimate`` rows taken in random
  order; codes with std < ``std_threshold`` are inactive;
* each of ``num_train`` + ``num_eval`` votes picks a factor k uniformly; a batch of
  ``batch_size`` rows is taken whose *other* factors all equal one combination chosen uniformly
  among the combinations present at least twice (rows of that combination shuffled and reused
  in further shuffled passes when there are fewer than needed); the vote is
  ``argmax over active codes of Var_batch(code) / Var_global(code)`` for factor k;
* each code is mapped to the factor it got most training votes for; the score is the fraction of
  evaluation votes that agree, scaled by ``(acc - 1/K) / (1 - 1/K)`` (``scale=True``).

Quirks, stated: the vote is the code's position *among the active codes* (the reference indexes
its vote table with it), which relabels codes consistently and so leaves the score unchanged;
if for some factor no combination of the other factors occurs twice (binning too fine) the
reference returns NaN, and so does this function. The reference draws from NumPy's global
generator and Python's ``random`` (the latter unseeded in its experiments); here everything
comes from ``random_state``, so numbers agree with the reference in distribution, not draw for
draw. Votes are drawn in a different order than the reference's (grouped by factor and
combination), which changes no distribution.

Evaluator ``z_max_var`` (record ``z_max_var``, higher is better): the function with
``config.py``'s settings on the ``num_train`` train points (10,000 by default, so
``num_variance_estimate=10000`` uses them all), every draw from the evaluation seed's stream
``"z_max_var"``; a NaN (no repeated combination, see above) is recorded as NaN, and so is a
representation with no active code (the function raises :class:`CollapsedCodes` there, a
``ValueError``, as the reference fails). Tolerance 0.05:
the score is a fraction of 800 evaluation votes, rescaled by K / (K - 1).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._validate import check_codes, check_factors, check_num_bins, check_same_n
from .mig_variants import minmax_bin
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["CollapsedCodes", "z_max_var"]


class CollapsedCodes(ValueError):
    """No code has std >= ``std_threshold``: the score is undefined (the reference fails on
    ``np.argmax`` of an empty array)."""


def _check_counts(**kw: Any) -> None:
    for name, v in kw.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: must be a positive integer, got {v!r}")


def _active_codes(variances: np.ndarray, std_threshold: float) -> np.ndarray:
    """The codes with std >= ``std_threshold`` (:class:`CollapsedCodes` if there is none)."""
    active = np.sqrt(variances) >= std_threshold
    if not active.any():
        raise CollapsedCodes(f"codes: no code has std >= std_threshold={std_threshold}; all "
                             "collapsed")
    return active


def _factor_votes(codes, factors, k, n_train, n_eval, batch_size, ratio_scale, active, rng):
    """(train votes, eval votes): arrays of active-code positions for factor k, or None."""
    others = np.delete(factors, k, axis=1)
    _, inverse, counts = np.unique(others, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    usable = np.flatnonzero(counts > 1)
    if len(usable) == 0:
        return None
    chosen = usable[rng.randint(len(usable), size=n_train + n_eval)]
    is_train = np.arange(n_train + n_eval) < n_train
    votes_train, votes_eval = [], []
    for combo in np.unique(chosen):
        rows = np.flatnonzero(inverse == combo)
        picks = chosen == combo
        need = batch_size * int(picks.sum())
        passes = [rng.permutation(rows) for _ in range(-(-need // len(rows)))]
        batch = np.concatenate(passes)[:need].reshape(-1, batch_size)
        local = np.var(codes[batch][:, :, active], axis=1, ddof=1)  # (batches, active codes)
        vote = np.argmax(local / ratio_scale, axis=1)
        n_tr = int((picks & is_train).sum())
        votes_train.append(vote[:n_tr])
        votes_eval.append(vote[n_tr:])
    return np.concatenate(votes_train), np.concatenate(votes_eval)


def z_max_var(
    codes: Any,
    factors: Any,
    *,
    continuous_factors: bool = True,
    num_bins: int = 10,
    batch_size: int = 200,
    num_train: int = 800,
    num_eval: int = 800,
    num_variance_estimate: int = 10000,
    std_threshold: float = 0.02,
    scale: bool = True,
    random_state: Any = 0,
) -> float:
    """Z-max Variance score of ``codes`` (N, D) against ``factors`` (N, K); higher is better.

    Defaults are ``config.py``'s (see the module docstring). ``random_state`` (int,
    RandomState or Generator) drives every draw. Returns NaN when the binning leaves a factor
    without any repeated combination of the other factors, as the reference.
    """
    from disbench.errors import check_random_state

    _check_counts(batch_size=batch_size, num_train=num_train, num_eval=num_eval,
                  num_variance_estimate=num_variance_estimate)
    if batch_size < 2 or num_variance_estimate < 2:
        raise ValueError("batch_size: variances need at least 2 rows (batch_size and "
                         "num_variance_estimate >= 2)")
    num_bins = check_num_bins(num_bins)
    rng = check_random_state(random_state)
    if isinstance(rng, np.random.Generator):
        rng = np.random.RandomState(int(rng.integers(2**31 - 1)))
    c = check_codes(codes, "codes", min_samples=2).astype(np.float64)
    f = check_factors(factors, "factors", allow_continuous=bool(continuous_factors))
    check_same_n(c, "codes", f, "factors")
    k = f.shape[1]
    if k < 2:
        raise ValueError("factors: Z-max Variance needs at least 2 factors (one varies, others fixed)")
    if continuous_factors:
        f = minmax_bin(f, num_bins)
    variances = np.var(c[rng.permutation(len(c))][:num_variance_estimate], axis=0, ddof=1)
    active = _active_codes(variances, std_threshold)
    per_factor_train = np.bincount(rng.randint(0, k, size=num_train), minlength=k)
    per_factor_eval = np.bincount(rng.randint(0, k, size=num_eval), minlength=k)
    train_votes = np.zeros((int(active.sum()), k), dtype=np.int64)
    eval_votes = np.zeros_like(train_votes)
    for j in range(k):
        got = _factor_votes(c, f, j, per_factor_train[j], per_factor_eval[j], batch_size,
                            variances[active], active, rng)
        if got is None:
            return float("nan")
        np.add.at(train_votes, (got[0], j), 1)
        np.add.at(eval_votes, (got[1], j), 1)
    classifier = np.argmax(train_votes, axis=1)
    rows = np.arange(len(classifier))
    accuracy = eval_votes[rows, classifier].sum() / eval_votes.sum()
    if scale:
        accuracy = (accuracy - 1.0 / k) / (1.0 - 1.0 / k)
    return float(accuracy)


z_max_var.higher_is_better = True


@register_evaluator("z_max_var", needs=("factors", "encoder"),
                    records=[Record("z_max_var", higher_is_better=True, tolerance=0.05)])
def _evaluate(ctx: EvalContext) -> list[dict]:
    """Z-max Variance of the train points with ``config.py``'s settings (stream "z_max_var")."""
    codes, factors = ctx.train_points()
    try:
        value = z_max_var(codes, factors, random_state=ctx.rng("z_max_var"))
    except CollapsedCodes:  # a fully collapsed model: undefined, not a failed evaluation
        value = float("nan")
    return [ctx.record("z_max_var", value, version="1", points=ctx.num_train, batch_size=200,
                       votes="800 train, 800 eval", std_threshold=0.02,
                       discretisation="factors: minmax_scale, 10 equal bins")]
