"""Latent traversals as disentanglement_lib draws them: five animation modes, GIFs and grids.

Follows ``visualize_model.visualize`` and ``visualize_util.cycle_gaussian`` /
``cycle_interval`` of google-research/disentanglement_lib
(``disentanglement_lib/visualize/visualize_model.py``, ``visualize_util.py``):

- 64 observations are drawn with ``RandomState(0)`` and encoded; their posterior means
  (``means``) and variances give the statistics of each latent;
- each of the first ``num_animations`` (5) codes is a *base code*; for each latent ``j`` an
  animation of ``num_frames`` (20) frames changes ``code[j]`` along one cycle that starts at
  the base value, runs to one end of the range, back to the other end and returns, the
  other latents fixed; the latents' animations are tiled in one padded grid per frame and
  written at ``fps`` (10) frames per second;
- the five modes (:data:`MODES`, the file stems of the reference):

  ``std_gaussian``
      quantiles of N(0, 1): the cycle runs over probabilities, clipped to
      [0.001, 0.999], mapped through the normal quantile function;
  ``fitted_gaussian``
      the same over N(loc, scale^2) fitted to the codes: ``loc`` the mean of ``means[:, j]``,
      ``scale^2`` the mean posterior variance plus the variance of the means;
  ``fixed_interval``
      linearly through [-2, 2];
  ``conf_interval``
      linearly through ``loc ± 2 scale`` of the fitted Gaussian (the reference centres the
      interval on the fitted mean, not on the base code; the cycle starts at the code);
  ``minmax_interval``
      linearly through [min, max] of ``means[:, j]`` over the 64 codes.

Departures from the reference: the reference's footer logo is not drawn; a static grid per
base code is added (rows: latents ordered by KL, highest first; columns: ``GRID_STEPS``
values evenly spaced over the range the mode's animation covers), since a GIF cannot be
printed. The KL of latent ``j`` is the mean over the 64 observations of
KL(q(z_j|x) || N(0, 1)); a model without a Gaussian posterior (``posterior(x) -> (mean,
logvar)``: WAEs, GWAE, the alpha-beta VAE's encoders) has no such KL, so its latents are
ordered by the variance of their codes instead, and its fitted Gaussian uses the spread of
the codes only (posterior variance 0).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from disbench.report import images as im

MODES = ("std_gaussian", "fitted_gaussian", "fixed_interval", "conf_interval",
         "minmax_interval")
#: defaults of disentanglement_lib's ``visualize``
NUM_ANIMATIONS, NUM_FRAMES, FPS, NUM_PICS = 5, 20, 10, 64
#: quantile clip of ``cycle_gaussian``
PROB_LO, PROB_HI = 0.001, 0.999
#: columns of the static grid
GRID_STEPS = 10


def cycle_gaussian(start: float, num_frames: int, loc: float = 0.0, scale: float = 1.0
                   ) -> np.ndarray:
    """One cycle through the quantiles of N(loc, scale^2) starting at ``start``
    (``visualize_util.cycle_gaussian``)."""
    from scipy import stats

    p0 = stats.norm.cdf(start, loc=loc, scale=scale)
    grid = _fold(np.linspace(p0, p0 + 2.0, num=num_frames, endpoint=False))
    return stats.norm.ppf(np.clip(grid, PROB_LO, PROB_HI), loc=loc, scale=scale)


def cycle_interval(start: float, num_frames: int, lo: float, hi: float) -> np.ndarray:
    """One linear cycle through [lo, hi] starting at ``start``
    (``visualize_util.cycle_interval``)."""
    s = (start - lo) / (hi - lo)
    return _fold(np.linspace(s, s + 2.0, num=num_frames, endpoint=False)) * (hi - lo) + lo


def _fold(grid: np.ndarray) -> np.ndarray:
    """Map a ramp over [s, s + 2] to the triangle wave on [0, 1] (up to 1, down to 0)."""
    grid = grid - np.maximum(0, 2 * grid - 2)
    return grid + np.maximum(0, -2 * grid)


@dataclass
class CodeStats:
    """What the modes need of each latent, from the codes of a sample of observations.

    ``means``: (N, D) codes; ``variances``: (N, D) posterior variances, or None for a
    model without a Gaussian posterior.
    """

    means: np.ndarray
    variances: np.ndarray | None = None

    @property
    def loc(self) -> np.ndarray:
        return self.means.mean(axis=0)

    @property
    def scale(self) -> np.ndarray:
        total = self.means.var(axis=0)
        if self.variances is not None:
            total = total + self.variances.mean(axis=0)
        return np.sqrt(np.maximum(total, 1e-12))

    def kl(self) -> np.ndarray | None:
        """Mean KL(q(z_j|x) || N(0, 1)) per latent (None without posterior variances)."""
        if self.variances is None:
            return None
        v = np.maximum(self.variances, 1e-12)
        return (0.5 * (self.means ** 2 + v - np.log(v) - 1.0)).mean(axis=0)

    def order(self) -> tuple[np.ndarray, np.ndarray, str]:
        """Latents by decreasing KL (or code variance): ``(order, values, "KL" | "var")``."""
        kl = self.kl()
        values, name = (kl, "KL") if kl is not None else (self.means.var(axis=0), "var")
        return np.argsort(-values, kind="stable"), values, name

    def cycle(self, mode: str, j: int, start: float, num_frames: int) -> np.ndarray:
        """The values of latent ``j`` over one animation of ``mode``."""
        if mode == "std_gaussian":
            return cycle_gaussian(start, num_frames)
        if mode == "fitted_gaussian":
            return cycle_gaussian(start, num_frames, self.loc[j], self.scale[j])
        return cycle_interval(start, num_frames, *self.interval(mode, j))

    def interval(self, mode: str, j: int) -> tuple[float, float]:
        """The range a linear mode runs through for latent ``j``."""
        if mode == "fixed_interval":
            return -2.0, 2.0
        if mode == "conf_interval":
            return self.loc[j] - 2 * self.scale[j], self.loc[j] + 2 * self.scale[j]
        if mode == "minmax_interval":
            lo, hi = float(self.means[:, j].min()), float(self.means[:, j].max())
            return (lo, hi) if hi > lo else (lo - 1e-6, hi + 1e-6)
        raise ValueError(f"traversal mode must be one of {', '.join(MODES)}, got {mode!r}")

    def sweep(self, mode: str, j: int, steps: int) -> np.ndarray:
        """``steps`` increasing values spanning the range the animation of ``mode`` covers."""
        from scipy import stats

        check_mode(mode)
        if mode in ("std_gaussian", "fitted_gaussian"):
            loc, scale = (0.0, 1.0) if mode == "std_gaussian" else (self.loc[j], self.scale[j])
            return stats.norm.ppf(np.linspace(PROB_LO, PROB_HI, steps), loc=loc, scale=scale)
        return np.linspace(*self.interval(mode, j), steps)


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`, else a ValueError naming them."""
    if mode not in MODES:
        raise ValueError(f"traversal mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def code_stats(model: Any, x: Any) -> CodeStats:
    """Encode ``x`` (a float tensor in [0, 1]): posterior means and, where the model has a
    Gaussian posterior, its variances."""
    import torch

    with torch.no_grad():
        posterior = getattr(model, "posterior", None)
        if callable(posterior):
            mean, logvar = posterior(x)
            return CodeStats(mean.float().cpu().numpy().astype(np.float64),
                             logvar.float().exp().cpu().numpy().astype(np.float64))
        return CodeStats(model.encode(x).float().cpu().numpy().astype(np.float64))


def _decode(model: Any, codes: np.ndarray) -> np.ndarray:
    """Decoded (N, H, W, 3) uint8 images of (N, D) codes."""
    import torch

    with torch.no_grad():
        z = torch.as_tensor(codes, dtype=torch.float32, device=model.device)
        return im.hwc(model.decode(z).float().clamp(0, 1))


def animation_frames(model: Any, base: np.ndarray, stats: CodeStats, mode: str, *,
                     num_frames: int = NUM_FRAMES) -> np.ndarray:
    """The frames of one animation: (num_frames, H', W', 3) uint8, each frame the padded
    grid of every latent's image (latents in index order, as the reference)."""
    check_mode(mode)
    d = base.shape[0]
    codes = np.repeat(base[None, None, :], d, axis=0).repeat(num_frames, axis=1)  # (D, F, D)
    for j in range(d):
        codes[j, :, j] = stats.cycle(mode, j, float(base[j]), num_frames)
    pics = _decode(model, codes.reshape(d * num_frames, d))
    pics = pics.reshape(d, num_frames, *pics.shape[1:])
    return np.stack([im.padded_grid(pics[:, f], border=im.PADDING) for f in range(num_frames)])


def static_grid(model: Any, base: np.ndarray, stats: CodeStats, mode: str, *,
                steps: int = GRID_STEPS, zoom: int = 1) -> np.ndarray:
    """One row per latent, ordered by KL (highest first), with its name and KL on the left;
    columns sweep the mode's range (:meth:`CodeStats.sweep`); images drawn ``zoom`` times
    their size (the labels keep theirs). (H, W, 3) uint8."""
    order, values, what = stats.order()
    d = base.shape[0]
    codes = np.repeat(base[None, :], d * steps, axis=0)
    for r, j in enumerate(order):
        codes[r * steps:(r + 1) * steps, j] = stats.sweep(mode, int(j), steps)
    pics = im.zoom(_decode(model, codes), zoom)
    grid = im.padded_grid(pics, num_rows=d, pad=2)
    labels = [f"z{j}  {what} {values[j]:.3g}" for j in order]
    strip = im.label_strip(labels, pics.shape[1], 110, pad=2)
    return im.hstack([strip, grid], gap=4)


def sample_images(dataset: Any, n: int = NUM_PICS, seed: int = 0) -> np.ndarray:
    """``n`` observations drawn uniformly with ``RandomState(seed)`` (uint8, N first)."""
    from disbench.errors import check_random_state, random_integers

    rng = check_random_state(seed)
    idx = np.sort(random_integers(rng, len(dataset), n))
    return np.asarray(dataset.images[idx])


def write_traversals(model: Any, observations: np.ndarray, out_dir: str | os.PathLike,
                     modes: tuple[str, ...] = MODES, *, num_animations: int = NUM_ANIMATIONS,
                     num_frames: int = NUM_FRAMES, fps: int = FPS) -> list[Path]:
    """For each mode and each of the first ``num_animations`` codes of ``observations``:
    ``animated_traversals/<mode>_cycle<i>.gif`` and ``traversal_grids/<mode>_grid<i>.png``.

    ``observations``: uint8 (N, C, H, W), the sample the statistics come from
    (:func:`sample_images`).
    """
    import torch

    out = Path(out_dir)
    x = torch.as_tensor(observations, device=model.device).float().div(255)
    stats = code_stats(model, x)
    written: list[Path] = []
    for mode in modes:
        check_mode(mode)
        for i, base in enumerate(stats.means[:num_animations]):
            frames = animation_frames(model, base, stats, mode, num_frames=num_frames)
            written.append(im.save_gif(frames, out / "animated_traversals" / f"{mode}_cycle{i}.gif",
                                       duration_ms=round(1000 / fps)))
            written.append(im.save_png(static_grid(model, base, stats, mode),
                                       out / "traversal_grids" / f"{mode}_grid{i}.png"))
    return written


def write_run_traversals(run_dir: str | os.PathLike, out_dir: str | os.PathLike,
                         modes: tuple[str, ...] = MODES, *, seed: int = 0,
                         device: Any = "cpu") -> list[Path]:
    """:func:`write_traversals` for the trained run in ``run_dir`` (read through
    :func:`disbench.run.folder.load_run`), on ``NUM_PICS`` observations of its data drawn
    with ``RandomState(seed)``."""
    from disbench import datasets
    from disbench.errors import DisbenchError
    from disbench.run.folder import load_run

    for mode in modes:
        check_mode(mode)
    model, _cfg, spec = load_run(run_dir, device=device)
    data = datasets.get(spec["name"], source=spec["source"], split=spec["split"])
    obs = sample_images(data, NUM_PICS, seed)
    if obs.ndim != 4:
        raise DisbenchError(f"{run_dir}: sequence data has no latent traversals; "
                            "'disbench plot' writes its sprite GIFs")
    return write_traversals(model, obs, out_dir, modes)
