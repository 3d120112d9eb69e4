"""Labellers: the imperfect annotators of the few-labels study, applied to factor rows.

Locatello et al. 2020 ("Disentangling Factors of Variation Using Few Labels", ICLR) label a
few observations with the true factors, or with artefacts that simulate a human labeller.
These are disentanglement_lib's labellers (google-research/disentanglement_lib,
``disentanglement_lib/methods/semi_supervised/semi_supervised_utils.py``, read here), with
their defaults, drawing from the ``random_state`` in the same order:

``perfect``
    the true factor classes;
``binned(num_bins=5)``
    a factor with more than ``num_bins`` values is binned: ``min(label // (size /
    num_bins), num_bins - 1)``; its size becomes ``min(size, num_bins)``;
``noisy(prob_random=0.1)``
    row by row, factor by factor: with probability ``prob_random`` (``random_state.rand()``)
    the label is replaced by ``random_state.randint(size)``;
``permuted``
    per factor, the classes are relabelled by ``random_state.permutation(size)`` (the
    ordinal information is lost);
``partial(num_observed_factors=2)``
    only ``num_observed_factors`` factors, chosen by ``random_state.choice(K, n, replace=
    False)``, are observed (their columns, in the drawn order).

:func:`apply_labeller` returns the labels (float32, as the reference), the number of values
of each observed factor after labelling, and which factors the columns are.
"""
from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from disbench.errors import check_random_state

#: labeller -> (parameter name, default) or None
LABELLERS: dict[str, tuple[str, float] | None] = {
    "perfect": None,
    "binned": ("num_bins", 5),
    "noisy": ("prob_random", 0.1),
    "permuted": None,
    "partial": ("num_observed_factors", 2),
}


@dataclass(frozen=True)
class Labelled:
    """The output of a labeller: labels (n, F) float32, sizes (F,), observed (F,) factor
    indices (the columns of the input each label column comes from)."""

    labels: np.ndarray
    sizes: np.ndarray
    observed: np.ndarray


def parse_labeller(text: Any) -> tuple[str, float | None]:
    """(name, parameter) of ``"binned"``, ``"binned(5)"``, ... (ValueError when bad)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"must be one of {', '.join(LABELLERS)} (optionally with its "
                         f"parameter, e.g. binned(5)), got {text!r}")
    name, _, rest = text.strip().partition("(")
    name = name.strip()
    if name not in LABELLERS:
        raise ValueError(f"must be one of {', '.join(LABELLERS)}, got {text!r}")
    param = LABELLERS[name]
    if not rest:
        return name, None if param is None else param[1]
    if param is None or not rest.endswith(")"):
        raise ValueError(f"{name} takes {'no parameter' if param is None else param[0]}, "
                         f"got {text!r}")
    value = _number(rest[:-1])
    if value is None:
        raise ValueError(f"{name}({param[0]}) needs a number, got {text!r}")
    if name == "noisy" and not 0 <= value <= 1:
        raise ValueError(f"noisy(prob_random) must be in [0, 1], got {text!r}")
    if name != "noisy" and (value != int(value) or value < 1):
        raise ValueError(f"{name}({param[0]}) must be a positive integer, got {text!r}")
    return name, (float(value) if name == "noisy" else int(value))


def _number(text: str) -> float | None:
    """The number written in ``text`` (None when it is not one)."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return None
    return None if isinstance(value, bool) or not isinstance(value, (int, float)) else value


def canonical_labeller(text: Any) -> str:
    """The labeller's canonical text (``"binned"`` -> ``"binned(5)"``)."""
    name, value = parse_labeller(text)
    return name if value is None else f"{name}({value!r})"


def check_labeller(text: Any) -> str | None:
    """The problem with a labeller setting (None when valid)."""
    try:
        parse_labeller(text)
    except ValueError as exc:
        return str(exc)
    return None


def apply_labeller(labeller: str, factors: np.ndarray, factor_sizes: Sequence[int],
                   random_state: Any) -> Labelled:
    """Label the int (n, K) ``factors`` with ``labeller``; draws from ``random_state`` (an
    int seed or a ``RandomState``: the reference's calls are RandomState methods)."""
    random_state = check_random_state(random_state, "random_state")
    if not isinstance(random_state, np.random.RandomState):
        raise TypeError("random_state: the labellers draw as disentanglement_lib does, from "
                         "a numpy.random.RandomState (or an int seed), not a Generator")
    name, value = parse_labeller(labeller)
    labels = np.array(factors, dtype=np.int64)
    sizes = np.asarray(factor_sizes, dtype=np.int64)
    observed = np.arange(sizes.size)
    if name == "binned":
        labels = labels.astype(np.float32)
        for i, num_values in enumerate(sizes):
            if num_values > value:
                size_bin = num_values / value
                labels[:, i] = np.minimum(labels[:, i] // size_bin, value - 1)
        sizes = np.minimum(sizes, value)
    elif name == "noisy":
        for j in range(labels.shape[0]):  # the reference's order of draws
            for i, num_values in enumerate(sizes):
                if random_state.rand() < value:
                    labels[j, i] = random_state.randint(num_values)
    elif name == "permuted":
        for i, num_values in enumerate(sizes):
            labels[:, i] = random_state.permutation(range(num_values))[labels[:, i]]
    elif name == "partial":
        if not 1 <= value <= sizes.size:
            raise ValueError(f"partial({value}) needs 1 .. {sizes.size} observed factors")
        observed = random_state.choice(sizes.size, size=value, replace=False)
        labels, sizes = labels[:, observed], sizes[observed]
    return Labelled(np.float32(labels), sizes.astype(np.int64), np.asarray(observed, np.int64))


__all__ = ["LABELLERS", "Labelled", "apply_labeller", "canonical_labeller", "check_labeller",
           "parse_labeller"]
