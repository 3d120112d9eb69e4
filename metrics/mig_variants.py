"""MIG-sup, DCIMIG and JEMMIG: the information-based MIG variants of Zaidi et al.'s review.

As implemented by ubisoft/ubisoft-laforge-disentanglement-metrics (Zaidi, Boilard, Gagnon &
Carbonneau 2020, "Measuring Disentanglement: A Review of Metrics"), ``src/metrics/mig_sup.py``,
``src/metrics/dcimig.py`` and ``src/metrics/jemmig.py``, with the defaults of
``src/experiments/config.py`` (``continuous_factors=True``, ``nb_bins=10``):

* MIG-sup (Li, Murkute, Gyawali & Wang 2020, ICLR): per *code*, the gap between its largest and
  second largest normalised MI with the factors, averaged over codes;
* DCIMIG (Sepliarskaia, Kiseleva & de Rijke 2019, arXiv:1910.05587): per code the MI gap (bits,
  unnormalised) is credited to the code's best factor; per factor the largest gap credited to it;
  the sum over factors divided by the sum of the factors' entropies;
* JEMMIG (Do & Tran 2020, ICLR): per factor f with best code c* (largest MI) and second-best MI,
  ``1 - (H(f, c*) - I(f; c*) + I(f; c_2)) / (H(f) + log2(num_bins))``, averaged over factors.

Quirks of that code, reproduced and stated:

* preprocessing (``utils.get_bin_index``): codes, and with ``continuous_factors=True`` also the
  factors, are scaled to [0, 1] per column with ``sklearn.preprocessing.minmax_scale`` (called
  here, so the floating-point values are the reference's) and binned with
  ``np.digitize(x, np.linspace(0, 1, num_bins + 1)[:-1])``: ``num_bins`` equal bins, 1 at the
  top edge in the last bin. Levels of 3-, 6- and 15-valued factors fall exactly on bin edges,
  where ``np.digitize`` puts them in the bin that starts there: with 10 bins a 3-valued factor
  lands in bins (1, 6, 10), a 6-valued one in (1, 3, 5, 7, 9, 10), and a 15-valued one shares
  bins between neighbouring values;
* mutual information and entropies are pyitlib's maximum-likelihood (plug-in) estimates in
  **bits**; MIG-sup's normalised MI is ``information_mutual_normalised(factor, code,
  norm_factor='Y')``, i.e. I / H(**code**), not I / H(factor) as in Chen et al.'s MIG and
  disentanglement_lib; a constant code (H = 0) therefore gives NaN, as pyitlib's 0 / 0;
* JEMMIG's best code is ``np.argsort(mi)[-1]``; its normaliser uses ``log2(num_bins)`` even with
  ``continuous_factors=False``; every score is a ratio, so only JEMMIG depends on the base;
* pyitlib treats the value -1 as missing data; binned values are >= 1 and disbench factor labels
  are indices >= 0, so this never applies here.

Evaluators ``mig_sup``, ``dcimig`` and ``jemmig`` (one record each, of the same name, higher is
better): the function with ``config.py``'s defaults (``continuous_factors=True``,
``num_bins=10``) on the ``num_train`` train points (10,000 by default). Tolerance 0.02, as MIG:
binned estimates that move in small steps when a point changes bin.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ._validate import check_codes, check_factors, check_num_bins, check_same_n
from .discrete import discrete_entropy, discrete_mutual_info
from .registry import Record, register_evaluator

if TYPE_CHECKING:
    from .evaluators import EvalContext

__all__ = ["dcimig", "jemmig", "mig_sup", "minmax_bin"]

LN2 = np.log(2.0)


def minmax_bin(x: np.ndarray, num_bins: int) -> np.ndarray:
    """``get_bin_index(minmax_scale(x), num_bins)`` of the reference, column by column."""
    from sklearn.preprocessing import minmax_scale

    scaled = minmax_scale(x)
    return np.digitize(scaled, np.linspace(0, 1, num_bins + 1)[:-1], right=False).astype(int)


def _prepare(codes: Any, factors: Any, continuous_factors: bool, num_bins: Any):
    """Validated, binned (codes, factors) and the (K, D) MI matrix in bits."""
    num_bins = check_num_bins(num_bins)
    c = check_codes(codes, "codes")
    f = check_factors(factors, "factors", allow_continuous=bool(continuous_factors))
    check_same_n(c, "codes", f, "factors")
    if continuous_factors:
        f = minmax_bin(f, num_bins)
    c = minmax_bin(c, num_bins)
    mi = discrete_mutual_info(f, c) / LN2  # (K, D), bits
    return c, f, mi, num_bins


def mig_sup(codes: Any, factors: Any, *, continuous_factors: bool = True, num_bins: int = 10) -> float:
    """MIG-sup of ``codes`` (N, D) against ``factors`` (N, K); higher is better.

    ``continuous_factors=True`` (reference default) min-max scales and bins the factors too;
    ``num_bins`` = 10 (``config.py``). Needs K >= 2 (a gap between two factors).
    """
    c, f, mi, _ = _prepare(codes, factors, continuous_factors, num_bins)
    if f.shape[1] < 2:
        raise ValueError("factors: MIG-sup needs at least 2 factors (a gap between two)")
    with np.errstate(divide="ignore", invalid="ignore"):  # constant code: 0 / 0, as pyitlib
        nmi = mi / (discrete_entropy(c) / LN2)[None, :]
    top = np.sort(nmi, axis=0)
    return float(np.mean(top[-1] - top[-2]))


def dcimig(codes: Any, factors: Any, *, continuous_factors: bool = True, num_bins: int = 10) -> float:
    """DCIMIG of ``codes`` (N, D) against ``factors`` (N, K); higher is better.

    Defaults as ``config.py``. Needs K >= 2.
    """
    _, f, mi, _ = _prepare(codes, factors, continuous_factors, num_bins)
    if f.shape[1] < 2:
        raise ValueError("factors: DCIMIG needs at least 2 factors (a gap between two)")
    top = np.sort(mi, axis=0)
    credited = np.zeros_like(mi)
    cols = np.arange(mi.shape[1])
    credited[np.argmax(mi, axis=0), cols] = top[-1] - top[-2]
    return float(np.sum(credited.max(axis=1)) / np.sum(discrete_entropy(f) / LN2))


def _joint_entropy_bits(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in joint entropy (bits) of two label vectors."""
    _, counts = np.unique(np.stack([a, b], axis=1), axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def jemmig(codes: Any, factors: Any, *, continuous_factors: bool = True, num_bins: int = 10) -> float:
    """JEMMIG of ``codes`` (N, D) against ``factors`` (N, K); higher is better.

    Defaults as ``config.py``. Needs D >= 2 (a gap between two codes).
    """
    c, f, mi, num_bins = _prepare(codes, factors, continuous_factors, num_bins)
    if c.shape[1] < 2:
        raise ValueError("codes: JEMMIG needs at least 2 code dimensions (a gap between two)")
    h_f = discrete_entropy(f) / LN2
    scores = []
    for k in range(f.shape[1]):
        order = np.argsort(mi[k])
        best, second = order[-1], np.sort(mi[k])[-2]
        unnormalised = _joint_entropy_bits(f[:, k], c[:, best]) - mi[k, best] + second
        scores.append(1 - unnormalised / (h_f[k] + np.log2(num_bins)))
    return float(np.mean(scores))


mig_sup.higher_is_better = True
dcimig.higher_is_better = True
jemmig.higher_is_better = True


def _evaluator(name: str, fn: Callable[..., float]) -> Callable[[EvalContext], list[dict]]:
    def evaluate(ctx: EvalContext) -> list[dict]:
        """The score of the train points with ``config.py``'s defaults."""
        codes, factors = ctx.train_points()
        return [ctx.record(name, fn(codes, factors), version="1", points=ctx.num_train,
                           discretisation="codes and factors: minmax_scale, 10 equal bins "
                                          "(continuous_factors=True); entropies in bits")]

    return evaluate


for _name, _fn in (("mig_sup", mig_sup), ("dcimig", dcimig), ("jemmig", jemmig)):
    register_evaluator(_name, records=[Record(_name, higher_is_better=True, tolerance=0.02)],
                       needs=("factors", "encoder"))(_evaluator(_name, _fn))
