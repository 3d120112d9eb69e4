"""The dataset registry: a plain dict filled by the :func:`register` decorator.

A registered class provides

- ``load_official(split, **kwargs)`` -> dataset built from the published files in the
  cache (raises :class:`~disbench.errors.DisbenchError` naming the missing file),
- ``load_synthetic(split, **kwargs)`` -> the procedural twin,
- ``official_available(split)`` -> whether the official files are already cached,
- ``prepare(source, **kwargs)`` -> download/verify (official) or render (synthetic),
- ``import_dir(folder)`` -> copy and verify user-provided official files,
- ``describe()`` -> a dict shown by ``disbench datasets info``,
- the class attribute ``summary`` (one line for ``disbench datasets list``) and
  ``default_split``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from disbench.errors import DisbenchError

log = logging.getLogger(__name__)

DATASETS: dict[str, Any] = {}
SOURCES = ("auto", "official", "synthetic")


def register(name: str) -> Callable[[type], type]:
    """Class decorator adding a dataset to :data:`DATASETS` under ``name``."""

    def deco(cls: type) -> type:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} registered twice")
        cls.name = name
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


def get(name: str, source: str = "auto", split: str | None = None, **kwargs: Any) -> Any:
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
    """
    cls = spec(name)
    if source not in SOURCES:
        raise DisbenchError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    split = split or cls.default_split
    if source == "auto":
        source = "official" if cls.official_available(split) else "synthetic"
        log.info("%s: using the %s data (source=auto)", name, source)
    if source == "official":
        return cls.load_official(split, **kwargs)
    return cls.load_synthetic(split, **kwargs)
