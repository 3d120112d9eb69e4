"""The alpha-beta VAE of Mathieu et al. (2019) with structured priors.

Mathieu, Rainforth, Siddharth & Teh, "Disentangling Disentanglement in Variational
Autoencoders", ICML 2019. The objective (the paper's L_{alpha,beta}, from its section "An
Objective for Enforcing Decomposition"; we had recorded it as eq. 7 of the ICML version, a
number we could not re-check against the paper text; written per data point; the authors'
``src/objectives.py`` ``decomp_objective`` computes ``lpx_z - beta * kld - alpha * reg``) is

    L_{alpha,beta}(x) = E_{q(z|x)}[log p(x|z)] - beta * KL(q(z|x) || p(z)) - alpha * D(q(z), p(z))

where q(z) = E_{p_data(x)} q(z|x) is the aggregate posterior. ``beta`` controls the
overlap of the encodings and ``alpha`` the match of the aggregate posterior to the prior
(their "decomposition"). We minimise ``-L`` averaged over the minibatch:

- ``E log p(x|z)``: one reparameterised sample, the shared decoder likelihood
  (:mod:`disbench.baselines.likelihoods`).
- ``KL(q(z|x) || p(z))``: closed form for the ``gaussian`` and ``anisotropic`` priors, the
  one-sample Monte-Carlo estimate ``log q(z|x) - log p(z)`` at the same sample otherwise
  (the authors' code does the same when torch has no analytic KL).
- ``D`` (``divergence``):

  ``kl``
      the inclusive KL(p(z) || q(z)) with q(z) estimated by the minibatch mixture of
      encoders: for B prior draws z_i, ``mean_i [log p(z_i) - log (1/B) sum_j q(z_i|x_j)]``
      (:func:`inclusive_kl`; the authors' ``kld_inc`` regulariser).
  ``mmd_dim``
      the sum over latent dimensions of unbiased 1-D MMD^2 estimates between posterior
      samples and prior samples, with the inverse multiquadric kernel C / (C + (a - b)^2)
      summed over C = 2 * s for s in (0.1, 0.2, 0.5, 1, 2, 5) (:func:`mmd_dim`; the authors'
      ``mmd_dim`` regulariser, used for the paper's sparsity experiments).

Hyperparameters and defaults (the authors' code, iffsid/disentangling-disentanglement,
``src/main.py`` and ``src/experimental_settings/*.sh``):
``prior`` (``gaussian``), ``beta`` 1.0, ``alpha`` 0.0 and ``divergence`` ``kl`` (the command
line defaults; ``kl`` is their ``kld_inc``); prior parameters ``prior_variances`` /
``prior_learnable`` (anisotropic, default isotropic start, learnt as in their
``--learn-prior-variance`` run; their command-line default keeps them fixed), ``df`` 9
(Student-t, the independence experiment ``independance.sh``; the command-line default is 2),
``mixture_k`` 4 and ``mixture_variance`` 0.03 (clustering experiment), ``gamma`` 0.8 (sparse,
sparsity experiment). The paper's sparsity runs use ``divergence=mmd_dim, alpha=100, beta=1,
gamma=0.8``; its clustering runs ``divergence=kl`` with (beta, alpha) = (1, 0) or (0, 1).
Optimiser: Adam with amsgrad, lr 5e-4, betas (0.9, 0.999), as the authors' dSprites
(``independance.sh``) and Fashion-MNIST (``sparsity.sh``) runs (their command-line default
lr is 1e-4, and the pinwheel clustering runs use 1e-3).

Anisotropic prior variances. The official ``pz_params`` (``src/models/vae.py``,
``vae_dsprites.py``) set the prior scale to ``sqrt(prior_variance_scale * D *
softmax(logvar))`` with ``logvar = log(PCA variances)`` (or zeros for ``iso``) and
``--prior-variance-scale`` 1 by default: whatever variances initialise it, their trace is
renormalised to D. ``prior_variances`` is treated the same way (relative variances, scaled
to sum to ``latent_dim``); ``--prior-variance-scale`` itself is not offered.

``mmd_dim`` prior draws. The official ``decomp_objective`` (``src/objectives.py``) feeds
``pz.sample(...)`` (no gradient) to the ``mmd_dim`` regulariser, so the MMD term never
trains a learnable prior; the draws here are taken without gradient likewise. ``kld_inc``
draws with ``pz.rsample`` (gradient to the prior), as :func:`inclusive_kl` does here.

Networks (``network``):

``shared`` (default)
    the shared Locatello et al. encoder/decoder (:mod:`disbench.baselines.networks`, with
    ``encoder_arch``), for comparability across the benchmark; not the paper's networks.
``fashion_mnist``, ``dsprites``, ``pinwheel``
    the authors' own networks (:mod:`disbench.baselines.abvae_networks`) for 1x32x32 and
    1x64x64 input and the 2-D pinwheel points; ``encoder_arch`` does not apply. The Fashion-MNIST decoder output is the
    Laplace location itself, as officially (``Laplace(d, 0.1)``).

Official settings (:data:`OFFICIAL_SETTINGS`, for the suites that reproduce them): the
sparsity experiment (``sparsity.sh`` with ``vae_fashion_mnist.py``) and the independence
experiment (``independance.sh`` with ``vae_dsprites.py``), each as the model
hyperparameters, the training settings and the input the official loader produces.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from disbench.baselines.abvae_networks import NETWORKS
from disbench.baselines.base import (
    IMAGE_SIZES,
    Model,
    ModelHparams,
    NonNegative,
    Positive,
    PositiveInt,
    UnitInterval,
)
from disbench.baselines.likelihoods import Likelihood
from disbench.baselines.networks import ConvDecoder, GaussianEncoder
from disbench.baselines.objectives import (
    imq_kernel,
    log_normal,
    mmd_unbiased,
    reparameterize,
)
from disbench.baselines.priors import PRIORS, Prior, make_prior
from disbench.baselines.registry import register
from disbench.errors import DisbenchError
from torch import Tensor

DIVERGENCES = ("kl", "mmd_dim")
#: ``network``: the shared networks, or the authors' Fashion-MNIST / dSprites networks.
AB_NETWORKS = ("shared", *NETWORKS)
#: Kernel scales s of the authors' ``mmd_dim``; the IMQ constant is C = 2 * s (1-D, unit prior).
MMD_DIM_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def mmd_dim(z_q: Tensor, z_p: Tensor, scales: tuple[float, ...] = MMD_DIM_SCALES) -> Tensor:
    """Sum over latent dimensions of unbiased 1-D MMD^2(z_q[:, d], z_p[:, d]).

    Inverse multiquadric kernel k(a, b) = sum_s C_s / (C_s + (a - b)^2) with C_s = 2 s, the
    ``imq_dim_kernel`` of Mathieu et al. (2019). Each 1-D estimate is the U-statistic of
    :func:`disbench.baselines.objectives.mmd_unbiased` (for equal sample sizes the cross term
    also skips i == j, so the MMD of a sample with itself is exactly 0; the authors' code
    averages the cross term over all pairs, which is equally unbiased).

    Parameters
    ----------
    z_q, z_p : Tensor, shape (N, D) and (M, D)

    Returns
    -------
    Tensor, scalar
    """
    if z_q.dim() != 2 or z_p.dim() != 2 or z_q.shape[1] != z_p.shape[1]:
        raise ValueError(
            f"z_q and z_p must be (N, D) and (M, D); got {tuple(z_q.shape)}, {tuple(z_p.shape)}"
        )
    cs = [2.0 * s for s in scales]
    # (D, N, 1): every latent dimension becomes its own 1-D sample set.
    per_dim = mmd_unbiased(
        z_q.T.unsqueeze(-1), z_p.T.unsqueeze(-1), lambda a, b: imq_kernel(a, b, cs)
    )
    return per_dim.sum()


def inclusive_kl(z_p: Tensor, log_p: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """Minibatch estimate of KL(p(z) || q(z)) with q(z) ~= (1/B) sum_j q(z | x_j).

    Parameters
    ----------
    z_p : Tensor (M, D)
        Draws from the prior.
    log_p : Tensor (M,)
        ``log p(z_p)``.
    mean, logvar : Tensor (B, D)
        The encoder's Gaussian posteriors for the minibatch.

    Returns
    -------
    Tensor, scalar: ``mean_i [log p(z_i) - logsumexp_j log q(z_i | x_j) + log B]``.
    """
    b = mean.shape[0]
    # (M, B): log q(z_i | x_j)
    log_q = log_normal(z_p[:, None, :], mean[None], logvar[None]).sum(-1)
    log_qz = torch.logsumexp(log_q, dim=1) - math.log(b)
    return (log_p - log_qz).mean()


@dataclass
class ABVAEHparams(ModelHparams):
    """Hyperparameters of ``ab_vae`` (defaults: see the module docstring).

    Attributes
    ----------
    prior : {"gaussian", "anisotropic", "student_t", "mixture", "sparse"}
    beta : float
        Weight of KL(q(z|x) || p(z)).
    alpha : float
        Weight of the aggregate divergence D(q(z), p(z)).
    divergence : {"kl", "mmd_dim"}
    prior_variances : tuple of float or None
        Anisotropic prior: initial (or fixed) relative variances (e.g. PCA variances),
        renormalised to trace ``latent_dim`` as the official code does; None = all ones.
    prior_learnable : bool
        Anisotropic prior: learn the split of the (fixed) total variance.
    df : float
        Student-t degrees of freedom.
    mixture_k : int
        Number of mixture components (even, <= 2 * latent_dim; means at +-e_j).
    mixture_variance : float
        Per-dimension variance of each mixture component.
    gamma : float
        Sparse prior: weight of the N(0, 0.05^2) spike.
    network : {"shared", "fashion_mnist", "dsprites", "pinwheel"}
        The encoder/decoder pair (see the module docstring); ``fashion_mnist`` takes
        (C, 32, 32) images, ``dsprites`` (C, 64, 64), ``pinwheel`` 2-D points (2, 1, 1).
    """

    prior: str = "gaussian"
    beta: NonNegative = 1.0
    alpha: NonNegative = 0.0
    divergence: str = "kl"
    prior_variances: tuple[Positive, ...] | None = None
    prior_learnable: bool = True
    df: Positive = 9.0
    mixture_k: PositiveInt = 4
    mixture_variance: Positive = 0.03
    gamma: UnitInterval = 0.8
    network: str = "shared"

    def image_sizes(self) -> tuple[tuple[int, int], ...]:
        if self.network in NETWORKS:
            return (NETWORKS[self.network][2],)
        return IMAGE_SIZES

    def __post_init__(self) -> None:
        if self.network not in AB_NETWORKS:
            raise DisbenchError(
                f"ab_vae network must be one of {', '.join(AB_NETWORKS)}, got {self.network!r}"
            )
        super().__post_init__()
        if self.prior not in PRIORS:
            raise DisbenchError(
                f"ab_vae prior must be one of {', '.join(PRIORS)}, got {self.prior!r}"
            )
        if self.divergence not in DIVERGENCES:
            raise DisbenchError(
                f"ab_vae divergence must be one of {', '.join(DIVERGENCES)},"
                f" got {self.divergence!r}"
            )
        for key in ("beta", "alpha"):
            if not getattr(self, key) >= 0:
                raise DisbenchError(f"ab_vae {key} must be >= 0, got {getattr(self, key)}")

    def prior_params(self) -> dict:
        """Keyword arguments of the chosen prior."""
        if self.prior == "anisotropic":
            # official pz_params: scale^2 = D * softmax(logvar), i.e. trace D
            return {"variances": self.prior_variances, "learnable": self.prior_learnable,
                    "trace": float(self.latent_dim)}
        if self.prior == "student_t":
            return {"df": self.df}
        if self.prior == "mixture":
            return {"k": self.mixture_k, "variance": self.mixture_variance}
        if self.prior == "sparse":
            return {"gamma": self.gamma}
        return {}


@register("ab_vae")
class ABVAE(Model):
    """Alpha-beta VAE (Mathieu et al. 2019) with a chosen prior ``self.prior``."""

    Hparams: ClassVar[type] = ABVAEHparams
    #: Authors' dSprites / Fashion-MNIST runs: Adam (amsgrad), lr 5e-4.
    default_lr: ClassVar[float] = 5e-4
    #: Adam with amsgrad, the authors' optimiser
    default_amsgrad: ClassVar[bool] = True

    def __init__(self, hparams: ABVAEHparams | None = None) -> None:
        super().__init__(hparams)
        hp = self.hparams
        loc = "sigmoid"
        if hp.network == "shared":
            self.encoder = GaussianEncoder(hp.image_shape, hp.latent_dim, hp.encoder_arch)
            self.decoder = ConvDecoder(hp.latent_dim, hp.image_shape)
        else:
            enc_cls, dec_cls, _, output = NETWORKS[hp.network]
            channels = hp.image_shape[0]
            self.encoder = enc_cls(channels, hp.latent_dim)
            self.decoder = dec_cls(hp.latent_dim, channels)
            loc = "identity" if output == "loc" else "sigmoid"
        self.likelihood = Likelihood(hp.likelihood, hp.likelihood_scale, loc)
        try:
            self.prior: Prior = make_prior(hp.prior, hp.latent_dim, **hp.prior_params())
        except ValueError as exc:
            raise DisbenchError(f"ab_vae prior {hp.prior!r}: {exc}") from None

    # -- model -------------------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)[0]

    def decode(self, z: Tensor) -> Tensor:
        return self.likelihood.mean(self.decoder(z))

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.prior.sample(n, generator=generator)

    def divergence(self, z: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
        """D(q(z), p(z)) on a minibatch (posterior samples ``z``, posteriors mean/logvar)."""
        if self.hparams.divergence == "mmd_dim":
            # official: pz.sample (no gradient to the prior) for mmd_dim
            with torch.no_grad():
                z_p = self.prior.sample(z.shape[0])
            return mmd_dim(z, z_p)
        z_p = self.prior.sample(z.shape[0])  # official kld_inc: pz.rsample
        return inclusive_kl(z_p, self.prior.log_prob(z_p), mean, logvar)

    def _terms(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        mean, logvar = self.encoder(x)
        z = reparameterize(mean, logvar)
        log_px = self.likelihood.log_prob(x, self.decoder(z))
        kl = self.prior.kl_from_gaussian(mean.float(), logvar.float(), z.float())
        return mean, logvar, z, log_px, kl

    def elbo(self, x: Tensor) -> Tensor:
        """Per-sample ELBO log p(x|z) - KL(q(z|x) || p(z)) (one posterior sample), (N,)."""
        _, _, _, log_px, kl = self._terms(x)
        return log_px - kl

    # `step` unused here: the Model.loss interface
    def loss(self, x: Tensor, step: int) -> dict[str, Tensor]:  # noqa: ARG002
        hp = self.hparams
        mean, logvar, z, log_px, kl = self._terms(x)
        recon = -log_px.mean()
        kl = kl.mean()
        div = self.divergence(z.float(), mean.float(), logvar.float())
        loss = recon + hp.beta * kl
        # Added only when weighted, so a non-finite estimate cannot leak in via 0 * inf.
        if hp.alpha != 0:
            loss = loss + hp.alpha * div
        return {
            "loss": loss,
            "recon": recon,
            "kl": kl,
            "divergence": div.detach() if hp.alpha == 0 else div,
            "elbo": -(recon + kl).detach(),
        }


#: The authors' experiments as settings (iffsid/disentangling-disentanglement, commit
#: 3396d40; files named per entry). ``hparams`` are ``ab_vae`` hyperparameters, ``runs``
#: the variants the script trains (each updates ``hparams``), ``train`` the loop settings
#: (Adam with amsgrad is the model default), ``input`` what the official loader feeds.
OFFICIAL_SETTINGS: dict[str, dict] = {
    "sparsity_fashion_mnist": {
        "source": "src/experimental_settings/sparsity.sh, src/models/vae_fashion_mnist.py",
        "dataset": "fashion_mnist",
        "hparams": {
            "network": "fashion_mnist", "image_shape": [1, 32, 32], "latent_dim": 50,
            "likelihood": "laplace", "likelihood_scale": 0.1, "prior": "sparse",
            "gamma": 0.8, "divergence": "mmd_dim", "alpha": 100.0, "beta": 1.0,
        },
        "runs": [{"gamma": g, "alpha": a} for g in (0.0, 0.8) for a in (0.0, 100.0)],
        # 60000 training images / 500 = 120 steps per epoch, 80 epochs
        "train": {"batch_size": 500, "epochs": 80, "steps": 9600, "lr": 5e-4},
        "input": ("Fashion-MNIST training split, shuffled; transforms.Resize(size=(32, 32)) "
                  "on the PIL image (no interpolation given: torchvision's default, "
                  "bilinear), ToTensor, then clamp to [1e-6, 1 - 1e-6] (Constants.eta)"),
    },
    "independence_dsprites": {
        "source": "src/experimental_settings/independance.sh, src/models/vae_dsprites.py",
        "dataset": "dsprites",
        "hparams": {
            "network": "dsprites", "image_shape": [1, 64, 64], "latent_dim": 10,
            "likelihood": "bernoulli", "beta": 1.0, "alpha": 0.0, "prior": "gaussian",
        },
        # iso; pca (fixed); pca learnt; Student-t with 9 degrees of freedom. The PCA runs
        # need prior_variances: the first latent_dim of the 20 squared singular values of
        # the flattened images (datasets.py compute_pca / load_pca; the snapshot never
        # calls compute_pca, the file is made beforehand).
        "runs": [
            {"prior": "gaussian"},
            {"prior": "anisotropic", "prior_learnable": False},
            {"prior": "anisotropic", "prior_learnable": True},
            {"prior": "student_t", "df": 9.0},
        ],
        # 737280 images / 64 = 11520 steps per epoch, 20 epochs
        "train": {"batch_size": 64, "epochs": 20, "steps": 230400, "lr": 5e-4},
        "input": ("the whole dSprites set (split=False: the test loader is the training "
                  "loader), binary images as stored, shuffled, no clamping"),
    },
}
