"""Datasets with known factors: official files and their procedural twins.

``disbench.datasets.get(name, source="auto"|"official"|"synthetic", split=...)``.
"""
# Importing a module registers its datasets (each module adds its own line here).
from disbench.datasets import (
    celeba,  # noqa: F401
    dsprites,  # noqa: F401
    mnist,  # noqa: F401
    omniglot,  # noqa: F401
    shapes3d,  # noqa: F401
    sprites,  # noqa: F401
)
from disbench.datasets.registry import DATASETS, get, names, register, spec

__all__ = ["DATASETS", "get", "names", "register", "spec"]
