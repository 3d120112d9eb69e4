"""Decoder likelihoods p(x | z): Bernoulli with logits, Gaussian and Laplace with a fixed scale.

The decoder outputs one unconstrained value per pixel (``logits``). For the Bernoulli
likelihood these are the logits; for Gaussian and Laplace the location is
``sigmoid(logits)`` by default (``loc="sigmoid"``, so means stay in [0, 1], as the sigmoid
output of the disentanglement_lib decoders), or the raw output with ``loc="identity"``
(the alpha-beta VAE's Fashion-MNIST network, whose ``Dec`` hands its output to
``Laplace(loc, 0.1)`` unsquashed: iffsid/disentangling-disentanglement
``src/models/vae_fashion_mnist.py``). Log-likelihoods are summed over every pixel and
channel and returned per sample, shape (N,).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_DEFAULT_SCALE = {"bernoulli": None, "gaussian": math.sqrt(0.5), "laplace": 1.0}
#: Gaussian/Laplace location: sigmoid of the decoder output, or the output itself.
LOCS = ("sigmoid", "identity")


def default_scale(kind: str) -> float | None:
    """Default fixed scale: Gaussian sigma = sqrt(1/2) (NLL = sum of squared errors +
    const, disentanglement_lib's ``l2_loss``), Laplace b = 1 (NLL = sum of absolute
    errors + const); None for Bernoulli."""
    return _DEFAULT_SCALE[kind]


def _sum_pixels(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(dim=1)


def bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """sum_pixels [x log sigmoid(l) + (1 - x) log(1 - sigmoid(l))] per sample.

    ``x`` may be any value in [0, 1] (the cross-entropy form), not only 0/1.
    """
    return -_sum_pixels(F.binary_cross_entropy_with_logits(logits, x, reduction="none"))


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, scale: float) -> torch.Tensor:
    """sum_pixels log N(x; mean, scale^2) per sample."""
    const = -0.5 * math.log(2 * math.pi) - math.log(scale)
    return _sum_pixels(-0.5 * ((x - mean) / scale) ** 2 + const)


def laplace_log_prob(x: torch.Tensor, mean: torch.Tensor, scale: float) -> torch.Tensor:
    """sum_pixels log Laplace(x; mean, scale) per sample."""
    return _sum_pixels(-(x - mean).abs() / scale - math.log(2 * scale))


class Likelihood:
    """A fixed-parameter decoder likelihood (no learnable state).

    Parameters
    ----------
    kind : {"bernoulli", "gaussian", "laplace"}
    scale : float, optional
        Gaussian sigma or Laplace b (defaults: :func:`default_scale`).
    loc : {"sigmoid", "identity"}
        Gaussian/Laplace location: ``sigmoid(output)`` (default) or the decoder output
        itself. Ignored for Bernoulli (the output is always the logits).
    """

    def __init__(self, kind: str, scale: float | None = None, loc: str = "sigmoid") -> None:
        if kind not in _DEFAULT_SCALE:
            raise ValueError(f"likelihood must be one of {', '.join(_DEFAULT_SCALE)}, got {kind!r}")
        if loc not in LOCS:
            raise ValueError(f"likelihood loc must be one of {', '.join(LOCS)}, got {loc!r}")
        self.kind = kind
        self.scale = default_scale(kind) if scale is None else float(scale)
        self.loc = "sigmoid" if kind == "bernoulli" else loc

    def location(self, logits: torch.Tensor) -> torch.Tensor:
        """The Gaussian/Laplace location (Bernoulli: the success probability)."""
        return torch.sigmoid(logits) if self.loc == "sigmoid" else logits

    def mean(self, logits: torch.Tensor) -> torch.Tensor:
        """The decoder mean as an image in [0, 1].

        An ``identity`` location is clipped to [0, 1] (the image range of
        :meth:`disbench.baselines.base.Model.decode`); the log-likelihood uses it unclipped.
        """
        if self.loc == "identity":
            return logits.clamp(0.0, 1.0)
        return torch.sigmoid(logits)

    def log_prob(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Per-sample log p(x | z), summed over pixels; shape (N,)."""
        # Likelihoods are evaluated in float32 even under bf16 autocast (sums of 4096 terms).
        logits = logits.float()
        x = x.float()
        if self.kind == "bernoulli":
            return bernoulli_log_prob(x, logits)
        if self.kind == "gaussian":
            return gaussian_log_prob(x, self.location(logits), self.scale)
        return laplace_log_prob(x, self.location(logits), self.scale)

    def __repr__(self) -> str:
        return f"Likelihood({self.kind!r}, scale={self.scale}, loc={self.loc!r})"
