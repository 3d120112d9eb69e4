"""Figures with matplotlib (Agg backend): per run and per leaderboard; saved as PNG and PDF
(or the ``formats`` asked for: the results site takes SVG).

Per run (:func:`run_figures`): latent traversals, reconstructions, prior samples; for
sequence data (sprites) the GIFs of :func:`disbench.report.sprite_gifs.write_model_gifs` instead.
Per leaderboard (:func:`leaderboard_figures`): metric bars with error bars (std over seeds)
and ROC curves of out-of-distribution detection (from the ``roc_*.npz`` files that the OoD
evaluation saves in run folders).

The array-level functions (:func:`image_grid`, :func:`plot_image_grid`,
:func:`plot_metric_bars`, :func:`plot_roc_curves`) take plain arrays and tables, so they work
without a model.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from disbench.report import style
from disbench.report.style import plt

log = logging.getLogger(__name__)

FORMATS = ("png", "pdf")


def save_figure(fig: Any, stem: str | os.PathLike,
                formats: Sequence[str] = FORMATS) -> list[Path]:
    """Save ``fig`` as ``stem.<fmt>`` for each of ``formats`` (atomically, without dates, so
    the same figure gives the same bytes) and close it."""
    from disbench.atomic import atomic_path

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        meta = {"Software": None} if fmt == "png" else {"Creator": None}
        if fmt == "pdf":
            meta["CreationDate"] = None
        elif fmt == "svg":
            meta = {"Date": None}
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight", metadata=meta)
        paths.append(path)
    plt.close(fig)
    return paths


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


# --------------------------------------------------------------------------- image grids


def image_grid(images: Any, nrow: int, pad: int = 1) -> np.ndarray:
    """Tile ``images`` (N, C, H, W) in [0, 1] (or uint8) into one (rows*H, nrow*W, C) array.

    Rows are filled left to right; empty cells stay white.
    """
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {arr.shape}")
    if arr.max(initial=0) > 1.0:
        arr = arr / 255.0
    n, c, h, w = arr.shape
    ncol = max(1, nrow)
    nrows = math.ceil(n / ncol)
    grid = np.ones((nrows * (h + pad) + pad, ncol * (w + pad) + pad, c), dtype=np.float32)
    for i in range(n):  # a few dozen tiles per figure: not a hot path
        r, q = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        grid[y:y + h, x:x + w] = arr[i].transpose(1, 2, 0)
    return np.clip(grid, 0.0, 1.0)


def plot_image_grid(
    images: Any,
    nrow: int,
    stem: str | os.PathLike,
    *,
    title: str = "",
    row_labels: Sequence[str] | None = None,
) -> list[Path]:
    """Save a tiled image grid (see :func:`image_grid`) as PNG and PDF."""
    grid = image_grid(images, nrow)
    h, w = grid.shape[:2]
    fig, ax = plt.subplots(figsize=(max(2.0, w / 40), max(2.0, h / 40)))
    ax.imshow(grid[..., 0] if grid.shape[2] == 1 else grid, cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if row_labels is not None:
        n_rows = len(row_labels)
        ax.set_yticks([(i + 0.5) * h / n_rows for i in range(n_rows)])
        ax.set_yticklabels(row_labels, fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, stem)


# --------------------------------------------------------------------------- per run


def traversal_images(model: Any, x: Any, *, steps: int = 9, span: float = 2.0) -> np.ndarray:
    """Decoded latent traversals: row d varies latent d over ``linspace(-span, span, steps)``.

    The other latents stay at the posterior mean of ``x`` (one image). Returns
    (D * steps, C, H, W) in [0, 1].
    """
    import torch

    with torch.no_grad():
        z = model.encode(x[:1]).reshape(1, -1)
        d = z.shape[1]
        values = torch.linspace(-span, span, steps, dtype=z.dtype, device=z.device)
        codes = z.repeat(d * steps, 1)
        rows = torch.arange(d, device=z.device).repeat_interleave(steps)
        codes[torch.arange(d * steps, device=z.device), rows] = values.repeat(d)
        out = model.decode(codes)
    return out.float().clamp(0, 1).cpu().numpy()


def run_figures(
    run_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    num_images: int = 8,
    seed: int = 0,
    device: str = "cpu",
) -> list[Path]:
    """Latent traversals, reconstructions and prior samples of one run (PNG + PDF).

    Figures go to ``out_dir`` (default ``RUN_DIR/figures``). Images are drawn from the
    run's dataset with a fixed ``seed``, so repeated calls give the same figures.
    """
    import torch
    from disbench import datasets
    from disbench.errors import resolve_device
    from disbench.run.folder import RunFolder, load_run

    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir else RunFolder(run_dir).figures_path
    device = resolve_device(device, "--device")
    model, cfg, data_spec = load_run(run_dir, device=device)
    dataset = datasets.get(data_spec["name"], source=data_spec["source"],
                           split=data_spec["split"], **data_spec.get("options", {}))
    images = dataset.images
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(images), size=min(num_images, len(images)), replace=False))
    if np.asarray(images[idx[:1]]).ndim == 5:
        return _sequence_figures(out_dir, model, dataset, seed=seed, device=device)
    x = torch.as_tensor(np.asarray(images[idx])).float().div(255).to(device)
    written: list[Path] = []
    label = f"{cfg.model} seed {cfg.seed}"
    with torch.no_grad():
        recon = model.reconstruct(x).float().clamp(0, 1).cpu().numpy()
        pair = np.concatenate([x.cpu().numpy(), recon], axis=0)
        written += plot_image_grid(pair, len(idx), out_dir / "reconstructions",
                                   title=f"{label}: data (top), reconstructions (bottom)")
        trav = traversal_images(model, x)
        steps = 9
        d = trav.shape[0] // steps
        written += plot_image_grid(trav, steps, out_dir / "traversals",
                                   title=f"{label}: latent traversals (-2..2)",
                                   row_labels=[f"z{i}" for i in range(d)])
        gen = torch.Generator(device="cpu").manual_seed(seed)
        try:
            samples = model.sample(64, generator=gen)
        except TypeError:  # a model whose sample() takes no generator
            torch.manual_seed(seed)
            samples = model.sample(64)
        samples = samples.float().clamp(0, 1).cpu().numpy()
        written += plot_image_grid(samples, 8, out_dir / "prior_samples",
                                   title=f"{label}: samples from the prior")
    from disbench.report.curves import curve_figures  # metrics_curve.csv (eval_every)
    written += curve_figures(run_dir, out_dir)
    return written


def _sequence_figures(out_dir: Path, model: Any, dataset: Any, *, seed: int,
                      device: Any) -> list[Path]:
    """Sprite GIFs (real, reconstructed, swapped, generated) through disbench.report.sprite_gifs."""
    from disbench.report.sprite_gifs import write_model_gifs

    written = write_model_gifs(model, dataset, out_dir, seed=seed, device=device)
    return [Path(p) for p in written.values()]


# --------------------------------------------------------------------------- leaderboards


def plot_metric_bars(
    board: pd.DataFrame,
    metrics: Sequence[str],
    stem: str | os.PathLike,
    *,
    title: str = "",
    higher_is_better: dict[str, bool] | None = None,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """One panel per metric: a horizontal bar per variant (mean over seeds, std as error
    bar, the mean written at the bar's end).

    Variants are listed top to bottom grouped by model (a colour per model, models
    alphabetical, a model's variants in natural order of their labels, so ``beta=2``
    comes before ``beta=10``); the variant names are written once per row of panels.
    Fonts and sizes (:mod:`disbench.report.style`) keep every label legible at 100 % zoom.
    """
    metrics = [m for m in metrics if f"{m}_mean" in board and board[f"{m}_mean"].notna().any()]
    if not metrics:
        return []
    board = style.legible_order(board)
    labels = list(board["variant"].astype(str))
    colors = style.model_colors(list(board["model"].astype(str)))
    bar_colors = [colors[m] for m in board["model"].astype(str)]
    n, ncol = len(metrics), min(3, len(metrics))
    nrow = math.ceil(n / ncol)
    with style.rc():
        fig, axes = plt.subplots(nrow, ncol, squeeze=False, sharey=True, layout="constrained",
                                 figsize=(4.3 * ncol, (1.1 + 0.3 * len(labels)) * nrow))
        pos = np.arange(len(labels))[::-1]
        for ax, m in zip(axes.flat, metrics, strict=False):
            _bar_panel(ax, board, m, pos, bar_colors)
            ax.set_title(_metric_title(m, higher_is_better))
        for row in axes:
            row[0].set_yticks(pos, labels)
        for ax in list(axes.flat)[n:]:
            ax.axis("off")
        if title:
            fig.suptitle(title, fontsize=style.TITLE_PT + 1.5)
        return save_figure(fig, stem, formats)


def _bar_panel(ax: Any, board: pd.DataFrame, metric: str, pos: np.ndarray,
               colors: list) -> None:
    mean = board[f"{metric}_mean"].to_numpy(dtype=float)
    std = np.nan_to_num(board[f"{metric}_std"].to_numpy(dtype=float))
    ax.barh(pos, np.nan_to_num(mean), xerr=std, color=colors, alpha=0.85, height=0.7,
            error_kw={"capsize": 2, "elinewidth": 0.8, "ecolor": "0.25"})
    ok = np.isfinite(mean)
    lo = min(0.0, float((mean[ok] - std[ok]).min()))
    hi = max(0.0, float((mean[ok] + std[ok]).max()))
    span = (hi - lo) or 1.0
    # room for the value labels: right of positive bars, left of negative ones
    ax.set_xlim(lo - (0.28 * span if (mean[ok] < 0).any() else 0.02 * span), hi + 0.28 * span)
    for y, v, s in zip(pos, mean, std, strict=True):
        if np.isfinite(v):
            end = v + s if v >= 0 else v - s
            ax.text(end + (0.02 if v >= 0 else -0.02) * span, y, _value_label(float(v)),
                    va="center", ha="left" if v >= 0 else "right", fontsize=style.VALUE_PT)
    ax.axvline(0, color="0.4", linewidth=0.8)
    ax.grid(axis="x", alpha=0.3)
    ax.tick_params(axis="y", length=0)


def _value_label(v: float) -> str:
    """Three decimals (as the tables), or three significant digits below 0.01 so a small
    score does not read 0.000."""
    from disbench.report.export import format_number

    return f"{v:.3g}" if v != 0 and abs(v) < 0.01 else format_number(v)


def _metric_title(metric: str, higher_is_better: dict[str, bool] | None) -> str:
    if higher_is_better and metric in higher_is_better:
        return metric + ("\n(higher is better)" if higher_is_better[metric]
                         else "\n(lower is better)")
    return metric


def plot_roc_curves(
    curves: dict[str, tuple[Any, Any, float]], stem: str | os.PathLike, *, title: str = "",
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """ROC curves ``{label: (fpr, tpr, auroc)}`` with the chance diagonal."""
    if not curves:
        return []
    with style.rc():
        fig, ax = plt.subplots(figsize=(5.0, 5.0))
        for label, (fpr, tpr, auc) in curves.items():
            ax.plot(np.asarray(fpr), np.asarray(tpr), label=f"{label} (AUROC {auc:.3f})")
        ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=0.8)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="lower right")
        if title:
            ax.set_title(title)
        return save_figure(fig, stem, formats)


def roc_files(run_dir: Path) -> list[Path]:
    """ROC curves an OoD evaluation saved in the run folder (``roc_*.npz``, and any file a
    score record names as its ``roc_file``)."""
    from disbench.run.folder import RunFolder

    files = set(run_dir.glob("roc_*.npz"))
    for rec in RunFolder(run_dir).metric_records():
        name = (rec.get("spec") or {}).get("roc_file")
        if name and (run_dir / name).is_file():
            files.add(run_dir / name)
    return sorted(files)


def roc_curves(runs: pd.DataFrame) -> dict[str, tuple[Any, Any, float]]:
    """``{label: (fpr, tpr, auroc)}`` of the runs of one dataset: per variant, the curves
    of its lowest seed that has any (one seed per variant keeps the figure readable)."""
    curves: dict[str, tuple[Any, Any, float]] = {}
    for variant, vruns in runs.sort_values("seed").groupby("variant", sort=True):
        for run_dir in vruns["run_dir"]:
            files = roc_files(Path(run_dir))
            for f in files:
                with np.load(f) as z:
                    key = variant if f.stem == "roc" else f"{variant} vs {f.stem[4:]}"
                    curves.setdefault(key, (z["fpr"], z["tpr"], float(z["auroc"])))
            if files:
                break
    return curves


def leaderboard_figures(
    runs: pd.DataFrame,
    board: pd.DataFrame,
    higher_is_better: dict[str, bool],
    out_dir: str | os.PathLike,
) -> list[Path]:
    """Per dataset: metric bars (``bars_<dataset>``) and ROC curves (``roc_<dataset>``).

    ROC curves: for each variant, the first seed's curve (lowest seed) from its run folder.
    """
    out_dir = Path(out_dir)
    written: list[Path] = []
    metrics = list(higher_is_better)
    for (dataset, source), sub in board.groupby(["dataset", "source"], dropna=False):
        tag = _safe(f"{dataset}_{source}")
        written += plot_metric_bars(
            sub, metrics, out_dir / f"bars_{tag}", title=f"{dataset} ({source})",
            higher_is_better=higher_is_better,
        )
        rsub = runs[(runs["dataset"] == dataset) & (runs["source"] == source)]
        written += plot_roc_curves(roc_curves(rsub), out_dir / f"roc_{tag}",
                                   title=f"{dataset} ({source}): OoD detection")
    return written
