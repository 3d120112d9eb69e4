"""Which metrics a dataset can give: the one owner of the dataset x metric pairing.

Each evaluator declares what it needs (``disbench.metrics.needs(name)``, names of
:data:`disbench.metrics.registry.NEEDS`); of those, :data:`DATASET_NEEDS` come from the
dataset, and a dataset offers them by its kind (:data:`KIND_OFFERS`, keyed by
``disbench.datasets.contract.KINDS``), plus ``ood_pair`` when
``disbench.metrics.generation.OOD_PAIRS`` names it. A labelled set is not offered as a
one-factor ground truth: the factor metrics need ``sample_factors`` and
``sample_observations_from_factors`` of a full factor grid, which a label alone does not
make.

:func:`unmet` says why one pair cannot work; :func:`check_metrics` raises it for a run
(``disbench evaluate``, before the model is loaded), and the spec validator
(:mod:`disbench.sweeps.spec`) refuses such pairs before any training, naming the metric's
key and line. What a metric needs of the *model* (a decoder, a sequence model) is not
checked here.
"""
from __future__ import annotations

from collections.abc import Iterable

from disbench.errors import DisbenchError

#: the names of :data:`disbench.metrics.registry.NEEDS` that a dataset provides
DATASET_NEEDS = ("factors", "images", "labels", "sequence", "ood_pair")
#: what a dataset of each kind (``disbench.datasets.contract.KINDS``) offers of those;
#: ``ood_pair`` is offered by the datasets ``disbench.metrics.generation.OOD_PAIRS`` names
KIND_OFFERS: dict[str, frozenset[str]] = {
    "ground_truth": frozenset({"factors", "images"}),
    "labelled": frozenset({"labels", "images"}),
    "sequence": frozenset({"sequence", "images"}),
}


def unmet(dataset: str, metric: str) -> str | None:
    """Why ``metric`` cannot run on the registered dataset ``dataset`` (None: it can).

    An unknown metric, or a dataset kind :data:`KIND_OFFERS` does not know, is not refused
    here (the evaluator's own checks name those).
    """
    from disbench import datasets
    from disbench.metrics.generation import OOD_PAIRS
    from disbench.metrics.registry import EVALUATORS, NEEDS

    kind = getattr(datasets.spec(dataset), "kind", None)
    if kind not in KIND_OFFERS or metric not in EVALUATORS:
        return None
    offers = KIND_OFFERS[kind] | ({"ood_pair"} if dataset in OOD_PAIRS else set())
    lacking = sorted((EVALUATORS[metric].needs & set(DATASET_NEEDS)) - offers)
    if not lacking:
        return None
    what = "; ".join(NEEDS[n] for n in lacking)
    return (f"metric {metric!r} needs {what}, which dataset {dataset!r} "
            f"({kind.replace('_', '-')}) does not offer")


def check_metrics(dataset: str, metrics: Iterable[str], *, fix: str = "drop the metric",
                  where: str = "") -> None:
    """Raise a :class:`~disbench.errors.DisbenchError` for the first of ``metrics`` that
    ``dataset`` cannot give (see :func:`unmet`): ``"<where>: <why>; <fix>"``."""
    for metric in metrics:
        why = unmet(dataset, metric)
        if why is not None:
            raise DisbenchError(f"{where + ': ' if where else ''}{why}; {fix}")
