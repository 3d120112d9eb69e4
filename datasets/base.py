"""Shared pieces of the dataset objects and of the registry classes that build them.

- :class:`ImageSetMixin` gives any object with a uint8 ``images`` array (N, C, H, W) the
  torch ``Dataset`` protocol (``len``, ``ds[i] -> (uint8 tensor, target)``),
  ``image_shape`` and ``tensor(device)``; a subclass only defines ``target(i)``.
- :class:`LabelledImages` is the dataset object of the labelled sets (mnist,
  fashion_mnist, omniglot, celeba): ``images`` + int64 ``labels`` + ``num_classes``.
- :class:`OfficialFileSet` is a base for registry classes whose splits are made of
  published files (:class:`~disbench.datasets.download.OfficialFile`): availability per
  split, ``prepare``, ``import_dir``, ``describe`` and a fingerprint of the files.

torch is imported lazily so that ``import disbench.datasets`` stays light.
"""
from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from disbench.datasets.download import OfficialFile, ensure_file, import_file
from disbench.errors import DisbenchError
from disbench.paths import dataset_dir

log = logging.getLogger(__name__)


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


def fingerprint_of(files: Sequence[OfficialFile], prefix: str = "official") -> str:
    """A short identifier of the exact data: a hash of the files' published checksums.

    The files are verified against these checksums before they are used, so equal
    fingerprints mean equal data.
    """
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.name):
        h.update(f"{f.name}:{f.expected}\n".encode())
    return f"{prefix}-{h.hexdigest()[:12]}"


class OfficialFileSet:
    """Base of registry classes whose splits are built from published files.

    Subclasses define ``files`` (all :class:`OfficialFile` of the dataset), ``splits``
    (split name -> names of the files it needs), ``summary``, ``default_split``,
    ``load_official``, ``load_synthetic`` and ``render_twin(folder, **kw)``.
    ``name`` is set by :func:`~disbench.datasets.registry.register`.
    """

    name: str = ""
    summary: str = ""
    default_split: str = "train"
    files: tuple[OfficialFile, ...] = ()
    splits: ClassVar[dict[str, tuple[str, ...]]] = {}
    twin_version: str = "v1"
    homepage: str = ""

    # --- files -------------------------------------------------------------------------
    @classmethod
    def folder(cls) -> Path:
        """Where the official files are cached (and where a user may place them)."""
        return dataset_dir(cls.name)

    @classmethod
    def file(cls, filename: str) -> OfficialFile:
        for f in cls.files:
            if f.name == filename:
                return f
        raise KeyError(filename)

    @classmethod
    def check_split(cls, split: str | None) -> str:
        split = split or cls.default_split
        if split not in cls.splits:
            raise DisbenchError(
                f"{cls.name}: unknown split {split!r}; choose one of {', '.join(cls.splits)}"
            )
        return split

    @classmethod
    def split_files(cls, split: str) -> list[OfficialFile]:
        return [cls.file(n) for n in cls.splits[cls.check_split(split)]]

    @classmethod
    def official_available(cls, split: str | None = None) -> bool:
        split = cls.check_split(split)
        return all((cls.folder() / f.name).exists() for f in cls.split_files(split))

    @classmethod
    def available_splits(cls) -> list[str]:
        return [s for s in cls.splits if cls.official_available(s)]

    @classmethod
    def official_paths(cls, split: str, *, download: bool = False,
                       progress: bool = True) -> dict[str, Path]:
        """Verified paths of the split's files (raises naming the missing file and URL)."""
        return {f.name: ensure_file(f, cls.folder(), download=download, progress=progress)
                for f in cls.split_files(split)}

    @classmethod
    def fingerprint(cls, split: str) -> str:
        return fingerprint_of(cls.split_files(split))

    # --- synthetic twin ----------------------------------------------------------------
    @classmethod
    def twin_folder(cls, seed: int = 0) -> Path:
        return dataset_dir(cls.name) / f"synthetic-{cls.twin_version}-seed{seed}"

    @classmethod
    def twin_fingerprint(cls, seed: int = 0) -> str:
        return f"synthetic-{cls.twin_version}-seed{seed}"

    # --- registry protocol -------------------------------------------------------------
    @classmethod
    def prepare(cls, source: str = "official", split: str | None = None, *,
                progress: bool = True, **kwargs: Any) -> list[Path]:
        """Download and verify the official files (``split=None``: every split) or
        render the twin."""
        if source == "synthetic":
            ds = cls.load_synthetic(cls.check_split(split), progress=progress, **kwargs)
            return [cls.twin_folder(kwargs.get("seed", 0))] if ds is not None else []
        if source != "official":
            raise DisbenchError(f"source must be 'official' or 'synthetic', got {source!r}")
        wanted = cls.split_files(split) if split else list(cls.files)
        return [ensure_file(f, cls.folder(), download=True, progress=progress) for f in wanted]

    @classmethod
    def import_dir(cls, folder: str | os.PathLike) -> dict[str, Any]:
        """Copy and verify whichever official files ``folder`` holds.

        Returns ``{"imported": [file names], "splits": [splits now available]}``.
        Raises :class:`DisbenchError` if the folder holds none of the files or one fails
        verification (the valid ones are still imported).
        """
        src = Path(folder)
        if not src.is_dir():
            raise DisbenchError(f"{src} is not a folder")
        imported, errors = [], []
        for f in cls.files:
            candidate = src / f.name
            if not candidate.is_file():
                continue
            try:
                import_file(candidate, f, cls.folder())
                imported.append(f.name)
            except DisbenchError as exc:
                errors.append(str(exc))
        if errors:
            raise DisbenchError("; ".join(errors) + (
                f" (imported fine: {', '.join(imported)})" if imported else ""))
        if not imported:
            raise DisbenchError(
                f"{src} holds none of the {cls.name} files "
                f"({', '.join(f.name for f in cls.files)})"
            )
        return {"imported": imported, "splits": cls.available_splits()}

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "name": cls.name,
            "summary": cls.summary,
            "homepage": cls.homepage,
            "cache folder": str(cls.folder()),
            "default split": cls.default_split,
            "splits": {s: list(names) for s, names in cls.splits.items()},
            "official splits cached": cls.available_splits(),
            "files": {f.name: {k: v for k, v in (
                ("url", f.url), ("sha256", f.sha256), ("md5", f.md5), ("bytes", f.size))
                if v is not None} for f in cls.files},
        }
