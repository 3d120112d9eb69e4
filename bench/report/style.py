"""One look for every matplotlib figure of the reports: font sizes that read at 100 % zoom,
a colour per model, the order variants are listed in, and deterministic SVG/PNG files.

Sizes: figures are drawn at :data:`DPI` (PNG) with tick labels of :data:`TICK_PT` points and
titles of :data:`TITLE_PT`, so a label is at least 12 pixels high on screen; SVG keeps its
text as text (``svg.fonttype: none``), which keeps files small and lets the browser render
it crisply at any zoom.
"""
from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

DPI = 110
TICK_PT, LABEL_PT, TITLE_PT, VALUE_PT = 9, 9.5, 10.5, 8
RC = {
    "font.size": LABEL_PT, "axes.titlesize": TITLE_PT, "axes.labelsize": LABEL_PT,
    "xtick.labelsize": TICK_PT, "ytick.labelsize": TICK_PT, "legend.fontsize": TICK_PT,
    "axes.spines.top": False, "axes.spines.right": False, "svg.fonttype": "none",
    "svg.hashsalt": "disbench", "figure.dpi": DPI,
}
#: a colour per model, cycled in first-seen order
PALETTE = tuple(matplotlib.colormaps["tab10"].colors) + tuple(
    matplotlib.colormaps["Dark2"].colors)


@contextlib.contextmanager
def rc() -> Iterator[None]:
    """The report's matplotlib settings for the figures drawn inside the block."""
    with matplotlib.rc_context(RC):
        yield


def model_colors(models: Sequence[str]) -> dict[str, Any]:
    """A colour per distinct model, in first-seen order."""
    out: dict[str, Any] = {}
    for m in models:
        if m not in out:
            out[m] = PALETTE[len(out) % len(PALETTE)]
    return out


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def natural_key(label: str) -> tuple:
    """Sort key reading the numbers in ``label`` as numbers (``beta=2`` before ``beta=10``)."""
    parts: list[tuple[int, Any]] = []
    pos = 0
    for m in _NUMBER.finditer(label):
        parts.append((0, label[pos:m.start()]))
        parts.append((1, float(m.group())))
        pos = m.end()
    parts.append((0, label[pos:]))
    return tuple(parts)


def legible_order(frame: Any, model: str = "model", variant: str = "variant") -> Any:
    """``frame`` (rows of variants) grouped by model (alphabetical), variants of a model in
    natural order of their labels."""
    keys = [(str(m), natural_key(str(v))) for m, v in zip(frame[model], frame[variant],
                                                          strict=True)]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return frame.iloc[order]


def save(fig: Any, path: str | os.PathLike) -> Path:
    """Write ``fig`` as SVG or PNG (from the suffix; atomically, without dates, so the same
    figure gives the same bytes) and close it."""
    from disbench.atomic import atomic_path

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png"):
        raise ValueError(f"{path}: figures are written as .svg or .png")
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"Date": None} if fmt == "svg" else {"Software": None}
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=DPI, bbox_inches="tight", metadata=meta)
    plt.close(fig)
    return path
