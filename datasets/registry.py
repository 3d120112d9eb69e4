"""The dataset registry: a plain dict filled by the :func:`register` decorator.

A registered class satisfies :class:`~disbench.datasets.contract.DatasetEntry` (checked
when it registers); :class:`~disbench.datasets.entry.DatasetSpec` implements all of it
but the two loaders. Adding a dataset is one module holding such a class, decorated with
``@register("name")``, plus its import line in ``disbench/datasets/__init__.py``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from disbench.datasets.contract import DatasetEntry, missing_members
from disbench.datasets.entry import check_manifest
from disbench.errors import DisbenchError

log = logging.getLogger(__name__)

DATASETS: dict[str, Any] = {}
SOURCES = ("auto", "official", "synthetic")


def register(name: str) -> Callable[[type], type]:
    """Class decorator adding a dataset to :data:`DATASETS` under ``name``.

    Raises TypeError if the class does not satisfy the entry contract (the missing
    members are named) or its manifest is incomplete.
    """

    def deco(cls: type) -> type:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} registered twice")
        cls.name = name
        problems = missing_members(cls, DatasetEntry)
        problems = ([f"missing {', '.join(problems)}"] if problems else []) + \
            check_manifest(cls)
        if problems or not isinstance(cls, DatasetEntry):
            raise TypeError(f"dataset {name!r} ({cls.__qualname__}) does not satisfy the "
                            f"dataset contract: {'; '.join(problems)}")
        DATASETS[name] = cls
        return cls

    return deco


def names() -> list[str]:
    """Names of all registered datasets, sorted."""
    return sorted(DATASETS)


def spec(name: str) -> Any:
    """The registered class of ``name``; a clear error lists the valid names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DisbenchError(
            f"unknown dataset {name!r}; choose one of {', '.join(names())}"
        ) from None


def get(name: str, source: str = "auto", split: str | None = None, **options: Any) -> Any:
    """Load a dataset.

    Parameters
    ----------
    name : str
        One of :func:`names`.
    source : {"auto", "official", "synthetic"}
        ``official``: the published files (never falls back silently);
        ``synthetic``: the procedural twin; ``auto``: official when cached, else the
        twin, with one log line saying which.
    split : str, optional
        Dataset split (e.g. ``"train"``, ``"test"``); defaults to the dataset's own.
    **options
        The dataset's load options (``describe()["options"]``); each is passed to the
        loaders that take it, so ``source="auto"`` accepts the options of both. An unknown
        option is a :class:`DisbenchError` naming the valid ones.
    """
    cls = spec(name)
    if source not in SOURCES:
        raise DisbenchError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    split = split or cls.default_split
    if source == "auto":
        source = "official" if cls.official_available(split) else "synthetic"
        log.info("%s: using the %s data (source=auto)", name, source)
    if options:
        options = cls.load_options(source, options)
    if source == "official":
        return cls.load_official(split, **options)
    return cls.load_synthetic(split, **options)
