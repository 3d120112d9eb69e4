"""The MIG building blocks on a torch device (issue 8: MIG where the codes already are).

Same definitions as :mod:`disbench.metrics.discrete`, computed with torch so codes that live
on a GPU are discretised and counted there. Agreement with the numpy reference is by
construction, not approximate:

* bin edges depend only on each column's min, max and dtype, so they are computed by
  ``np.histogram_bin_edges`` on those two numbers (the same float arithmetic as
  ``np.histogram``), then labels come from ``torch.bucketize(..., right=True)``, which is
  ``np.digitize`` (``edges[i-1] <= x < edges[i]``) in the codes' own dtype;
* contingency tables are exact integer counts (``torch.bincount``); the MI sums run in
  float64. Only the order of floating-point summation differs from numpy.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["discrete_mutual_info_torch", "histogram_discretize_torch", "mig_matrix_torch"]


def histogram_discretize_torch(codes: torch.Tensor, num_bins: int = 20) -> torch.Tensor:
    """Bin labels 1..num_bins (int64, same device) of each column, as ``np.histogram`` edges."""
    mins = codes.min(dim=0).values.cpu().numpy()
    maxs = codes.max(dim=0).values.cpu().numpy()
    out = torch.empty(codes.shape, dtype=torch.int64, device=codes.device)
    for j in range(codes.shape[1]):  # one call per code dimension; no per-sample loop
        edges = np.histogram_bin_edges(np.array([mins[j], maxs[j]]), num_bins)
        edges = torch.as_tensor(edges[:-1].astype(mins.dtype), device=codes.device)
        out[:, j] = torch.bucketize(codes[:, j].contiguous(), edges, right=True)
    return out


def _encode_columns(labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    enc = torch.empty_like(labels)
    n_max = 1
    for j in range(labels.shape[1]):
        _, inv = torch.unique(labels[:, j], return_inverse=True)
        enc[:, j] = inv
        n_max = max(n_max, int(inv.max()) + 1)
    return enc, n_max


def discrete_mutual_info_torch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(Da, Db) float64 MI in nats between label columns, as ``sklearn`` ``mutual_info_score``."""
    n = a.shape[0]
    ea, na = _encode_columns(a)
    eb, nb = _encode_columns(b)
    da, db = ea.shape[1], eb.shape[1]
    base = (torch.arange(da, device=a.device) * na)[None, :] + ea
    # All (code, factor) joint tables in one bincount: index (d, a-value, factor j, b-value).
    flat = ((base * db)[:, :, None] + torch.arange(db, device=a.device)[None, None, :]) * nb \
        + eb[:, None, :]
    joint = torch.bincount(flat.reshape(-1), minlength=da * na * db * nb)
    joint = joint.reshape(da, na, db, nb).permute(0, 2, 1, 3).to(torch.float64)
    pa = joint.sum(dim=3, keepdim=True)
    pb = joint.sum(dim=2, keepdim=True)
    nz = joint > 0
    safe = torch.where(nz, joint, torch.ones_like(joint))
    outer = torch.where(nz, pa * pb, torch.ones_like(joint))
    terms = torch.where(nz, (safe / n) * (torch.log(safe) + np.log(n) - torch.log(outer)),
                        torch.zeros_like(joint))
    terms = torch.where(terms.abs() < np.finfo(np.float64).eps, torch.zeros_like(terms), terms)
    return terms.sum(dim=(2, 3)).clamp_min(0.0)


def mig_matrix_torch(codes: torch.Tensor, factors: Any, num_bins: int = 20
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(D, K) MI matrix and (K,) factor entropies, computed on ``codes``' device."""
    f = torch.as_tensor(np.asarray(factors), device=codes.device, dtype=torch.int64) \
        if not isinstance(factors, torch.Tensor) else factors.to(codes.device, torch.int64)
    m = discrete_mutual_info_torch(histogram_discretize_torch(codes, num_bins), f)
    h = torch.stack([discrete_mutual_info_torch(f[:, k:k + 1], f[:, k:k + 1])[0, 0]
                     for k in range(f.shape[1])])
    return m.cpu().numpy(), h.cpu().numpy()
