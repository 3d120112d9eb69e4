"""Datasets with known factors: official files and their procedural twins.

``disbench.datasets.get(name, source="auto"|"official"|"synthetic", split=..., **options)``.
The contract (what callers may use on a registered dataset and on the objects it loads)
is :mod:`disbench.datasets.contract`; :class:`~disbench.datasets.entry.DatasetSpec` is the
base every dataset builds on.
"""
# Importing a module registers its datasets: one line per dataset module.
from disbench.datasets import (
    cars3d,  # noqa: F401
    celeba,  # noqa: F401
    dsprites,  # noqa: F401
    dsprites_variants,  # noqa: F401
    mnist,  # noqa: F401
    mpi3d,  # noqa: F401
    norb,  # noqa: F401
    omniglot,  # noqa: F401
    pinwheel,  # noqa: F401
    shapes3d,  # noqa: F401
    sprites,  # noqa: F401
    xy,  # noqa: F401
)
from disbench.datasets.registry import DATASETS, SOURCES, get, names, register, spec

__all__ = ["DATASETS", "SOURCES", "get", "names", "register", "spec"]
