"""Reduced downstream task: accuracy after removing each factor's most important codes.

As implemented by google-research/disentanglement_lib
``disentanglement_lib/evaluation/metrics/reduced_downstream_task.py``
(``compute_reduced_downstream_task``) with ``reduced_representation.correlation_measure =
@factorwise_dci``: for every training size and every factor of interest, the code with the largest
DCI importance for that factor (``dci.compute_importance_gbt``: ``|feature_importances_|`` of a
``GradientBoostingClassifier()`` fitted on the current codes) is deleted, ``num_factors_to_remove``
times, recomputing the importances on the reduced codes each time; then a predictor per factor
is fitted on the reduced codes and its train / test accuracies are reported:

* ``"{n}:reduced_factor_{f}:mean_{train,test}_accuracy_reduced_factor"`` (the factor of interest),
  ``"{n}:reduced_factor_{f}:mean_{train,test}_accuracy_factor_{k}"`` (every factor),
  ``"{n}:reduced_factor_{f}:mean_{train,test}_accuracy_non_reduced_factor"`` (mean of the others);
* ``"{n}:mean_{train,test}_accuracy_reduced_factor"`` and
  ``"{n}:mean_{train,test}_accuracy_other_factors"`` (means over the factors of interest).

Lower accuracy on the reduced factor and higher on the others indicate a disentangled code.
The reference has no study configuration (``num_factors_to_remove``, ``num_train``,
``num_test`` are ``gin.REQUIRED``); the defaults here are its test configuration
``config/tests/evaluation/evaluate_test_configs/reduced_downstream_task.gin``
(``num_train=[100]``, ``num_test=100``, ``num_factors_to_remove=1``, gradient boosting).

Deviations: only the importance column of the factor of interest is fitted (the reference fits a
classifier for every factor and keeps one column: the same numbers for the same seed); the
reference's classifiers are unseeded, here they get one seed drawn from ``random_state`` after
all factors are drawn; per training size the training then the test factors are drawn before
rendering (for a dataset whose observations use no randomness, the reference's stream).

Evaluator ``reduced_downstream`` (sampler layer: it draws and renders its own points, so it needs
the dataset's sampler): ``num_factors_to_remove=1`` and gradient boosting as the test
configuration, but 1,000 training and 1,000 test points (each capped at the evaluation's
``num_train`` / ``num_test``) instead of its 100 / 100, which are too few for a stable accuracy
of a 40-valued factor; every draw from the evaluation seed's stream ``"reduced_downstream"``.
Records: ``reduced_downstream_test_accuracy_reduced_factor`` (``"{n}:mean_test_accuracy_reduced_
factor"``; lower is better: the removed code should have carried its factor) and
``reduced_downstream_test_accuracy_other_factors`` (``"{n}:mean_test_accuracy_other_factors"``;
higher is better), tolerance 0.03 (accuracies on 1,000 test points). The sizes used are in each
record's spec. Cost: K (K + 1) gradient-boosting fits (an importance fit and K predictors per
factor of interest), about 12 minutes for dSprites on one shared CPU core: the slowest evaluator.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._sampling import encode_factors
from .downstream import check_predictor, check_train_sizes, fit_accuracies, seed_of
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["reduced_downstream_task"]


def _most_important(codes: np.ndarray, labels: np.ndarray, seed: int) -> int:
    """Index of the code with the largest GBT importance for ``labels``."""
    from sklearn.ensemble import GradientBoostingClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GradientBoostingClassifier(random_state=seed).fit(codes, labels)
    return int(np.argmax(np.abs(model.feature_importances_)))


def _size_scores(n: int, per_factor: list[tuple[list[float], list[float]]]) -> dict[str, float]:
    out: dict[str, float] = {}
    reduced = {"train": [], "test": []}
    other = {"train": [], "test": []}
    for foi, accs in enumerate(per_factor):
        prefix = f"{n}:reduced_factor_{foi}"
        for split, acc in zip(("train", "test"), accs, strict=True):
            out[f"{prefix}:mean_{split}_accuracy_reduced_factor"] = acc[foi]
            for k, a in enumerate(acc):
                out[f"{prefix}:mean_{split}_accuracy_factor_{k}"] = a
            rest = float(np.mean([a for k, a in enumerate(acc) if k != foi]))
            out[f"{prefix}:mean_{split}_accuracy_non_reduced_factor"] = rest
            reduced[split].append(acc[foi])
            other[split].append(rest)
    for split in ("train", "test"):
        out[f"{n}:mean_{split}_accuracy_reduced_factor"] = float(np.mean(reduced[split]))
        out[f"{n}:mean_{split}_accuracy_other_factors"] = float(np.mean(other[split]))
    return out


def reduced_downstream_task(
    dataset: Any,
    representation_fn: Callable[[np.ndarray], Any],
    random_state: Any,
    *,
    num_factors_to_remove: int = 1,
    train_sizes: Sequence[int] = (100,),
    num_test: int = 100,
    predictor: str = "gradient_boosting_classifier",
) -> dict[str, float]:
    """Reduced downstream-task accuracies of a representation (see the module docstring).

    Parameters
    ----------
    dataset, representation_fn, random_state
        As :func:`disbench.metrics.factor_vae.factor_vae_score`.
    num_factors_to_remove : int
        Codes removed per factor of interest (reference test configuration 1).
    train_sizes : sequence of int
        Training points per experiment (reference test configuration ``[100]``).
    num_test : int
        Test points (reference test configuration 100).
    predictor : str
        See :func:`disbench.metrics.downstream.make_predictor` (reference: gradient boosting).

    Returns
    -------
    dict of accuracies under disentanglement_lib's keys.
    """
    from disbench.errors import check_random_state

    predictor = check_predictor(predictor)
    sizes = check_train_sizes(train_sizes, 2**62)
    if isinstance(num_test, bool) or not isinstance(num_test, (int, np.integer)) or num_test < 1:
        raise ValueError(f"num_test: must be a positive integer, got {num_test!r}")
    if isinstance(num_factors_to_remove, bool) or not isinstance(num_factors_to_remove, (int, np.integer)) \
            or num_factors_to_remove < 0:
        raise ValueError(f"num_factors_to_remove: must be an integer >= 0, got {num_factors_to_remove!r}")
    rng = check_random_state(random_state)
    draws = [(np.asarray(dataset.sample_factors(n, rng), dtype=np.int64),
              np.asarray(dataset.sample_factors(num_test, rng), dtype=np.int64)) for n in sizes]
    seed = seed_of(rng)
    scores: dict[str, float] = {}
    for n, (f_train, f_test) in zip(sizes, draws, strict=True):
        c_train = encode_factors(dataset, representation_fn, f_train, rng)
        c_test = encode_factors(dataset, representation_fn, f_test, rng)
        if num_factors_to_remove >= c_train.shape[1]:
            raise ValueError(f"num_factors_to_remove: {num_factors_to_remove} would remove all "
                             f"{c_train.shape[1]} code dimensions")
        per_factor = []
        for foi in range(f_train.shape[1]):
            keep = np.arange(c_train.shape[1])
            for _ in range(num_factors_to_remove):
                keep = np.delete(keep, _most_important(c_train[:, keep], f_train[:, foi], seed))
            per_factor.append(fit_accuracies(c_train[:, keep], f_train, c_test[:, keep], f_test,
                                             predictor, seed))
        scores.update(_size_scores(n, per_factor))
    return scores


# By key suffix (keys start with the training size): the removed factor should become
# unreadable, the others should stay readable.
reduced_downstream_task.higher_is_better = {
    "mean_test_accuracy_reduced_factor": False,
    "mean_test_accuracy_other_factors": True,
}


#: The evaluator's training and test sizes, capped by the evaluation options.
EVALUATOR_POINTS = 1000


@register_evaluator("reduced_downstream", needs=("factors", "encoder"), records=[
    Record("reduced_downstream_test_accuracy_reduced_factor", higher_is_better=False,
           tolerance=0.03),
    Record("reduced_downstream_test_accuracy_other_factors", higher_is_better=True,
           tolerance=0.03),
])
def _evaluate(ctx: EvalContext) -> list[dict]:
    """The reduced downstream task on min(1000, num_train) / min(1000, num_test) points."""
    n = min(EVALUATOR_POINTS, ctx.num_train)
    m = min(EVALUATOR_POINTS, ctx.num_test)
    out = reduced_downstream_task(ctx.dataset, ctx.representation_fn,
                                  ctx.rng("reduced_downstream"), num_factors_to_remove=1,
                                  train_sizes=(n,), num_test=m)
    spec = {"points": n, "test_points": m, "factors_removed": 1,
            "predictor": "GradientBoostingClassifier()",
            "importance": "GradientBoostingClassifier() feature_importances_ (DCI)"}
    return [ctx.record(f"reduced_downstream_test_accuracy_{part}",
                       out[f"{n}:mean_test_accuracy_{part}"], version="1", **spec)
            for part in ("reduced_factor", "other_factors")]
