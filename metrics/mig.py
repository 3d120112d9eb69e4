"""Mutual Information Gap (MIG).

Chen, Li, Grosse & Duvenaud 2018, "Isolating Sources of Disentanglement in Variational
Autoencoders" (NeurIPS), Eq. 5, in the discrete form of disentanglement_lib
(Locatello et al. 2019, ``compute_mig``):

    MIG = 1/K sum_k (I(c_(1); v_k) - I(c_(2); v_k)) / H(v_k)

where c_(1), c_(2) are the code dimensions with the largest and second largest mutual
information with factor v_k. Codes are discretised into 20 equal-width histogram bins per
dimension (:func:`disbench.metrics.discrete.histogram_discretize`); factors are used as the
given integer labels. MI and entropy are plug-in estimates in nats.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._validate import check_codes, check_factors, check_num_bins, check_same_n
from .discrete import DISCRETISATION, discrete_entropy, discrete_mutual_info, histogram_discretize
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["mig", "mig_matrix"]


def mig_matrix(codes: Any, factors: Any, *, num_bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Return the (D, K) MI matrix of discretised codes vs factors and the (K,) factor entropies."""
    num_bins = check_num_bins(num_bins)
    on_device = _on_accelerator(codes)
    # Validation needs the values; codes on an accelerator are checked there, not copied.
    c = _check_device_codes(codes, num_bins) if on_device else \
        check_codes(codes, "codes", min_samples=num_bins)
    f = check_factors(factors, "factors")
    check_same_n(c, "codes", f, "factors")
    if c.shape[1] < 2:
        raise ValueError("codes: MIG needs at least 2 code dimensions (it is a gap between two)")
    if on_device:
        from .discrete_torch import mig_matrix_torch

        return mig_matrix_torch(c, f, num_bins)
    m = discrete_mutual_info(histogram_discretize(c, num_bins), f)
    return m, discrete_entropy(f)


def _on_accelerator(x: Any) -> bool:
    """A torch tensor on a non-CPU device (MIG then bins and counts on that device)."""
    return type(x).__module__.startswith("torch") and getattr(x, "device", None) is not None \
        and x.device.type != "cpu"


def _check_device_codes(codes: Any, num_bins: int) -> Any:
    import torch

    if codes.ndim != 2:
        raise ValueError(f"codes: expected a 2-D array (samples x dimensions), got shape "
                         f"{tuple(codes.shape)}")
    if codes.shape[0] < num_bins:
        raise ValueError(f"codes: {codes.shape[0]} samples is fewer than num_bins={num_bins}")
    if not bool(torch.isfinite(codes).all()):
        raise ValueError("codes: contains NaN or inf")
    return codes if codes.is_floating_point() else codes.double()


def mig(codes: Any, factors: Any, *, num_bins: int = 20) -> float:
    """Mutual Information Gap of ``codes`` (N, D) with respect to integer ``factors`` (N, K).

    Parameters
    ----------
    codes : array (N, D), numpy or torch
        Representations (posterior means in the reference protocol). A torch tensor on a
        GPU is discretised and counted on that device (:mod:`disbench.metrics.discrete_torch`),
        with the same bin edges and counts as the numpy path.
    factors : array (N, K) of integers
        Ground-truth factor labels; every factor must take at least two values.
    num_bins : int
        Histogram bins per code dimension (reference default 20).

    Returns
    -------
    float in [0, 1]; higher is better. Per factor (largest - second largest MI) / H(factor),
    averaged over factors.
    """
    m, h = mig_matrix(codes, factors, num_bins=num_bins)
    top = np.sort(m, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / h))



@register_evaluator("mig", records=[Record("mig", higher_is_better=True, tolerance=0.02)],
                    needs=("factors", "encoder"))
def _evaluate(ctx: EvalContext) -> list[dict]:
    """``mig`` on the train points."""
    codes, factors = ctx.train_points()
    return [ctx.record("mig", mig(codes, factors), version="1", points=ctx.num_train,
                       discretisation=DISCRETISATION)]
