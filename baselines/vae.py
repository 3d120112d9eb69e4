"""The VAE family's common core and the plain ``vae`` / ``beta_vae``.

:class:`GaussianVAE` holds what every VAE variant shares (Gaussian encoder, conv
decoder, likelihood, reparameterised sample, ELBO); a variant overrides
:meth:`GaussianVAE.regularizer` (extra terms) and, for non-Gaussian priors,
:meth:`GaussianVAE.sample_prior`. The objective minimised is

    loss = -E_q log p(x|z) + beta * KL(q(z|x) || N(0, I)) + sum of extra terms,

averaged over the batch (sums over pixels and latent dimensions, as disentanglement_lib).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from disbench.baselines import objectives as obj
from disbench.baselines.base import Model, ModelHparams, NonNegative
from disbench.baselines.likelihoods import Likelihood
from disbench.baselines.networks import ConvDecoder, GaussianEncoder
from disbench.baselines.registry import register


class GaussianVAE(Model):
    """Encoder q(z|x) = N(mu(x), diag sigma^2(x)), decoder p(x|z), prior N(0, I)."""

    def __init__(self, hparams: ModelHparams | None = None) -> None:
        super().__init__(hparams)
        hp = self.hparams
        self.encoder = GaussianEncoder(hp.image_shape, hp.latent_dim, hp.encoder_arch)
        self.decoder = ConvDecoder(hp.latent_dim, hp.image_shape)
        self.likelihood = Likelihood(hp.likelihood, hp.likelihood_scale)

    # -- pieces ------------------------------------------------------------------
    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, logvar) of q(z|x), each (N, D)."""
        return self.encoder(x)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) per sample, (N,)."""
        return self.likelihood.log_prob(x, self.decoder(z))

    # `z` unused by the closed form; the hook takes the sample as Prior.kl_from_gaussian does
    def kl(self, z: torch.Tensor, mean: torch.Tensor,  # noqa: ARG002
           logvar: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) || p(z)) per sample, (N,); closed form for the N(0, I) prior."""
        return obj.kl_normal_std(mean.float(), logvar.float())

    @property
    def beta(self) -> float:
        return 1.0

    def regularizer(
        # unused here: the signature of the hook that subclasses override
        self, x: torch.Tensor, z: torch.Tensor, mean: torch.Tensor,  # noqa: ARG002
        logvar: torch.Tensor, step: int,  # noqa: ARG002
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Extra terms: (weighted scalars added to the loss, scalars only logged).

        None for a plain VAE. Both dicts are returned by :meth:`loss` for logging.
        """
        return {}, {}

    # -- interface ---------------------------------------------------------------
    def loss(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        mean, logvar = self.posterior(x)
        z = obj.reparameterize(mean, logvar)
        return self._loss_from(x, z, mean, logvar, step)

    def _loss_from(
        self, x: torch.Tensor, z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
        step: int,
    ) -> dict[str, torch.Tensor]:
        """The loss terms given the posterior and one reparameterised sample ``z``."""
        recon = -self.log_likelihood(x, z).mean()
        kl = self.kl(z, mean, logvar).mean()
        added, logged = self.regularizer(x, z, mean, logvar, step)
        total = recon + self.beta * kl
        for v in added.values():
            total = total + v
        return {
            "loss": total, "recon": recon, "kl": kl, **added,
            **{k: v.detach() for k, v in logged.items()}, "elbo": -(recon + kl).detach(),
        }

    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """Single-sample ELBO per example, (N,): log p(x|z) - KL(q(z|x) || p(z))."""
        mean, logvar = self.posterior(x)
        z = obj.reparameterize(mean, logvar)
        return self.log_likelihood(x, z) - self.kl(z, mean, logvar)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.likelihood.mean(self.decoder(z))

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=self.device)


@register("vae")
class VAE(GaussianVAE):
    """The VAE of Kingma & Welling 2014 ("Auto-Encoding Variational Bayes"), eq. (10):
    maximise E_q log p(x|z) - KL(q(z|x) || N(0, I))."""


@dataclass
class BetaVAEHparams(ModelHparams):
    """beta: KL weight; 4 is the value Higgins et al. 2017 report for dSprites."""

    beta: NonNegative = 4.0


@register("beta_vae")
class BetaVAE(GaussianVAE):
    """beta-VAE (Higgins et al. 2017, "beta-VAE: Learning Basic Visual Concepts with a
    Constrained Variational Framework", eq. (4)): E_q log p(x|z) - beta KL(q(z|x) || p(z)).
    """

    Hparams = BetaVAEHparams

    @property
    def beta(self) -> float:
        return self.hparams.beta
