"""InfoMEC: InfoM (modularity), InfoE (explicitness) and InfoC (compactness).

Hsu, Dorrell, Whittington, Wu & Finn 2023, "Disentanglement via Latent Quantization" (NeurIPS),
as implemented by kylehkhsu/latent_quantization ``disentangle/metrics/infomec.py``
(``compute_infomec``), which is the reference:

* NMI (K, D): factors are label-encoded; for continuous latents each latent is standardised and
  I(factor; latent) is ``mutual_info_classif(latent, factor, discrete_features=False,
  n_neighbors=10)`` (the KSG-type estimator of Ross 2014, nats); for discrete latents
  ``mutual_info_score`` of the label-encoded latent; each row is divided by the factor's entropy
  ``mutual_info_score(factor, factor)``;
* active latents: range (max - min) > max range / 20 for continuous latents, range > 0 for
  discrete ones; InfoM and InfoC use the NMI columns of active latents only:
  ``InfoM = (mean_latents(max_k NMI / sum_k NMI) - 1/K) / (1 - 1/K)`` and
  ``InfoC = (mean_factors(max_d NMI / sum_d NMI) - 1/D_active) / (1 - 1/D_active)``;
* InfoE = mean over factors of ``(H_null - H_pred) / H_null``: ``H_pred`` is the (unweighted)
  ``log_loss`` on the training points of an unpenalised multinomial ``LogisticRegression``
  (lbfgs, ``tol=1e-4``, ``max_iter=100``, ``class_weight="balanced"``) on all standardised
  latents (one-hot latents if discrete), ``H_null`` the same for an all-zero feature matrix.

Quirks, reproduced and stated:

* InfoM is NaN when an active latent has zero estimated information with every factor (its
  ratio is 0 / 0); this is returned, not hidden. InfoC is NaN with a single active latent.
* InfoE uses *all* latents, not only the active ones.
* The null model is fitted with balanced class weights, so it predicts the uniform distribution:
  ``H_null`` is log(number of classes), the factor's entropy only if the factor is uniform.
* The log-losses are measured on the points the models were fitted on (no held-out set).
* ``mutual_info_classif`` adds 1e-10-scale noise to the scaled latents from ``random_state``
  (the reference leaves it None, i.e. NumPy's global generator); it only breaks ties.

Running on current scikit-learn and NumPy: the reference passes ``multi_class="multinomial"`` and
``penalty=None`` (both removed or deprecated in scikit-learn 1.9) and assigns the shape-(1,)
array returned by ``mutual_info_classif`` to an array element (an error in current NumPy). Here
``C=inf`` is the unpenalised fit and lbfgs fits the multinomial loss for 3+ classes by default.
For a binary factor current scikit-learn fits the binomial loss where the reference's
``multi_class="multinomial"`` fitted a 2-class softmax: the same optimum, so the same InfoE up to
the solver's tolerance (they differ where the classes are separable and lbfgs stops at its
iteration limit). Discrete latents stored as integers make the reference's own dtype assertion
fail (its null matrix is ``zeros_like(latents)``); here they are accepted.

Evaluator ``infomec`` (records ``infom``, ``infoe``, ``infoc``, higher is better): continuous
latents (the codes), on the ``num_train`` train points (10,000 by default; the reference takes
whatever set it is given), the tie-breaking noise from the evaluation seed's stream
``"infomec"``. A NaN InfoM or InfoC (see above) is recorded as NaN (``metrics.json`` writes
``NaN``; leaderboards show it as missing). Tolerance 0.03: nearest-neighbour MI estimates and
log-losses move smoothly with the codes, no binning steps.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from ._validate import check_codes, check_factors, check_same_n
from .discrete import discrete_entropy, discrete_mutual_info
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["infomec", "nmi_matrix"]


def _label_encode(x: np.ndarray) -> np.ndarray:
    """``LabelEncoder().fit_transform`` of each column."""
    out = np.empty(x.shape, dtype=np.int64)
    for j in range(x.shape[1]):
        out[:, j] = np.unique(x[:, j], return_inverse=True)[1].reshape(-1)
    return out


def _standardise(x: np.ndarray) -> np.ndarray:
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit_transform(x)


def nmi_matrix(sources: np.ndarray, latents: np.ndarray, discrete_latents: bool, rng: Any) -> np.ndarray:
    """``compute_nmi``: (K, D) mutual information of each factor and latent over H(factor)."""
    s = _label_encode(sources)
    if discrete_latents:
        nmi = discrete_mutual_info(_label_encode(latents), s).T
    else:
        from sklearn.feature_selection import mutual_info_classif

        z = _standardise(latents)  # per column, as the reference's one-column scalers
        # One call per factor over all latents: each latent is estimated on its own.
        nmi = np.stack([mutual_info_classif(z, s[:, i], discrete_features=False, n_neighbors=10,
                                            random_state=rng) for i in range(s.shape[1])])
    return nmi / discrete_entropy(s)[:, None]


def _log_loss_of_fit(x: Any, y: np.ndarray) -> float:
    """The reference's ``logistic_regression``: training log-loss of an unpenalised fit."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    model = LogisticRegression(C=np.inf, l1_ratio=0.0, tol=1e-4, fit_intercept=True,
                               class_weight="balanced", solver="lbfgs", max_iter=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs max_iter chatter, as the reference
        model.fit(x, y)
    return float(log_loss(y, model.predict_proba(x)))


def _infoe(sources: np.ndarray, latents: np.ndarray, discrete_latents: bool) -> float:
    from threadpoolctl import threadpool_limits

    s = _label_encode(sources)
    if discrete_latents:
        from sklearn.preprocessing import OneHotEncoder

        x = OneHotEncoder().fit_transform(latents)
    else:
        x = _standardise(latents)
    null = np.zeros(latents.shape, dtype=np.float64)
    scores = []
    with threadpool_limits(limits=1):  # small fits; a fixed thread count keeps sums reproducible
        for i in range(s.shape[1]):
            predictive = _log_loss_of_fit(x, s[:, i])
            marginal = _log_loss_of_fit(null, s[:, i])
            scores.append((marginal - predictive) / marginal)
    return float(np.mean(scores))


def infomec(
    codes: Any,
    factors: Any,
    *,
    discrete_latents: bool = False,
    random_state: Any = 0,
) -> dict[str, Any]:
    """InfoM, InfoE and InfoC of ``codes`` (N, D) against integer ``factors`` (N, K).

    Parameters
    ----------
    codes : array (N, D)
        Latents (continuous, or discrete values with ``discrete_latents=True``).
    factors : array (N, K) of integers
        Ground-truth factor labels; every factor must take at least two values; K >= 2.
    discrete_latents : bool
        Treat the latents as discrete (reference default False).
    random_state : int, np.random.RandomState or np.random.Generator
        Seed of ``mutual_info_classif``'s tie-breaking noise (continuous latents).

    Returns
    -------
    dict with ``infom``, ``infoe``, ``infoc`` (floats in [0, 1], higher is better; InfoM / InfoC
    may be NaN, see the module docstring), ``nmi`` (K, D) and ``active_latents`` (D,) bool.
    """
    from disbench.errors import check_random_state

    rng = check_random_state(random_state)
    if isinstance(rng, np.random.Generator):  # scikit-learn takes a RandomState or an int
        rng = np.random.RandomState(int(rng.integers(2**31 - 1)))
    latents = check_codes(codes, "codes").astype(np.float64)
    if len(latents) < 11:
        raise ValueError(f"codes: {len(latents)} samples; InfoMEC's k-nearest-neighbour mutual "
                         "information (n_neighbors=10) needs at least 11")
    sources = check_factors(factors, "factors")
    check_same_n(latents, "codes", sources, "factors")
    if sources.shape[1] < 2:
        raise ValueError("factors: InfoM needs at least 2 factors (it is normalised by 1 - 1/K)")
    nmi = nmi_matrix(sources, latents, bool(discrete_latents), rng)
    ranges = latents.max(axis=0) - latents.min(axis=0)
    active = ranges > 0 if discrete_latents else ranges > np.max(ranges) / 20
    k, d_active = sources.shape[1], int(active.sum())
    pruned = nmi[:, active]
    with np.errstate(divide="ignore", invalid="ignore"):  # NaN cases: see the module docstring
        infom = (np.mean(pruned.max(axis=0) / pruned.sum(axis=0)) - 1 / k) / (1 - 1 / k)
        infoc = (np.mean(pruned.max(axis=1) / pruned.sum(axis=1)) - 1 / d_active) \
            / (1 - 1 / d_active) if d_active else np.nan
    return {"infom": float(infom), "infoe": _infoe(sources, latents, bool(discrete_latents)),
            "infoc": float(infoc), "nmi": nmi, "active_latents": active}


infomec.higher_is_better = {"infom": True, "infoe": True, "infoc": True}


@register_evaluator("infomec", needs=("factors", "encoder"), records=[
    Record("infom", higher_is_better=True, tolerance=0.03),
    Record("infoe", higher_is_better=True, tolerance=0.03),
    Record("infoc", higher_is_better=True, tolerance=0.03),
])
def _evaluate(ctx: EvalContext) -> list[dict]:
    """InfoM, InfoE and InfoC of the train codes (continuous latents); NaN is kept."""
    codes, factors = ctx.train_points()
    out = infomec(codes, factors, random_state=ctx.rng("infomec"))
    spec = {"points": ctx.num_train, "latents": "continuous",
            "active_latents": int(np.sum(out["active_latents"])),
            "estimator": "KSG mutual_info_classif(n_neighbors=10); unpenalised multinomial "
                         "LogisticRegression(class_weight='balanced') log-loss"}
    return [ctx.record(key, out[key], version="1", **spec) for key in ("infom", "infoe", "infoc")]
