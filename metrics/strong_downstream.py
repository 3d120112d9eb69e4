"""Strong downstream task: generalisation of per-factor classifiers under a covariate shift.

As implemented by google-research/disentanglement_lib
``disentanglement_lib/evaluation/metrics/strong_downstream_task.py``
(``compute_strong_downstream_task``): for each training size

* a predictor per factor is fitted on the codes of random training points and scored on random
  test points (``"{n}:mean_train_accuracy"``, ``"{n}:mean_test_accuracy"``);
* for every target factor i, ``n_experiment`` times (``intervene``): another factor j is chosen
  uniformly, fixed to a uniformly chosen value v in the whole training set, and set to values
  other than v (uniform over the remaining values) in the test set; the observations of these
  intervened factors are rendered and encoded, a predictor of factor i is fitted on the
  intervened training codes and scored on the intervened test codes
  (``"{n}:mean_strong_train_accuracy"``, ``"{n}:mean_strong_test_accuracy"``: means over all
  factors and experiments);
* ``"{n}:strong_generalization_gap" = 1 - mean_strong_test_accuracy / mean_test_accuracy``
  (lower is better; it can be negative).

The reference has no study configuration (``num_train``, ``num_test``, ``n_experiment`` are
``gin.REQUIRED``); the defaults here are its unit test's (``strong_downstream_task_test.py``:
``num_train=[1000]``, ``num_test=1000``, ``n_experiment=2``, gradient boosting).

Deviations: the reference draws the interventions from NumPy's *global* generator
(``np.random.choice``), so its numbers are not reproducible; here they come from
``random_state``. All factors and interventions are drawn before rendering, and the
classifiers get one seed drawn from ``random_state`` (the reference's are unseeded).

Evaluator ``strong_downstream`` (sampler layer: it renders intervened factors, so it needs the
dataset's sampler): the reference unit test's sizes, 1,000 training and 1,000 test points (each
capped at the evaluation's ``num_train`` / ``num_test``, so ``num_train=500`` trains on 500),
``n_experiment=2`` and gradient boosting, every draw from the evaluation seed's stream
``"strong_downstream"``. Records: ``strong_downstream_mean_test_accuracy`` and
``strong_downstream_mean_strong_test_accuracy`` (higher is better; tolerance 0.03, accuracies
on 1,000 test points) and ``strong_downstream_generalization_gap`` (lower is better; tolerance
0.05, a ratio of two accuracies). The sizes used are in each record's spec. Cost: 3 K
gradient-boosting fits (K plain, 2 K intervened), about 5 minutes for dSprites on one shared CPU
core.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._sampling import encode_factors
from .downstream import check_predictor, check_train_sizes, fit_accuracies, make_predictor, seed_of
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["intervene", "strong_downstream_task"]


def intervene(
    f_train: np.ndarray, f_test: np.ndarray, target: int, sizes: Sequence[int], rng: Any
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The reference's ``intervene``: fix one non-target factor in train, shift it in test."""
    others = [j for j in range(len(sizes)) if j != target]
    factor = int(others[int(rng.randint(len(others)))])
    values = list(range(int(sizes[factor])))
    value = values.pop(int(rng.randint(len(values))))
    f_train, f_test = f_train.copy(), f_test.copy()
    f_train[:, factor] = value
    f_test[:, factor] = np.asarray(values)[rng.randint(len(values), size=len(f_test))]
    return f_train, f_test, factor, value


def _strong_accuracies(dataset, representation_fn, f_train, f_test, sizes, n_experiment, rng,
                       predictor, seed) -> tuple[list[float], list[float]]:
    runs = [(i, *intervene(f_train, f_test, i, sizes, rng)[:2])
            for i in range(len(sizes)) for _ in range(n_experiment)]
    tr = encode_factors(dataset, representation_fn, np.concatenate([r[1] for r in runs]), rng)
    te = encode_factors(dataset, representation_fn, np.concatenate([r[2] for r in runs]), rng)
    n, m = len(f_train), len(f_test)
    train_acc, test_acc = [], []
    for e, (i, ftr, fte) in enumerate(runs):
        x_tr, x_te = tr[e * n:(e + 1) * n], te[e * m:(e + 1) * m]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = make_predictor(predictor, seed).fit(x_tr, ftr[:, i])
        train_acc.append(float(np.mean(model.predict(x_tr) == ftr[:, i])))
        test_acc.append(float(np.mean(model.predict(x_te) == fte[:, i])))
    return train_acc, test_acc


def strong_downstream_task(
    dataset: Any,
    representation_fn: Callable[[np.ndarray], Any],
    random_state: Any,
    *,
    train_sizes: Sequence[int] = (1000,),
    num_test: int = 1000,
    n_experiment: int = 2,
    predictor: str = "gradient_boosting_classifier",
) -> dict[str, float]:
    """Strong downstream-task scores of a representation (see the module docstring).

    Parameters
    ----------
    dataset, representation_fn, random_state
        As :func:`disbench.metrics.factor_vae.factor_vae_score`; the interventions are drawn
        from ``random_state`` too.
    train_sizes, num_test, n_experiment, predictor
        Reference unit-test settings ``[1000]``, 1000, 2 and gradient boosting.

    Returns
    -------
    dict with ``"{n}:mean_train_accuracy"``, ``"{n}:mean_test_accuracy"``,
    ``"{n}:mean_strong_train_accuracy"``, ``"{n}:mean_strong_test_accuracy"`` and
    ``"{n}:strong_generalization_gap"``.
    """
    from disbench.errors import check_random_state

    predictor = check_predictor(predictor)
    ns = check_train_sizes(train_sizes, 2**62)
    for name, v in (("num_test", num_test), ("n_experiment", n_experiment)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: must be a positive integer, got {v!r}")
    sizes = [int(s) for s in dataset.factor_sizes]
    if len(sizes) < 2:
        raise ValueError("dataset: the strong downstream task needs at least 2 factors")
    rng = check_random_state(random_state)
    if isinstance(rng, np.random.Generator):  # intervene draws with RandomState's randint
        rng = np.random.RandomState(int(rng.integers(2**31 - 1)))
    seed = seed_of(rng)
    scores: dict[str, float] = {}
    for n in ns:
        f_train = np.asarray(dataset.sample_factors(n, rng), dtype=np.int64)
        f_test = np.asarray(dataset.sample_factors(num_test, rng), dtype=np.int64)
        c_train = encode_factors(dataset, representation_fn, f_train, rng)
        c_test = encode_factors(dataset, representation_fn, f_test, rng)
        train_acc, test_acc = fit_accuracies(c_train, f_train, c_test, f_test, predictor, seed)
        strong_train, strong_test = _strong_accuracies(
            dataset, representation_fn, f_train, f_test, sizes, int(n_experiment), rng, predictor, seed)
        scores[f"{n}:mean_train_accuracy"] = float(np.mean(train_acc))
        scores[f"{n}:mean_test_accuracy"] = float(np.mean(test_acc))
        scores[f"{n}:mean_strong_train_accuracy"] = float(np.mean(strong_train))
        scores[f"{n}:mean_strong_test_accuracy"] = float(np.mean(strong_test))
        scores[f"{n}:strong_generalization_gap"] = 1.0 - float(np.mean(strong_test)) / float(np.mean(test_acc))
    return scores


# By key suffix (keys start with the training size).
strong_downstream_task.higher_is_better = {
    "mean_test_accuracy": True,
    "mean_strong_test_accuracy": True,
    "strong_generalization_gap": False,
}


#: The evaluator's training and test sizes (the reference unit test's), capped by the options.
EVALUATOR_POINTS = 1000


@register_evaluator("strong_downstream", needs=("factors", "encoder"), records=[
    Record("strong_downstream_mean_test_accuracy", higher_is_better=True, tolerance=0.03),
    Record("strong_downstream_mean_strong_test_accuracy", higher_is_better=True, tolerance=0.03),
    Record("strong_downstream_generalization_gap", higher_is_better=False, tolerance=0.05),
])
def _evaluate(ctx: EvalContext) -> list[dict]:
    """The strong downstream task on min(1000, num_train) / min(1000, num_test) points."""
    n = min(EVALUATOR_POINTS, ctx.num_train)
    m = min(EVALUATOR_POINTS, ctx.num_test)
    out = strong_downstream_task(ctx.dataset, ctx.representation_fn, ctx.rng("strong_downstream"),
                                 train_sizes=(n,), num_test=m, n_experiment=2)
    spec = {"points": n, "test_points": m, "n_experiment": 2,
            "predictor": "GradientBoostingClassifier()"}
    keys = {"mean_test_accuracy": "mean_test_accuracy",
            "mean_strong_test_accuracy": "mean_strong_test_accuracy",
            "generalization_gap": "strong_generalization_gap"}
    return [ctx.record(f"strong_downstream_{name}", out[f"{n}:{key}"], version="1", **spec)
            for name, key in keys.items()]
