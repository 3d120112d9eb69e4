"""Modularity and explicitness.

Ridgeway & Zemel 2018, "Learning Deep Disentangled Embeddings With the F-Statistic Loss"
(NeurIPS), Sec. 3, as implemented by disentanglement_lib (Locatello et al. 2019,
``compute_modularity_explicitness``):

* modularity: m = MI matrix (D, K) of the 20-bin histogram-discretised train codes with the
  factors (as for MIG); per code d, 1 - (sum_k m[d,k]^2 - max_k m[d,k]^2) /
  (max_k m[d,k]^2 (K - 1)), 0 where the max is 0; mean over codes;
* explicitness: codes standardised with the train mean and std (ddof 0); per factor a
  ``LogisticRegression()`` with scikit-learn's defaults is fitted on the train codes; the score
  is the macro ROC-AUC of its class probabilities against one-hot labels, on train and on test;
  mean over factors.

Deviations, only where the reference fails: a code with zero train std is left unscaled
(the reference divides by zero), and classes absent from the test labels are skipped in the
test ROC-AUC average (the reference raises).
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from ._validate import check_num_bins, check_train_test
from .discrete import DISCRETISATION, discrete_mutual_info, histogram_discretize
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["modularity", "modularity_explicitness"]


def modularity(mutual_information: np.ndarray) -> float:
    """Modularity of a (D, K) code-factor mutual-information matrix."""
    sq = np.square(np.asarray(mutual_information, dtype=np.float64))
    top = sq.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - (sq.sum(axis=1) - top) / (top * (sq.shape[1] - 1.0))
    score = np.where(top == 0.0, 0.0, score)
    return float(np.mean(score))


def _macro_auc(labels: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    onehot = (labels[:, None] == classes[None, :]).astype(np.int64)
    present = (onehot.sum(0) > 0) & (onehot.sum(0) < len(labels))
    return float(roc_auc_score(onehot[:, present], proba[:, present], average="macro"))


def modularity_explicitness(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    *,
    num_bins: int = 20,
) -> dict[str, float]:
    """Modularity (train codes) and explicitness (train and test) of codes against factors.

    Parameters
    ----------
    codes_train, factors_train : arrays (N, D), (N, K)
        Points for the MI matrix and for fitting the classifiers (reference: 10,000).
    codes_test, factors_test : arrays (M, D), (M, K)
        Held-out points for ``explicitness_test`` (reference: 5,000).
    num_bins : int
        Histogram bins per code dimension (reference 20).

    Returns
    -------
    dict with "modularity", "explicitness_train", "explicitness_test"; all higher is better.
    """
    num_bins = check_num_bins(num_bins)
    ctr, ftr, cte, fte = check_train_test(
        codes_train, factors_train, codes_test, factors_test, min_train=num_bins
    )
    if ftr.shape[1] < 2:
        raise ValueError("factors_train: modularity needs at least 2 factors")
    m = discrete_mutual_info(histogram_discretize(ctr, num_bins), ftr)

    from sklearn.linear_model import LogisticRegression

    x = ctr.astype(np.float64)
    xt = cte.astype(np.float64)
    mean, std = x.mean(0), x.std(0)
    std = np.where(std > 0, std, 1.0)
    x, xt = (x - mean) / std, (xt - mean) / std
    auc_train, auc_test = [], []
    for k in range(ftr.shape[1]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lbfgs max_iter chatter; defaults are the spec
            clf = LogisticRegression().fit(x, ftr[:, k])
        auc_train.append(_macro_auc(ftr[:, k], clf.predict_proba(x), clf.classes_))
        auc_test.append(_macro_auc(fte[:, k], clf.predict_proba(xt), clf.classes_))
    return {
        "modularity": modularity(m),
        "explicitness_train": float(np.mean(auc_train)),
        "explicitness_test": float(np.mean(auc_test)),
    }



@register_evaluator("modularity", needs=("factors", "encoder"), records=[
    Record("modularity", higher_is_better=True, tolerance=0.05),
    Record("explicitness_train", higher_is_better=True, tolerance=0.03),
    Record("explicitness_test", higher_is_better=True, tolerance=0.03),
])
def _evaluate(ctx: EvalContext) -> list[dict]:
    """``modularity`` on the train points, ``explicitness_*`` on the train and test points."""
    c_tr, f_tr = ctx.train_points()
    c_te, f_te = ctx.test_points()
    out = modularity_explicitness(c_tr, f_tr, c_te, f_te)
    spec = {"points": ctx.num_train, "test_points": ctx.num_test, "discretisation": DISCRETISATION,
            "estimator": "LogisticRegression() per factor on standardised codes, macro ROC-AUC"}
    return [ctx.record(key, out[key], version="1", **spec)
            for key in ("modularity", "explicitness_train", "explicitness_test")]
