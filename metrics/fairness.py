"""Unfairness of downstream classifiers under interventions on a sensitive factor.

Locatello, Abbati, Rainforth, Bauer, Schoelkopf & Bachem 2019, "On the Fairness of Disentangled
Representations" (NeurIPS), Sec. 4, as implemented by google-research/disentanglement_lib
``disentanglement_lib/evaluation/metrics/fairness.py`` (``compute_fairness``) with the study
settings ``config/fairness_study_v1/metric_configs/fairness.gin`` (``num_train=10000``,
``num_test_points_per_class=100``, ``predictor.predictor_fn=@gradient_boosting_classifier``):

* per target factor i a predictor is fitted on the codes of ``num_train`` random points;
* per sensitive factor j != i, ``num_test_points_per_class`` factor vectors are drawn once and,
  for every value c of factor j, set to c, rendered, encoded and classified; the counts of
  predicted classes (rows) per sensitive value (columns) give the total-variation distances of
  each sensitive value's prediction distribution to the overall one; ``mean_fairness[i, j]`` is
  their mean weighted by the class counts, ``max_fairness[i, j]`` their maximum
  (``inter_group_fairness``, computed in float32 as the reference);
* ``compute_scores_dict`` reports every (i, j) and the mean / max over sensitive and target
  factors in both orders, for both matrices. The paper's score is
  ``"mean_fairness:mean_pred:mean_sens"``. All are unfairness: lower is better.

Deviations: all factor vectors are drawn first (training set, then the test sets in the order
(i, j) the reference visits them), then rendered and encoded in chunks; for a dataset whose
observations do not use the random state this is the reference's stream of draws. The reference
fits ``GradientBoostingClassifier()`` unseeded; here its seed is drawn from ``random_state``
after all factors.

Evaluator ``fairness`` (sampler layer: it renders intervened factors, so it needs the dataset's
sampler): :func:`fairness` with the study settings, ``num_train`` = the evaluation's
``num_train`` (10,000 by default, as ``fairness.gin``), 100 test points per sensitive value and
gradient boosting, every draw from the evaluation seed's stream ``"fairness"``. Records, lower
is better (unfairness): ``fairness`` = ``"mean_fairness:mean_pred:mean_sens"`` (the paper's
score) and ``fairness_max`` = ``"max_fairness:mean_pred:mean_sens"`` (the largest distance of a
sensitive value instead of the class-weighted mean). Tolerance 0.03: total-variation distances
of 100 predictions per value, averaged over K (K - 1) pairs. Cost: K gradient-boosting fits
(one tree per class and stage: dSprites' 40 orientations make 4,000 trees) on the train points;
about 4 minutes for dSprites at ``num_train=1000`` on one shared CPU core, roughly ten times that
at the study's 10,000.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ._sampling import encode_factors
from .downstream import check_predictor, make_predictor, seed_of
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["compute_scores_dict", "fairness", "inter_group_fairness"]


def inter_group_fairness(counts: np.ndarray) -> tuple[float, float]:
    """Mean (class-weighted) and max TV distance of each sensitive class to the overall mix."""
    overall = np.sum(counts, axis=1, dtype=np.float32)
    overall /= overall.sum()
    normalized = np.array(counts, dtype=np.float32)
    per_class = np.sum(counts, axis=0)
    normalized /= np.expand_dims(per_class, 0)
    tv = np.sum(np.abs(normalized - np.expand_dims(overall, 1)), 0) / 2.0
    mean = tv * per_class
    mean /= per_class.sum()
    return float(np.sum(mean)), float(np.amax(tv))


def compute_scores_dict(metric: np.ndarray, prefix: str) -> dict[str, float]:
    """The reference's score dictionary of a (K, K) matrix (diagonal ignored)."""
    k = metric.shape[0]
    off = ~np.eye(k, dtype=bool)
    result = {f"{prefix}:pred{i}:sens{j}": float(metric[i, j])
              for i in range(k) for j in range(k) if i != j}
    rows = [metric[i][off[i]] for i in range(k)]
    cols = [metric[:, j][off[:, j]] for j in range(k)]
    row_mean, row_max = [float(np.mean(r)) for r in rows], [float(np.amax(r)) for r in rows]
    col_mean, col_max = [float(np.mean(c)) for c in cols], [float(np.amax(c)) for c in cols]
    for i in range(k):
        result[f"{prefix}:pred{i}:mean_sens"], result[f"{prefix}:pred{i}:max_sens"] = row_mean[i], row_max[i]
    for j in range(k):
        result[f"{prefix}:sens{j}:mean_pred"], result[f"{prefix}:sens{j}:max_pred"] = col_mean[j], col_max[j]
    # The reference's names: "<how over sens>_sens:<how over pred>_pred" aggregates the column
    # scores, "<how over pred>_pred:<how over sens>_sens" the row scores.
    result[f"{prefix}:mean_sens:mean_pred"] = float(np.mean(col_mean))
    result[f"{prefix}:mean_sens:max_pred"] = float(np.mean(col_max))
    result[f"{prefix}:max_sens:mean_pred"] = float(np.amax(col_mean))
    result[f"{prefix}:max_sens:max_pred"] = float(np.amax(col_max))
    result[f"{prefix}:mean_pred:mean_sens"] = float(np.mean(row_mean))
    result[f"{prefix}:mean_pred:max_sens"] = float(np.mean(row_max))
    result[f"{prefix}:max_pred:mean_sens"] = float(np.amax(row_mean))
    result[f"{prefix}:max_pred:max_sens"] = float(np.amax(row_max))
    return result


def _check_sizes(num_train: Any, num_test_points_per_class: Any) -> None:
    for name, v in (("num_train", num_train), ("num_test_points_per_class", num_test_points_per_class)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 2:
            raise ValueError(f"{name}: must be an integer >= 2, got {v!r}")


def fairness(
    dataset: Any,
    representation_fn: Callable[[np.ndarray], Any],
    random_state: Any,
    *,
    num_train: int = 10000,
    num_test_points_per_class: int = 100,
    predictor: str = "gradient_boosting_classifier",
) -> dict[str, float]:
    """Unfairness scores of a representation on a ground-truth dataset (lower is better).

    Parameters
    ----------
    dataset
        Ground-truth dataset (``factor_sizes``, ``sample_factors``,
        ``sample_observations_from_factors``).
    representation_fn : callable
        uint8 observations (n, C, H, W) -> codes (n, D).
    random_state : int, np.random.RandomState or np.random.Generator
        Explicit randomness.
    num_train, num_test_points_per_class, predictor
        Study settings 10,000, 100 and gradient boosting (see
        :func:`disbench.metrics.downstream.make_predictor` for the predictors).

    Returns
    -------
    dict of ``mean_fairness:*`` and ``max_fairness:*`` scores (``compute_scores_dict``).
    """
    from disbench.errors import check_random_state

    predictor = check_predictor(predictor)
    _check_sizes(num_train, num_test_points_per_class)
    rng = check_random_state(random_state)
    sizes = [int(s) for s in dataset.factor_sizes]
    k, n = len(sizes), int(num_test_points_per_class)
    if k < 2:
        raise ValueError("dataset: fairness needs at least 2 factors (a target and a sensitive one)")
    f_train = np.asarray(dataset.sample_factors(num_train, rng), dtype=np.int64)
    pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
    originals = [np.asarray(dataset.sample_factors(n, rng), dtype=np.int64) for _ in pairs]
    seed = seed_of(rng)
    blocks = []
    for (_, j), orig in zip(pairs, originals, strict=True):
        block = np.repeat(orig[None], sizes[j], axis=0)  # (size_j, n, K): value c in block c
        block[:, :, j] = np.arange(sizes[j])[:, None]
        blocks.append(block.reshape(-1, k))
    codes_train = encode_factors(dataset, representation_fn, f_train, rng)
    codes_test = encode_factors(dataset, representation_fn, np.concatenate(blocks), rng)
    return _scores(codes_train, f_train, codes_test, pairs, sizes, n, predictor, seed)


def _scores(codes_train, f_train, codes_test, pairs, sizes, n, predictor, seed) -> dict[str, float]:
    import warnings

    k = len(sizes)
    mean_f, max_f = np.zeros((k, k)), np.zeros((k, k))
    starts = np.cumsum([0] + [sizes[j] * n for _, j in pairs])
    for i in range(k):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = make_predictor(predictor, seed).fit(codes_train, f_train[:, i])
        for p, (pi, j) in enumerate(pairs):
            if pi != i:
                continue
            pred = model.predict(codes_test[starts[p]:starts[p + 1]]).reshape(sizes[j], n)
            counts = np.stack([np.bincount(pred[c], minlength=sizes[i]) for c in range(sizes[j])], 1)
            mean_f[i, j], max_f[i, j] = inter_group_fairness(counts)
    scores = compute_scores_dict(mean_f, "mean_fairness")
    scores.update(compute_scores_dict(max_f, "max_fairness"))
    return scores


fairness.higher_is_better = False


@register_evaluator("fairness", needs=("factors", "encoder"), records=[
    Record("fairness", higher_is_better=False, tolerance=0.03),
    Record("fairness_max", higher_is_better=False, tolerance=0.03),
])
def _evaluate(ctx: EvalContext) -> list[dict]:
    """Unfairness of GBT predictors trained on num_train points (stream "fairness")."""
    out = fairness(ctx.dataset, ctx.representation_fn, ctx.rng("fairness"),
                   num_train=ctx.num_train, num_test_points_per_class=100)
    spec = {"points": ctx.num_train, "test_points_per_class": 100,
            "predictor": "GradientBoostingClassifier()"}
    return [ctx.record("fairness", out["mean_fairness:mean_pred:mean_sens"], version="1", **spec),
            ctx.record("fairness_max", out["max_fairness:mean_pred:mean_sens"], version="1",
                       **spec)]
