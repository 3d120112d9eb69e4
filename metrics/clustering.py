"""Clustering of the codes against the labels: adjusted Rand index of a k-means partition.

For the clustering experiment of Mathieu et al. 2019 ("Disentangling Disentanglement in
Variational Autoencoders", ICML; the pinwheel runs of iffsid/disentangling-disentanglement
``src/experimental_settings/clustering.sh``), which the authors judge from plots of the
encodings (``src/vis.py``) and do not score. disbench scores it: the codes are partitioned
by k-means with ``k`` = the number of classes of a factor (scikit-learn ``KMeans``,
Lloyd's algorithm, k-means++ initialisation, ``n_init=10`` restarts, an explicit
``random_state``), and the partition is compared with the factor's labels by the adjusted
Rand index (Hubert & Arabie 1985; ``sklearn.metrics.adjusted_rand_score``): 1 for the same
partition up to a renaming of the clusters, about 0 for an unrelated one (it can be
negative). Higher is better.

The evaluator ``clustering`` records ``kmeans_ari``: the mean over the dataset's factors of
the ARI of that factor (one factor, the arm, for ``pinwheel``), on the ``num_train``
evaluation codes, with the evaluation seed as the k-means ``random_state``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._validate import check_codes, check_factors, check_same_n
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["kmeans_ari", "kmeans_labels"]

#: k-means restarts (scikit-learn's default before 1.4 changed it to "auto"; pinned)
N_INIT = 10


def kmeans_labels(codes: Any, n_clusters: int, *, random_state: int = 0,
                  n_init: int = N_INIT) -> np.ndarray:
    """The k-means cluster index (N,) of each code (N, D) (scikit-learn ``KMeans``)."""
    from sklearn.cluster import KMeans

    c = check_codes(codes, "codes").astype(np.float64)
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) \
            or not 2 <= n_clusters <= len(c):
        raise ValueError(f"n_clusters must be an integer in [2, {len(c)}] (the number of "
                         f"codes), got {n_clusters!r}")
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
        raise ValueError(f"random_state must be an int seed, got {random_state!r}")  # noqa: TRY004
    km = KMeans(n_clusters=int(n_clusters), n_init=int(n_init), random_state=int(random_state))
    return km.fit_predict(c).astype(np.int64)


def kmeans_ari(codes: Any, labels: Any, *, n_clusters: int | None = None,
               random_state: int = 0, n_init: int = N_INIT) -> float:
    """Adjusted Rand index of the k-means partition of ``codes`` against ``labels``.

    Parameters
    ----------
    codes : array (N, D)
    labels : array (N,) or (N, 1) of integer class labels
    n_clusters : int, optional
        ``k``; default the number of distinct labels.
    random_state : int
        Seed of the k-means initialisation.
    n_init : int
        k-means restarts (the best inertia is kept).

    Returns
    -------
    float in [-1, 1]; 1 for a partition equal to the labels up to renaming.
    """
    from sklearn.metrics import adjusted_rand_score

    y = np.asarray(labels)
    y = check_factors(y[:, None] if y.ndim == 1 else y, "labels")
    if y.shape[1] != 1:
        raise ValueError(f"labels must be one label per code (N,) or (N, 1), got {y.shape}")
    c = check_codes(codes, "codes")
    check_same_n(c, "codes", y, "labels")
    k = len(np.unique(y)) if n_clusters is None else n_clusters
    pred = kmeans_labels(c, k, random_state=random_state, n_init=n_init)
    return float(adjusted_rand_score(y[:, 0], pred))


@register_evaluator("clustering",
                    records=[Record("kmeans_ari", higher_is_better=True, tolerance=0.05)],
                    needs=("factors", "encoder"))
def _evaluate(ctx: EvalContext) -> list[dict]:
    """``kmeans_ari``: mean over factors of the ARI of k-means (k = the factor's size)."""
    codes, factors = ctx.train_points()
    sizes = [int(s) for s in ctx.dataset.factor_sizes]
    scores = [kmeans_ari(codes, factors[:, j], n_clusters=k, random_state=ctx.random_state)
              for j, k in enumerate(sizes)]
    return [ctx.record("kmeans_ari", float(np.mean(scores)), version="1",
                       points=ctx.num_train, n_init=N_INIT, clusters=sizes)]
