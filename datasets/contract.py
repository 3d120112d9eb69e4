"""The dataset contract: what code outside :mod:`disbench.datasets` may call.

Two sides, each a :class:`typing.Protocol` (``runtime_checkable``, so ``isinstance``
checks that the members exist; ``tests/test_datasets_contract.py`` walks the registry
with them):

- :class:`DatasetEntry` -- a registered dataset, i.e. what ``datasets.spec(name)``
  returns (a class; its members are classmethods). The CLI, the sweeps and the runner
  call only these members. :class:`disbench.datasets.entry.DatasetSpec` implements the
  shared plumbing once; a dataset module adds its manifest (files, checksums, splits,
  licence, citation) and its two loaders.
- The dataset objects the loaders return, by :attr:`DatasetEntry.kind`:
  :class:`GroundTruthData` (``"ground_truth"``: every image is one cell of a full grid of
  discrete factors; what the trainer and the disentanglement metrics call),
  :class:`LabelledData` (``"labelled"``: images and class labels) and
  :class:`SequenceData` (``"sequence"``: videos with static and dynamic factors). All three
  extend :class:`ObservationSet`, what the trainer needs of any dataset.

Random states
-------------
``random_state`` arguments accept an ``int`` seed, a ``numpy.random.RandomState`` or a
``numpy.random.Generator`` (:func:`disbench.errors.check_random_state`): an int seeds a
new ``RandomState`` (as disentanglement_lib's ground-truth datasets draw from one, so a
seed gives that library's stream); a generator object passed in is drawn from as it is,
so callers keep their own stream.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

#: The values of :attr:`DatasetEntry.kind`, each with the protocol its datasets satisfy.
KINDS = ("ground_truth", "labelled", "sequence")

#: The keys of every ``describe()`` dict, in display order (``disbench datasets info``).
DESCRIBE_KEYS = (
    "name",               # registry name
    "summary",            # one line
    "kind",               # one of KINDS
    "homepage",           # where the dataset is published
    "licence",            # the licence of the official data, as its publisher states it
    "citation",           # what to cite
    "default_split",
    "splits",             # {split: [official file names it needs]}
    "split_sizes",        # {split: number of observations}
    "observation_shape",  # shape of one observation, e.g. [1, 64, 64] or [8, 3, 64, 64]
    "factors",            # {factor name: number of classes} ({} for labelled sets)
    "labels",             # what the labels are (labelled and sequence sets), else ""
    "options",            # {load option: help}, accepted by datasets.get(name, ...)
    "files",              # {file name: {"url", "mirrors", "sha256", "md5", "bytes"}}
    "cache_folder",       # where official files are cached (and may be placed by hand)
    "official_cached",    # official splits whose files are in the cache
    "twin",               # how the procedural twin is made
    "twin_cached",        # twin splits fully rendered into the cache
)


@dataclass(frozen=True)
class Option:
    """One keyword option of a dataset's loaders (``datasets.get(name, **options)``).

    ``sources`` names the loaders that take it; :func:`disbench.datasets.get` passes an
    option only to those, so ``source="auto"`` accepts the options of either source.
    """

    help: str
    sources: tuple[str, ...] = ("official", "synthetic")


@dataclass(frozen=True)
class ImportResult:
    """What ``import_dir`` did: the cached file names it imported and the official splits
    available afterwards (in the dataset's split order)."""

    imported: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)


@runtime_checkable
class DatasetEntry(Protocol):
    """A registered dataset (``datasets.spec(name)``): manifest data plus classmethods.

    Attributes
    ----------
    name : str
        The registry name (set by :func:`disbench.datasets.register`).
    summary : str
        One line for ``disbench datasets list``.
    kind : str
        One of :data:`KINDS`; says which dataset protocol the loaders' objects satisfy.
    default_split : str
        The split used when none is given.
    splits : dict
        ``{split: (official file names it needs)}``.
    options : dict
        ``{option name: Option}``: the keyword options of the loaders.
    """

    name: str
    summary: str
    kind: str
    default_split: str
    splits: ClassVar[dict[str, tuple[str, ...]]]
    options: ClassVar[dict[str, Option]]

    def check_split(self, split: str | None) -> str:
        """``split`` (or the default) if the dataset has it, else a DisbenchError."""

    def official_available(self, split: str | None = None) -> bool:
        """Whether the official data of ``split`` is in the cache (nothing is fetched)."""

    def available_splits(self) -> list[str]:
        """The splits whose official data is in the cache."""

    def load_official(self, split: str | None = None, **options: Any) -> Any:
        """The dataset object built from the published files (never falls back)."""

    def load_synthetic(self, split: str | None = None, **options: Any) -> Any:
        """The procedural twin's dataset object."""

    def prepare(self, source: str = "official", split: str | None = None, *,
                progress: bool = True, **options: Any) -> list[Path]:
        """Download and verify (official) or render (synthetic) ``split`` (None: every
        split) into the cache; the paths written or checked."""

    def import_dir(self, folder: str | os.PathLike) -> ImportResult:
        """Copy and verify the official files a user already has in ``folder``."""

    def describe(self) -> dict[str, Any]:
        """The manifest and the cache state, keyed by :data:`DESCRIBE_KEYS`."""


@runtime_checkable
class ObservationSet(Protocol):
    """What the trainer may use on any dataset object.

    ``images`` is a uint8 array-like (numpy array, memmap or a lazy renderer), N first;
    ``tensor(device)`` is all of it as one uint8 torch tensor (converted per batch by the
    trainer); ``binary`` says whether pixels are 0/255 only (Bernoulli likelihood);
    ``fingerprint`` identifies the exact data (a checksum of the files, or the twin's
    version and seed).
    """

    name: str
    source: str
    split: str
    fingerprint: str
    binary: bool
    images: Any

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one observation, ``(C, H, W)`` (frames: ``(C, H, W)`` of one frame)."""

    def __len__(self) -> int: ...

    def tensor(self, device: Any = "cpu") -> Any:
        """All observations as one uint8 torch tensor on ``device``."""


@runtime_checkable
class GroundTruthData(ObservationSet, Protocol):
    """A full grid of discrete factors (what the disentanglement metrics call).

    ``factors`` is int64 (N, K) in storage order; ``index_of(factors)`` maps (n, K) factor
    classes to flat indices; ``sample_factors(n, random_state)`` draws int64 (n, K)
    uniformly; ``sample_observations_from_factors(factors, random_state)`` returns uint8
    (n, C, H, W) images of those factors (``random_state`` drives any observation noise).
    """

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]

    @property
    def factors(self) -> Any: ...

    def index_of(self, factors: Any) -> Any: ...

    def sample_factors(self, n: int, random_state: Any) -> Any: ...

    def sample_observations_from_factors(self, factors: Any, random_state: Any = None) -> Any:
        ...


@runtime_checkable
class LabelledData(ObservationSet, Protocol):
    """Images with one int64 class label each (``labels`` (N,), in ``0..num_classes-1``);
    ``class_names`` names the classes, ``extras`` holds per-dataset arrays."""

    labels: Any
    num_classes: int
    class_names: Any
    extras: dict[str, Any]


@runtime_checkable
class SequenceData(ObservationSet, Protocol):
    """Videos: ``images`` uint8 (N, T, C, H, W); static factors (``static_labels`` (N, S))
    and dynamic ones (``action_labels`` (N,)); ``factors`` joins them (N, S + 1)."""

    T: int
    static_factor_names: tuple[str, ...]
    static_factor_sizes: tuple[int, ...]
    dynamic_factor_names: tuple[str, ...]
    dynamic_factor_sizes: tuple[int, ...]
    static_labels: Any
    action_labels: Any
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]


#: The dataset protocol of each kind.
PROTOCOLS: dict[str, type] = {"ground_truth": GroundTruthData, "labelled": LabelledData,
                              "sequence": SequenceData}


def missing_members(obj: Any, protocol: type) -> list[str]:
    """The members of ``protocol`` that ``obj`` lacks (empty when it satisfies it)."""
    names: set[str] = set()
    for base in protocol.__mro__:
        if base in (object, Protocol) or not getattr(base, "_is_protocol", False):
            continue
        names |= set(getattr(base, "__annotations__", {}))
        names |= {k for k, v in vars(base).items() if callable(v) or isinstance(v, property)}
    names -= {"__init__", "__subclasshook__", "__class_getitem__", "__init_subclass__"}
    names = {n for n in names if not n.startswith("_abc") and n not in ("_is_protocol",)}
    return sorted(n for n in names if not hasattr(obj, n))
