"""AnnealedVAE (Burgess et al. 2018, "Understanding disentangling in beta-VAE", eq. (8)).

The KL term is pulled towards a capacity C that grows during training:

    loss = -E_q log p(x|z) + gamma * |KL(q(z|x) || N(0, I)) - C(step)|,
    C(step) = min(c_max, c_max * step / iteration_threshold),

with KL the batch mean of the per-example KL. This is disentanglement_lib's
``AnnealedVAE`` (google-research/disentanglement_lib,
``disentanglement_lib/methods/unsupervised/vae.py``: ``regularizer`` returns
``gamma * abs(kl_loss - c)`` with ``c = anneal(c_max, global_step, iteration_threshold)``,
``anneal`` = ``minimum(c_max, c_max * step / iteration_threshold)``), read here. The step is
TF's global step when the loss is computed, i.e. 0 at the first update, as disbench's step
index.

Defaults: disentanglement_lib's unsupervised study (``config/unsupervised_study_v1/
sweep.py``, read here) fixes ``gamma = 1000`` and ``iteration_threshold = 100000`` and sweeps
``c_max`` in {5, 10, 25, 50, 75, 100}; 25 (one of those values) is the default here. The
paper's own per-dataset values were not read.

The capacity is computed by float32 tensor operations on the step
(:func:`disbench.baselines.schedules.step_tensor`), so the loss accepts the step as a Python
int (single runs) or as a device tensor (an ensemble step, a captured CUDA graph).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from disbench.baselines.base import ModelHparams, NonNegative, PositiveInt
from disbench.baselines.registry import register
from disbench.baselines.schedules import step_tensor
from disbench.baselines.vae import GaussianVAE
from disbench.errors import DisbenchError


@dataclass
class AnnealedVAEHparams(ModelHparams):
    """gamma: weight of |KL - C| (1000); c_max: final capacity in nats (25);
    iteration_threshold: steps over which C grows from 0 to c_max (100000)."""

    gamma: NonNegative = 1000.0
    c_max: NonNegative = 25.0
    iteration_threshold: PositiveInt = 100_000

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.iteration_threshold < 1:
            raise DisbenchError(
                f"iteration_threshold must be >= 1, got {self.iteration_threshold}")


def capacity(c_max: Any, step: Any, iteration_threshold: int) -> torch.Tensor:
    """disentanglement_lib's ``anneal``: min(c_max, c_max * step / iteration_threshold)."""
    s = step_tensor(step)
    return torch.minimum(c_max * s / iteration_threshold, c_max * torch.ones_like(s))


@register("annealed_vae")
class AnnealedVAE(GaussianVAE):
    """AnnealedVAE: the KL pulled towards a linearly growing capacity."""

    Hparams = AnnealedVAEHparams
    loss_depends_on_step = True

    @property
    def beta(self) -> float:
        return 0.0  # the KL enters through the capacity term only

    def regularizer(self, x, z, mean, logvar, step):  # noqa: ARG002 (GaussianVAE.regularizer hook)
        hp = self.hparams
        kl = self.kl(z, mean, logvar).mean()
        c = capacity(hp.c_max, step, hp.iteration_threshold).to(kl.device)
        return {"capacity_term": hp.gamma * (kl - c).abs()}, {"capacity": c}
