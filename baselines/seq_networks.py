"""Shared pieces of the sequence models (``dsvae``, ``rwae_mmd``, ``rwae_gan``).

A sequence batch is ``x`` of shape (N, T, C, H, W), floats in [0, 1]. Every sequence model
has a static code (one per sequence, ``static_dim``) and dynamic codes (one per frame,
``dynamic_dim``), and exposes

- ``encode_static(x) -> (N, static_dim)`` and ``encode_dynamic(x) -> (N, T, dynamic_dim)``
  (posterior means),
- ``encode(x) -> (N, static_dim + T * dynamic_dim)``: the two concatenated, the dynamic
  codes flattened frame-major,
- ``decode(z)`` / ``decode_parts(static, dynamic) -> (N, T, C, H, W)`` (decoder means),
- ``sample_static(n)``, ``sample_dynamic(n)`` (the priors), ``sample(n)``,
- ``swap(x_static_src, x_dyn_src)``: the static code of the first sequences decoded with
  the dynamics of the second.

Frames are encoded one by one with the convolutional trunk of Locatello et al. 2019
(:class:`disbench.baselines.networks.ConvTrunk`, disentanglement_lib's ``conv_encoder``
unless ``encoder_arch`` says otherwise, 256 features per frame) and decoded with
the matching :class:`~disbench.baselines.networks.ConvDecoder`, so every track of the
benchmark shares one frame architecture (the sequence papers use larger, paper-specific
conv nets: a stated deviation).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from disbench.baselines.base import Model, ModelHparams, NonNegativeInt, PositiveInt
from disbench.baselines.likelihoods import Likelihood
from disbench.baselines.networks import HIDDEN, ConvTrunk
from disbench.errors import DisbenchError
from torch import nn


@dataclass
class SequenceHparams(ModelHparams):
    """Hyperparameters shared by the sequence models.

    Attributes
    ----------
    image_shape : (C, H, W) of one frame; (3, 64, 64) for Sprites.
    frames : int
        Sequence length T (8 for Sprites).
    static_dim, dynamic_dim : int
        Sizes of the static code f / z_c and of each frame's dynamic code z_t / z_m_t
        (Li & Mandt 2018 use 256 and 32 on Sprites).
    hidden_dim : int
        LSTM hidden size of the encoders and the learned prior.
    latent_dim : int
        The size of :meth:`SequenceModel.encode`; derived, ``static_dim + frames *
        dynamic_dim``. Leave it at 0 (or give exactly that value).
    likelihood : "gaussian" by default (the summed squared error of both papers).
    """

    image_shape: tuple[int, int, int] = (3, 64, 64)
    latent_dim: NonNegativeInt = 0
    likelihood: str = "gaussian"
    frames: PositiveInt = 8
    static_dim: PositiveInt = 256
    dynamic_dim: PositiveInt = 32
    hidden_dim: PositiveInt = 256

    def __post_init__(self) -> None:
        for name in ("frames", "static_dim", "dynamic_dim", "hidden_dim"):
            if getattr(self, name) < 1:
                raise DisbenchError(f"{name} must be >= 1, got {getattr(self, name)}")
        derived = self.static_dim + self.frames * self.dynamic_dim
        if self.latent_dim not in (0, derived):
            raise DisbenchError(
                f"latent_dim of a sequence model is static_dim + frames * dynamic_dim = "
                f"{derived}; set static_dim/dynamic_dim instead (got latent_dim="
                f"{self.latent_dim})"
            )
        self.latent_dim = derived
        super().__post_init__()


class FrameEncoder(nn.Module):
    """The conv trunk applied to every frame: (N, T, C, H, W) -> (N, T, 256)."""

    def __init__(self, image_shape: tuple[int, int, int], arch: str = "dlib") -> None:
        super().__init__()
        self.trunk = ConvTrunk(image_shape, arch)
        self.out_dim = HIDDEN

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t = x.shape[:2]
        return self.trunk(x.reshape(n * t, *x.shape[2:])).reshape(n, t, -1)


class LSTMPrior(nn.Module):
    """A learned autoregressive Gaussian prior p(z_t | z_<t) (Li & Mandt 2018, eq. 2).

    An LSTM cell reads z_{t-1} (z_0 = 0) and outputs the mean and log-variance of z_t.
    ``cond`` (optional, (N, K)) is appended to every input.
    """

    def __init__(self, dim: int, hidden: int, cond_dim: int = 0) -> None:
        super().__init__()
        self.dim, self.cond_dim = dim, cond_dim
        self.cell = nn.LSTMCell(dim + cond_dim, hidden)
        self.mean = nn.Linear(hidden, dim)
        self.logvar = nn.Linear(hidden, dim)

    def _inputs(self, prev: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return prev if cond is None else torch.cat([prev, cond], -1)

    def conditionals(self, z: torch.Tensor, cond: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of p(z_t | z_<t) for given codes z (N, T, D) (teacher forcing)."""
        _, mean, logvar = self.states_and_conditionals(z, cond)
        return mean, logvar

    def states_and_conditionals(self, z: torch.Tensor, cond: torch.Tensor | None = None
                                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(h, mean, logvar), each (N, T, .): h[:, t] is the LSTM state after reading
        z_0 = 0, z_1, ..., z_{t-1} (it summarises z_<t), and p(z_t | z_<t) =
        N(mean[:, t], exp(logvar[:, t])) is a function of it."""
        n, t, _ = z.shape
        prev = torch.cat([z.new_zeros(n, 1, self.dim), z[:, :-1]], 1)
        state = None
        hs, means, logvars = [], [], []
        for k in range(t):
            h, c = self.cell(self._inputs(prev[:, k], cond), state)
            state = (h, c)
            hs.append(h)
            means.append(self.mean(h))
            logvars.append(self.logvar(h))
        return torch.stack(hs, 1), torch.stack(means, 1), torch.stack(logvars, 1)

    def sample(self, n: int, t: int, *, device: torch.device, cond: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Ancestral samples z_{1:T} ~ prod_t p(z_t | z_<t), shape (n, t, D)."""
        prev = torch.zeros(n, self.dim, device=device)
        state = None
        out = []
        for _ in range(t):
            h, c = self.cell(self._inputs(prev, cond), state)
            state = (h, c)
            eps = torch.randn(n, self.dim, generator=generator, device=device)
            prev = self.mean(h) + torch.exp(0.5 * self.logvar(h)) * eps
            out.append(prev)
        return torch.stack(out, 1)


def check_sequence_batch(x: torch.Tensor, hp: SequenceHparams) -> None:
    """Raise ValueError unless x is (N, T, C, H, W) matching the model."""
    if x.dim() != 5 or tuple(x.shape[2:]) != tuple(hp.image_shape) or x.shape[1] != hp.frames:
        raise ValueError(
            f"x must have shape (N, {hp.frames}, {', '.join(map(str, hp.image_shape))}), "
            f"got {tuple(x.shape)}"
        )


class SequenceModel(Model):
    """Base of the sequence models: the static/dynamic interface on top of :class:`Model`.

    Subclasses implement :meth:`encode_static`, :meth:`encode_dynamic`,
    :meth:`decode_parts`, :meth:`sample_dynamic` and :meth:`loss`.
    """

    Hparams = SequenceHparams
    #: inputs are sequences (N, T, C, H, W), not images: generic image-model tests skip these
    is_sequence: ClassVar[bool] = True

    def __init__(self, hparams: SequenceHparams | None = None) -> None:
        super().__init__(hparams)
        self.likelihood = Likelihood(self.hparams.likelihood, self.hparams.likelihood_scale)

    # -- the representation -------------------------------------------------------------
    def encode_static(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode_dynamic(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Static means then the flattened per-frame dynamic means, (N, latent_dim)."""
        return torch.cat([self.encode_static(x), self.encode_dynamic(x).flatten(1)], 1)

    def split_code(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hp = self.hparams
        return z[:, :hp.static_dim], z[:, hp.static_dim:].reshape(len(z), hp.frames,
                                                                  hp.dynamic_dim)

    def decoder_logits(self, static: torch.Tensor, dynamic: torch.Tensor) -> torch.Tensor:
        """Decoder outputs (N, T, C, H, W) before the likelihood's mean."""
        raise NotImplementedError

    def decode_parts(self, static: torch.Tensor, dynamic: torch.Tensor) -> torch.Tensor:
        """Decoder means (N, T, C, H, W) of a static and a dynamic code."""
        return self.likelihood.mean(self.decoder_logits(static, dynamic))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder means (N, T, C, H, W) of codes laid out as :meth:`encode`."""
        return self.decode_parts(*self.split_code(z))

    # -- priors and generation ------------------------------------------------------------
    def sample_static(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Static codes from p(f) = N(0, I), (n, static_dim)."""
        return torch.randn(n, self.hparams.static_dim, generator=generator, device=self.device)

    def sample_dynamic(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Dynamic codes (n, T, dynamic_dim) from the learned recurrent prior ``self.prior``."""
        return self.prior.sample(n, self.hparams.frames, device=self.device, generator=generator)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.cat([self.sample_static(n, generator),
                          self.sample_dynamic(n, generator).flatten(1)], 1)

    @torch.no_grad()
    def swap(self, x_static_src: torch.Tensor, x_dyn_src: torch.Tensor) -> torch.Tensor:
        """Decode the static code of ``x_static_src`` with the dynamics of ``x_dyn_src``."""
        if len(x_static_src) != len(x_dyn_src):
            raise ValueError("x_static_src and x_dyn_src must hold the same number of sequences")
        return self.decode_parts(self.encode_static(x_static_src), self.encode_dynamic(x_dyn_src))

    def reconstruction_cost(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """-sum_t log p(x_t | .) per sequence, (N,) (Gaussian: summed squared error + const)."""
        n, t = x.shape[:2]
        lp = self.likelihood.log_prob(x.reshape(n * t, *x.shape[2:]),
                                      logits.reshape(n * t, *logits.shape[2:]))
        return -lp.reshape(n, t).sum(1)
