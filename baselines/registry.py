"""The model registry: a plain dict filled by the :func:`register` decorator."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from disbench.errors import DisbenchError

MODELS: dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator adding a model class to :data:`MODELS` under ``name``."""

    def deco(cls: type) -> type:
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        cls.registry_name = name
        MODELS[name] = cls
        return cls

    return deco


def names() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(MODELS)


def create(name: str, **hparams: Any) -> Any:
    """Build model ``name`` with ``hparams`` (unknown keys are an error listing valid ones)."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise DisbenchError(f"unknown model {name!r}; choose one of {', '.join(names())}") from None
    return cls.from_hparams(**hparams)
