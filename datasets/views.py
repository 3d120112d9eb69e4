"""Image views of the labelled sets: the resolution, channels and polarity a protocol feeds.

The labelled sets (``mnist``, ``fashion_mnist``, ``omniglot``) take the load options
``size``, ``channels``, ``invert`` and ``resize`` (:data:`OPTIONS`); :func:`apply` turns
their stored uint8 images (N, 1, H, W) into the view, in this order: polarity, resize,
channels. Results are stored as uint8 again (rounded half to even), which the trainer
divides by 255; a float pipeline differs from it by at most 1/510 per pixel.

``resize`` methods
    ``"area"``
        ``torch.nn.functional.interpolate(mode="area")`` on the 0..255 values: the average of
        the covered source pixels (disbench's Omniglot 28x28 view).
    ``"pil_bilinear"``
        ``PIL.Image.resize((size, size), Image.BILINEAR)`` on the uint8 greyscale image. This
        is what ``torchvision.transforms.Resize(size=(s, s))`` does to a PIL image:
        torchvision's PIL path calls ``img.resize(size[::-1], interpolation)`` with
        ``InterpolationMode.BILINEAR`` mapped to ``PIL.Image.BILINEAR``
        (``torchvision/transforms/_functional_pil.py``, ``resize``) -- the path of the
        alpha-beta VAE's Fashion-MNIST loader (iffsid/disentangling-disentanglement
        ``src/models/vae_fashion_mnist.py``, ``getDataLoaders``: ``Resize(size=(32, 32))``,
        ``ToTensor()``, then ``clamp(Constants.eta, 1 - Constants.eta)`` with
        ``eta = 1e-6`` from ``src/utils.py``). PIL's output is uint8, so this view is exact.
    ``"tensor_bilinear"``
        ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
        antialias=False)`` on ``x / 255``: what ``torchvision.transforms.Resize`` does to a
        *tensor* (the path of GWAE's data library, ganmodokix/vaetc ``vaetc/data/mnist.py``
        and ``omniglot.py``: ``ToTensor()``, repeat to 3 channels, ``Resize((64, 64))``).
        Whether torchvision antialiases a tensor depends on its version: ``antialias=None``
        meant False in 0.13/0.14 (pytorch/vision PR 6209), the default was ``"warn"`` (False
        with a warning) in 0.16 and is True in current releases (0.22 docs). vaetc pins no
        version; we take False, the behaviour of the releases of the time GWAE's code was
        published (ganmodokix/gwae, February 2023). Antialiasing only matters when shrinking
        (Omniglot 105 -> 64), not for MNIST's 28 -> 64.
    ``"tensor_bilinear_antialias"``
        The same with ``antialias=True`` (torchvision >= 0.17's default).

The clamp of the alpha-beta VAE loader
    ``clamp(1e-6, 1 - 1e-6)`` changes only pixels that are exactly 0 or 1 after ``ToTensor``;
    uint8 storage cannot hold it, so it is the model's job: a model that wants that loader's
    input applies ``x.clamp(ALPHA_BETA_CLAMP, 1 - ALPHA_BETA_CLAMP)`` to the trainer's
    ``x = uint8 / 255``. The stored 32x32 images are exactly ``ToTensor(Resize(...)) * 255``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from disbench.datasets.contract import Option
from disbench.errors import DisbenchError

RESIZE_METHODS = ("area", "pil_bilinear", "tensor_bilinear", "tensor_bilinear_antialias")
#: the clamp of iffsid/disentangling-disentanglement's loaders (``Constants.eta``)
ALPHA_BETA_CLAMP = 1e-6
MIN_SIZE, MAX_SIZE = 8, 256

OPTIONS: dict[str, Option] = {
    "size": Option(f"image side of the view ({MIN_SIZE}..{MAX_SIZE}; default: the files' own), "
                   "e.g. 32 for the alpha-beta VAE's Fashion-MNIST, 64 for GWAE's OoD "
                   "protocol, 28 for Omniglot VAE experiments"),
    "channels": Option("1 (the files) or 3 (the grey image repeated, as GWAE's data library "
                       "feeds it)"),
    "invert": Option("true: ink and background swapped relative to the files"),
    "resize": Option("how the view is resized: " + ", ".join(RESIZE_METHODS) +
                     " (see disbench.datasets.views)"),
}


@dataclass(frozen=True)
class View:
    """One view: ``size`` (None: native), ``channels``, ``invert`` (relative to the files),
    ``resize`` (one of :data:`RESIZE_METHODS`)."""

    size: int | None
    channels: int
    invert: bool
    resize: str

    def suffix(self, default: View) -> str:
        """The fingerprint suffix of this view against the dataset's ``default`` view (empty
        for the default, so existing fingerprints do not change)."""
        parts = []
        if self.size != default.size:
            parts.append(f"{self.size}px")
        if self.size != default.size and self.resize != default.resize:
            parts.append(self.resize)
        if self.channels != default.channels:
            parts.append(f"{self.channels}ch")
        if self.invert != default.invert:
            parts.append("inverted" if self.invert else "files-polarity")
        return "".join(f"-{p}" for p in parts)


def make_view(name: str, native: int, default: View, *, size: Any = None,
              channels: Any = None, invert: Any = None, resize: Any = None) -> View:
    """The checked view of dataset ``name`` (native side ``native``) from its load options."""
    size = default.size if size is None else size
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or \
                not MIN_SIZE <= size <= MAX_SIZE:
            raise DisbenchError(f"{name}: size must be an integer in {MIN_SIZE}..{MAX_SIZE} "
                                f"(native {native}), got {size!r}")
        if size == native:
            size = None
    channels = default.channels if channels is None else channels
    if channels not in (1, 3) or isinstance(channels, bool):
        raise DisbenchError(f"{name}: channels must be 1 or 3, got {channels!r}")
    invert = default.invert if invert is None else invert
    if not isinstance(invert, bool):
        raise DisbenchError(f"{name}: invert must be true or false, got {invert!r}")
    resize = default.resize if resize is None else resize
    if resize not in RESIZE_METHODS:
        raise DisbenchError(f"{name}: resize must be one of {', '.join(RESIZE_METHODS)}, "
                            f"got {resize!r}")
    return View(size, channels, invert, resize)


def apply(images: np.ndarray, view: View, *, stored_inverted: bool = False) -> np.ndarray:
    """uint8 (N, channels, s, s) images of ``view`` from stored uint8 (N, 1, H, W).

    ``stored_inverted``: whether the stored images are already inverted relative to the
    files (Omniglot stores ink = 255), so the polarity flips when ``view.invert`` differs.
    """
    out = images
    if view.invert != stored_inverted:
        out = np.subtract(np.uint8(255), out, dtype=np.uint8)
    if view.size is not None:
        out = resize(out, view.size, view.resize)
    if view.channels == 3:
        out = np.repeat(out, 3, axis=1)
    return out


def resize(images: np.ndarray, size: int, method: str) -> np.ndarray:
    """uint8 (N, C, size, size) from uint8 (N, C, H, W) by ``method`` (module docstring)."""
    if method == "pil_bilinear":
        return _resize_pil(images, size)
    import torch
    import torch.nn.functional as F

    out = np.empty((len(images), images.shape[1], size, size), dtype=np.uint8)
    for lo in range(0, len(images), 4096):
        x = torch.from_numpy(np.array(images[lo:lo + 4096], dtype=np.float32))
        if method == "area":
            y = F.interpolate(x, size=(size, size), mode="area")
        else:
            y = F.interpolate(x / 255.0, size=(size, size), mode="bilinear",
                              align_corners=False,
                              antialias=method == "tensor_bilinear_antialias") * 255.0
        out[lo:lo + 4096] = y.round().clamp(0, 255).to(torch.uint8).numpy()
    return out


def _resize_pil(images: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(images), images.shape[1], size, size), dtype=np.uint8)
    for i in range(len(images)):
        for c in range(images.shape[1]):
            im = Image.fromarray(np.ascontiguousarray(images[i, c]))  # uint8 2-D: mode "L"
            out[i, c] = np.asarray(im.resize((size, size), Image.Resampling.BILINEAR))
    return out
