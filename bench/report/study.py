"""Study figures over the runs of one dataset (Locatello et al. 2019, Figs. 2-4 and 7).

- :func:`plot_seed_distributions`: per metric, the distribution over seeds of every
  variant (box plot with the seeds as points);
- :func:`plot_hyperparameter_scores`: per metric, the score against a swept setting of a
  model (every seed as a point, the mean ± std as a line);
- :func:`spearman_matrix` / :func:`plot_correlation_heatmap`: the Spearman rank
  correlation between metrics across all evaluated runs of a dataset, as an annotated
  heatmap.

ROC curves of OoD runs are drawn by :mod:`disbench.report.plots`.

Inputs are the per-run table of :func:`disbench.report.leaderboard.collect_runs` (one row
per run, a column per metric and per varying setting).
"""
from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from disbench.report import style
from disbench.report.style import plt


def evaluated(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with status ``ok``."""
    return runs[runs["status"] == "ok"]


def present_metrics(runs: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """The metrics with at least one finite score in ``runs``."""
    return [m for m in metrics if m in runs and np.isfinite(runs[m].astype(float)).any()]


# --------------------------------------------------------------------------- correlation
def spearman_matrix(runs: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Spearman rank correlation between ``metrics`` across the evaluated ``runs``.

    Uses the runs that have every metric (complete cases) and the metrics with a score in
    at least one run; ``scipy.stats.spearmanr`` on that (runs x metrics) table. A metric
    that is constant over the runs has no rank correlation (NaN). Empty when fewer than
    three runs or two metrics remain.
    """
    from scipy import stats

    ms = present_metrics(evaluated(runs), metrics)
    scores = evaluated(runs)[ms].astype(float).dropna()
    if len(ms) < 2 or len(scores) < 3:
        return pd.DataFrame(dtype=float)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        rho = stats.spearmanr(scores.to_numpy()).statistic
    rho = np.array([[1.0, rho], [rho, 1.0]]) if np.ndim(rho) == 0 else np.asarray(rho)
    return pd.DataFrame(rho, index=ms, columns=ms)


def plot_correlation_heatmap(matrix: pd.DataFrame, path: str | os.PathLike, *,
                             title: str = "") -> Path | None:
    """The correlation matrix as a heatmap in [-1, 1] with each value written in its cell."""
    if matrix.empty:
        return None
    n = len(matrix)
    with style.rc():
        side = 1.2 + 0.62 * n
        fig, ax = plt.subplots(figsize=(side + 1.2, side))
        values = matrix.to_numpy(dtype=float)
        image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_xticks(range(n), matrix.columns, rotation=45, ha="right")
        ax.set_yticks(range(n), matrix.index)
        for i in range(n):
            for j in range(n):
                v = values[i, j]
                text = "–" if math.isnan(v) else f"{v:.2f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=style.VALUE_PT,
                        color="white" if abs(v) > 0.6 else "black")
        ax.spines[:].set_visible(False)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Spearman ρ")
        ax.set_title(title or "Rank correlation between metrics")
        return style.save(fig, path)


# --------------------------------------------------------------------------- seeds
#: horizontal boxes (matplotlib 3.10 renamed ``vert=False`` to ``orientation``)
_HORIZONTAL = ({"orientation": "horizontal"}
               if tuple(int(p) for p in matplotlib.__version__.split(".")[:2]) >= (3, 10)
               else {"vert": False})

def _panel_grid(n: int, ncol: int, panel_w: float, panel_h: float, **kw: Any) -> tuple:
    ncol = max(1, min(ncol, n))
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(panel_w * ncol, panel_h * nrow),
                             squeeze=False, **kw)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


def _title(metric: str, higher_is_better: dict[str, bool] | None) -> str:
    if higher_is_better and metric in higher_is_better:
        return f"{metric} {'↑' if higher_is_better[metric] else '↓'}"
    return metric


def plot_seed_distributions(runs: pd.DataFrame, metrics: Sequence[str],
                            path: str | os.PathLike, *, title: str = "",
                            higher_is_better: dict[str, bool] | None = None) -> Path | None:
    """Per metric a panel: one horizontal box per variant over its seeds, seeds as dots;
    variants grouped by model, a colour per model."""
    ok = evaluated(runs)
    ms = present_metrics(ok, metrics)
    if not ms:
        return None
    variants = style.legible_order(ok[["model", "variant"]].drop_duplicates())
    labels = list(variants["variant"])
    colors = style.model_colors(list(variants["model"]))
    with style.rc():
        fig, axes = _panel_grid(len(ms), 3, 4.0, 0.8 + 0.3 * len(labels), sharey=True)
        pos = np.arange(len(labels))[::-1]
        for ax, m in zip(axes, ms, strict=True):
            data = [ok.loc[ok["variant"] == v, m].astype(float).dropna().to_numpy()
                    for v in labels]
            keep = [i for i, d in enumerate(data) if len(d)]
            box = ax.boxplot([data[i] for i in keep], positions=pos[keep], widths=0.6,
                             patch_artist=True, showfliers=False, **_HORIZONTAL)
            for patch, i in zip(box["boxes"], keep, strict=True):
                patch.set(facecolor=colors[variants["model"].iloc[i]], alpha=0.35)
            for i in keep:
                ax.plot(data[i], np.full(len(data[i]), pos[i]), "o", ms=3.5, color="black")
            ax.set_title(_title(m, higher_is_better))
            ax.grid(axis="x", alpha=0.3)
        axes[0].set_yticks(pos, labels)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return style.save(fig, path)


# --------------------------------------------------------------------------- sweeps
def swept_settings(runs: pd.DataFrame, settings: Sequence[str]) -> dict[str, list[str]]:
    """Per model, the setting columns whose value differs between its runs."""
    out: dict[str, list[str]] = {}
    for model, sub in runs.groupby("model", sort=True):
        keys = [k for k in settings if k in sub and sub[k].dropna().astype(str).nunique() > 1]
        if keys:
            out[str(model)] = keys
    return out


def _axis_values(values: pd.Series) -> tuple[list[Any], bool]:
    """Distinct values of a setting in plotting order, and whether they are numeric."""
    distinct = list(dict.fromkeys(values.dropna()))
    numeric = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                  for v in distinct)
    if numeric:
        return sorted(distinct), True
    return sorted(distinct, key=lambda v: style.natural_key(str(v))), False


def plot_hyperparameter_scores(runs: pd.DataFrame, model: str, key: str,
                               metrics: Sequence[str], path: str | os.PathLike, *,
                               others: Sequence[str] = (),
                               higher_is_better: dict[str, bool] | None = None
                               ) -> Path | None:
    """Score against setting ``key`` of ``model``: per metric a panel, seeds as dots and
    the mean ± std (over seeds) as a line; one line per value of the ``others`` settings
    that vary too."""
    ok = evaluated(runs)
    ok = ok[(ok["model"] == model) & ok[key].notna()]
    ms = present_metrics(ok, metrics)
    if not ms or ok.empty:
        return None
    xs, numeric = _axis_values(ok[key])
    where = {v: i for i, v in enumerate(xs)}
    groups = list(ok.groupby(list(others), sort=True, dropna=False)) if others else [("", ok)]
    with style.rc():
        fig, axes = _panel_grid(len(ms), 3, 3.6, 2.9)
        for ax, m in zip(axes, ms, strict=True):
            for gkey, sub in groups:
                x = sub[key].map(lambda v: v if numeric else where[v]).astype(float)
                y = sub[m].astype(float)
                stats = pd.DataFrame({"x": x, "y": y}).groupby("x")["y"].agg(["mean", "std"])
                label = _group_label(others, gkey)
                line = ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0),
                                   marker="s", ms=4, capsize=3, label=label or None)
                ax.plot(x, y, "o", ms=3, alpha=0.5, color=line[0].get_color())
            if not numeric:
                ax.set_xticks(range(len(xs)), [str(v) for v in xs], rotation=30, ha="right")
                ax.set_xlim(-0.5, len(xs) - 0.5)
            elif len(xs) > 2 and xs[0] > 0 and xs[-1] / xs[0] >= 20:
                ax.set_xscale("log")
            if numeric and len(xs) <= 8:
                ax.set_xticks(xs, [f"{v:g}" for v in xs])
                ax.minorticks_off()
            ax.set_xlabel(key)
            ax.set_title(_title(m, higher_is_better))
            ax.grid(alpha=0.3)
        if others:
            axes[0].legend(loc="best")
        fig.suptitle(f"{model}: scores against {key}")
        fig.tight_layout()
        return style.save(fig, path)


def _group_label(others: Sequence[str], gkey: Any) -> str:
    if not others:
        return ""
    values = gkey if isinstance(gkey, tuple) else (gkey,)
    return ", ".join(f"{k}={v}" for k, v in zip(others, values, strict=True))
