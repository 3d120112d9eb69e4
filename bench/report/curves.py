"""Metric curves of one run: ``metrics_curve.csv`` (``eval_every``) as a figure.

:func:`plot_metric_curves` draws one panel per metric column against the step;
:func:`curve_figures` reads a run folder's curve through :class:`disbench.run.folder.RunFolder`
and saves ``metrics_curve.png`` / ``.pdf`` (nothing when the run has no curve).
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _series(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """Per metric column: the steps and values of the rows that have a value."""
    names = sorted({k for r in rows for k in r} - {"step"})
    out = {}
    for name in names:
        pts = [(int(r["step"]), float(r[name])) for r in rows
               if r.get(name) not in (None, "") and math.isfinite(float(r[name]))]
        if pts:
            out[name] = ([s for s, _ in pts], [v for _, v in pts])
    return out


def plot_metric_curves(rows: Sequence[dict[str, Any]], stem: str | os.PathLike,
                       title: str = "") -> list[Path]:
    """One panel per metric (value against step), saved as ``stem.png`` and ``stem.pdf``."""
    from disbench.report.plots import save_figure

    series = _series(rows)
    if not series:
        return []
    ncol = min(3, len(series))
    nrow = math.ceil(len(series) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3 * nrow), squeeze=False)
    # the grid may have more axes than series; the spare ones are switched off below
    for ax, (name, (steps, values)) in zip(axes.flat, series.items(), strict=False):
        ax.plot(steps, values, marker="o", markersize=3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(series):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, stem)


def curve_figures(run_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """The run's metrics curve figure in ``out_dir`` (none when it has no curve)."""
    from disbench.run.folder import RunFolder

    folder = RunFolder(run_dir)
    rows = folder.read_curve()
    if not rows:
        return []
    return plot_metric_curves(rows, Path(out_dir) / "metrics_curve",
                              title=f"{Path(run_dir).name}: metrics during training")


__all__ = ["curve_figures", "plot_metric_curves"]
