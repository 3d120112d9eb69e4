"""Histogram discretisation and discrete mutual information (the MIG / modularity building blocks).

Definitions follow disentanglement_lib (Locatello et al. 2019, "Challenging Common Assumptions
in the Unsupervised Learning of Disentangled Representations", ICML), ``histogram_discretizer``
and ``discrete_mutual_info``:

* each code dimension is cut into ``num_bins`` equal-width bins spanning its min..max on the
  evaluated data: the edges are ``np.histogram(x, num_bins)[1]`` and labels are
  ``np.digitize(x, edges[:-1])`` (so labels run 1..num_bins, the maximum falls in the last bin);
* mutual information is the plug-in estimate on the contingency table in nats, the quantity
  ``sklearn.metrics.mutual_info_score`` computes; entropy is ``I(y; y)``.

Only codes are discretised; factors are used as the integer labels they are.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import check_codes, check_num_bins, to_numpy

__all__ = ["DISCRETISATION", "discrete_entropy", "discrete_mutual_info", "histogram_discretize",
           "mutual_info"]

#: How the evaluators discretise codes, as recorded in their records' spec.
DISCRETISATION = "histogram: 20 equal-width bins per code dimension on its min..max (train codes)"


def histogram_discretize(codes: Any, num_bins: int = 20) -> np.ndarray:
    """Discretise each column into ``num_bins`` equal-width bins on its own min..max.

    Parameters
    ----------
    codes : array (N, D)
        Real-valued codes. float32 input is binned in float32, exactly as ``np.histogram``
        would on that array.
    num_bins : int
        Number of bins (disentanglement_lib default 20).

    Returns
    -------
    int64 array (N, D) of bin labels in 1..num_bins.
    """
    num_bins = check_num_bins(num_bins)
    x = check_codes(codes, "codes")
    out = np.empty(x.shape, dtype=np.int64)
    # One call per dimension (D is small); no per-sample loop.
    for j in range(x.shape[1]):
        col = x[:, j]
        edges = np.histogram(col, num_bins)[1]
        out[:, j] = np.digitize(col, edges[:-1])
    return out


def _encode_columns(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Map each column's values to 0..n_j-1; return codes and the largest n_j."""
    enc = np.empty(labels.shape, dtype=np.int64)
    n_max = 1
    for j in range(labels.shape[1]):
        _, inv = np.unique(labels[:, j], return_inverse=True)
        enc[:, j] = inv.reshape(-1)
        n_max = max(n_max, int(inv.max()) + 1)
    return enc, n_max


def _as_label_matrix(x: Any, name: str) -> np.ndarray:
    arr = to_numpy(x, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array of labels (samples x columns), got shape {arr.shape}")
    return arr


def discrete_mutual_info(a: Any, b: Any) -> np.ndarray:
    """Mutual information (nats) between every column of ``a`` and every column of ``b``.

    Parameters
    ----------
    a : array (N, Da) of discrete labels (e.g. discretised codes)
    b : array (N, Db) of discrete labels (e.g. factors)

    Returns
    -------
    float64 array (Da, Db); entry (i, j) equals
    ``sklearn.metrics.mutual_info_score(b[:, j], a[:, i])``.
    """
    a = _as_label_matrix(a, "a")
    b = _as_label_matrix(b, "b")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"b: has {b.shape[0]} samples but a has {a.shape[0]}")
    n = a.shape[0]
    ea, na = _encode_columns(a)
    eb, nb = _encode_columns(b)
    da, db = ea.shape[1], eb.shape[1]
    # Joint counts of all Da columns with one column of b in a single bincount.
    base = (np.arange(da, dtype=np.int64) * na)[None, :] + ea  # (N, Da)
    log_n = np.log(n)
    out = np.zeros((da, db), dtype=np.float64)
    for j in range(db):
        flat = (base * nb + eb[:, j : j + 1]).ravel()
        joint = np.bincount(flat, minlength=da * na * nb).reshape(da, na, nb).astype(np.float64)
        pa = joint.sum(axis=2, keepdims=True)  # (Da, na, 1) row counts
        pb = joint.sum(axis=1, keepdims=True)  # (Da, 1, nb) column counts
        nz = joint > 0
        safe = np.where(nz, joint, 1.0)
        outer = np.where(nz, pa * pb, 1.0)
        terms = np.where(nz, (safe / n) * (np.log(safe) + log_n - np.log(outer)), 0.0)
        # Same clean-up as scikit-learn: tiny terms are rounding noise, MI is never negative.
        terms = np.where(np.abs(terms) < np.finfo(np.float64).eps, 0.0, terms)
        out[:, j] = np.clip(terms.sum(axis=(1, 2)), 0.0, None)
    return out


def mutual_info(x: Any, y: Any) -> float:
    """Mutual information (nats) of two 1-D label arrays (``sklearn`` ``mutual_info_score``)."""
    return float(discrete_mutual_info(np.asarray(x).reshape(-1, 1), np.asarray(y).reshape(-1, 1))[0, 0])


def discrete_entropy(labels: Any) -> np.ndarray:
    """Entropy (nats) of each column of a label matrix, ``I(y; y)`` as disentanglement_lib."""
    y = _as_label_matrix(labels, "labels")
    enc, _ = _encode_columns(y)
    n = y.shape[0]
    h = np.empty(y.shape[1], dtype=np.float64)
    for j in range(y.shape[1]):
        p = np.bincount(enc[:, j]) / n
        p = p[p > 0]
        h[j] = float(-(p * np.log(p)).sum())
    return h
