"""Registered ground-truth grids (dsprites, shapes3d): the official/twin flow, once.

:class:`GridDataset` is both the registry entry (a :class:`~disbench.datasets.entry.
DatasetSpec`) and the dataset object (a :class:`~disbench.datasets.ground_truth.
GroundTruthDataset`). A grid dataset module declares its manifest and factor grid and
supplies only

- ``render_factors(factors) -> uint8 images`` (a staticmethod: the twin's renderer),
- ``convert_official(paths, dest, *, progress)``: parse the verified official files and
  write their images, in grid order, as an uncompressed uint8 ``.npy`` of shape
  (N, C, H, W) at ``dest`` (atomically),
- ``write_twin(folder, *, progress) -> [paths]``: render the whole twin into the
  official files' format (``prepare --source synthetic``), and optionally
  ``convert_twin`` when the twin's files must be parsed differently.

Random-access layout: the converted ``.npy`` is opened with ``mmap_mode="r"``; a JSON
stamp beside it records the data it came from (the file checksum, or the twin version)
and a digest of the layout itself (:mod:`disbench.datasets.cache`, "sampled" mode for the
multi-GB layouts), checked on every open: a changed source file is converted again, and a
damaged layout is deleted with a warning naming it and rebuilt (the official one by
converting again; the twin's by rendering on demand until ``prepare --source synthetic``
caches it again). Without ``prepare --source synthetic`` the twin's ``images`` is a lazy
:class:`~disbench.datasets.ground_truth.RenderedImages`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from disbench.datasets.cache import write_stamp
from disbench.datasets.contract import Option
from disbench.datasets.entry import DOWNLOAD, PROGRESS_OFFICIAL, DatasetSpec
from disbench.datasets.ground_truth import GroundTruthDataset, RenderedImages, cached_layout

OFFICIAL_LAYOUT = "official_images.npy"
TWIN_LAYOUT = "synthetic_images.npy"
_TWIN_FIX = ("the twin renders on demand until 'disbench datasets prepare {name} --source "
             "synthetic' caches it again")


class GridDataset(DatasetSpec, GroundTruthDataset):
    """A full factor grid with one split, ``"train"`` (subclasses add the manifest)."""

    kind: ClassVar[str] = "ground_truth"
    default_split: ClassVar[str] = "train"
    options: ClassVar[dict[str, Option]] = {"download": DOWNLOAD, "progress": PROGRESS_OFFICIAL}

    # --- hooks of a grid module --------------------------------------------------------
    @staticmethod
    def convert_official(paths: list[Path], dest: Path, *, progress: bool) -> Any:
        raise NotImplementedError  # pragma: no cover - each grid module defines it

    @staticmethod
    def write_twin(folder: Path, *, progress: bool) -> list[Path]:
        raise NotImplementedError  # pragma: no cover - each grid module defines it

    @classmethod
    def convert_twin(cls, paths: list[Path], dest: Path, *, progress: bool) -> Any:
        """Parse the twin's files (by default exactly as the official ones)."""
        return cls.convert_official(paths, dest, progress=progress)

    # --- the grid ------------------------------------------------------------------------
    @classmethod
    def num_images(cls) -> int:
        return int(np.prod(cls.factor_sizes))

    @classmethod
    def factor_table(cls) -> dict[str, int]:
        return dict(zip(cls.factor_names, cls.factor_sizes, strict=True))

    @classmethod
    def _layout(cls, path: Path, source: str, fix: str = "converting it again"
                ) -> np.ndarray | None:
        return cached_layout(path, source, (cls.num_images(), *cls.image_shape), fix)

    @classmethod
    def _render_indices(cls, idx: np.ndarray) -> np.ndarray:
        f = np.stack(np.unravel_index(np.asarray(idx, np.int64), cls.factor_sizes), axis=1)
        return cls.render_factors(f.astype(np.int64))

    # --- official ------------------------------------------------------------------------
    @classmethod
    def _official_stamp(cls, split: str) -> tuple[str, str]:
        """(stamp of the converted layout, fingerprint) of the official data: the file's
        own checksum for a one-file grid, else the hash of all the split's checksums."""
        files = cls.split_files(split)
        if len(files) == 1:
            f = files[0]
            return f"{f.algorithm}-{f.expected}", f"{f.algorithm}-{f.expected[:12]}"
        fp = cls.official_fingerprint(split)
        return fp, fp

    @classmethod
    def load_official(cls, split: str | None = None, *, download: bool = True,
                      progress: bool = True) -> GridDataset:
        """The published grid (downloaded and verified on first use, converted once)."""
        split = cls.check_split(split)
        paths = cls.official_paths(split, download=download, progress=progress)
        dest = cls.folder() / OFFICIAL_LAYOUT
        stamp, fingerprint = cls._official_stamp(split)
        images = cls._layout(dest, stamp)
        if images is None:
            cls.convert_official(paths, dest, progress=progress)
            write_stamp(dest, stamp, file=", ".join(p.name for p in paths))
            images = cls._layout(dest, stamp)
        return cls(images, source="official", split=split, fingerprint=fingerprint)

    @classmethod
    def _prepare_official(cls, splits: list[str], *, progress: bool,
                          **options: Any) -> list[Path]:
        super()._prepare_official(splits, progress=progress, **options)  # no options
        for split in splits:
            cls.load_official(split, progress=progress)
        return [cls.folder() / OFFICIAL_LAYOUT]

    # --- twin ----------------------------------------------------------------------------
    @classmethod
    def load_synthetic(cls, split: str | None = None) -> GridDataset:
        """The procedural twin: the cached grid after ``prepare``, else rendered on demand."""
        split = cls.check_split(split)
        images = cls._layout(cls.folder() / TWIN_LAYOUT, cls.twin_version, _TWIN_FIX.format(
            name=cls.name))
        if images is None:
            images = RenderedImages((cls.num_images(), *cls.image_shape), cls._render_indices)
        return cls(images, source="synthetic", split=split, fingerprint=cls.twin_fingerprint())

    @classmethod
    def _prepare_synthetic(cls, splits: list[str], *, progress: bool,
                           **options: Any) -> list[Path]:
        """Render the whole twin in the official format, parse it back, cache the layout."""
        cls.load_options("synthetic", options)  # the twin takes no options: unknown ones fail
        del splits  # a grid has one split
        paths = cls.write_twin(cls.folder() / "synthetic", progress=progress)
        dest = cls.folder() / TWIN_LAYOUT
        cls.convert_twin(paths, dest, progress=progress)
        write_stamp(dest, cls.twin_version, file=", ".join(str(p) for p in paths))
        return [dest]

    @classmethod
    def twin_cached(cls) -> list[str]:
        if cls._layout(cls.folder() / TWIN_LAYOUT, cls.twin_version,
                       _TWIN_FIX.format(name=cls.name)) is None:
            return []
        return [cls.default_split]
