"""Unsupervised Disentanglement Ranking (UDR).

Duan, Matthey, Saraiva, Watters, Burgess, Lerchner & Higgins 2020, "Unsupervised Model Selection
for Variational Disentangled Representation Learning" (ICLR), as implemented by
google-research/disentanglement_lib ``disentanglement_lib/evaluation/udr/metrics/udr.py``
(``compute_udr_sklearn``; in the repository, not in the 1.5 release), which is the reference:

* every model's representation of the same observations is standardised
  (``StandardScaler``, ddof 0) and its latents with mean KL <= 0.01 are set to 0;
* for every ordered pair (i, j), i != j, a correlation matrix R (D_i x D_j) between the latents
  of model i (rows) and model j (columns): ``"lasso"`` fits ``Lasso(alpha=0.1)`` regressing all
  of model j's latents on model i's and takes |coef|^T; ``"spearman"`` takes |Spearman rho| of
  every pair of latents;
* with ``filter_low_kl`` the rows and columns of latents with KL <= ``kl_filter_threshold`` are
  removed; the pair's score is ``(mean_col max^2 / sum + mean_row max^2 / sum) / 2``
  (``relative_strength_disentanglement``), where a 0 / 0 ratio counts as 0;
* a model's score is the median of the pair scores in its *column* (pairs (i, model)).

Quirks of the reference, reproduced and stated:

* the latents are zeroed by the fixed rule ``kl > 0.01`` whatever ``kl_filter_threshold`` is; only
  the score mask uses ``kl_filter_threshold`` (with a threshold below 0.01, zeroed latents enter
  the score as empty rows/columns);
* the Lasso correlation matrix is asymmetric (R(i, j) is not R(j, i)^T), so the pair score
  matrix is asymmetric and the column median is not the row median;
* the reference passes its ``random_state`` to ``Lasso``, whose default cyclic coordinate descent
  does not use it: UDR has no randomness given the representations (``random_state`` is accepted
  and passed on the same way, with no effect);
* Spearman's rho of a zeroed (constant) latent is NaN; ``np.nan_to_num`` turns such ratios into 0
  (its second argument in the reference is ``copy``, not the fill value), so they lower the score;
* ``pairwise_disentanglement_scores`` has zeros on the diagonal (never computed).

The reference also draws the shared observations and averages each model's KL over batches; here
``representations`` and ``kl_divergences`` are given (one shared draw of observations).

The score ``udr`` (higher is better) belongs to a group of runs, not to one model, so its
evaluator (needs ``"runs"``) cannot run inside ``disbench evaluate``; ``disbench udr RUNS_DIR``
(:mod:`disbench.run.udr`) groups the trained runs of each variant across seeds, draws the shared
observations as ``udr/evaluate.py`` with ``config/tests/methods/udr/udr.gin`` does (1,000 points
in batches of 10 from ``np.random.RandomState(0)``), computes each latent's mean KL from the
encoder's ``posterior(x) -> (mean, logvar)`` as its ``compute_gaussian_kl`` (to N(0, I), whatever
the model's prior), calls :func:`udr` with the defaults above and writes each run's
``model_scores`` entry as its record ``udr``. Tolerance 0.05: a model's score is a median of
M - 1 pair scores, which jumps between pair scores when they reorder.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._validate import check_codes, to_numpy
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["relative_strength_disentanglement", "udr"]

#: Fixed KL threshold below which the reference zeroes latents (``np.greater(kl[i], 0.01)``).
ZERO_KL = 0.01


def relative_strength_disentanglement(corr_matrix: np.ndarray) -> float:
    """The reference's pair score of a correlation matrix (see the module docstring)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        score_x = np.nanmean(np.nan_to_num(
            np.power(np.max(corr_matrix, axis=0), 2) / np.sum(corr_matrix, axis=0), False))
        score_y = np.nanmean(np.nan_to_num(
            np.power(np.max(corr_matrix, axis=1), 2) / np.sum(corr_matrix, axis=1), False))
    return float((score_x + score_y) / 2)


# `random_state` unused here: the corr_fn signature shared with _lasso_matrix
def _spearman_matrix(a: np.ndarray, b: np.ndarray,
                     random_state: Any = None) -> np.ndarray:  # noqa: ARG001
    """|Spearman rho| between every column of ``a`` (rows) and of ``b`` (columns)."""
    import scipy.stats

    ra = scipy.stats.rankdata(a, axis=0)
    rb = scipy.stats.rankdata(b, axis=0)
    ra = ra - ra.mean(0)
    rb = rb - rb.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):  # constant latent: NaN, as scipy gives
        rho = (ra.T @ rb) / np.sqrt(np.outer((ra * ra).sum(0), (rb * rb).sum(0)))
    return np.abs(rho)


def _lasso_matrix(a: np.ndarray, b: np.ndarray, random_state: Any = None) -> np.ndarray:
    """|coef|^T of ``Lasso(alpha=0.1)`` regressing ``b`` on ``a``: (D_a, D_b)."""
    from sklearn.linear_model import Lasso

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the reference ignores it too
        model = Lasso(alpha=0.1, random_state=random_state).fit(a, b)
    return np.transpose(np.absolute(model.coef_.reshape(b.shape[1], a.shape[1])))


def _check_inputs(representations: Any, kl_divergences: Any) -> tuple[list, np.ndarray]:
    if not isinstance(representations, Sequence) or isinstance(representations, (str, bytes)):
        representations = list(to_numpy(representations, "representations"))
    reps = [check_codes(r, f"representations[{i}]", min_samples=2).astype(np.float64)
            for i, r in enumerate(representations)]
    if len(reps) < 2:
        raise ValueError("representations: UDR compares models; pass at least 2 models' codes")
    for i, r in enumerate(reps[1:], 1):
        if r.shape != reps[0].shape:
            raise ValueError(
                f"representations[{i}]: shape {r.shape} differs from representations[0]'s "
                f"{reps[0].shape}; all models must encode the same observations with the same D"
            )
    kl = to_numpy(kl_divergences, "kl_divergences").astype(np.float64)
    if kl.shape != (len(reps), reps[0].shape[1]):
        raise ValueError(
            f"kl_divergences: expected shape (models, latents) = {(len(reps), reps[0].shape[1])}, "
            f"got {kl.shape}"
        )
    if not np.all(np.isfinite(kl)):
        raise ValueError("kl_divergences: contains NaN or inf")
    return reps, kl


def udr(
    representations: Any,
    kl_divergences: Any,
    *,
    correlation: str = "lasso",
    filter_low_kl: bool = True,
    kl_filter_threshold: float = 0.01,
    random_state: Any = None,
) -> dict[str, Any]:
    """UDR scores of M models from their codes of one shared set of observations.

    Parameters
    ----------
    representations : sequence of M arrays (N, D) or an array (M, N, D)
        Each model's codes (posterior means) of the same N observations.
    kl_divergences : array (M, D)
        Each latent's mean KL divergence to the prior over those observations.
    correlation : {"lasso", "spearman"}
        How latents of two models are correlated (reference default "lasso").
    filter_low_kl : bool
        Drop latents with KL <= ``kl_filter_threshold`` from the pair scores (default True).
    kl_filter_threshold : float
        Reference default 0.01.
    random_state : None, int or np.random.RandomState
        Passed to ``Lasso`` as the reference does; it has no effect (cyclic descent).

    Returns
    -------
    dict with ``model_scores`` (M,) (higher is better), ``pairwise_disentanglement_scores``
    (M, M) and ``raw_correlations`` (M, M, D, D).
    """
    if correlation not in ("lasso", "spearman"):
        raise ValueError(f"correlation: unknown {correlation!r}; use 'lasso' or 'spearman'")
    reps, kl = _check_inputs(representations, kl_divergences)
    mask = kl > float(kl_filter_threshold)
    if filter_low_kl and not mask.any(axis=1).all():
        bad = int(np.flatnonzero(~mask.any(axis=1))[0])
        raise ValueError(f"kl_divergences: model {bad} has no latent with KL > "
                         f"kl_filter_threshold={kl_filter_threshold}; UDR is undefined for it")
    scaled = [(r - r.mean(0)) / np.where(r.std(0) > 0, r.std(0), 1.0) * (kl[i] > ZERO_KL)
              for i, r in enumerate(reps)]
    m, d = len(reps), reps[0].shape[1]
    raw = np.zeros((m, m, d, d))
    pair = np.zeros((m, m))
    corr_fn = _lasso_matrix if correlation == "lasso" else _spearman_matrix
    for i in range(m):
        for j in range(m):
            if i != j:
                raw[i, j] = corr_fn(scaled[i], scaled[j], random_state)
                r = raw[i, j][mask[i]][:, mask[j]] if filter_low_kl else raw[i, j]
                pair[i, j] = relative_strength_disentanglement(r)
    model_scores = np.array([np.median(np.delete(pair[:, i], i)) for i in range(m)])
    return {"model_scores": model_scores, "pairwise_disentanglement_scores": pair,
            "raw_correlations": raw}


udr.higher_is_better = {"model_scores": True}


@register_evaluator("udr", needs=("runs",),
                    records=[Record("udr", higher_is_better=True, tolerance=0.05)])
def _evaluate(ctx: EvalContext) -> list[dict]:  # noqa: ARG001 (an evaluator's fn(ctx))
    """UDR scores a group of runs, never one model: a clear error pointing at the runner."""
    from disbench.errors import DisbenchError

    raise DisbenchError("udr compares the seeds of one model variant on a shared draw: compute "
                        "it with 'disbench udr RUNS_DIR' (disbench.run.udr), not per run")
