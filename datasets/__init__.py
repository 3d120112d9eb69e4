"""Datasets with known factors: official files and their procedural twins.

``disbench.datasets.get(name, source="auto"|"official"|"synthetic", split=...)``.
"""
from disbench.datasets.registry import DATASETS, get, names, register, spec

# Importing a module registers its datasets (each module adds its own line here).
from disbench.datasets import sprites  # noqa: E402,F401
from disbench.datasets import mnist  # noqa: E402,F401
from disbench.datasets import omniglot  # noqa: E402,F401
from disbench.datasets import celeba  # noqa: E402,F401
from disbench.datasets import dsprites  # noqa: E402,F401
from disbench.datasets import shapes3d  # noqa: E402,F401

__all__ = ["DATASETS", "get", "names", "register", "spec"]
