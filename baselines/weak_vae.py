"""Group-VAE and ML-VAE on pairs of observations: weak supervision (Locatello et al. 2020,
"Weakly-Supervised Disentanglement Without Compromises", ICML).

Each row of a :class:`~disbench.baselines.batches.PairBatch` holds two observations x1, x2
that share all but a few factors. Both are encoded; for the latent dimensions taken to be
*shared*, each posterior is replaced by an aggregate of the two, and each observation is
reconstructed from a sample of its (partly aggregated) posterior:

    loss = 0.5 (R(x1) + R(x2)) + beta * 0.5 (KL(q~(z|x1)) + KL(q~(z|x2))),

R the batch mean of the negative log-likelihood, KL the batch mean of the KL to N(0, I).

Aggregation (``group_vae``; disentanglement_lib's docstring cites arXiv:1809.02383): the
average of the two Gaussians' means and variances, mean = (m1 + m2) / 2, var = (v1 + v2) / 2.
Aggregation (``ml_vae``; its docstring cites ML-VAE, arXiv:1705.08841): var = 2 v1 v2 /
(v1 + v2), mean = (m1 / v1 + m2 / v2) var / 2.

Which dimensions are shared (``aggregation``):

``"argmax"`` (default: Ada-GVAE / Ada-ML-VAE, the paper's adaptive rule)
    delta_j = v1/v2 + (m2 - m1)^2 / v2 - 1 + log v2 - log v1 per dimension (twice the KL
    between the two posteriors); the dimensions are binned into two bins of equal width
    between the row's min and max of delta (TF's ``histogram_fixed_width_bins`` with 2
    bins: bin = clip(floor(2 (delta - min) / (max - min)), 0, 1)); bin 1 (delta at or above
    the middle) keeps its own posterior, bin 0 is averaged. When all deltas of a row are
    equal (max = min; TF documents this range as invalid) every dimension is averaged.
``"labels"`` (GVAE / ML-VAE with the changed factors known)
    latent dimension j (j < K) keeps its own posterior when factor j changed in the pair;
    every other dimension is averaged. disentanglement_lib passes only the index of one
    changed factor (one-hot over the latent dimensions), exact for k = 1; with the full
    ``changed`` mask this is the same rule for any k. Needs latent_dim >= K.

Reference: google-research/disentanglement_lib, ``disentanglement_lib/methods/weak/
weak_vae.py`` (``GroupVAEBase``, ``MLVae``, ``aggregate_labels``, ``aggregate_argmax``,
``discretize_in_bins``, ``compute_kl``), read here; pairs: :mod:`disbench.datasets.pairs`.
The weak study's sweep file is not in disentanglement_lib; ``beta`` defaults to 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from disbench.baselines import objectives as obj
from disbench.baselines.base import ModelHparams, NonNegative
from disbench.baselines.batches import PairBatch
from disbench.baselines.registry import register
from disbench.baselines.vae import GaussianVAE
from disbench.errors import DisbenchError

AGGREGATIONS = ("argmax", "labels")


@dataclass
class WeakVAEHparams(ModelHparams):
    """beta: KL weight (1); aggregation: "argmax" (adaptive, Ada-*) or "labels"."""

    beta: NonNegative = 1.0
    aggregation: str = "argmax"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.aggregation not in AGGREGATIONS:
            raise DisbenchError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, "
                                f"got {self.aggregation!r}")


def pair_divergence(m1: torch.Tensor, lv1: torch.Tensor, m2: torch.Tensor,
                    lv2: torch.Tensor) -> torch.Tensor:
    """disentanglement_lib's ``compute_kl``: 2 KL(N(m1, v1) || N(m2, v2)) per dimension."""
    v1, v2 = lv1.exp(), lv2.exp()
    return v1 / v2 + (m2 - m1).pow(2) / v2 - 1 + lv2 - lv1


def adaptive_keep(delta: torch.Tensor) -> torch.Tensor:
    """Bin 1 of two equal-width bins between each row's min and max of ``delta`` (B, D):
    the dimensions that keep their own posterior (the rest are averaged)."""
    d = delta.detach()
    lo, hi = d.min(-1, keepdim=True).values, d.max(-1, keepdim=True).values
    bins = torch.floor(2.0 * (d - lo) / (hi - lo)).clamp(0.0, 1.0)  # NaN when hi == lo
    return bins == 1.0


def labels_keep(changed: torch.Tensor, latent_dim: int) -> torch.Tensor:
    """Dimension j < K keeps its own posterior when factor j changed (B, D)."""
    k = changed.shape[-1]
    if k > latent_dim:
        raise DisbenchError(f"aggregation='labels' needs latent_dim >= the {k} factors, "
                            f"got {latent_dim}")
    pad = torch.zeros(*changed.shape[:-1], latent_dim - k, dtype=torch.bool,
                      device=changed.device)
    return torch.cat([changed.bool(), pad], dim=-1)


def average_gaussians(m1, lv1, m2, lv2):
    """Group-VAE: mean 0.5 (m1 + m2), log of the mean variance 0.5 (v1 + v2)."""
    return 0.5 * m1 + 0.5 * m2, torch.log(0.5 * lv1.exp() + 0.5 * lv2.exp())


def product_gaussians(m1, lv1, m2, lv2):
    """ML-VAE: var 2 v1 v2 / (v1 + v2), mean (m1 / v1 + m2 / v2) var / 2."""
    v1, v2 = lv1.exp(), lv2.exp()
    var = 2 * v1 * v2 / (v1 + v2)
    return (m1 / v1 + m2 / v2) * var * 0.5, torch.log(var)


class _WeakVAE(GaussianVAE):
    """Shared by group_vae and ml_vae: they differ in :meth:`combine` only."""

    Hparams = WeakVAEHparams
    batch_kind = "pairs"

    @property
    def beta(self) -> float:
        return self.hparams.beta

    def combine(self, m1, lv1, m2, lv2):
        raise NotImplementedError

    def keep_mask(self, m1, lv1, m2, lv2, changed):
        """(B, D) bool: the dimensions that keep their own posterior."""
        if self.hparams.aggregation == "labels":
            return labels_keep(changed, m1.shape[-1])
        return adaptive_keep(pair_divergence(m1, lv1, m2, lv2))

    def aggregated(self, batch: PairBatch):
        """(mean, logvar) of each observation's posterior after aggregation."""
        x1, x2, changed = batch
        mean, logvar = self.posterior(torch.cat([x1, x2]))
        mean, logvar = mean.float(), logvar.float()
        n = x1.shape[0]
        m1, m2, lv1, lv2 = mean[:n], mean[n:], logvar[:n], logvar[n:]
        new_m, new_lv = self.combine(m1, lv1, m2, lv2)
        keep = self.keep_mask(m1, lv1, m2, lv2, changed)
        return ((torch.where(keep, m1, new_m), torch.where(keep, lv1, new_lv)),
                (torch.where(keep, m2, new_m), torch.where(keep, lv2, new_lv)), keep)

    # `step` unused here: the Model.loss interface
    def loss(self, batch: PairBatch, step: int) -> dict[str, torch.Tensor]:  # noqa: ARG002
        (a1, b1), (a2, b2), keep = self.aggregated(batch)
        z1, z2 = obj.reparameterize(a1, b1), obj.reparameterize(a2, b2)
        recon = (0.5 * -self.log_likelihood(batch.x1, z1).mean()
                 + 0.5 * -self.log_likelihood(batch.x2, z2).mean())
        kl = 0.5 * self.kl(z1, a1, b1).mean() + 0.5 * self.kl(z2, a2, b2).mean()
        return {"loss": recon + self.beta * kl, "recon": recon, "kl": kl,
                "shared_dims": (~keep).float().sum(-1).mean().detach(),
                "elbo": -(recon + kl).detach()}


@register("group_vae")
class GroupVAE(_WeakVAE):
    """Group-VAE on pairs; ``aggregation="argmax"`` is Ada-GVAE."""

    def combine(self, m1, lv1, m2, lv2):
        return average_gaussians(m1, lv1, m2, lv2)


@register("ml_vae")
class MLVAE(_WeakVAE):
    """ML-VAE on pairs; ``aggregation="argmax"`` is Ada-ML-VAE."""

    def combine(self, m1, lv1, m2, lv2):
        return product_gaussians(m1, lv1, m2, lv2)
