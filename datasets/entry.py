"""The base of every registered dataset: the registry plumbing, written once.

A dataset module declares a subclass of :class:`DatasetSpec` with its manifest (class
attributes: ``summary``, ``kind``, ``homepage``, ``licence``, ``citation``, ``files``,
``splits``, ``split_sizes``, ``observation_shape``, ``options``, ...) and its two loaders
``load_official(split, ...)`` and ``load_synthetic(split, ...)``, then registers it with
``@register("name")``. Everything else the contract
(:class:`~disbench.datasets.contract.DatasetEntry`) asks for is here: one
``check_split``, ``official_available``/``available_splits``, one ``prepare``, one
``import_dir``, one ``describe`` and the fingerprints of files and twins. A dataset
whose data are not plain published files (Sprites renders from sprite sheets) overrides
the small hooks ``_prepare_official``, ``_prepare_synthetic`` and ``_import_files``.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from disbench.datasets.contract import DESCRIBE_KEYS, KINDS, ImportResult, Option
from disbench.datasets.download import OfficialFile, ensure_file, import_file, pinned
from disbench.errors import DisbenchError
from disbench.paths import dataset_dir

#: The loader options most datasets share (each class lists the ones its loaders take).
DOWNLOAD = Option("download missing official files (else an error names them)", ("official",))
PROGRESS = Option("show progress bars")
PROGRESS_OFFICIAL = Option(PROGRESS.help, ("official",))
SEED = Option("seed of the procedural twin", ("synthetic",))


def fingerprint_of(files: Sequence[OfficialFile], prefix: str = "official") -> str:
    """A short identifier of the exact data: a hash of the files' published checksums.

    The files are verified against these checksums before they are used, so equal
    fingerprints mean equal data.
    """
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.name):
        h.update(f"{f.name}:{f.expected}\n".encode())
    return f"{prefix}-{h.hexdigest()[:12]}"


def file_record(f: OfficialFile, folder: Path | None = None) -> dict[str, Any]:
    """The manifest entry of one file as shown by ``describe()``: addresses in order of
    preference, checksums and where they come from, size. A file without a published
    checksum shows the SHA-256 pinned in ``folder`` when there is one."""
    source = f.checksum_source
    if f.expected is None:
        pin = pinned(f, folder) if folder is not None else f
        source = pin.checksum_source or ("none published: the SHA-256 of the first copy is "
                                         f"pinned in {f.name}.sha256 and printed")
        f = pin
    rec = {"url": f.url, "mirrors": list(f.mirrors), "sha256": f.sha256, "md5": f.md5,
           "bytes": f.size, "checksum_source": source or None}
    return {k: v for k, v in rec.items() if v not in (None, [])}


class DatasetSpec:
    """Base of registered datasets (classmethods only; the manifest is class attributes).

    Subclasses set the manifest attributes below and define ``load_official(split, ...)``
    and ``load_synthetic(split, ...)``; ``name`` is set by
    :func:`~disbench.datasets.registry.register`.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: one of contract.KINDS
    kind: ClassVar[str] = ""
    homepage: ClassVar[str] = ""
    licence: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    #: every published file of the dataset
    files: ClassVar[tuple[OfficialFile, ...]] = ()
    #: split name -> names of the files it needs
    splits: ClassVar[dict[str, tuple[str, ...]]] = {}
    default_split: ClassVar[str] = "train"
    #: split name -> number of observations (official data)
    split_sizes: ClassVar[dict[str, int]] = {}
    observation_shape: ClassVar[tuple[int, ...]] = ()
    #: what the labels are ("" for ground-truth grids)
    labels_note: ClassVar[str] = ""
    #: how the twin is made, and its version (part of its fingerprint and folder)
    twin_summary: ClassVar[str] = ""
    twin_version: ClassVar[str] = "v1"
    #: keyword options of the loaders (``datasets.get(name, **options)``)
    options: ClassVar[dict[str, Option]] = {}

    # --- files -----------------------------------------------------------------------
    @classmethod
    def folder(cls) -> Path:
        """The dataset's cache folder, ``$DISBENCH_DATA/<name>``."""
        return dataset_dir(cls.name)

    @classmethod
    def files_folder(cls) -> Path:
        """Where the official files are cached (and where a user may place them)."""
        return cls.folder()

    @classmethod
    def file(cls, filename: str) -> OfficialFile:
        """The manifest entry of ``filename``."""
        for f in cls.files:
            if f.name == filename:
                return f
        raise KeyError(filename)

    @classmethod
    def check_split(cls, split: str | None) -> str:
        """``split`` (None: the default split) if the dataset has it, else a DisbenchError."""
        split = split or cls.default_split
        if split not in cls.splits:
            valid = ", ".join(repr(s) for s in cls.splits)
            has = f"it has only the split {valid}" if len(cls.splits) == 1 else \
                f"choose one of {valid}"
            raise DisbenchError(f"{cls.name}: unknown split {split!r}; {has}")
        return split

    @classmethod
    def split_files(cls, split: str | None) -> list[OfficialFile]:
        """The manifest entries of the files ``split`` needs."""
        return [cls.file(n) for n in cls.splits[cls.check_split(split)]]

    @classmethod
    def official_available(cls, split: str | None = None) -> bool:
        """Whether every file of ``split`` is in the cache (checked on load, not here)."""
        return all((cls.files_folder() / f.name).exists() for f in cls.split_files(split))

    @classmethod
    def available_splits(cls) -> list[str]:
        """The splits whose official data is in the cache, in manifest order."""
        return [s for s in cls.splits if cls.official_available(s)]

    @classmethod
    def official_paths(cls, split: str | None, *, download: bool = False,
                       progress: bool = True) -> list[Path]:
        """Verified paths of the split's files (raises naming the missing file and URL)."""
        return [ensure_file(f, cls.files_folder(), download=download, progress=progress)
                for f in cls.split_files(split)]

    @classmethod
    def official_fingerprint(cls, split: str | None) -> str:
        """Identifies the official data of ``split``: a hash of its files' checksums."""
        return fingerprint_of(cls.split_files(split))

    # --- synthetic twin --------------------------------------------------------------
    @classmethod
    def twin_folder(cls, seed: int = 0) -> Path:
        """Where the twin of ``seed`` is written (in the official files' formats)."""
        return cls.folder() / f"synthetic-{cls.twin_version}-seed{seed}"

    @classmethod
    def twin_fingerprint(cls, seed: int = 0) -> str:
        """Identifies the twin: its version and seed (it is rendered deterministically)."""
        return f"synthetic-{cls.twin_version}-seed{seed}"

    @classmethod
    def twin_cached(cls) -> list[str]:
        """The splits whose twin (seed 0) is fully written into the cache."""
        folder = cls.twin_folder(0)
        return [s for s, names in cls.splits.items()
                if all((folder / n).is_file() for n in names)]

    # --- loading -----------------------------------------------------------------------
    @classmethod
    def load_options(cls, source: str, options: dict[str, Any]) -> dict[str, Any]:
        """The ``options`` that the ``source`` loader takes; an unknown one is an error
        naming the valid ones."""
        unknown = [k for k in options if k not in cls.options]
        if unknown:
            valid = ", ".join(cls.options) or "none"
            raise DisbenchError(f"{cls.name}: unknown option(s) {', '.join(unknown)}; "
                                f"valid options: {valid}")
        return {k: v for k, v in options.items() if source in cls.options[k].sources}

    @classmethod
    def load_official(cls, split: str | None = None, **options: Any) -> Any:
        """The dataset object built from the verified official files."""
        raise NotImplementedError(f"{cls.__name__} must define load_official")

    @classmethod
    def load_synthetic(cls, split: str | None = None, **options: Any) -> Any:
        """The procedural twin's dataset object."""
        raise NotImplementedError(f"{cls.__name__} must define load_synthetic")

    @classmethod
    def factor_table(cls) -> dict[str, int]:
        """``{factor name: number of classes}`` for ``describe()`` (none by default)."""
        return {}

    # --- prepare -----------------------------------------------------------------------
    @classmethod
    def prepare(cls, source: str = "official", split: str | None = None, *,
                progress: bool = True, **options: Any) -> list[Path]:
        """Download and verify the official files of ``split`` (None: every split) and
        build what they feed, or render the twin of ``split``; returns the paths."""
        splits = [cls.check_split(split)] if split is not None else list(cls.splits)
        if source == "synthetic":
            return cls._prepare_synthetic(splits, progress=progress, **options)
        if source != "official":
            raise DisbenchError(f"source must be 'official' or 'synthetic', got {source!r}")
        names = dict.fromkeys(n for s in splits for n in cls.splits[s])
        paths = [ensure_file(cls.file(n), cls.files_folder(), download=True, progress=progress)
                 for n in names]
        return paths + cls._prepare_official(splits, progress=progress, **options)

    @classmethod
    def _prepare_official(cls, splits: list[str], *, progress: bool,
                          **options: Any) -> list[Path]:
        """After the download: build derived caches of ``splits`` (none by default)."""
        if options:
            raise DisbenchError(f"{cls.name}: 'prepare' of the official files takes no "
                                f"option(s) {', '.join(options)}")
        del splits, progress  # the files are all there is
        return []

    @classmethod
    def _prepare_synthetic(cls, splits: list[str], *, progress: bool,
                           **options: Any) -> list[Path]:
        """Render the twin of ``splits`` by loading it (the loader caches what it writes)."""
        given = dict(options, progress=progress) if "progress" in cls.options else options
        kwargs = cls.load_options("synthetic", given)
        for split in splits:
            cls.load_synthetic(split, **kwargs)
        return [cls.twin_folder(options.get("seed", 0))]

    # --- import ------------------------------------------------------------------------
    @classmethod
    def import_dir(cls, folder: str | os.PathLike) -> ImportResult:
        """Copy and verify whichever official files ``folder`` holds.

        Raises :class:`DisbenchError` if it is not a folder, holds none of the files or
        one fails verification (the valid ones are still imported).
        """
        src = Path(folder)
        if not src.is_dir():
            raise DisbenchError(f"{src} is not a folder, so it does not hold the {cls.name} "
                                f"files; pass the folder that holds them")
        return ImportResult(imported=cls._import_files(src), splits=cls.available_splits())

    @classmethod
    def _import_files(cls, src: Path) -> list[str]:
        """Import the official files found by name in ``src``; their names."""
        imported, errors = [], []
        for f in cls.files:
            candidate = src / f.name
            if not candidate.is_file():
                continue
            try:
                import_file(candidate, f, cls.files_folder())
                imported.append(f.name)
            except DisbenchError as exc:
                errors.append(str(exc))
        if errors:
            raise DisbenchError("; ".join(errors) + (
                f" (imported fine: {', '.join(imported)})" if imported else ""))
        if not imported:
            raise DisbenchError(
                f"{src} holds none of the {cls.name} files "
                f"({', '.join(f.name for f in cls.files)}; published at "
                f"{', '.join(dict.fromkeys(f.url for f in cls.files[:3]))}"
                f"{', ...' if len(cls.files) > 3 else ''})"
            )
        return imported

    # --- describe ----------------------------------------------------------------------
    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The manifest and the state of the cache, keyed by ``contract.DESCRIBE_KEYS``."""
        both = ("official", "synthetic")
        out = {
            "name": cls.name,
            "summary": cls.summary,
            "kind": cls.kind,
            "homepage": cls.homepage,
            "licence": cls.licence,
            "citation": cls.citation,
            "default_split": cls.default_split,
            "splits": {s: list(names) for s, names in cls.splits.items()},
            "split_sizes": dict(cls.split_sizes),
            "observation_shape": list(cls.observation_shape),
            "factors": cls.factor_table(),
            "labels": cls.labels_note,
            "options": {k: o.help + ("" if o.sources == both else
                                     f" ({', '.join(o.sources)} only)")
                        for k, o in cls.options.items()},
            "files": {f.name: file_record(f, cls.files_folder()) for f in cls.files},
            "cache_folder": str(cls.files_folder()),
            "official_cached": cls.available_splits(),
            "twin": cls.twin_summary,
            "twin_cached": cls.twin_cached(),
        }
        return {k: out[k] for k in DESCRIBE_KEYS}  # the contract's keys, in its order


def check_manifest(cls: type) -> list[str]:
    """What is wrong with a dataset class's manifest (empty when it is complete)."""
    problems = []
    if getattr(cls, "kind", None) not in KINDS:
        problems.append(f"kind must be one of {', '.join(KINDS)}")
    splits = getattr(cls, "splits", {})
    if not splits or getattr(cls, "default_split", None) not in splits:
        problems.append("splits must be a non-empty dict holding default_split")
    return problems
