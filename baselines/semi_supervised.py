"""Semi-supervised VAEs with a few labels (Locatello et al. 2020, "Disentangling Factors of
Variation Using Few Labels", ICLR): ``s2_vae``, ``s2_factor_vae``, ``s2_dip_vae``,
``s2_beta_tcvae`` and the fully supervised baseline ``supervised_vae``.

Each step sees a :class:`~disbench.baselines.batches.LabelledBatch`: an unlabelled batch x,
on which the unsupervised model's own loss is computed, and labelled examples x_l with
labels y (one column per observed factor). The posterior means r = mu(x_l) are tied to the
labels by a supervised loss (``supervised_loss``), weighted by gamma_sup after an annealer:

    loss = unsupervised loss(x) + annealer(gamma_sup, step) * supervised(r, y).

The first F dimensions of r (F observed factors) stand for the factors (``cov`` uses all).
The losses (N labelled examples, s_j the number of values of factor j):

``l2``
    sum_ij (b r_ij - y_ij)^2 with a learned scale b (initialised at 1); with
    ``l2_learn_scale=False``, sum_ij (sigmoid(r_ij) - y_ij / s_j)^2;
``xent``
    sum_ij of the sigmoid cross-entropy of logits r_ij against y_ij / s_j;
``cov``
    sum of squares of the off-diagonal entries of the (D, F) cross-covariance (batch
    mean) of the centred r and the centred y;
``embed``
    each value of factor j has a learned 1-d embedding e_j (with ``embed_use_order``,
    e_jv = slope_j v + bias_j); logits -((r_ij - e_jv) sigma)^2 over the values v; the
    softmax cross-entropy against y_ij, averaged over i, summed over j. sigma is learned
    (``embed_sigma=None``) or fixed.

Annealers of gamma_sup (``annealer``, ``anneal_steps`` = their ``iteration_threshold``):
``fixed`` (gamma), ``anneal`` (min(gamma, gamma step / T)), ``fine_tune`` (gamma min(1,
max(0, step - T)): 0 up to T, gamma after).

Reference: google-research/disentanglement_lib, ``disentanglement_lib/methods/
semi_supervised/semi_supervised_vae.py`` (``S2BetaVAE``, ``S2FactorVAE``, ``S2DIPVAE``,
``S2BetaTCVAE``, ``SupervisedVAE``, ``supervised_regularizer_l2``/``_xent``/``_cov``/
``_embed``, ``fixed_annealer``, ``annealed_annealer``, ``fine_tune_annealer``), read here.
The learned variables of ``l2`` and ``embed`` start as ``tf.get_variable`` starts them there
(b at 1; embedding, sigma, slope and bias glorot-uniform: U(-sqrt(3/s_j), sqrt(3/s_j)) for
an embedding of s_j values, U(-sqrt(3), sqrt(3)) for the scalars). Where the reference
differs, we say so:

- with ``learn_scale=False`` the reference subtracts a (N, 1, F) tensor from a (N, F) one,
  broadcasting over all pairs of examples; here the evident per-example difference;
- ``S2FactorVAE`` optimises only the encoder and decoder variables (``var_list``), so b and
  the embeddings stay at their initial values there; disbench does the same for
  ``s2_factor_vae`` (it is what the study trained) and trains them in the other models,
  which minimise over every variable as the reference does.

Defaults: the unsupervised weights are those of disbench's unsupervised models;
``gamma_sup=4``, ``supervised_loss="xent"`` and ``annealer="fixed"`` are the values of
disentanglement_lib's test config (``config/tests/methods/semi_supervised/train_test.gin``);
the study's own sweep file is not in disentanglement_lib and ``anneal_steps`` (100000) and
``embed_sigma`` (learned) are not sourced. ``factor_sizes`` is set by the trainer to the
label sizes after the labeller (:mod:`disbench.datasets.labellers`); its default is dSprites'.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from disbench.baselines import objectives as obj
from disbench.baselines.base import ModelHparams, NonNegative, Positive, PositiveInt
from disbench.baselines.batches import LabelledBatch
from disbench.baselines.dip_vae import _DIPVAE
from disbench.baselines.factor_vae import FactorVAE, FactorVAEHparams
from disbench.baselines.registry import register
from disbench.baselines.schedules import step_tensor
from disbench.baselines.tcvae import BetaTCVAE, BetaTCVAEHparams
from disbench.baselines.vae import BetaVAE, BetaVAEHparams, GaussianVAE
from disbench.errors import DisbenchError
from torch import nn

SUPERVISED_LOSSES = ("l2", "xent", "cov", "embed")
ANNEALERS = ("fixed", "anneal", "fine_tune")
DSPRITES_SIZES = (3, 6, 40, 32, 32)


@dataclass
class SupervisionHparams(ModelHparams):
    """supervised_loss: l2, xent, cov or embed; factor_sizes: values of each labelled
    factor (set by the trainer); l2_learn_scale, embed_sigma (None: learned),
    embed_use_order: options of the losses."""

    supervised_loss: str = "xent"
    factor_sizes: tuple[PositiveInt, ...] = DSPRITES_SIZES
    l2_learn_scale: bool = True
    embed_sigma: Positive | None = None
    embed_use_order: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.supervised_loss not in SUPERVISED_LOSSES:
            raise DisbenchError(f"supervised_loss must be one of {', '.join(SUPERVISED_LOSSES)},"
                                f" got {self.supervised_loss!r}")
        self.factor_sizes = tuple(int(s) for s in self.factor_sizes)
        if not self.factor_sizes or min(self.factor_sizes) < 1:
            raise DisbenchError(f"factor_sizes must be positive, got {self.factor_sizes}")
        if self.supervised_loss != "cov" and len(self.factor_sizes) > self.latent_dim:
            raise DisbenchError(f"{self.supervised_loss} needs latent_dim >= the "
                                f"{len(self.factor_sizes)} labelled factors, got {self.latent_dim}")


@dataclass
class AnnealedSupervisionHparams(SupervisionHparams):
    """gamma_sup: weight of the supervised loss (4); annealer: fixed, anneal or
    fine_tune; anneal_steps: the annealer's iteration threshold (100000)."""

    gamma_sup: NonNegative = 4.0
    annealer: str = "fixed"
    anneal_steps: PositiveInt = 100_000

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.annealer not in ANNEALERS:
            raise DisbenchError(f"annealer must be one of {', '.join(ANNEALERS)}, "
                                f"got {self.annealer!r}")
        if self.anneal_steps < 0:
            raise DisbenchError(f"anneal_steps must be >= 0, got {self.anneal_steps}")


def anneal(gamma: Any, step: Any, annealer: str, threshold: int) -> Any:
    """gamma_sup after disentanglement_lib's annealer at ``step`` (a float32 tensor step)."""
    if annealer == "fixed":
        return gamma
    s = step_tensor(step)
    if annealer == "anneal":
        return torch.minimum(gamma * s / max(threshold, 1), gamma * torch.ones_like(s))
    return gamma * (s - threshold).clamp(0.0, 1.0)


# -- the supervised losses ---------------------------------------------------------------------
def l2_loss(r: torch.Tensor, y: torch.Tensor, scale: torch.Tensor | None,
            sizes: torch.Tensor) -> torch.Tensor:
    """2 * tf.nn.l2_loss: the sum of squares (learned scale, or sigmoid vs y / sizes)."""
    f = y.shape[-1]
    if scale is not None:
        return (r[:, :f] * scale - y).pow(2).sum()
    return (torch.sigmoid(r[:, :f]) - y / sizes).pow(2).sum()


def xent_loss(r: torch.Tensor, y: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Summed sigmoid cross-entropy of the first F dimensions against y / sizes."""
    f = y.shape[-1]
    return F.binary_cross_entropy_with_logits(r[:, :f], y / sizes, reduction="sum")


def cov_loss(r: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum of squares of the off-diagonal cross-covariance entries (D, F)."""
    rc, yc = r - r.mean(0), y - y.mean(0)
    cov = (rc.unsqueeze(2) * yc.unsqueeze(1)).mean(0)
    n = min(cov.shape)
    diag = torch.arange(n, device=cov.device)
    off = cov.pow(2).sum() - cov[diag, diag].pow(2).sum()
    return off


def embed_loss(r: torch.Tensor, y: torch.Tensor, embeddings: list[torch.Tensor],
               sigma: Any) -> torch.Tensor:
    """Per factor: softmax cross-entropy of -((r_j - e_j) sigma)^2 (batch mean); summed."""
    total = r.new_zeros(())
    for j, e in enumerate(embeddings):
        logits = -((r[:, j:j + 1] - e) * sigma).pow(2)
        total = total + F.cross_entropy(logits, y[:, j].long())
    return total


def _glorot(n: int) -> nn.Parameter:
    """tf.get_variable's default initialiser for a vector of ``n`` (or a scalar, n = 0)."""
    fans = 2 * max(n, 1)
    shape = (n,) if n else ()
    return nn.Parameter(torch.empty(shape).uniform_(-math.sqrt(6 / fans), math.sqrt(6 / fans)))


class Supervision(nn.Module):
    """The supervised loss of the hyperparameters, with its learned variables (if any)."""

    def __init__(self, hp: SupervisionHparams) -> None:
        super().__init__()
        self.kind = hp.supervised_loss
        self.register_buffer("sizes", torch.tensor(hp.factor_sizes, dtype=torch.float32),
                             persistent=False)
        self.fixed_sigma = hp.embed_sigma
        if self.kind == "l2" and hp.l2_learn_scale:
            self.scale = nn.Parameter(torch.ones(()))
        if self.kind == "embed":
            if hp.embed_use_order:
                self.slope = nn.ParameterList([_glorot(0) for _ in hp.factor_sizes])
                self.bias = nn.ParameterList([_glorot(0) for _ in hp.factor_sizes])
            else:
                self.embedding = nn.ParameterList([_glorot(s) for s in hp.factor_sizes])
            if hp.embed_sigma is None:
                self.sigma = _glorot(1)
        self.order = hp.embed_use_order

    def embeddings(self) -> list[torch.Tensor]:
        if not self.order:
            return list(self.embedding)
        return [torch.arange(int(s), dtype=torch.float32, device=self.sizes.device) * a + b
                for s, a, b in zip(self.sizes.tolist(), self.slope, self.bias, strict=True)]

    def forward(self, r: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if y.shape[-1] != len(self.sizes):
            raise DisbenchError(f"the labels have {y.shape[-1]} factors but factor_sizes "
                                f"{len(self.sizes)}; set factor_sizes to the label sizes")
        if self.kind == "l2":
            return l2_loss(r, y, getattr(self, "scale", None), self.sizes)
        if self.kind == "xent":
            return xent_loss(r, y, self.sizes)
        if self.kind == "cov":
            return cov_loss(r, y)
        sigma = self.sigma if self.fixed_sigma is None else self.fixed_sigma
        return embed_loss(r, y, self.embeddings(), sigma)


class _SemiSupervised:
    """Mixin: the unsupervised model's loss on x plus the annealed supervised loss.
    List it before the model class."""

    batch_kind = "labelled"
    label_sizes_hparam = "factor_sizes"

    def __init__(self, hparams: Any = None) -> None:
        super().__init__(hparams)
        self.supervision = Supervision(self.hparams)

    @property
    def step_dependent(self) -> bool:
        return super().step_dependent or self.hparams.annealer != "fixed"

    def supervised_terms(self, terms: dict[str, torch.Tensor], batch: LabelledBatch,
                         step: Any) -> dict[str, torch.Tensor]:
        hp = self.hparams
        sup = self.supervision(self.posterior(batch.x_labelled)[0].float(), batch.labels)
        gamma = anneal(hp.gamma_sup, step, hp.annealer, hp.anneal_steps)
        out = dict(terms)
        out["loss"] = terms["loss"] + gamma * sup
        out["supervised"] = sup.detach()
        out["gamma_sup"] = torch.as_tensor(gamma, dtype=torch.float32, device=sup.device).detach()
        return out

    def loss(self, batch: LabelledBatch, step: Any) -> dict[str, torch.Tensor]:
        return self.supervised_terms(super().loss(batch.x, step), batch, step)


@dataclass
class S2VAEHparams(AnnealedSupervisionHparams, BetaVAEHparams):
    """beta-VAE's beta (4) and the supervision's settings."""


@register("s2_vae")
class S2VAE(_SemiSupervised, BetaVAE):
    """Semi-supervised beta-VAE: recon + beta KL + gamma_sup sup (``S2BetaVAE``)."""

    Hparams = S2VAEHparams


@dataclass
class S2BetaTCVAEHparams(AnnealedSupervisionHparams, BetaTCVAEHparams):
    """beta-TCVAE's beta, dataset_size, tc_estimator and the supervision's settings."""


@register("s2_beta_tcvae")
class S2BetaTCVAE(_SemiSupervised, BetaTCVAE):
    """Semi-supervised beta-TCVAE: ELBO + (beta - 1) TC + gamma_sup sup (``S2BetaTCVAE``)."""

    Hparams = S2BetaTCVAEHparams


@dataclass
class S2DIPVAEHparams(AnnealedSupervisionHparams):
    """lambda_od (10), lambda_d_factor (lambda_d = lambda_d_factor * lambda_od; 10) and
    dip_type ("i" or "ii"), as the reference's ``S2DIPVAE``."""

    lambda_od: NonNegative = 10.0
    lambda_d_factor: NonNegative = 10.0
    dip_type: str = "i"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dip_type not in ("i", "ii"):
            raise DisbenchError(f"dip_type must be i or ii, got {self.dip_type!r}")


@register("s2_dip_vae")
class S2DIPVAE(_SemiSupervised, _DIPVAE):
    """Semi-supervised DIP-VAE-I/II: ELBO + DIP penalty + gamma_sup sup (``S2DIPVAE``)."""

    Hparams = S2DIPVAEHparams

    def covariance(self, mean, logvar):
        if self.hparams.dip_type == "i":
            return obj.dip_i_covariance(mean)
        return obj.dip_ii_covariance(mean, logvar)

    def regularizer(self, x, z, mean, logvar, step):  # noqa: ARG002 (GaussianVAE.regularizer hook)
        off, diag = obj.dip_penalties(self.covariance(mean.float(), logvar.float()))
        hp = self.hparams
        lambda_d = hp.lambda_d_factor * hp.lambda_od
        return {"dip_term": hp.lambda_od * off + lambda_d * diag}, {
            "dip_offdiag": off, "dip_diag": diag}


@dataclass
class S2FactorVAEHparams(AnnealedSupervisionHparams, FactorVAEHparams):
    """FactorVAE's gamma and discriminator settings and the supervision's settings."""


@register("s2_factor_vae")
class S2FactorVAE(_SemiSupervised, FactorVAE):
    """Semi-supervised FactorVAE: ELBO + gamma TC + gamma_sup sup (``S2FactorVAE``).

    As the reference, the supervised loss's own variables are not optimised (see the module
    docstring)."""

    Hparams = S2FactorVAEHparams

    def model_parameters(self) -> Iterator[nn.Parameter]:
        return (p for n, p in self.named_parameters()
                if not n.startswith(("discriminator.", "supervision.")))

    def main_terms(self, batch, step):
        terms, z = super().main_terms(batch.x, step)
        return self.supervised_terms(terms, batch, step), z


@dataclass
class SupervisedVAEHparams(SupervisionHparams):
    """The supervised loss's settings (no KL, no gamma_sup: weight 1)."""


@register("supervised_vae")
class SupervisedVAE(GaussianVAE):
    """The fully supervised baseline (``SupervisedVAE``): the encoder learns from the
    supervised loss on the labelled examples only; the decoder reconstructs the unlabelled
    batch from detached codes: recon(x | stop_gradient(z)) + sup(mu(x_l), y)."""

    Hparams = SupervisedVAEHparams
    batch_kind = "labelled"
    label_sizes_hparam = "factor_sizes"

    def __init__(self, hparams: SupervisedVAEHparams | None = None) -> None:
        super().__init__(hparams)
        self.supervision = Supervision(self.hparams)

    # `step` unused here: the Model.loss interface
    def loss(self, batch: LabelledBatch, step: Any) -> dict[str, torch.Tensor]:  # noqa: ARG002
        mean, logvar = self.posterior(batch.x)
        z = obj.reparameterize(mean, logvar).detach()
        recon = -self.log_likelihood(batch.x, z).mean()
        sup = self.supervision(self.posterior(batch.x_labelled)[0].float(), batch.labels)
        return {"loss": recon + sup, "recon": recon, "supervised": sup.detach()}
