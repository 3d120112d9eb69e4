"""What a model's ``loss(batch, step)`` takes, by its ``batch_kind``.

``"images"``
    a float tensor (B, C, H, W) in [0, 1] (every unsupervised model);
``"pairs"``
    a :class:`PairBatch`: two observations per row that share all factors but those of
    ``changed`` (weak supervision, :mod:`disbench.baselines.weak_vae`);
``"labelled"``
    a :class:`LabelledBatch`: a batch of unlabelled images and a batch of labelled ones
    with their (labeller-processed) factor labels (semi-supervision,
    :mod:`disbench.baselines.semi_supervised`).

The trainer builds them (:mod:`disbench.run.batches`); tests build them by hand.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

BATCH_KINDS = ("images", "pairs", "labelled")


class PairBatch(NamedTuple):
    """x1, x2: (B, C, H, W) floats in [0, 1]; changed: bool (B, K), True for each factor
    in which the two observations of a row differ."""

    x1: torch.Tensor
    x2: torch.Tensor
    changed: torch.Tensor


class LabelledBatch(NamedTuple):
    """x: unlabelled (B, C, H, W); x_labelled: (B_l, C, H, W); labels: float32 (B_l, F),
    one column per observed factor, the factor's class (0 .. size - 1) after the
    labeller."""

    x: torch.Tensor
    x_labelled: torch.Tensor
    labels: torch.Tensor


__all__ = ["BATCH_KINDS", "LabelledBatch", "PairBatch"]
