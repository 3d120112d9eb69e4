"""Gromov-Wasserstein autoencoders (GWAE) of Nakagawa et al. (2023).

Nakagawa, Togo, Ogawa & Haseyama, "Gromov-Wasserstein Autoencoders", ICLR 2023, and the
authors' code (github.com/ganmodokix/gwae, ``models/gwae.py``, ``settings/gwae.yaml``).

GWAE fits a learnable prior pi(z) to the data by minimising the Gromov-Wasserstein (GW)
distance between the latent space and the data space, with the generator G (the decoder
mean) as the coupling, under the constraint that the variational autoencoding pair is
consistent (the paper's sufficiency conditions, relaxed into penalties). The estimators
below follow the official ``GromovWassersteinAutoEncoder.step_batch``.
Per minibatch the main objective (minimised; RMSprop, lr 1e-4) is

    L = L_GW + L_W + 0.03 * L_H + L_D

- ``gw``: the estimated GW term over pairs of prior samples z~_a, z~_b (``gw_term``)::

      mean_{a,b} | ||G(z~_a) - G(z~_b)||_2 - kappa * ||z~_a - z~_b||_2 / s |

  with kappa a learnt scale (``exp`` of a parameter, initialised at 2.5, the official
  ``distance_coef_initial``) and ``s`` the scale of the prior minibatch,
  ``s = mean_d std_a(z~_{a,d})`` (the per-dimension standard deviation of the prior samples
  averaged over dimensions, unbiased std, clamped at 1e-8; official code ``scale_z``). The
  mean runs over all B^2 ordered pairs including a == b (which contribute 0), as in the
  official code.
- ``recon``: the Wasserstein reconstruction term with the squared Euclidean cost,
  ``0.5 * ||x - G(z)||^2`` summed over pixels, averaged over the batch, z ~ q(z|x).
- ``entropy``: ``-sum_d log sigma_d^2(x)`` averaged over the batch (the entropy regulariser
  keeping q(z|x) stochastic), weight 0.03.
- ``sufficiency``: the merged sufficiency condition ``mean f(G(z~), z~) - mean f(x, z)``
  with the critic f(x, z) (weight 1).

The critic (a spectrally normalised conv net on x joined with an MLP on z, as the official
``Discriminator``) maximises ``mean f(G(z~), z~) - mean f(x, z)`` for 5 steps per iteration
(RMSprop, lr 1e-4) with the one-centred gradient penalty of weight 10 on random
interpolates between (x, z) and (G(z~), z~) (Gulrajani et al. 2017), plus the official
code's small drift term ``1e-4 * (mean f(x, z)^2 + mean f(G(z~), z~)^2)`` inside the
penalty. At the optimum f is the Kantorovich potential of W_1 between the inference
pairs (x, z) and the generative pairs (G(z~), z~).

**Critic convention.** f is driven *low* on data pairs (x, z ~ q(z|x)) and *high* on
generated pairs, as in the official ``step_batch``: the critic minimises
``-(logit_sampling - logit_autoencoding).mean()`` with ``logit_autoencoding = D(x, z)``
(commented "down") and ``logit_sampling = D(G(z~), z~)`` (commented "up"), and the main
loss adds ``(logit_sampling - logit_autoencoding).mean()``. :meth:`GWAE.critic` returns f
itself, and :meth:`GWAE.ood_score` returns ``-f(x, encode(x))`` so that, as everywhere in
disbench, a higher score means "more in-distribution" (training data sit where f is low).

**The official OoD score** is a different one: ``clu.py`` (``anormaly_gwae``, called by
``ood_detection``) decodes codes z of the test images and scores the critic at the
reconstruction paired with its code, ``disc_block(model.decode(z), z)``, "the higher
``anomaly`` is, the more likely ``z`` is to be OoD". :meth:`GWAE.critic_energy` computes
that energy from given codes; :func:`disbench.metrics.ood.gwae_ood_protocol` scores it by
default, and ``ood_score`` is the score of its ``disbench_v1`` variant. The in-distribution
codes are read from ``zt_test.npz``, written by the data library's evaluation (ganmodokix/vaetc
``evaluation/metrics/save.py`` ``measure`` through ``evaluation/preprocess/encode.py``
``encode_set``: one reparameterised posterior sample per test image); the OoD codes come
from ``model.encode`` on vaetc's Omniglot evaluation split. In vaetc@develop_may, the
branch that gwae's ``requirements.txt`` pins, ``encode`` samples too
(``REPARAMETERIZE_GAUSS_IN_ENCODE = True`` in ``models/abstract.py``); on vaetc's main
branch it returns the posterior mean. The paper text was not available here.

Priors (``prior``; the official samplers):

``gaussian``  N(0, I).
``np``        neural prior: an MLP D -> 4D -> 4D -> 4D -> D on eps ~ N(0, I) with leaky SiLU
              activations (slope 0.2) and a final batch normalisation without affine
              parameters (momentum 0.5). The official default (``sampler_type: neural``).
``fnp``       factorised neural prior: the same MLP applied to each latent dimension
              separately (1 -> 4 -> 4 -> 4 -> 1 per dimension), so the dimensions stay
              independent; final batch normalisation as above.
``gmp``       Gaussian mixture prior with ``gmp_components`` components: learnt logits,
              means and per-component D x D matrices A_c, component picked by the
              Gumbel-max trick, then the same batch normalisation
              (:class:`GaussianMixtureSampler`). Defaults are the official sampler
              (``GaussianMixtureSampler.forward``): ``gmp_covariance="diagonal"``,
              ``z = mean[c] + (eps[:, None, :] * A[c]).sum(dim=1)``, a diagonal scale per
              component given by the column sums of A_c; ``gmp_straight_through=False``,
              a hard Gumbel-max draw with no gradient to the mixing logits. Options:
              ``gmp_covariance="full"`` (z = m_c + eps^T A_c) and
              ``gmp_straight_through=True`` (hard forward draw, Gumbel-softmax gradient at
              temperature 1 to the logits), together disbench's earlier default.
              ``gmp_components`` defaults to 10, a disbench choice with no official
              source: the official ``build_sampler`` reads ``num_components`` from the
              settings with no default, and no settings file in the repository uses the
              ``gm`` sampler.

Deviations: networks are the shared Locatello et al. encoder/decoder (the official code uses
its own conv nets, vaetc's ``ConvGaussianEncoder``/``ConvDecoder``; ``latent_dim`` follows
the benchmark, 10, where the CelebA setting used 64). The reconstruction term is the paper's
squared error whatever ``likelihood`` says (the hyperparameter is accepted for interface
uniformity; the decoder mean is its sigmoid output). The official critic is written for
3x64x64 input only (``Conv2d(3, 8, ...)`` and six stride-2 convolutions down to 1x1, the
data library's fixed ``IMAGE_SHAPE``); the critic here takes any channel count and has a
28x28 variant (four convolutions), which have no official source.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from disbench.baselines.base import Model, ModelHparams, NonNegative, Positive, PositiveInt
from disbench.baselines.networks import ConvDecoder, GaussianEncoder
from disbench.baselines.objectives import reparameterize
from disbench.baselines.registry import register
from disbench.errors import DisbenchError
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

GWAE_PRIORS = ("gaussian", "np", "fnp", "gmp")
BATCHNORM_MOMENTUM = 0.5


# -- objective terms ---------------------------------------------------------------------
def prior_scale(z: Tensor) -> Tensor:
    """``s``: the per-dimension (unbiased) standard deviation of z (B, D), averaged over D."""
    return z.std(dim=0).mean().clamp_min(1e-8)


def gw_term(z: Tensor, x_gen: Tensor, kappa: Tensor | float) -> Tensor:
    """Estimated GW term ``mean_{a,b} | ||x_a - x_b|| - kappa ||z_a - z_b|| / s |``.

    Parameters
    ----------
    z : Tensor (B, D)
        Prior samples.
    x_gen : Tensor (B, ...)
        Their decoded images G(z).
    kappa : Tensor or float
        The learnt distance coefficient.

    Returns
    -------
    Tensor, scalar. The mean is over all B^2 ordered pairs (the diagonal contributes 0);
    only the B(B-1)/2 distinct pairs are computed, which also avoids the undefined
    gradient of a norm at 0.
    """
    b = z.shape[0]
    if b < 2:
        raise ValueError(f"gw_term needs at least 2 prior samples, got {b}")
    i, j = torch.triu_indices(b, b, offset=1, device=z.device)
    xf = x_gen.reshape(b, -1)
    dx = (xf[i] - xf[j]).norm(dim=1)
    dz = (z[i] - z[j]).norm(dim=1) * (kappa / prior_scale(z))
    return (dz - dx).abs().sum() * 2.0 / (b * b)


def gradient_penalty(
    critic, x_real: Tensor, z_real: Tensor, x_fake: Tensor, z_fake: Tensor,
    t: Tensor | None = None,
) -> Tensor:
    """One-centred gradient penalty ``mean (||grad_{(x,z)} f(x^, z^)||_2 - 1)^2``.

    Gulrajani et al. 2017 (WGAN-GP), on the joint input: (x^, z^) = t (x, z) + (1 - t)
    (x~, z~) with one t ~ U(0, 1) per sample (pass ``t`` to fix it); the gradient norm is over
    the concatenation of the image and code gradients. ``critic(x, z) -> (N,)`` or (N, 1).
    """
    if t is None:
        t = torch.rand(x_real.shape[0], device=x_real.device, dtype=x_real.dtype)
    tx = t.view(-1, *([1] * (x_real.dim() - 1)))
    xp = (tx * x_real + (1 - tx) * x_fake).detach().requires_grad_(True)
    zp = (t[:, None] * z_real + (1 - t[:, None]) * z_fake).detach().requires_grad_(True)
    out = critic(xp, zp)
    gx, gz = torch.autograd.grad(out.sum(), [xp, zp], create_graph=True, allow_unused=True)
    # A critic that ignores one input has a zero gradient there.
    gx = torch.zeros_like(xp) if gx is None else gx
    gz = torch.zeros_like(zp) if gz is None else gz
    norm = torch.cat([gx.flatten(1), gz.flatten(1)], dim=1).norm(dim=1)
    return (norm - 1.0).pow(2).mean()


# -- priors (samplers) -------------------------------------------------------------------
class LeakySiLU(nn.Module):
    """(1 - a) * silu(x) + a * x: a SiLU that keeps slope ``a`` for negative inputs."""

    def __init__(self, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return (1.0 - self.negative_slope) * F.silu(x) + self.negative_slope * x


class Sampler(nn.Module):
    """An implicit prior: ``forward(n, generator=None) -> (n, D)`` reparameterised draws."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def noise(self, n: int, generator: torch.Generator | None) -> Tensor:
        a = self._anchor
        return torch.randn(
            (int(n), self.latent_dim), generator=generator, device=a.device, dtype=a.dtype
        )


class GaussianSampler(Sampler):
    """N(0, I)."""

    def forward(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.noise(n, generator)


class NeuralSampler(Sampler):
    """``np``: MLP D -> 4D -> 4D -> 4D -> D on Gaussian noise, then batch norm (no affine)."""

    def __init__(self, latent_dim: int, hidden_ratio: int = 4) -> None:
        super().__init__(latent_dim)
        d, h = self.latent_dim, self.latent_dim * hidden_ratio
        self.net = nn.Sequential(
            nn.Linear(d, h), LeakySiLU(0.2),
            nn.Linear(h, h), LeakySiLU(0.2),
            nn.Linear(h, h), LeakySiLU(0.2),
            nn.Linear(h, d),
        )
        self.norm = nn.BatchNorm1d(d, momentum=BATCHNORM_MOMENTUM, affine=False)

    def forward(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.norm(self.net(self.noise(n, generator)))


class FactorizedNeuralSampler(Sampler):
    """``fnp``: an independent MLP 1 -> 4 -> 4 -> 4 -> 1 per dimension (grouped 1x1 convs)."""

    def __init__(self, latent_dim: int, hidden_ratio: int = 4) -> None:
        super().__init__(latent_dim)
        d, h = self.latent_dim, self.latent_dim * hidden_ratio
        # groups=d keeps every dimension's channels separate: dimension k only sees eps_k.
        self.net = nn.Sequential(
            nn.Conv1d(d, h, 1, groups=d), LeakySiLU(0.2),
            nn.Conv1d(h, h, 1, groups=d), LeakySiLU(0.2),
            nn.Conv1d(h, h, 1, groups=d), LeakySiLU(0.2),
            nn.Conv1d(h, d, 1, groups=d),
        )
        self.norm = nn.BatchNorm1d(d, momentum=BATCHNORM_MOMENTUM, affine=False)

    def forward(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        eps = self.noise(n, generator)
        return self.norm(self.net(eps.unsqueeze(-1)).squeeze(-1))


GMP_COVARIANCES = ("diagonal", "full")


class GaussianMixtureSampler(Sampler):
    """``gmp``: Gaussian mixture, component chosen by Gumbel-max, then batch norm.

    Parameters: means m (K, D) ~ N(0, 1), scale matrices A (K, D, D) initialised at
    I + 0.01 * N(0, 1) noise and logits (K,) ~ N(0, 1), as the official
    ``GaussianMixtureSampler`` (ganmodokix/gwae ``models/gwae.py``; there A is called
    ``component_sqrtprecision``). For the drawn component c and eps ~ N(0, I_D):

    ``covariance="diagonal"`` (default, the official sampler)
        ``z = m[c] + (eps[:, None, :] * A[c]).sum(dim=1)``, i.e. z_j = m_cj + eps_j *
        sum_i A_cij: a diagonal scale per component, the column sums of A_c, so the
        component covariance is diag((sum_i A_cij)^2).
    ``covariance="full"``
        z = m_c + eps^T A_c (covariance A_c^T A_c), a full-covariance variant (disbench's
        earlier default).

    The component is c = argmax_k (log_softmax(logits)_k + g_k) with Gumbel noise g
    (Gumbel-max). ``straight_through=False`` (default) is the official hard draw: the
    logits get no gradient. ``straight_through=True`` keeps the same hard forward value
    and passes the Gumbel-softmax gradient (temperature 1) to the logits.
    """

    def __init__(self, latent_dim: int, components: int = 10, straight_through: bool = False,
                 covariance: str = "diagonal"):
        super().__init__(latent_dim)
        if int(components) < 2:
            raise ValueError(f"gmp_components must be >= 2, got {components}")
        if covariance not in GMP_COVARIANCES:
            raise ValueError(f"gmp_covariance must be one of {', '.join(GMP_COVARIANCES)}, "
                             f"got {covariance!r}")
        d, k = self.latent_dim, int(components)
        self.components = k
        self.straight_through = bool(straight_through)
        self.covariance = covariance
        self.means = nn.Parameter(torch.randn(k, d))
        self.scales = nn.Parameter(torch.eye(d).expand(k, d, d) + 0.01 * torch.randn(k, d, d))
        self.logits = nn.Parameter(torch.randn(k))
        self.norm = nn.BatchNorm1d(d, momentum=BATCHNORM_MOMENTUM, affine=False)

    def membership(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, K) one-hot Gumbel-max draws (straight-through soft gradients if enabled)."""
        log_w = torch.log_softmax(self.logits, dim=0)
        u = torch.rand(
            (int(n), self.components), generator=generator, device=log_w.device,
            dtype=log_w.dtype,
        ).clamp_min(torch.finfo(log_w.dtype).tiny)
        g = log_w - torch.log(-torch.log(u))
        hard = F.one_hot(g.argmax(dim=1), self.components).to(log_w.dtype)
        if not self.straight_through:
            return hard.detach()
        soft = torch.softmax(g, dim=1)
        return hard + (soft - soft.detach())

    def component_scales(self) -> Tensor:
        """(K, D) per-dimension scales of the ``diagonal`` form: column sums of A."""
        return self.scales.sum(dim=1)

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Mixture draws before the batch normalisation, (n, D)."""
        w = self.membership(n, generator)
        eps = self.noise(n, generator)
        # (n, K, D): every component's draw from the same eps; w picks one (exactly, forward).
        if self.covariance == "diagonal":
            per_comp = self.means[None] + eps[:, None, :] * self.component_scales()[None]
        else:
            per_comp = self.means[None] + torch.einsum("ni,kij->nkj", eps, self.scales)
        return (w[:, :, None] * per_comp).sum(dim=1)

    def forward(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.norm(self.draw(n, generator))


def make_sampler(name: str, latent_dim: int, components: int = 10,
                 straight_through: bool = False, covariance: str = "diagonal") -> Sampler:
    """Build GWAE prior ``name`` (one of :data:`GWAE_PRIORS`)."""
    if name == "gaussian":
        return GaussianSampler(latent_dim)
    if name == "np":
        return NeuralSampler(latent_dim)
    if name == "fnp":
        return FactorizedNeuralSampler(latent_dim)
    if name == "gmp":
        return GaussianMixtureSampler(latent_dim, components, straight_through, covariance)
    raise DisbenchError(f"unknown gwae prior {name!r}; choose one of {', '.join(GWAE_PRIORS)}")


# -- critic ------------------------------------------------------------------------------
class Critic(nn.Module):
    """f(x, z): spectrally normalised conv net on x and MLP on z, joined by an MLP.

    As the official ``Discriminator`` (ganmodokix/gwae ``models/gwae.py``): x branch of
    stride-2 4x4 convolutions (8, 16, 32, ... channels, doubling) down to 1x1 and a dense 64;
    z branch D -> 256 -> 256 -> 64; joint (concatenation / 2) 128 -> 256 -> 256 -> 1; leaky
    ReLU 0.2 after every layer except the x branch's dense 64 and the output; spectral
    normalisation on every layer. The official one is the 3x64x64 case (six convolutions);
    other channel counts and the 28x28 variant (four convolutions) have no official source.
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int) -> None:
        super().__init__()
        c, size, _ = image_shape
        layers: list[nn.Module] = []
        ch_in, ch = c, 8
        while size > 1:
            layers += [spectral_norm(nn.Conv2d(ch_in, ch, 4, 2, 1)), nn.LeakyReLU(0.2)]
            size = (size + 2 - 4) // 2 + 1
            ch_in, ch = ch, ch * 2
        layers += [nn.Flatten(), spectral_norm(nn.Linear(ch_in, 64))]
        self.x_net = nn.Sequential(*layers)
        self.z_net = nn.Sequential(
            spectral_norm(nn.Linear(latent_dim, 256)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Linear(256, 256)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Linear(256, 64)), nn.LeakyReLU(0.2),
        )
        self.xz_net = nn.Sequential(
            spectral_norm(nn.Linear(128, 256)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Linear(256, 256)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Linear(256, 1)),
        )

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        h = torch.cat([self.x_net(x), self.z_net(z)], dim=1) / 2
        return self.xz_net(h).squeeze(1)


# -- model -------------------------------------------------------------------------------
@dataclass
class GWAEHparams(ModelHparams):
    """Hyperparameters of ``gwae`` (defaults from the official ``settings/gwae.yaml``).

    Attributes
    ----------
    prior : {"gaussian", "np", "fnp", "gmp"}
        Default ``np`` (the official ``sampler_type: neural``).
    kappa_init : float
        Initial distance coefficient kappa (2.5).
    coef_recon, coef_entropy, coef_sufficiency : float
        Weights of the reconstruction (1), entropy (0.03) and sufficiency (1) terms.
    coef_gp : float
        Gradient penalty weight (10).
    critic_steps : int
        Critic updates per iteration (5).
    critic_lr : float
        RMSprop learning rate of the critic (1e-4).
    drift : float
        Official drift term on the critic's outputs, inside the penalty (1e-4).
    gmp_components : int
        Mixture components of the ``gmp`` prior (10; no official default).
    gmp_straight_through : bool
        Straight-through Gumbel-softmax gradients for the mixture weights (False, the
        official hard draw; see the module docstring).
    gmp_covariance : {"diagonal", "full"}
        ``diagonal`` (the official sampler: column sums of A as per-dimension scales) or
        ``full`` (eps^T A).
    """

    prior: str = "np"
    kappa_init: Positive = 2.5
    coef_recon: NonNegative = 1.0
    coef_entropy: NonNegative = 0.03
    coef_sufficiency: NonNegative = 1.0
    coef_gp: NonNegative = 10.0
    critic_steps: PositiveInt = 5
    critic_lr: Positive = 1e-4
    drift: NonNegative = 1e-4
    gmp_components: PositiveInt = 10
    gmp_straight_through: bool = False
    gmp_covariance: str = "diagonal"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.prior not in GWAE_PRIORS:
            raise DisbenchError(
                f"gwae prior must be one of {', '.join(GWAE_PRIORS)}, got {self.prior!r}"
            )
        if not self.kappa_init > 0:
            raise DisbenchError(f"gwae kappa_init must be > 0, got {self.kappa_init}")
        if self.critic_steps < 1:
            raise DisbenchError(f"gwae critic_steps must be >= 1, got {self.critic_steps}")
        if self.prior == "gmp" and self.gmp_components < 2:
            raise DisbenchError(f"gwae gmp_components must be >= 2, got {self.gmp_components}")
        if self.gmp_covariance not in GMP_COVARIANCES:
            raise DisbenchError(
                f"gwae gmp_covariance must be one of {', '.join(GMP_COVARIANCES)}, "
                f"got {self.gmp_covariance!r}"
            )


@register("gwae")
class GWAE(Model):
    """Gromov-Wasserstein autoencoder; ``critic(x, z)`` is the Kantorovich potential."""

    Hparams: ClassVar[type] = GWAEHparams
    #: Official settings: RMSprop, lr 1e-4 for the model and the critic.
    default_lr: ClassVar[float] = 1e-4

    def __init__(self, hparams: GWAEHparams | None = None) -> None:
        super().__init__(hparams)
        hp = self.hparams
        self.encoder = GaussianEncoder(hp.image_shape, hp.latent_dim, hp.encoder_arch)
        self.decoder = ConvDecoder(hp.latent_dim, hp.image_shape)
        self.sampler = make_sampler(
            hp.prior, hp.latent_dim, hp.gmp_components, hp.gmp_straight_through,
            hp.gmp_covariance,
        )
        self.log_kappa = nn.Parameter(torch.tensor(math.log(hp.kappa_init)))
        self.critic_net = Critic(hp.image_shape, hp.latent_dim)

    @property
    def kappa(self) -> Tensor:
        return self.log_kappa.exp()

    # -- interface ---------------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)[0]

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The Gaussian encoder's (mean, log-variance), as the VAE family's."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.decoder(z))

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.sampler(n, generator=generator)

    def critic(self, x: Tensor, z: Tensor) -> Tensor:
        """The critic f(x, z), shape (N,) (low on data pairs, high on generated pairs)."""
        return self.critic_net(x, z)

    @torch.no_grad()
    def ood_score(self, x: Tensor) -> Tensor:
        """``-f(x, encode(x))``, shape (N,): higher = more in-distribution."""
        return -self.critic_net(x, self.encode(x))

    @torch.no_grad()
    def critic_energy(self, z: Tensor) -> Tensor:
        """``f(G(z), z)``, shape (N,): the official OoD energy (higher = more likely OoD).

        ganmodokix/gwae ``clu.py`` ``anormaly_gwae``: ``disc_block(model.decode(z), z)``
        for codes z of the images to score (see the module docstring for how the
        official script obtains them).
        """
        return self.critic_net(self.decode(z), z)

    # -- training ----------------------------------------------------------------------
    def model_parameters(self) -> Iterator[nn.Parameter]:
        """Encoder, decoder, prior sampler and kappa (the critic has its own optimiser)."""
        critic_ids = {id(p) for p in self.critic_net.parameters()}
        return (p for p in self.parameters() if id(p) not in critic_ids)

    def make_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        """RMSprop for the model (lr 1e-4 unless given) and the critic (``critic_lr``)."""
        return {
            "model": torch.optim.RMSprop(
                self.model_parameters(), lr=self.default_lr if lr is None else lr
            ),
            "critic": torch.optim.RMSprop(
                self.critic_net.parameters(), lr=self.hparams.critic_lr
            ),
        }

    # `step` unused here: the Model.loss interface
    def loss(self, x: Tensor, step: int) -> dict[str, Tensor]:  # noqa: ARG002
        """The main (autoencoder + prior) objective on a batch; see the module docstring."""
        hp = self.hparams
        b = x.shape[0]
        mean, logvar = self.encoder(x)
        z = reparameterize(mean, logvar)
        x_rec = self.decode(z)
        zs = self.sampler(b)
        xs = self.decode(zs)

        gw = gw_term(zs.float(), xs.float(), self.kappa)
        recon = 0.5 * (x - x_rec).float().pow(2).flatten(1).sum(1).mean()
        entropy = -logvar.float().sum(1).mean()
        f_data = self.critic_net(x, z).float()
        f_gen = self.critic_net(xs, zs).float()
        sufficiency = f_gen.mean() - f_data.mean()
        loss = (
            gw + hp.coef_recon * recon + hp.coef_entropy * entropy
            + hp.coef_sufficiency * sufficiency
        )
        return {
            "loss": loss,
            "gw": gw,
            "recon": recon,
            "entropy": entropy,
            "sufficiency": sufficiency,
            "kappa": self.kappa.detach(),
        }

    def critic_loss(self, x: Tensor, mean: Tensor, logvar: Tensor) -> dict[str, Tensor]:
        """One critic objective: -(mean f(G(z~), z~) - mean f(x, z)) + coef_gp * penalty."""
        hp = self.hparams
        with torch.no_grad():
            z = reparameterize(mean, logvar)
            zs = self.sampler(x.shape[0])
            xs = self.decode(zs)
        f_data = self.critic_net(x, z).float()
        f_gen = self.critic_net(xs, zs).float()
        gap = f_gen.mean() - f_data.mean()
        gp = gradient_penalty(self.critic_net, x, z, xs, zs).float()
        penalty = gp + hp.drift * (f_data.pow(2).mean() + f_gen.pow(2).mean())
        return {"critic_loss": -gap + hp.coef_gp * penalty, "critic_gap": gap, "gp": gp}

    def train_step_tensors(
        self, x: Tensor, step: int, optimizers: dict[str, torch.optim.Optimizer]
    ) -> dict[str, Tensor]:
        """Main step, then ``critic_steps`` critic steps (the official order)."""
        opt, opt_c = optimizers["model"], optimizers["critic"]
        opt.zero_grad(set_to_none=True)
        with self.autocast():
            terms = self.loss(x, step)
        terms["loss"].backward()
        opt.step()

        with torch.no_grad(), self.autocast():
            mean, logvar = self.encoder(x)
        for _ in range(self.hparams.critic_steps):
            opt_c.zero_grad(set_to_none=True)
            with self.autocast():
                c_terms = self.critic_loss(x, mean, logvar)
            c_terms["critic_loss"].backward()
            opt_c.step()
        out = {k: v.detach().float() for k, v in terms.items()}
        out.update({k: v.detach().float() for k, v in c_terms.items()})
        return out
