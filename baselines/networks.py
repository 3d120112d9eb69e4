"""The shared encoder/decoder: the convolutional networks of Locatello et al. 2019.

Source: google-research/disentanglement_lib, ``disentanglement_lib/methods/shared/
architectures.py`` (``conv_encoder`` and ``deconv_decoder``), the networks that
``config/unsupervised_study_v1/sweep.py`` fixes for every model and data set of the
study (``encoder.encoder_fn = @conv_encoder``, ``decoder.decoder_fn = @deconv_decoder``).
TF "SAME" padding with stride 2 on an even input pads ``max(k - 2, 0)`` in total, i.e. 1
on each side for a 4x4 kernel and nothing for a 2x2 kernel: PyTorch ``padding=1`` and
``padding=0``.

Encoder (``encoder_arch``), 64x64xC input:

``"dlib"`` (default; disentanglement_lib's ``conv_encoder``)
    conv 32 4x4 s2 ReLU (64 -> 32), conv 32 4x4 s2 ReLU (-> 16), conv 64 **2x2** s2 ReLU
    (-> 8), conv 64 **2x2** s2 ReLU (-> 4), flatten 4*4*64 = 1024, dense 256 ReLU, then
    two dense heads of size D (means and log-variances).
``"paper"``
    the same with 4x4 kernels throughout (padding 1: 64 -> 32 -> 16 -> 8 -> 4, dense input
    1024), the form of row 3 of Table 1 of the beta-VAE paper that disentanglement_lib's
    docstring names as the basis of ``conv_encoder`` (the paper's table itself was not
    read here). disent (nmichlo/disent, ``disent/model/ae/_vae_conv64.py``
    ``EncoderConv64``, read here) also uses 4x4 kernels throughout, commenting that it
    "reverted to kernel size 4x4 from 2x2, to match beta-vae paper", but pads by 2 (feature
    maps 33 -> 17 -> 9 -> 5, dense input 1600); ``"paper"`` keeps padding 1 so that it
    differs from ``"dlib"`` in the kernel size only.

Decoder (both encoder choices; disentanglement_lib's ``deconv_decoder``, checked layer by
layer): dense 256 ReLU, dense 1024 ReLU, reshape to 64x4x4, deconv 64 4x4 s2 ReLU, deconv
32 4x4 s2 ReLU, deconv 32 4x4 s2 ReLU, deconv C 4x4 s2 (logits; the study's loss is
``bernoulli_loss`` with ``activation="logits"``, ``methods/shared/losses.py``). TF's
``conv2d_transpose`` with "SAME" doubles the size, as ``ConvTranspose2d(k=4, s=2, p=1)``.

28x28 variant (MNIST-like sets): no reference code found; disbench's own adaptation. The
same layers, with the first convolution padded by 3 instead of 1 (equivalent to
zero-padding the image to 32x32), so the feature maps are 16 -> 8 -> 4 -> 2 and the
flattened size is 64*2*2 = 256; the decoder mirrors it and its last transposed
convolution crops back to 28x28 (padding 3).

Flattening order differs (TF is NHWC, PyTorch NCHW): a fixed permutation of the dense
layer's inputs, the same function class. Weights use PyTorch's default initialisation
(disentanglement_lib's ``tf.layers`` use Glorot-uniform; a stated deviation).
"""
from __future__ import annotations

import torch
from torch import nn

HIDDEN = 256
#: ``encoder_arch`` values: disentanglement_lib's conv_encoder, or 4x4 kernels throughout.
ENCODER_ARCHS = ("dlib", "paper")
#: (kernel size, padding) of the four encoder convolutions at 64x64, per architecture.
_ENCODER_LAYERS = {
    "dlib": ((4, 1), (4, 1), (2, 0), (2, 0)),
    "paper": ((4, 1), (4, 1), (4, 1), (4, 1)),
}


def _geometry(image_shape: tuple[int, int, int]) -> tuple[int, int]:
    """(padding of the outer conv layer, spatial size of the innermost feature map)."""
    _, h, w = image_shape
    if (h, w) == (64, 64):
        return 1, 4
    if (h, w) == (28, 28):
        return 3, 2
    raise ValueError(image_shape_error(image_shape))


def image_shape_error(image_shape: object,
                      sizes: tuple[tuple[int, int], ...] = ((64, 64), (28, 28))) -> str:
    """The message for an ``image_shape`` the networks do not take (allowed (H, W):
    ``sizes``), with the way out: a dataset view of an allowed size."""
    allowed = " or ".join(f"(C, {h}, {w})" for h, w in sizes)
    small = min(sizes)[0]
    return (f"image_shape must be {allowed}, got {image_shape!r}; a dataset with views takes "
            f"one of those sizes (e.g. --dataset-options size={small} for omniglot, or "
            f"options: {{size: {small}}} in a spec's dataset entry; 'disbench datasets info "
            "NAME' lists its options)")


class ConvTrunk(nn.Module):
    """Four stride-2 convolutions (32-32-64-64) and a dense 256 layer.

    Parameters
    ----------
    image_shape : (C, H, W), H x W in {64 x 64, 28 x 28}
    arch : {"dlib", "paper"}
        Kernel sizes of the convolutions (see the module docstring).
    """

    def __init__(self, image_shape: tuple[int, int, int], arch: str = "dlib") -> None:
        super().__init__()
        if arch not in _ENCODER_LAYERS:
            raise ValueError(f"encoder_arch must be one of {', '.join(ENCODER_ARCHS)}, "
                             f"got {arch!r}")
        c = image_shape[0]
        outer_pad, inner = _geometry(image_shape)
        layers: list[nn.Module] = []
        ch_in = c
        layer_specs = zip((32, 32, 64, 64), _ENCODER_LAYERS[arch], strict=True)
        for i, (ch, (k, pad)) in enumerate(layer_specs):
            # The first layer's extra padding (28x28) acts as zero-padding the image.
            pad = outer_pad if i == 0 else pad
            layers += [nn.Conv2d(ch_in, ch, k, stride=2, padding=pad), nn.ReLU()]
            ch_in = ch
        layers += [nn.Flatten(), nn.Linear(64 * inner * inner, HIDDEN), nn.ReLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class GaussianEncoder(nn.Module):
    """q(z|x) = N(mean(x), diag(exp(logvar(x)))): trunk plus two dense heads."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int,
                 arch: str = "dlib") -> None:
        super().__init__()
        self.trunk = ConvTrunk(image_shape, arch)
        self.mean = nn.Linear(HIDDEN, latent_dim)
        self.logvar = nn.Linear(HIDDEN, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.mean(h), self.logvar(h)


class DeterministicEncoder(nn.Module):
    """z = f(x): trunk plus one dense head (the WAE encoders)."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int,
                 arch: str = "dlib") -> None:
        super().__init__()
        self.trunk = ConvTrunk(image_shape, arch)
        self.mean = nn.Linear(HIDDEN, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mean(self.trunk(x))


class ConvDecoder(nn.Module):
    """disentanglement_lib's ``deconv_decoder``; returns per-pixel logits (N, C, H, W)."""

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
