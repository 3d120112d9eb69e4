"""Unsupervised scores of a representation (no factors needed).

As defined in disentanglement_lib (Locatello et al. 2019, ``unsupervised_metrics``), with C the
(D, D) covariance of the codes (``np.cov``, ddof 1):

* ``gaussian_total_correlation`` = KL(N(0, C) || N(0, diag C)) = 0.5 (sum_d log C_dd - log det C);
  for a 2-D Gaussian with correlation rho this is -0.5 log(1 - rho^2). Lower is better.
* ``gaussian_wasserstein_correlation`` = 2 tr C - 2 tr sqrtm(C * diag(C)[:, None]) (element-wise
  product, i.e. row d scaled by C_dd), the squared 2-Wasserstein distance between N(0, C) and
  N(0, diag C); ``gaussian_wasserstein_correlation_norm`` divides it by tr C. Lower is better.
* ``mutual_info_score``: mean over ordered pairs d != e of the MI between the 20-bin
  histogram-discretised code dimensions (diagonal excluded, sum / (D^2 - D)). Lower is better.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.linalg

from ._validate import check_codes, check_num_bins
from .discrete import DISCRETISATION, discrete_mutual_info, histogram_discretize
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["gaussian_total_correlation", "gaussian_wasserstein_correlation", "unsupervised"]


def gaussian_total_correlation(cov: np.ndarray) -> float:
    """Total correlation of N(0, cov): 0.5 (sum log diag cov - log det cov)."""
    cov = np.asarray(cov, dtype=np.float64)
    return float(0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1]))


def gaussian_wasserstein_correlation(cov: np.ndarray) -> float:
    """2 tr C - 2 tr sqrtm(C * diag(C)[:, None]) (real part; sqrtm may return tiny imaginary)."""
    cov = np.asarray(cov, dtype=np.float64)
    root = scipy.linalg.sqrtm(cov * np.diag(cov)[:, None])
    return float(2.0 * np.trace(cov) - 2.0 * np.real(np.trace(root)))


def unsupervised(codes: Any, *, num_bins: int = 20) -> dict[str, float]:
    """Gaussian total/Wasserstein correlation and mean pairwise MI of codes (N, D).

    Parameters
    ----------
    codes : array (N, D), D >= 2
        Representations (reference: 10,000 posterior means).
    num_bins : int
        Histogram bins per dimension for ``mutual_info_score`` (reference 20).

    Returns
    -------
    dict with "gaussian_total_correlation", "gaussian_wasserstein_correlation",
    "gaussian_wasserstein_correlation_norm", "mutual_info_score"; all lower is better.
    """
    num_bins = check_num_bins(num_bins)
    c = check_codes(codes, "codes", min_samples=num_bins)
    d = c.shape[1]
    if d < 2:
        raise ValueError("codes: unsupervised scores need at least 2 code dimensions")
    cov = np.cov(c.astype(np.float64), rowvar=False, ddof=1)
    if np.any(np.diag(cov) <= 0):
        col = int(np.flatnonzero(np.diag(cov) <= 0)[0])
        raise ValueError(f"codes: column {col} is constant; its total correlation is undefined")
    wc = gaussian_wasserstein_correlation(cov)
    disc = histogram_discretize(c, num_bins)
    mi = discrete_mutual_info(disc, disc)
    np.fill_diagonal(mi, 0.0)
    return {
        "gaussian_total_correlation": gaussian_total_correlation(cov),
        "gaussian_wasserstein_correlation": wc,
        "gaussian_wasserstein_correlation_norm": float(wc / np.trace(cov)),
        "mutual_info_score": float(mi.sum() / (d * d - d)),
    }



@register_evaluator("unsupervised", needs=("factors", "encoder"), records=[
    Record("gaussian_total_correlation", higher_is_better=False, tolerance=0.5),
    Record("gaussian_wasserstein_correlation", higher_is_better=False),
    Record("gaussian_wasserstein_correlation_norm", higher_is_better=False),
    Record("mutual_info_score", higher_is_better=False),
])
def _evaluate(ctx: EvalContext) -> list[dict]:
    """The four unsupervised scores of the train codes."""
    codes, _ = ctx.train_points()
    out = unsupervised(codes)
    return [ctx.record(key, value, version="1", points=ctx.num_train,
                       discretisation=DISCRETISATION if key == "mutual_info_score" else None)
            for key, value in out.items()]
