"""The shared encoder/decoder: the convolutional architecture of Locatello et al. 2019.

Locatello et al., "Challenging Common Assumptions in the Unsupervised Learning of
Disentangled Representations", ICML 2019, Table 1 (64x64xC input):

- encoder: conv 32 4x4 stride 2 ReLU, conv 32 4x4 s2 ReLU, conv 64 4x4 s2 ReLU,
  conv 64 4x4 s2 ReLU, dense 256 ReLU, dense 2 x D (mean and log-variance heads);
- decoder: dense 256 ReLU, dense 4*4*64 ReLU, deconv 64 4x4 s2 ReLU, deconv 32 4x4 s2
  ReLU, deconv 32 4x4 s2 ReLU, deconv C 4x4 s2 (logits).

"SAME" padding with stride 2 is padding 1 here (64 -> 32 -> 16 -> 8 -> 4).

28x28 variant (MNIST-like sets): the same layers, with the first convolution padded by
3 instead of 1 (equivalent to zero-padding the image to 32x32), so the feature maps are
16 -> 8 -> 4 -> 2 and the flattened size is 64*2*2 = 256; the decoder mirrors it and
its last transposed convolution crops back to 28x28 (padding 3).

Weights use PyTorch's default initialisation (disentanglement_lib uses TF's
Glorot-uniform; a stated deviation without effect on the architecture).
"""
from __future__ import annotations

import torch
from torch import nn

HIDDEN = 256


def _geometry(image_shape: tuple[int, int, int]) -> tuple[int, int]:
    """(padding of the outer conv layer, spatial size of the innermost feature map)."""
    _, h, w = image_shape
    if (h, w) == (64, 64):
        return 1, 4
    if (h, w) == (28, 28):
        return 3, 2
    raise ValueError(f"image_shape must be (C, 64, 64) or (C, 28, 28), got {image_shape!r}")


class ConvTrunk(nn.Module):
    """Four stride-2 convolutions (32-32-64-64, kernel 4) and a dense 256 layer."""

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        c = image_shape[0]
        pad, inner = _geometry(image_shape)
        self.net = nn.Sequential(
            nn.Conv2d(c, 32, 4, stride=2, padding=pad),
            nn.ReLU(),
            nn.Conv2d(32, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * inner * inner, HIDDEN),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class GaussianEncoder(nn.Module):
    """q(z|x) = N(mean(x), diag(exp(logvar(x)))): trunk plus two dense heads."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int) -> None:
        super().__init__()
        self.trunk = ConvTrunk(image_shape)
        self.mean = nn.Linear(HIDDEN, latent_dim)
        self.logvar = nn.Linear(HIDDEN, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.mean(h), self.logvar(h)


class DeterministicEncoder(nn.Module):
    """z = f(x): trunk plus one dense head (the WAE encoders)."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int) -> None:
        super().__init__()
        self.trunk = ConvTrunk(image_shape)
        self.mean = nn.Linear(HIDDEN, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mean(self.trunk(x))


class ConvDecoder(nn.Module):
    """The mirrored decoder; returns per-pixel logits of shape (N, C, H, W)."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        c = image_shape[0]
        pad, inner = _geometry(image_shape)
        self.inner = inner
        self.net = nn.Sequential(
            nn.Linear(latent_dim, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, 64 * inner * inner),
            nn.ReLU(),
            nn.Unflatten(1, (64, inner, inner)),
            nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, c, 4, stride=2, padding=pad),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def mlp(sizes: list[int], activation: type[nn.Module] = nn.ReLU, **act_kw) -> nn.Sequential:
    """A fully connected network ``sizes[0] -> ... -> sizes[-1]`` (no final activation)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(activation(**act_kw))
    return nn.Sequential(*layers)
