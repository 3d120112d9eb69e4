"""Peak signal-to-noise ratio (PSNR) between two image batches.

PSNR of one image pair is ``10 log10(R^2 / MSE)``, with ``R`` the dynamic range of the
pixel values (1.0 for images in [0, 1], 255 for uint8) and ``MSE`` the mean squared error
over the image's ``C*H*W`` values (the textbook definition; see e.g. Huynh-Thu & Ghanbari,
"Scope of validity of PSNR in image/video quality assessment", Electronics Letters 2008).

Two aggregates over a batch exist and they differ (the log does not commute with the mean):

- :func:`psnr` -- the mean of per-image PSNR, what reconstruction tables in the GWAE and
  R-WAE papers report and what disbench records as ``"psnr"``;
- :func:`psnr_pooled` -- one PSNR from the MSE pooled over the whole batch.

``data_range`` is required: guessing it from the data (max - min) makes scores depend on the
content of the batch.

Identical images have ``MSE = 0`` and an infinite PSNR. :func:`psnr_per_image` returns
``inf`` for them; :func:`psnr` then returns ``inf`` as well (the mean of a set containing
``+inf``), and :func:`psnr_pooled` returns ``inf`` only when the whole batches are identical.
No epsilon is added, so finite scores are exact.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["psnr", "psnr_per_image", "psnr_pooled"]


def _as_float64(a: Any, name: str) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensor
        a = a.detach().cpu().numpy()
    arr = np.asarray(a)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _check_pair(x: Any, y: Any, data_range: float) -> tuple[np.ndarray, np.ndarray, float]:
    xa = _as_float64(x, "x")
    ya = _as_float64(y, "y")
    if xa.shape != ya.shape:
        raise ValueError(f"x and y must have the same shape, got x {xa.shape} and y {ya.shape}")
    if xa.ndim < 2:
        raise ValueError(
            f"x must be a batch of images with the sample axis first (N, ...), got shape {xa.shape}"
        )
    if xa.shape[0] == 0 or xa[0].size == 0:
        raise ValueError(f"x and y must hold at least one non-empty image, got shape {xa.shape}")
    for name, arr in (("x", xa), ("y", ya)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or inf values")
    try:
        rng = float(data_range)
    except (TypeError, ValueError):
        rng = float("nan")
    if isinstance(data_range, (bool, str)) or not (np.isfinite(rng) and rng > 0):
        raise ValueError(f"data_range must be a positive finite number, got {data_range!r}")
    return xa, ya, rng


def psnr_per_image(x: Any, y: Any, *, data_range: float) -> np.ndarray:
    """PSNR of each image pair, in dB.

    Parameters
    ----------
    x, y : array-like (numpy or torch), shape (N, ...)
        Two batches of images of the same shape; the first axis indexes images, the MSE of
        image ``i`` is taken over all its other axes (``C*H*W`` values).
    data_range : float
        The dynamic range of the pixel values (1.0 for [0, 1] images, 255 for uint8).

    Returns
    -------
    numpy.ndarray, shape (N,), float64
        ``10 log10(data_range^2 / MSE_i)``; ``inf`` where the images are identical.

    Raises
    ------
    ValueError
        Shapes differ, fewer than two axes, NaN/inf values, or a bad ``data_range``.
    """
    xa, ya, rng = _check_pair(x, y, data_range)
    mse = np.mean((xa - ya).reshape(xa.shape[0], -1) ** 2, axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(rng**2) - 10.0 * np.log10(mse)


def psnr(x: Any, y: Any, *, data_range: float) -> float:
    """Mean of per-image PSNR (dB) between two image batches.

    ``mean_i 10 log10(data_range^2 / MSE_i)`` with ``MSE_i`` over image ``i``'s ``C*H*W``
    values, computed in float64. Higher is better.

    Parameters
    ----------
    x, y : array-like (numpy or torch), shape (N, ...)
        Reference and reconstructed images (order does not matter), same shape.
    data_range : float
        Required: the dynamic range of the values (1.0 for [0, 1] images, 255 for uint8).
        It is never guessed from the data.

    Returns
    -------
    float
        The mean PSNR; ``inf`` if any image pair is identical (see the module docstring).
    """
    return float(np.mean(psnr_per_image(x, y, data_range=data_range)))


def psnr_pooled(x: Any, y: Any, *, data_range: float) -> float:
    """PSNR (dB) of the MSE pooled over the whole batch: ``10 log10(R^2 / mean MSE)``.

    This is *not* the mean of per-image PSNR (:func:`psnr`); by Jensen's inequality it is
    at most that mean. It is ``inf`` only if the two batches are identical.
    """
    xa, ya, rng = _check_pair(x, y, data_range)
    mse = float(np.mean((xa - ya) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(rng**2) - 10.0 * np.log10(mse))
