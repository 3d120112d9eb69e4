"""The alpha-beta VAE's own networks (Mathieu et al. 2019), selectable with ``network``.

Source: iffsid/disentangling-disentanglement (commit 3396d40), ``src/models/
vae_fashion_mnist.py`` and ``src/models/vae_dsprites.py`` (``Enc`` / ``Dec``), read here.
Each encoder returns ``(mean, logvar)`` like the shared encoders, with ``logvar =
2 log(scale)`` of the official posterior scale, so the reparameterised sample
``mean + exp(logvar / 2) * eps`` is the official one.

``fashion_mnist`` (1x32x32 input; the official loader resizes Fashion-MNIST to 32x32)
    A DCGAN-style pair with ``fBase = 32`` (the ``--fBase`` default of ``src/main.py``).
    Encoder: conv fB 4x4 s2 p1 (no bias) LeakyReLU(0.2); conv 2fB 4x4 s2 p1 (no bias)
    BatchNorm LeakyReLU(0.2); conv 4fB 4x4 s2 p1 (no bias) BatchNorm LeakyReLU(0.2)
    (32 -> 16 -> 8 -> 4); two 4x4 convolutions 4fB -> D (4x4 -> 1x1) for the mean and the
    scale, ``scale = softplus(c2) + 1e-6``. Decoder: deconv D -> 4fB 4x4 s1 p0 (1 -> 4),
    BatchNorm ReLU; deconv 2fB 4x4 s2 p1 BN ReLU; deconv fB BN ReLU; deconv 1 4x4 s2 p1
    (-> 32), all without bias; the output is the **location** of the Laplace likelihood
    (no squashing; ``Dec.forward`` returns ``d, 0.1``). Convolution weights ~ N(0, 0.02),
    biases 0 (the official initialisation loops).
``dsprites`` (1x64x64 input)
    Encoder: conv 32-32-64-64, 4x4 s2 p1, ReLU (64 -> 4); flatten 1024; dense 128 (the
    official ``Enc`` has **no** activation after it); dense heads 128 -> D for the mean
    and ``scale = exp(0.5 * c2) + 1e-6``. Decoder: dense D -> 128 ReLU -> 1024 ReLU,
    reshape 64x4x4, deconv 64-64-32 4x4 s2 p1 ReLU, deconv 1 (-> 64): Bernoulli logits
    (``RelaxedBernoulli`` whose ``log_prob`` the official ``VAE`` replaces by
    ``-binary_cross_entropy_with_logits``). PyTorch's default initialisation, as the
    official file sets none.

``pinwheel`` (2-D points stored as (2, 1, 1) observations, :mod:`disbench.datasets.pinwheel`)
    ``src/models/vae_pinwheel.py`` with the ``src/main.py`` defaults ``--num-hidden-layers 1``
    and ``--hidden-dim 100``: encoder dense 2 -> 100 ReLU, heads 100 -> D for the mean and
    ``scale = softplus(fc22) + 1e-6``; decoder dense D -> 100 ReLU, head 100 -> 2, the
    Gaussian location (unsquashed). Deviation: the official decoder also learns the
    Gaussian scale (``softplus(fc32)``); here the scale is the model's fixed
    ``likelihood_scale``, in the units of the stored observations (``x / 255``, the
    coordinates divided by ``2 * WINDOW`` = 5), and the networks read and write those
    units rather than raw coordinates (an affine change the first and last layers absorb).

The official image networks take one channel; these accept any ``C`` (an extension).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: ``Constants.eta`` of the official ``src/utils.py``, added to the posterior scale.
ETA = 1e-6
FBASE = 32


def _logvar(scale: torch.Tensor) -> torch.Tensor:
    return 2.0 * torch.log(scale)


def _dcgan_init(module: nn.Module, kinds: tuple[type, ...]) -> None:
    for m in module.modules():
        if isinstance(m, kinds):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class FashionMNISTEncoder(nn.Module):
    """The official Fashion-MNIST ``Enc`` (32x32 input)."""

    def __init__(self, channels: int, latent_dim: int, fbase: int = FBASE) -> None:
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(channels, fbase, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2),
            nn.Conv2d(fbase, fbase * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(fbase * 2),
            nn.LeakyReLU(0.2),
            nn.Conv2d(fbase * 2, fbase * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(fbase * 4),
            nn.LeakyReLU(0.2),
        )
        self.c1 = nn.Conv2d(fbase * 4, latent_dim, 4)
        self.c2 = nn.Conv2d(fbase * 4, latent_dim, 4)
        _dcgan_init(self, (nn.Conv2d,))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.enc(x)
        mean = self.c1(e).flatten(1)
        scale = F.softplus(self.c2(e)).flatten(1) + ETA
        return mean, _logvar(scale)


class FashionMNISTDecoder(nn.Module):
    """The official Fashion-MNIST ``Dec``: returns the Laplace location (N, C, 32, 32)."""

    def __init__(self, latent_dim: int, channels: int, fbase: int = FBASE) -> None:
        super().__init__()
        self.dec = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, fbase * 4, 4, 1, 0, bias=False),
            nn.BatchNorm2d(fbase * 4),
            nn.ReLU(),
            nn.ConvTranspose2d(fbase * 4, fbase * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(fbase * 2),
            nn.ReLU(),
            nn.ConvTranspose2d(fbase * 2, fbase, 4, 2, 1, bias=False),
            nn.BatchNorm2d(fbase),
            nn.ReLU(),
            nn.ConvTranspose2d(fbase, channels, 4, 2, 1, bias=False),
        )
        _dcgan_init(self, (nn.ConvTranspose2d,))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z[:, :, None, None])


class DSpritesEncoder(nn.Module):
    """The official dSprites ``Enc`` (64x64 input)."""

    def __init__(self, channels: int, latent_dim: int) -> None:
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(channels, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(),
        )
        self.lin = nn.Linear(64 * 4 * 4, 128)  # no activation after it, as the official Enc
        self.c1 = nn.Linear(128, latent_dim)
        self.c2 = nn.Linear(128, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.lin(self.enc(x).flatten(1))
        scale = torch.exp(0.5 * self.c2(e)) + ETA
        return self.c1(e), _logvar(scale)


class DSpritesDecoder(nn.Module):
    """The official dSprites ``Dec``: Bernoulli logits (N, C, 64, 64)."""

    def __init__(self, latent_dim: int, channels: int) -> None:
        super().__init__()
        self.lin = nn.Sequential(
            nn.Linear(latent_dim, 128), nn.ReLU(),
            nn.Linear(128, 64 * 4 * 4), nn.ReLU(),
        )
        self.dec = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, channels, 4, 2, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(self.lin(z).view(-1, 64, 4, 4))


class PinwheelEncoder(nn.Module):
    """The official pinwheel ``Enc`` (one hidden layer of ``hidden`` ReLU units)."""

    def __init__(self, channels: int, latent_dim: int, hidden: int = 100) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU())
        self.fc21 = nn.Linear(hidden, latent_dim)
        self.fc22 = nn.Linear(hidden, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.enc(x)
        return self.fc21(e), _logvar(F.softplus(self.fc22(e)) + ETA)


class PinwheelDecoder(nn.Module):
    """The official pinwheel ``Dec``'s location head: (N, C, 1, 1) points."""

    def __init__(self, latent_dim: int, channels: int, hidden: int = 100) -> None:
        super().__init__()
        self.dec = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, channels))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z)[:, :, None, None]


#: ``network`` -> (encoder class, decoder class, accepted (H, W), decoder output kind).
#: "loc": the likelihood's location as is; "logits": squashed by a sigmoid for the mean.
NETWORKS: dict[str, tuple[type, type, tuple[int, int], str]] = {
    "fashion_mnist": (FashionMNISTEncoder, FashionMNISTDecoder, (32, 32), "loc"),
    "dsprites": (DSpritesEncoder, DSpritesDecoder, (64, 64), "logits"),
    "pinwheel": (PinwheelEncoder, PinwheelDecoder, (1, 1), "loc"),
}
