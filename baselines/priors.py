"""Latent priors p(z) for the alpha-beta VAE of Mathieu et al. (2019).

Every prior is an :class:`torch.nn.Module` (so learnable parameters and fixed settings travel in
the model's ``state_dict``) with

- ``sample(n, generator=None) -> (n, D)``: draws, reparameterised where the family allows it
  (Gaussian, anisotropic Gaussian and the mixture's within-component noise);
- ``log_prob(z) -> (N,)``: the log density of each row (summed over the latent dimensions);
- ``kl_from_gaussian(mu, logvar, z) -> (N,)``: KL(q(z|x) || p(z)) for a diagonal Gaussian
  posterior; closed form for the Gaussian priors, otherwise the one-sample Monte-Carlo estimate
  ``log q(z|x) - log p(z)`` at the posterior sample ``z`` (as the reference code of Mathieu et al.
  does whenever torch has no analytic KL for the pair).

Priors (names for :func:`make_prior`) and their defaults, from Mathieu, Rainforth, Siddharth &
Teh, "Disentangling Disentanglement in Variational Autoencoders", ICML 2019, and the authors'
code (github.com/iffsid/disentangling-disentanglement):

``gaussian``
    N(0, I).
``anisotropic``
    N(0, diag(sigma^2)) with per-dimension variances. Parameterised as in the reference code,
    ``sigma^2 = T * softmax(logits)`` so the total variance T (the trace) stays fixed while the
    split between dimensions is learnt (``learnable=True``, the paper's "learned" variant) or kept
    (``learnable=False``). ``variances`` gives the initial/fixed variances (default all ones,
    the reference ``iso`` initialisation; the paper's PCA initialisation is data-dependent and
    can be passed here). ``trace`` sets T: the reference ``pz_params`` (``src/models/vae.py``)
    use ``sqrt(prior_variance_scale * D * softmax(logvar))``, i.e. T = D with the default
    scale 1, which is what ``ab_vae`` passes; ``trace=None`` keeps the sum of ``variances``.
``student_t``
    Factorised Student-t with ``df`` degrees of freedom, location 0, scale 1; ``df=9`` is the
    value of the paper's dSprites independence experiment (authors' ``independance.sh``).
``mixture``
    A mixture of ``k`` diagonal Gaussian components with equal weights. Default: the paper's
    clustering prior (pinwheel experiment), components at +-e_1, +-e_2 (``k=4``; in general at
    +-e_j for j < k/2) with per-dimension variance 0.03 (its ``prior_variance_scale``).
``sparse``
    Spike-and-slab per dimension: ``gamma * N(0, 0.05^2) + (1 - gamma) * N(0, 1)``;
    ``gamma=0.8`` as in the paper's Fashion-MNIST sparsity experiment (``sparsity.sh``).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from disbench.errors import DisbenchError
from torch import Tensor, nn

_LOG_2PI = math.log(2.0 * math.pi)

__all__ = [
    "PRIORS",
    "AnisotropicPrior",
    "GaussianPrior",
    "MixturePrior",
    "Prior",
    "SparsePrior",
    "StudentTPrior",
    "make_prior",
    "normal_log_prob",
]


def normal_log_prob(z: Tensor, loc: Tensor | float, log_scale: Tensor | float) -> Tensor:
    """Elementwise log N(z; loc, exp(log_scale)^2)."""
    log_scale = torch.as_tensor(log_scale, dtype=z.dtype, device=z.device)
    return -0.5 * ((z - loc) * torch.exp(-log_scale)) ** 2 - log_scale - 0.5 * _LOG_2PI


def _check_z(z: Tensor, latent_dim: int) -> None:
    if z.dim() != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"z must have shape (N, {latent_dim}); got {tuple(z.shape)}")


class Prior(nn.Module):
    """Base class: a distribution over R^D with ``sample`` and ``log_prob``."""

    name = "prior"

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be >= 1; got {latent_dim}")
        self.latent_dim = int(latent_dim)
        # Carries device and dtype for sampling when a prior has no parameters.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def _randn(self, shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
        a = self._anchor
        return torch.randn(shape, generator=generator, device=a.device, dtype=a.dtype)

    def _rand(self, shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
        a = self._anchor
        return torch.rand(shape, generator=generator, device=a.device, dtype=a.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def log_prob(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    def kl_from_gaussian(self, mu: Tensor, logvar: Tensor, z: Tensor) -> Tensor:
        """KL(N(mu, exp(logvar)) || p) per row: one-sample Monte-Carlo estimate at ``z``.

        ``z`` must be a sample from the posterior (the reparameterised one used for the
        reconstruction term), so that the estimate is unbiased.
        """
        log_q = normal_log_prob(z, mu, 0.5 * logvar).sum(dim=1)
        return log_q - self.log_prob(z)


class GaussianPrior(Prior):
    """Standard normal N(0, I)."""

    name = "gaussian"

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self._randn((int(n), self.latent_dim), generator)

    def log_prob(self, z: Tensor) -> Tensor:
        _check_z(z, self.latent_dim)
        return normal_log_prob(z, 0.0, 0.0).sum(dim=1)

    # `z` unused here: the Prior.kl_from_gaussian interface (a closed form needs no sample)
    def kl_from_gaussian(self, mu: Tensor, logvar: Tensor,
                         z: Tensor | None = None) -> Tensor:  # noqa: ARG002
        """Closed form 0.5 * sum(mu^2 + var - 1 - logvar)."""
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


class AnisotropicPrior(Prior):
    """N(0, diag(variances)) with the trace held fixed; variances learnable or fixed.

    Parameters
    ----------
    latent_dim : int
    variances : sequence of float, optional
        Initial (or fixed) per-dimension variances; default all ones.
    learnable : bool
        Learn the split of the total variance between dimensions (default True).
    trace : float, optional
        The total variance T; the given variances are rescaled to sum to it (their
        proportions are kept). None: T = sum of ``variances``.
    """

    name = "anisotropic"

    def __init__(
        self, latent_dim: int, variances: Any = None, learnable: bool = True,
        trace: float | None = None,
    ) -> None:
        super().__init__(latent_dim)
        if variances is None:
            v = torch.ones(self.latent_dim)
        else:
            v = torch.as_tensor(variances, dtype=torch.float32).flatten()
            if v.numel() != self.latent_dim or not bool((v > 0).all()):
                raise ValueError(
                    f"prior variances must be {self.latent_dim} positive numbers; got {variances}"
                )
        if trace is not None and not float(trace) > 0:
            raise ValueError(f"prior trace must be > 0; got {trace}")
        total = v.sum() if trace is None else torch.tensor(float(trace))
        self.register_buffer("total_variance", total)
        logits = v.log()
        if learnable:
            self.logits = nn.Parameter(logits)
        else:
            self.register_buffer("logits", logits)
        self.learnable = bool(learnable)

    @property
    def variances(self) -> Tensor:
        return self.total_variance * torch.softmax(self.logits, dim=0)

    def log_scale(self) -> Tensor:
        return 0.5 * torch.log(self.variances)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(
            (int(n), self.latent_dim), generator=generator, device=self.logits.device,
            dtype=self.logits.dtype,
        )
        return eps * torch.exp(self.log_scale())

    def log_prob(self, z: Tensor) -> Tensor:
        _check_z(z, self.latent_dim)
        return normal_log_prob(z, 0.0, self.log_scale()).sum(dim=1)

    # `z` unused here: the Prior.kl_from_gaussian interface (a closed form needs no sample)
    def kl_from_gaussian(self, mu: Tensor, logvar: Tensor,
                         z: Tensor | None = None) -> Tensor:  # noqa: ARG002
        """Closed form KL between diagonal Gaussians."""
        pv = self.variances
        return 0.5 * ((mu.pow(2) + logvar.exp()) / pv - 1.0 + pv.log() - logvar).sum(dim=1)


def _standard_gamma(
    concentration: Tensor, generator: torch.Generator | None
) -> Tensor:
    """Gamma(concentration, 1) draws honouring an explicit generator.

    ``torch._standard_gamma`` only reads the global RNG, so with a generator we seed a forked
    global state from it: deterministic for the generator, global state left untouched.
    """
    if generator is None:
        return torch._standard_gamma(concentration)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    devices = [concentration.device] if concentration.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return torch._standard_gamma(concentration)


class StudentTPrior(Prior):
    """Factorised Student-t with ``df`` degrees of freedom, location 0 and scale 1."""

    name = "student_t"

    def __init__(self, latent_dim: int, df: float = 9.0) -> None:
        super().__init__(latent_dim)
        if not float(df) > 0:
            raise ValueError(f"student_t df must be > 0; got {df}")
        self.register_buffer("df", torch.tensor(float(df)))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        shape = (int(n), self.latent_dim)
        normal = self._randn(shape, generator)
        # chi^2_df / df = Gamma(df/2, 1) * 2 / df
        g = _standard_gamma(self.df.expand(shape).contiguous() / 2.0, generator)
        return normal * torch.rsqrt(g * 2.0 / self.df)

    def log_prob(self, z: Tensor) -> Tensor:
        _check_z(z, self.latent_dim)
        df = self.df
        const = (
            torch.lgamma((df + 1.0) / 2.0) - torch.lgamma(df / 2.0)
            - 0.5 * torch.log(df * math.pi)
        )
        return (const - (df + 1.0) / 2.0 * torch.log1p(z.pow(2) / df)).sum(dim=1)


class MixturePrior(Prior):
    """Equal-weight mixture of ``k`` diagonal Gaussians.

    Parameters
    ----------
    latent_dim : int
    k : int
        Number of components (default 4, the paper's clustering prior).
    means : array-like (k, D), optional
        Component means; default +-e_j for j < k/2 (requires even k <= 2D).
    variance : float
        Per-dimension variance of every component at initialisation (default 0.03).
    learnable : bool
        Learn the component log-variances (default False, as in the paper).
    """

    name = "mixture"

    def __init__(
        self, latent_dim: int, k: int = 4, means: Any = None, variance: float = 0.03,
        learnable: bool = False,
    ) -> None:
        super().__init__(latent_dim)
        k = int(k)
        if means is None:
            if k < 1 or k % 2 or k > 2 * self.latent_dim:
                raise ValueError(
                    f"mixture k must be even and <= 2*latent_dim={2 * self.latent_dim} for the"
                    f" default axis-aligned means; got k={k} (or pass mixture_means)"
                )
            m = torch.zeros(k, self.latent_dim)
            idx = torch.arange(k // 2)
            m[2 * idx, idx] = 1.0
            m[2 * idx + 1, idx] = -1.0
        else:
            m = torch.as_tensor(means, dtype=torch.float32)
            if m.dim() != 2 or m.shape[1] != self.latent_dim:
                raise ValueError(
                    f"mixture means must have shape (k, {self.latent_dim}); got {tuple(m.shape)}"
                )
            k = m.shape[0]
        if not float(variance) > 0:
            raise ValueError(f"mixture variance must be > 0; got {variance}")
        self.k = k
        self.register_buffer("means", m)
        log_scale = torch.full((k, self.latent_dim), 0.5 * math.log(float(variance)))
        if learnable:
            self.log_scales = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scales", log_scale)
        self.register_buffer("log_weights", torch.full((k,), -math.log(k)))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n = int(n)
        comp = torch.multinomial(
            self.log_weights.exp(), n, replacement=True, generator=generator
        )
        eps = torch.randn(
            (n, self.latent_dim), generator=generator, device=self.means.device,
            dtype=self.means.dtype,
        )
        return self.means[comp] + eps * torch.exp(self.log_scales[comp])

    def log_prob(self, z: Tensor) -> Tensor:
        _check_z(z, self.latent_dim)
        # (N, k): log N(z; m_c, s_c) summed over dimensions, then log-sum-exp over components.
        comp = normal_log_prob(z[:, None, :], self.means[None], self.log_scales[None]).sum(dim=2)
        return torch.logsumexp(comp + self.log_weights[None], dim=1)


class SparsePrior(Prior):
    """Spike-and-slab per dimension: gamma * N(0, 0.05^2) + (1 - gamma) * N(0, 1)."""

    name = "sparse"
    spike_scale = 0.05

    def __init__(self, latent_dim: int, gamma: float = 0.8) -> None:
        super().__init__(latent_dim)
        if not 0.0 <= float(gamma) <= 1.0:
            raise ValueError(f"sparse prior gamma must lie in [0, 1]; got {gamma}")
        self.register_buffer("gamma", torch.tensor(float(gamma)))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        shape = (int(n), self.latent_dim)
        spike = self._rand(shape, generator) < self.gamma
        eps = self._randn(shape, generator)
        return torch.where(spike, eps * self.spike_scale, eps)

    def log_prob(self, z: Tensor) -> Tensor:
        _check_z(z, self.latent_dim)
        g = self.gamma.to(z.dtype)
        # log(0) = -inf for gamma in {0, 1} is handled by logsumexp.
        spike = normal_log_prob(z, 0.0, math.log(self.spike_scale)) + torch.log(g)
        slab = normal_log_prob(z, 0.0, 0.0) + torch.log1p(-g)
        return torch.logsumexp(torch.stack([spike, slab]), dim=0).sum(dim=1)


PRIORS: dict[str, type[Prior]] = {
    "gaussian": GaussianPrior,
    "anisotropic": AnisotropicPrior,
    "student_t": StudentTPrior,
    "mixture": MixturePrior,
    "sparse": SparsePrior,
}


def make_prior(name: str, latent_dim: int, **params: Any) -> Prior:
    """Build prior ``name`` (one of :data:`PRIORS`) with its own keyword parameters."""
    try:
        cls = PRIORS[name]
    except KeyError:
        raise DisbenchError(
            f"unknown prior {name!r}; choose one of {', '.join(sorted(PRIORS))}"
        ) from None
    return cls(latent_dim, **params)
