"""The pictures of one model variant on the site: training curves from ``train_log.csv``
and, from one trained seed, reconstructions, prior samples and latent traversals (an
animation and the KL-ordered grid of :mod:`disbench.report.traversals`), or for sequence
data the sprite GIFs of :mod:`disbench.report.sprite_gifs`.

Run folders are read through :mod:`disbench.run.folder` only.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from disbench.errors import DisbenchError
from disbench.report import images as im
from disbench.report import style, traversals
from disbench.report.style import plt

log = logging.getLogger(__name__)

#: how many reconstructions and prior samples a variant page shows
NUM_RECONSTRUCTIONS, NUM_SAMPLES = 8, 16
#: pixel pictures are shown at this multiple of their size (those with text labels are
#: enlarged in the file, so the text stays sharp; the others by the browser)
ZOOM = 2
#: columns of the traversal grid on a variant page (fits a 1280 px wide window at ZOOM)
GRID_STEPS = 8
#: intensity levels of the site's pictures and animations (keeps the committed site small;
#: motion hides the coarser steps of the GIF; 'disbench plot' keeps all 256)
PNG_LEVELS, GIF_LEVELS = 64, 32


@dataclass
class Picture:
    """An image file of the site: ``src`` relative to the page, its caption, and the width
    to show it at (pixel pictures are drawn larger, without smoothing)."""

    src: str
    caption: str = ""
    alt: str = ""
    width: int | None = None
    pixels: bool = False


def pixel_picture(path: Path, page_dir: Path, caption: str, alt: str, zoom: int = ZOOM
                  ) -> Picture:
    """A :class:`Picture` of a pixel image, shown at ``zoom`` times its width."""
    from PIL import Image

    with Image.open(path) as image:
        width = image.size[0]
    return Picture(os.path.relpath(path, page_dir), caption, alt, width * zoom, True)


# --------------------------------------------------------------------------- curves
def plot_loss_curves(logs: dict[int, list[dict[str, str]]], path: str | os.PathLike, *,
                     title: str = "") -> Path | None:
    """One panel per logged term of ``train_log.csv`` against the step, a line per seed.

    ``logs``: ``{seed: rows}`` as :meth:`RunFolder.read_log` returns them.
    """
    logs = {s: rows for s, rows in sorted(logs.items()) if rows}
    if not logs:
        return None
    from matplotlib.ticker import MaxNLocator

    terms = [k for k in next(iter(logs.values()))[0] if k != "step"]
    with style.rc():
        ncol = min(4, len(terms))
        nrow = math.ceil(len(terms) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol, 2.5 * nrow), squeeze=False)
        for ax, term in zip(axes.flat, terms, strict=False):
            for seed, rows in logs.items():
                steps = [int(r["step"]) for r in rows]
                values = [_float(r.get(term)) for r in rows]
                ax.plot(steps, values, marker="." if len(steps) < 30 else None,
                        label=f"seed {seed}")
            ax.set_title(term)
            ax.set_xlabel("step")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(terms):]:
            ax.axis("off")
        axes[0][0].legend()
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return style.save(fig, path)


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


# --------------------------------------------------------------------------- pictures
def model_pictures(run_dir: str | os.PathLike, out_dir: str | os.PathLike, page_dir: Path, *,
                   mode: str, seed: int = 0, device: str = "cpu",
                   data_cache: dict | None = None) -> list[Picture]:
    """Pictures of the trained run in ``run_dir``, written into ``out_dir``.

    Image data: reconstructions, prior samples, the traversal animation of ``mode`` and
    its KL-ordered grid (base code: the first of the 64 observations drawn with
    ``RandomState(seed)``, as disentanglement_lib's ``visualize``). Sequence data: the
    real, reconstructed, swapped and generated sprite GIFs. ``data_cache`` keeps loaded
    datasets between calls.
    """
    from disbench.run.folder import load_run

    traversals.check_mode(mode)
    out = Path(out_dir)
    model, _cfg, spec = load_run(run_dir, device=device)
    dataset = _dataset(spec, data_cache)
    obs = traversals.sample_images(dataset, traversals.NUM_PICS, seed)
    if obs.ndim == 5:
        return _sequence_pictures(model, dataset, out, page_dir, seed=seed, device=device)
    return _image_pictures(model, obs, out, page_dir, mode=mode, seed=seed)


def _dataset(spec: dict[str, Any], cache: dict | None) -> Any:
    from disbench import datasets

    key = (spec["name"], spec["source"], spec["split"])
    if cache is not None and key in cache:
        return cache[key]
    data = datasets.get(spec["name"], source=spec["source"], split=spec["split"])
    if spec.get("fingerprint") and getattr(data, "fingerprint", None) != spec["fingerprint"]:
        log.warning("%s (%s): the data's fingerprint differs from the run's; pictures show "
                    "the data as it is now", spec["name"], spec["source"])
    if cache is not None:
        cache[key] = data
    return data


def _image_pictures(model: Any, obs: np.ndarray, out: Path, page_dir: Path, *, mode: str,
                    seed: int) -> list[Picture]:
    import torch

    x = torch.as_tensor(obs, device=model.device).float().div(255)
    with torch.no_grad():
        real = x[:NUM_RECONSTRUCTIONS]
        recon = model.reconstruct(real).float().clamp(0, 1)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        samples = model.sample(NUM_SAMPLES, generator=gen).float().clamp(0, 1)
    pair = im.padded_grid(im.zoom(im.hwc(torch.cat([real, recon])), ZOOM), num_rows=2, pad=2)
    labels = im.label_strip(["data", "recon."], real.shape[-2] * ZOOM, 52, pad=2)
    recon_path = im.save_png(im.hstack([labels, pair], gap=4), out / "reconstructions.png",
                             levels=PNG_LEVELS)
    samples_path = im.save_png(im.padded_grid(im.hwc(samples), num_rows=2, pad=2),
                               out / "prior_samples.png", levels=PNG_LEVELS)
    stats = traversals.code_stats(model, x)
    base = stats.means[0]
    gif = im.save_gif(traversals.animation_frames(model, base, stats, mode),
                      out / f"traversal_{mode}.gif",
                      duration_ms=round(1000 / traversals.FPS), levels=GIF_LEVELS)
    grid = im.save_png(traversals.static_grid(model, base, stats, mode, steps=GRID_STEPS,
                                              zoom=ZOOM), out / f"traversal_{mode}_grid.png",
                       levels=PNG_LEVELS)
    what = "KL" if stats.variances is not None else "code variance"
    return [
        pixel_picture(gif, page_dir, f"Latent traversal ({mode.replace('_', ' ')}): one "
                      "tile per latent, in index order, each cycling through its range with "
                      "the others fixed at the code of one observation.", "traversal animation"),
        pixel_picture(grid, page_dir, f"The same traversal as a grid: one row per latent, "
                      f"ordered by {what} (highest first).", "traversal grid", zoom=1),
        pixel_picture(recon_path, page_dir, "Observations (top) and their reconstructions "
                      "(bottom), decoded from the posterior means.", "reconstructions", zoom=1),
        pixel_picture(samples_path, page_dir, "Decoded samples from the prior.",
                      "prior samples"),
    ]


def _sequence_pictures(model: Any, dataset: Any, out: Path, page_dir: Path, *, seed: int,
                       device: Any) -> list[Picture]:
    from disbench.report.sprite_gifs import write_model_gifs

    gifs = write_model_gifs(model, dataset, out, n=4, seed=seed, device=device, scale=1)
    captions = {
        "real": "Real sequences.", "reconstructed": "Their reconstructions.",
        "swapped": "Swapped: the static code of sequence i with the dynamics of sequence "
                   "i + 1.", "generated": "Generated from the prior.",
    }
    return [pixel_picture(gifs[k], page_dir, captions[k], f"{k} sprites") for k in captions]


def safe_model_pictures(run_dir: str | os.PathLike, out_dir: str | os.PathLike,
                        page_dir: Path, **kw: Any) -> tuple[list[Picture], str]:
    """:func:`model_pictures`, or no pictures and the reason when the run's checkpoint or
    data cannot be loaded (the site is still written; the reason is logged and shown)."""
    try:
        return model_pictures(run_dir, out_dir, page_dir, **kw), ""
    except DisbenchError as exc:
        log.warning("%s: no pictures (%s)", run_dir, exc)
        return [], f"No pictures: {exc}"
