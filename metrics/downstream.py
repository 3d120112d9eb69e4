"""Downstream classification task: how well simple predictors read each factor off the codes.

Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised Learning of
Disentangled Representations" (ICML), Sec. 5 (the "downstream task" of the study), as implemented
by google-research/disentanglement_lib ``disentanglement_lib/evaluation/metrics/downstream_task.py``
(``compute_downstream_task`` / ``_compute_loss``) with the predictors of
``disentanglement_lib/evaluation/metrics/utils.py`` and the study settings of
``config/unsupervised_study_v1/metric_configs/downstream_task_{logistic_regression,boosted_trees}.gin``
(``num_train=[10, 100, 1000, 10000]``, ``num_test=5000``):

* for every training size n and every factor k a fresh predictor is fitted on the codes of the
  training points and the factor's labels; its accuracy on the training and on the test points is
  recorded; keys ``"{n}:mean_train_accuracy"``, ``"{n}:mean_test_accuracy"``,
  ``"{n}:min_train_accuracy"``, ``"{n}:min_test_accuracy"`` (mean / min over factors) and
  ``"{n}:train_accuracy_factor_{k}"``, ``"{n}:test_accuracy_factor_{k}"``.

Predictors (:func:`make_predictor`):

* ``"logistic_regression_cv"``: ``utils.logistic_regression_cv`` is
  ``LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5))`` with every other argument left at
  scikit-learn's default. The settings it relied on are pinned here: 10 values of C on a log grid
  from 1e-4 to 1e4, 5 unshuffled folds, L2 penalty, lbfgs, ``tol=1e-4``, ``max_iter=100``,
  accuracy as the CV score, refit on all points with the best C, and **one-vs-rest** for more than
  two classes: scikit-learn's ``multi_class`` default was ``"ovr"`` until 0.22 (December 2019;
  its docstring: "Default changed from 'ovr' to 'auto' in 0.22", i.e. multinomial with lbfgs).
  disentanglement_lib pins no scikit-learn version; that the study's numbers were computed with
  OvR (one binary ``LogisticRegressionCV`` per class, each with its own C) is inferred from their
  dates (the repository's history starts in February 2019, ten months before 0.22). ``multi_class`` no longer exists in
  current scikit-learn; OvR is reproduced with ``OneVsRestClassifier(LogisticRegressionCV(...))``,
  which cross-validates and refits each binary problem as the old OvR path did.
  ``"logistic_regression_cv_multinomial"`` is what the same reference code computes on
  scikit-learn >= 0.22 (one multinomial model, one C).
  Announced changes that the pinning guards against (scikit-learn 1.9 deprecations): ``penalty``
  is deprecated for ``l1_ratios`` (here ``l1_ratios=(0.0,)``, the L2 penalty), the default of
  ``l1_ratios`` changes from None to ``(0.0,)`` in 1.10, the default ``scoring`` changes from
  accuracy to ``"neg_log_loss"`` in 1.11 (here ``scoring="accuracy"``) and
  ``use_legacy_attributes`` changes default in 1.10 (fitted attributes only; predictions are
  unaffected).
* ``"gradient_boosting_classifier"``: ``utils.gradient_boosting_classifier`` is
  ``GradientBoostingClassifier()`` with defaults (100 stages, depth 3, learning rate 0.1). The
  reference passes no seed; here ``random_state`` seeds it (it only breaks ties between equally
  good splits).

Deviations of this array-layer function, by design: each training size is fitted on the *first
n* rows of the given training set and every size is scored on the same test set (the reference
sampler draws a fresh training and test set per size).

Evaluators ``downstream_lr`` (``"logistic_regression_cv"``, one-vs-rest) and ``downstream_gbt``
(``"gradient_boosting_classifier"``, seeded with the evaluation seed): :func:`downstream_task`
on the ``num_train`` train points and the ``num_test`` test points (10,000 and 5,000 by default,
the study's ``num_test=5000``), with the study's training sizes 10, 100, 1000 and 10,000
(:data:`TRAIN_SIZES`) limited to those <= ``num_train``: a size larger than the train points is
not recorded at all (so ``num_train=1000`` records sizes 10, 100 and 1000). Records, all
higher is better: ``downstream_{lr,gbt}_{n}_mean_test_accuracy`` (the study's score),
``downstream_{lr,gbt}_{n}_mean_train_accuracy`` and ``downstream_{lr,gbt}_{n}_min_test_accuracy``
(the worst factor). Tolerance 0.05 for n <= 100 (with 10 training points one point moved
across a boundary changes a train accuracy by 0.1 / K and can flip the fitted classifier),
0.03 for larger n. Cost: one fit per factor and size; for dSprites at ``num_train=1000``
about 1 minute (``lr``, 40 one-vs-rest problems for the orientation) and 2 minutes (``gbt``)
on one shared CPU core, several times that with the 10,000 size.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._validate import check_train_test
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["PREDICTORS", "TRAIN_SIZES", "downstream_task", "fit_accuracies", "make_predictor"]

PREDICTORS = (
    "logistic_regression_cv",
    "logistic_regression_cv_multinomial",
    "gradient_boosting_classifier",
)


def _logistic_regression_cv() -> Any:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import KFold

    return LogisticRegressionCV(
        Cs=10, cv=KFold(n_splits=5), l1_ratios=(0.0,), scoring="accuracy", solver="lbfgs",
        tol=1e-4, max_iter=100, fit_intercept=True, refit=True, class_weight=None,
        use_legacy_attributes=False,
    )


def make_predictor(predictor: str, random_state: int) -> Any:
    """A fresh, unfitted scikit-learn classifier for one factor (see the module docstring)."""
    if predictor == "logistic_regression_cv":
        from sklearn.multiclass import OneVsRestClassifier

        return OneVsRestClassifier(_logistic_regression_cv())
    if predictor == "logistic_regression_cv_multinomial":
        return _logistic_regression_cv()
    if predictor == "gradient_boosting_classifier":
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(random_state=random_state)
    raise ValueError(f"predictor: unknown {predictor!r}; choose one of {', '.join(PREDICTORS)}")


def check_predictor(predictor: Any) -> str:
    """The predictor name, or a ValueError naming the choices."""
    if predictor not in PREDICTORS:
        raise ValueError(f"predictor: unknown {predictor!r}; choose one of {', '.join(PREDICTORS)}")
    return predictor


def seed_of(random_state: Any) -> int:
    """An int seed for scikit-learn from an int, RandomState or Generator (drawn once)."""
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool) \
            and random_state >= 0:
        return int(random_state)
    raise ValueError(
        f"random_state: expected a seed >= 0, np.random.RandomState or np.random.Generator, got "
        f"{random_state!r}"
    )


def fit_accuracies(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
    predictor: str, seed: int,
) -> tuple[list[float], list[float]]:
    """``_compute_loss``: per factor, a fresh predictor's train and test accuracy."""
    from threadpoolctl import threadpool_limits

    train_acc, test_acc = [], []
    # One BLAS/OpenMP thread: these fits are small, threads on a shared machine are several
    # times slower, and a fixed thread count keeps the floating-point sums reproducible.
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs max_iter chatter; the reference ignores it too
        for k in range(y_train.shape[1]):
            model = make_predictor(predictor, seed).fit(x_train, y_train[:, k])
            train_acc.append(float(np.mean(model.predict(x_train) == y_train[:, k])))
            test_acc.append(float(np.mean(model.predict(x_test) == y_test[:, k])))
    return train_acc, test_acc


def check_train_sizes(train_sizes: Any, available: int, name: str = "train_sizes") -> tuple[int, ...]:
    """A non-empty sequence of positive ints, none above ``available``."""
    if isinstance(train_sizes, (int, np.integer)):
        train_sizes = (train_sizes,)
    sizes = tuple(train_sizes) if isinstance(train_sizes, Sequence) else ()
    if not sizes or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2
                        for n in sizes):
        raise ValueError(f"{name}: expected a non-empty sequence of integers >= 2, got {train_sizes!r}")
    if max(sizes) > available:
        raise ValueError(
            f"{name}: {max(sizes)} training points requested but codes_train has {available} rows; "
            "pass more training points or smaller sizes"
        )
    return tuple(int(n) for n in sizes)


def size_scores(n: int, train_acc: list[float], test_acc: list[float]) -> dict[str, float]:
    """disentanglement_lib's score keys for one training size."""
    out = {
        f"{n}:mean_train_accuracy": float(np.mean(train_acc)),
        f"{n}:mean_test_accuracy": float(np.mean(test_acc)),
        f"{n}:min_train_accuracy": float(np.min(train_acc)),
        f"{n}:min_test_accuracy": float(np.min(test_acc)),
    }
    for k, (a, b) in enumerate(zip(train_acc, test_acc, strict=True)):
        out[f"{n}:train_accuracy_factor_{k}"] = a
        out[f"{n}:test_accuracy_factor_{k}"] = b
    return out


def downstream_task(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    *,
    predictor: str = "logistic_regression_cv",
    train_sizes: Sequence[int] = (10, 100, 1000, 10000),
    random_state: Any = 0,
) -> dict[str, float]:
    """Downstream-task accuracies of per-factor classifiers on the codes.

    Parameters
    ----------
    codes_train, factors_train : arrays (N, D), (N, K)
        Training points; size n uses the first n rows (N >= max(train_sizes)).
    codes_test, factors_test : arrays (M, D), (M, K)
        Test points (reference: 5,000), shared by all sizes.
    predictor : {"logistic_regression_cv", "logistic_regression_cv_multinomial",
        "gradient_boosting_classifier"}
        The classifier (see the module docstring for what is pinned).
    train_sizes : sequence of int
        Training sizes (reference ``[10, 100, 1000, 10000]``).
    random_state : int, np.random.RandomState or np.random.Generator
        Seed of the gradient-boosting classifier (the logistic regressions use none).

    Returns
    -------
    dict of accuracies (higher is better) under disentanglement_lib's keys.
    """
    predictor = check_predictor(predictor)
    ctr, ftr, cte, fte = check_train_test(codes_train, factors_train, codes_test, factors_test)
    sizes = check_train_sizes(train_sizes, len(ctr))
    seed = seed_of(random_state)
    ctr, cte = ctr.astype(np.float64, copy=False), cte.astype(np.float64, copy=False)
    scores: dict[str, float] = {}
    for n in sizes:
        constant = np.all(ftr[:n] == ftr[:1], axis=0)
        if constant.any():
            raise ValueError(
                f"factors_train: factor {int(np.flatnonzero(constant)[0])} has a single value in the "
                f"first {n} rows (train_sizes); a classifier needs two classes"
            )
        train_acc, test_acc = fit_accuracies(ctr[:n], ftr[:n], cte, fte, predictor, seed)
        scores.update(size_scores(n, train_acc, test_acc))
    return scores


downstream_task.higher_is_better = True


# ---------------------------------------------------------------------- evaluators
#: The study's training sizes (``downstream_task_*.gin``); the evaluators record those <= num_train.
TRAIN_SIZES = (10, 100, 1000, 10000)
#: evaluator ``downstream_<key>`` -> (predictor, what the records' spec says)
EVALUATOR_PREDICTORS = {
    "lr": ("logistic_regression_cv", "LogisticRegressionCV(Cs=10, cv=KFold(5)), one-vs-rest"),
    "gbt": ("gradient_boosting_classifier", "GradientBoostingClassifier()"),
}
#: the recorded parts of each size's scores
EVALUATOR_PARTS = ("mean_test_accuracy", "mean_train_accuracy", "min_test_accuracy")


def _evaluator(key: str) -> Callable[[EvalContext], list[dict]]:
    predictor, label = EVALUATOR_PREDICTORS[key]

    def evaluate(ctx: EvalContext) -> list[dict]:
        """Per training size <= num_train, the first n train points; all sizes on the test points."""
        sizes = tuple(n for n in TRAIN_SIZES if n <= ctx.num_train)
        if not sizes:
            raise ValueError(f"num_train: the downstream task's smallest training size is "
                             f"{TRAIN_SIZES[0]}, got num_train={ctx.num_train}")
        c_tr, f_tr = ctx.train_points()
        c_te, f_te = ctx.test_points()
        out = downstream_task(c_tr, f_tr, c_te, f_te, predictor=predictor, train_sizes=sizes,
                              random_state=ctx.random_state)
        spec = {"test_points": ctx.num_test, "predictor": label,
                "train_rows": "the first n train points"}
        return [ctx.record(f"downstream_{key}_{n}_{part}", out[f"{n}:{part}"], version="1",
                           points=n, **spec) for n in sizes for part in EVALUATOR_PARTS]

    return evaluate


for _key in EVALUATOR_PREDICTORS:
    register_evaluator(f"downstream_{_key}", needs=("factors", "encoder"), records=[
        Record(f"downstream_{_key}_{n}_{part}", higher_is_better=True,
               tolerance=0.05 if n <= 100 else 0.03)
        for n in TRAIN_SIZES for part in EVALUATOR_PARTS
    ])(_evaluator(_key))
