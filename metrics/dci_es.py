"""DCI-ES: DCI with explicitness (E) from loss-capacity curves, and size (S).

Eastwood, Nicolicioiu, von Kuegelgen, Kekic, Traeuble, Dittadi & Schoelkopf 2023, "DCI-ES: An
Extended Disentanglement Framework with Connections to Identifiability" (ICLR), as implemented by
andreinicolicioiu/DCI-ES, which is the reference:

* probes (``src/loss_capacity/train_model_random_forest.py``, ``train_test_random_forest`` with
  ``method='rf'``, called from ``src/train_probe.py`` with ``configs/random_forest``): per factor
  a ``RandomForestClassifier`` (a ``RandomForestRegressor`` for a factor the dataset marks as
  not discrete, on the label scaled to [0, 1]) with ``max_depth`` = the capacity,
  ``n_estimators=100``, ``max_leaf_nodes=None`` and ``random_state`` = the run's seed; its test
  ``score`` (accuracy, or R^2 for regression) and ``feature_importances_`` (the DCI importance
  matrix R); the capacities are ``configs/random_forest/config.yaml``'s depths
  1, 2, 3, 4, 8, 10, 12, 14, 16, 18, 20, 32;
* gathering (``src/simple_gather.py``): per factor the loss curve ``1 - test score`` over the
  depths (not log-scaled for random forests) gives an explicitness
  (``metrics/explitcitness.py``, :func:`dci_es_explicitness`); the score is the mean over
  factors; D, C and I are those of the probe with the largest mean test score
  (``informativeness_test``; first on ties), D and C with disentanglement_lib's formulas
  (``metrics/dci.py``, the same as :mod:`disbench.metrics.dci`); everything is averaged over
  the seeds ``0, 1`` (``num_seeds = 2``; the folder of seed s holds the run with
  ``random_state = 1 * s``).

Explicitness (``compute_explitcitness``): the curve is first replaced by its running minimum;
``E = 1 - 2 * area / ((max capacity - min capacity) * baseline_loss)`` with ``area`` the
trapezoidal area between the curve and **its own minimum loss** (the comment there says
"we assume l* = 0", but the code subtracts the curve's minimum). Hence a flat curve scores 1
whatever its level, a straight decline from the baseline to 0 scores 0, and a curve that stays
high for most of the capacity range goes negative (down to -1).

Baseline losses: ``simple_gather.py`` hard-codes them per dataset (``BASELINE_LOSSES``); they are
the chance-level error ``1 - 1/size`` of a classified factor and 1 for a regressed one (a
constant predictor has R^2 = 0). ``baseline_losses=None`` applies that rule to ``factor_sizes``
and ``discrete_factors``. ``discrete_factors=None`` classifies every factor; the reference's
datasets mark some factors as regression targets (``DISCRETE_FACTORS``, from
``InDomainGeneralizationBenchmark/.../load_dataset.py``).

Size: ``size = K / D`` (factors per code dimension). The reference repository computes no size
score (``metrics/``, ``src/simple_gather.py`` read); this is the ratio the issue asks for, taken
as the paper's S, whose text could not be checked here.

Not included: the paper's MLP and random-Fourier-feature probes (``src/loss_capacity/
train_model.py``, ``probing.py``), which train networks with their own schedules on a GPU; they
are left out rather than approximated.

Evaluator ``dci_es``: :func:`dci_es` with the reference's probes (:data:`EVALUATOR_PROBES`:
the 12 depths, 100 trees, seeds 0 and 1), fitted on the ``num_train`` train points and scored
on the ``num_test`` test points (10,000 and 5,000 by default). Factors are classified or
regressed as the reference's ``DISCRETE_FACTORS`` for dsprites, shapes3d, cars3d and the mpi3d
variants (when the factor count matches), all classified otherwise; baselines by the rule
above. Records: ``dci_es_explicitness``, ``dci_es_disentanglement``, ``dci_es_completeness``,
``dci_es_informativeness`` (``informativeness_test`` of the best probe: the mean test accuracy,
or R^2 for regressed factors), all higher is better, tolerance 0.03 (averages over two forests
of 100 trees and 12 depths: no binning steps); and ``dci_es_size`` (K / D; declared higher is
better, i.e. fewer code dimensions per factor, the more compact representation), tolerance 0:
it depends only on the shapes. Cost: 12 x K x 2 forests of 100 trees on the train points
(minutes on one core at 10,000 points).
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._validate import check_train_test
from .dci import completeness, disentanglement
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["BASELINE_LOSSES", "DISCRETE_FACTORS", "EVALUATOR_PROBES", "Probes", "dci_es",
           "dci_es_explicitness", "reference_discrete_factors"]

#: ``baseline_loss`` of ``src/simple_gather.py`` (data table).
BASELINE_LOSSES = {
    "mpi3d": (5.0 / 6, 5.0 / 6, 1.0, 1.0, 2.0 / 3, 1.0, 1.0),
    "cars3d": (1.0, 1.0, 182.0 / 183),
    "dsprites": (2.0 / 3, 1.0, 1.0, 1.0, 1.0),
}
#: ``_factor_discrete`` of the reference's ``RepresentationDataset`` (data table).
DISCRETE_FACTORS = {
    "dsprites": (True, False, False, False, False),
    "shapes3d": (False, False, False, False, True, False),
    "mpi3d": (True, True, False, False, True, False, False),
    "cars3d": (False, False, True),
}
DEPTHS = (1, 2, 3, 4, 8, 10, 12, 14, 16, 18, 20, 32)


def dci_es_explicitness(capacities: Any, losses: Any, *, baseline_loss: float) -> float:
    """Explicitness of one loss-capacity curve (``Explitcitness`` of the reference).

    Parameters
    ----------
    capacities : array (P,), strictly increasing, P >= 2
        Probe capacities (random-forest depths in the reference).
    losses : array (P,)
        Test loss of each probe (1 - accuracy or 1 - R^2).
    baseline_loss : float > 0
        Loss of a trivial predictor; scales the maximal area.

    Returns
    -------
    float <= 1; higher is better. See the module docstring for why flat curves score 1.
    """
    x = np.asarray(capacities, dtype=np.float64)
    y = np.asarray(losses, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
        raise ValueError(f"losses: expected two 1-D arrays of the same length >= 2 (capacities, "
                         f"losses), got shapes {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("losses: capacities and losses must be finite")
    if np.any(np.diff(x) <= 0):
        raise ValueError(f"capacities: must be strictly increasing, got {x.tolist()}")
    if not np.isfinite(baseline_loss) or baseline_loss <= 0:
        raise ValueError(f"baseline_loss: must be a positive number, got {baseline_loss!r}")
    y = np.minimum.accumulate(y)  # "the minimum loss achieved until that capacity"
    max_area = (x[-1] - x[0]) * float(baseline_loss)
    dy = 0.5 * (y[:-1] - y.min()) + 0.5 * (y[1:] - y.min())
    return float(1.0 - np.sum(2 * dy * np.diff(x) / max_area))


def _probe(x_tr, y_tr, x_te, y_te, discrete: bool, depth: int, n_estimators: int, seed: int,
           n_jobs: int | None) -> tuple[float, np.ndarray]:
    """One random-forest probe: (test score, |feature importances|)."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestClassifier if discrete else RandomForestRegressor
    model = cls(max_leaf_nodes=None, max_depth=depth, n_estimators=n_estimators,
                random_state=seed, n_jobs=n_jobs).fit(x_tr, y_tr)
    return float(model.score(x_te, y_te)), np.abs(model.feature_importances_)


def _check_factor_options(k: int, factor_sizes: Any, discrete_factors: Any, baseline_losses: Any):
    sizes = np.asarray(factor_sizes, dtype=np.int64).reshape(-1)
    if len(sizes) != k or np.any(sizes < 2):
        raise ValueError(f"factor_sizes: expected {k} sizes >= 2 (one per factor), got {factor_sizes!r}")
    discrete = np.ones(k, bool) if discrete_factors is None else np.asarray(discrete_factors, bool)
    if discrete.shape != (k,):
        raise ValueError(f"discrete_factors: expected {k} booleans, got {discrete_factors!r}")
    if baseline_losses is None:
        base = np.where(discrete, 1.0 - 1.0 / sizes, 1.0)
    else:
        base = np.asarray(baseline_losses, dtype=np.float64).reshape(-1)
        if base.shape != (k,) or not np.all(base > 0):
            raise ValueError(f"baseline_losses: expected {k} positive losses, got {baseline_losses!r}")
    return sizes, discrete, base


def _targets(factors: np.ndarray, sizes: np.ndarray, discrete: np.ndarray, k: int) -> np.ndarray:
    """Class labels, or the label scaled to [0, 1] in float32 as the reference's targets."""
    if discrete[k]:
        return factors[:, k]
    return (factors[:, k] / (sizes[k] - 1)).astype(np.float32)


def _one_seed(ctr, ftr, cte, fte, sizes, discrete, base, depths, n_estimators, seed, n_jobs):
    """Per-factor explicitness and (D, C, I) of the most informative depth for one seed."""
    k = ftr.shape[1]
    scores = np.zeros((len(depths), k))
    importances = np.zeros((len(depths), ctr.shape[1], k))
    for p, depth in enumerate(depths):
        for j in range(k):
            scores[p, j], importances[p, :, j] = _probe(
                ctr, _targets(ftr, sizes, discrete, j), cte, _targets(fte, sizes, discrete, j),
                bool(discrete[j]), depth, n_estimators, seed, n_jobs)
    per_factor = [dci_es_explicitness(depths, 1.0 - scores[:, j], baseline_loss=base[j])
                  for j in range(k)]
    best = int(np.argmax(scores.mean(axis=1)))
    r = importances[best]
    return per_factor, disentanglement(r), completeness(r), float(scores[best].mean())


def dci_es(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    *,
    factor_sizes: Sequence[int],
    baseline_losses: Sequence[float] | None = None,
    discrete_factors: Sequence[bool] | None = None,
    depths: Sequence[int] = DEPTHS,
    n_estimators: int = 100,
    seeds: Sequence[int] = (0, 1),
    n_jobs: int | None = None,
) -> dict[str, float]:
    """DCI-ES with the reference's random-forest probes.

    Parameters
    ----------
    codes_train, factors_train, codes_test, factors_test : arrays (N, D), (N, K), (M, D), (M, K)
        Probe training and test points; factors are integer labels.
    factor_sizes : sequence of K ints
        Number of values of each factor (for the baselines and the [0, 1] regression targets).
    baseline_losses : sequence of K floats or None
        None: ``1 - 1/size`` for classified factors, 1 for regressed ones (the reference's rule).
    discrete_factors : sequence of K bools or None
        Which factors are classified (None: all); see ``DISCRETE_FACTORS``.
    depths : strictly increasing ints
        Random-forest depths, the capacities (reference: 1 ... 32, 12 depths).
    n_estimators : int
        Trees per forest (reference 100).
    seeds : sequence of int
        Random-forest seeds; results are averaged over them (reference 0, 1).
    n_jobs : int or None
        Parallel trees (same numbers for any value).

    Returns
    -------
    dict with ``explicitness`` and ``explicitness_factor_{k}``, ``size``, ``disentanglement``,
    ``completeness`` and ``informativeness_test`` (of the best probe); all higher is better
    except ``size``, which describes the representation.
    """
    ctr, ftr, cte, fte = check_train_test(codes_train, factors_train, codes_test, factors_test)
    k, d = ftr.shape[1], ctr.shape[1]
    sizes, discrete, base = _check_factor_options(k, factor_sizes, discrete_factors, baseline_losses)
    depths = tuple(int(v) for v in depths)
    if len(depths) < 2 or any(b <= a for a, b in itertools.pairwise(depths)) or depths[0] < 1:
        raise ValueError(f"depths: need at least 2 strictly increasing depths >= 1, got {depths}")
    if not seeds:
        raise ValueError("seeds: pass at least one random-forest seed")
    runs = [_one_seed(ctr, ftr, cte, fte, sizes, discrete, base, depths, int(n_estimators),
                      int(s), n_jobs) for s in seeds]
    per_factor = np.mean([r[0] for r in runs], axis=0)
    out = {"explicitness": float(np.mean([np.mean(r[0]) for r in runs]))}
    out.update({f"explicitness_factor_{j}": float(v) for j, v in enumerate(per_factor)})
    out.update({"size": k / d, "disentanglement": float(np.mean([r[1] for r in runs])),
                "completeness": float(np.mean([r[2] for r in runs])),
                "informativeness_test": float(np.mean([r[3] for r in runs]))})
    return out


dci_es.higher_is_better = {"explicitness": True, "disentanglement": True, "completeness": True,
                           "informativeness_test": True}


# ---------------------------------------------------------------------- evaluator
@dataclass(frozen=True)
class Probes:
    """Random-forest probe settings (defaults: the reference's ``configs/random_forest``)."""

    depths: tuple[int, ...] = DEPTHS
    n_estimators: int = 100
    seeds: tuple[int, ...] = (0, 1)


#: The probes the ``dci_es`` evaluator fits.
EVALUATOR_PROBES = Probes()


def reference_discrete_factors(name: str, num_factors: int) -> tuple[bool, ...] | None:
    """The reference's classified/regressed marking of dataset ``name`` (None: not listed)."""
    kinds = DISCRETE_FACTORS.get("mpi3d" if name.startswith("mpi3d") else name)
    return kinds if kinds is not None and len(kinds) == num_factors else None


@register_evaluator("dci_es", needs=("factors", "encoder"), records=[
    Record("dci_es_explicitness", higher_is_better=True, tolerance=0.03),
    Record("dci_es_disentanglement", higher_is_better=True, tolerance=0.03),
    Record("dci_es_completeness", higher_is_better=True, tolerance=0.03),
    Record("dci_es_informativeness", higher_is_better=True, tolerance=0.03),
    Record("dci_es_size", higher_is_better=True, tolerance=0.0),
])
def _evaluate(ctx: EvalContext) -> list[dict]:
    """DCI-ES with random-forest probes fitted on the train points, scored on the test points."""
    c_tr, f_tr = ctx.train_points()
    c_te, f_te = ctx.test_points()
    sizes = tuple(int(s) for s in ctx.dataset.factor_sizes)
    name = str(getattr(ctx.dataset, "name", ""))
    discrete = reference_discrete_factors(name, len(sizes))
    probes = EVALUATOR_PROBES
    out = dci_es(c_tr, f_tr, c_te, f_te, factor_sizes=sizes, discrete_factors=discrete,
                 depths=probes.depths, n_estimators=probes.n_estimators, seeds=probes.seeds)
    spec = {"points": ctx.num_train, "test_points": ctx.num_test,
            "estimator": f"RandomForest(n_estimators={probes.n_estimators}) per factor, "
                         f"max_depth in {list(probes.depths)}, seeds {list(probes.seeds)}",
            "regressed_factors": [k for k, d in enumerate(discrete or ()) if not d]}
    parts = {"explicitness": "explicitness", "disentanglement": "disentanglement",
             "completeness": "completeness", "informativeness": "informativeness_test",
             "size": "size"}
    return [ctx.record(f"dci_es_{part}", out[key], version="1", **spec)
            for part, key in parts.items()]
