"""SAP: Separated Attribute Predictability.

Kumar, Sattigeri & Balakrishnan 2018, "Variational Inference of Disentangled Latent Concepts
from Unlabeled Observations" (ICLR), Sec. 3, as implemented by disentanglement_lib
(Locatello et al. 2019, ``compute_sap``):

* discrete factors (default): score S[d, k] = test accuracy of
  ``LinearSVC(C=0.01, class_weight="balanced")`` fitted on the single code d (train points)
  to predict factor k;
* continuous factors: S[d, k] = Cov(c_d, v_k)^2 / (Var c_d Var v_k) on the train points
  (ddof 1), 0 where Var c_d <= 1e-12; the test points are not used;
* SAP = mean over factors of (best - second best score over codes).
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from ._validate import check_train_test
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["sap", "sap_score_matrix"]


def sap_score_matrix(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    *,
    continuous_factors: bool = False,
) -> np.ndarray:
    """The (D, K) score matrix S of validated arrays (see module docstring)."""
    x = codes_train.astype(np.float64, copy=False)
    y = factors_train.astype(np.float64, copy=False)
    d, k = x.shape[1], y.shape[1]
    if continuous_factors:
        # All (code, factor) covariances at once; same as np.cov(mu_i, y_j, ddof=1) per pair.
        xc = x - x.mean(0)
        yc = y - y.mean(0)
        n1 = x.shape[0] - 1
        cov = xc.T @ yc / n1
        var_x = (xc * xc).sum(0) / n1
        var_y = (yc * yc).sum(0) / n1
        with np.errstate(divide="ignore", invalid="ignore"):
            s = cov**2 / (var_x[:, None] * var_y[None, :])
        return np.where(var_x[:, None] > 1e-12, s, 0.0)
    from sklearn.svm import LinearSVC

    s = np.zeros((d, k))
    xt = codes_test.astype(np.float64, copy=False)
    for i in range(d):
        for j in range(k):
            clf = LinearSVC(C=0.01, class_weight="balanced", random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # liblinear convergence chatter
                clf.fit(x[:, i : i + 1], factors_train[:, j])
            s[i, j] = np.mean(clf.predict(xt[:, i : i + 1]) == factors_test[:, j])
    return s


def sap(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    *,
    continuous_factors: bool = False,
) -> float:
    """SAP score of codes (N, D) against factors (N, K).

    Parameters
    ----------
    codes_train, factors_train : arrays (N, D), (N, K)
        Fitting points (reference: 10,000).
    codes_test, factors_test : arrays (M, D), (M, K)
        Scoring points for discrete factors (reference: 5,000).
    continuous_factors : bool
        Use the squared-correlation score on the train points (factors may then be real).

    Returns
    -------
    float; higher is better.
    """
    ctr, ftr, cte, fte = check_train_test(
        codes_train, factors_train, codes_test, factors_test, allow_continuous=continuous_factors
    )
    if ctr.shape[1] < 2:
        raise ValueError("codes_train: SAP needs at least 2 code dimensions (a gap between two)")
    s = sap_score_matrix(ctr, ftr, cte, fte, continuous_factors=continuous_factors)
    top = np.sort(s, axis=0)
    return float(np.mean(top[-1] - top[-2]))



@register_evaluator("sap", records=[Record("sap", higher_is_better=True, tolerance=0.02)],
                    needs=("factors", "encoder"))
def _evaluate(ctx: EvalContext) -> list[dict]:
    """``sap`` fitted on the train points, scored on the test points."""
    c_tr, f_tr = ctx.train_points()
    c_te, f_te = ctx.test_points()
    value = sap(c_tr, f_tr, c_te, f_te)
    return [ctx.record("sap", value, version="1", points=ctx.num_train, test_points=ctx.num_test,
                       estimator='LinearSVC(C=0.01, class_weight="balanced") per (code, factor)')]
