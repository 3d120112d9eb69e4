"""The dataset object of the labelled sets, and the torch ``Dataset`` protocol over images.

- :class:`ImageSetMixin` gives any object with a uint8 ``images`` array (N, C, H, W) the
  torch ``Dataset`` protocol (``len``, ``ds[i] -> (uint8 tensor, target)``),
  ``image_shape`` and ``tensor(device)``; a subclass only defines ``target(i)``.
- :class:`LabelledImages` is the dataset object of the labelled sets (mnist,
  fashion_mnist, omniglot, celeba): ``images`` + int64 ``labels`` + ``num_classes``; it
  satisfies :class:`~disbench.datasets.contract.LabelledData`.

torch is imported lazily so that ``import disbench.datasets`` stays light.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np


def as_torch_uint8(array: Any, device: Any = "cpu") -> Any:
    """The whole ``array`` (numpy array or memmap) as one torch tensor on ``device``.

    A read-only array (e.g. a memmap opened with ``mode="r"``) is copied for the CPU so
    the returned tensor never aliases memory torch may not write to.
    """
    import torch

    arr = np.asarray(array)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    device = torch.device(device)
    if device.type == "cpu":
        if not arr.flags.writeable:
            arr = arr.copy()
        return torch.from_numpy(arr)
    with warnings.catch_warnings():
        # The non-writable buffer is only read, by the copy to the device.
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(arr).to(device)


class ImageSetMixin:
    """The torch ``Dataset`` protocol over a uint8 ``images`` array (N, C, H, W).

    Subclasses set ``images`` and define ``target(i)``.
    """

    images: Any

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one observation, ``(C, H, W)`` (``(T, C, H, W)`` for sequences)."""
        return tuple(int(s) for s in self.images.shape[1:])

    def target(self, i: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _index(self, i: Any) -> int:
        n = len(self)
        try:
            j = int(i)
        except TypeError:
            raise TypeError(f"{type(self).__name__} indices must be integers, got {i!r}") from None
        if j < 0:
            j += n
        if not 0 <= j < n:
            raise IndexError(f"index {i} out of range for {n} items")
        return j

    def __getitem__(self, i: Any) -> tuple[Any, Any]:
        import torch

        j = self._index(i)
        return torch.from_numpy(np.array(self.images[j], copy=True)), self.target(j)

    def tensor(self, device: Any = "cpu") -> Any:
        """All images as one uint8 torch tensor on ``device`` (convert per batch)."""
        return as_torch_uint8(self.images, device)


class LabelledImages(ImageSetMixin):
    """A labelled image set: uint8 ``images`` (N, C, H, W) in 0..255, int64 ``labels`` (N,).

    ``ds[i]`` returns ``(uint8 tensor (C, H, W), int label)``.

    Attributes
    ----------
    images, labels, num_classes, class_names, name, split, source, fingerprint, binary
        As in the dataset contract; ``extras`` holds per-dataset arrays (e.g. CelebA's
        40 attributes, Omniglot's alphabet index).
    """

    def __init__(self, images: Any, labels: Any, *, num_classes: int, name: str, split: str,
                 source: str, fingerprint: str, class_names: Sequence[str] | None = None,
                 binary: bool = False, extras: dict[str, Any] | None = None) -> None:
        if getattr(images, "dtype", None) != np.uint8 or getattr(images, "ndim", 0) != 4:
            raise ValueError(
                f"{name}: images must be a uint8 array (N, C, H, W), got "
                f"{getattr(images, 'dtype', type(images))} {getattr(images, 'shape', '')}"
            )
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (images.shape[0],):
            raise ValueError(
                f"{name}: labels must have shape ({images.shape[0]},), got {labels.shape}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name}: labels must lie in 0..{num_classes - 1}")
        self.images = images
        self.labels = labels
        self.num_classes = int(num_classes)
        self.class_names = tuple(class_names) if class_names is not None else None
        self.name = name
        self.split = split
        self.source = source
        self.fingerprint = fingerprint
        self.binary = bool(binary)
        self.extras = dict(extras or {})

    def target(self, i: int) -> int:
        return int(self.labels[i])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, "
                f"source={self.source!r}, n={len(self)}, image_shape={self.image_shape}, "
                f"num_classes={self.num_classes})")
