"""Frechet distance between Gaussian fits of two feature sets (FID when the features are
Inception pool3 activations).

Heusel et al., "GANs trained by a two time-scale update rule converge to a local Nash
equilibrium", NeurIPS 2017, Eq. (6)::

    d^2 = ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))

(the 2-Wasserstein distance between N(mu_a, S_a) and N(mu_b, S_b), Dowson & Landau 1982).
Means and covariances (``ddof=1``, as the reference implementations use ``np.cov``) are
taken in float64.

Numerically stable trace term. ``S_a S_b`` is not symmetric, and ``scipy.linalg.sqrtm`` of
it can return complex or non-finite values when the covariances are singular (always the
case with fewer samples than feature dimensions); pytorch-fid then retries with ``1e-6`` added
to the diagonals, which changes the value. disbench instead uses that ``S_a S_b`` has the same
eigenvalues as the symmetric positive semi-definite matrix ``S_a^(1/2) S_b S_a^(1/2)``, so::

    tr((S_a S_b)^(1/2)) = sum_i sqrt(lambda_i(S_a^(1/2) S_b S_a^(1/2)))

computed with two symmetric eigendecompositions (``numpy.linalg.eigh``); eigenvalues that
rounding makes slightly negative are clipped to 0. This equals the standard formula on
well-conditioned inputs (to rounding) and stays finite and exact on singular ones, with no
offset. A result below 0 (rounding, e.g. a set against itself) is reported as 0.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["feature_statistics", "fid", "frechet_distance", "sqrtm_psd", "trace_sqrt_product"]


def _as_float64(a: Any, name: str) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensor
        a = a.detach().cpu().numpy()
    arr = np.asarray(a)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return arr


def _check_cov(s: np.ndarray, name: str, dim: int) -> np.ndarray:
    if s.shape != (dim, dim):
        raise ValueError(f"{name} must be a ({dim}, {dim}) covariance matrix, got shape {s.shape}")
    scale = max(float(np.max(np.abs(s))), 1e-300)
    if np.max(np.abs(s - s.T)) > 1e-8 * scale:
        raise ValueError(f"{name} must be symmetric (a covariance matrix)")
    return 0.5 * (s + s.T)


def sqrtm_psd(a: Any) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix.

    Uses ``numpy.linalg.eigh``; eigenvalues below 0 (rounding) are clipped to 0. Equals
    ``scipy.linalg.sqrtm(a)`` for well-conditioned positive definite ``a``.
    """
    arr = _as_float64(a, "a")
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"a must be a square matrix, got shape {arr.shape}")
    arr = _check_cov(arr, "a", arr.shape[0])
    w, v = np.linalg.eigh(arr)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    w1, v1 = np.linalg.eigh(s1)
    # B = V1 diag(sqrt(w1)); B^T S2 B is similar (via V1) to S1^(1/2) S2 S1^(1/2).
    b = v1 * np.sqrt(np.clip(w1, 0.0, None))
    m = b.T @ s2 @ b
    w = np.linalg.eigvalsh(0.5 * (m + m.T))
    return float(np.sum(np.sqrt(np.clip(w, 0.0, None))))


def trace_sqrt_product(sigma1: Any, sigma2: Any) -> float:
    """``tr((sigma1 sigma2)^(1/2))`` for two covariance matrices, stable when singular.

    Computed as the sum of square roots of the eigenvalues of the symmetric PSD matrix
    ``sigma1^(1/2) sigma2 sigma1^(1/2)`` (same spectrum as ``sigma1 sigma2``).
    """
    s1 = _as_float64(sigma1, "sigma1")
    s2 = _as_float64(sigma2, "sigma2")
    if s1.ndim != 2 or s1.shape[0] != s1.shape[1]:
        raise ValueError(f"sigma1 must be a square matrix, got shape {s1.shape}")
    dim = s1.shape[0]
    return _trace_sqrt_product(_check_cov(s1, "sigma1", dim), _check_cov(s2, "sigma2", dim))


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017, Eq. 6).

    Parameters
    ----------
    mu1, mu2 : array-like, shape (D,)
        Means.
    sigma1, sigma2 : array-like, shape (D, D)
        Covariance matrices (symmetric positive semi-definite; singular is fine).

    Returns
    -------
    float
        ``||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))`` (>= 0).
        Lower is better.
    """
    m1 = np.atleast_1d(_as_float64(mu1, "mu1"))
    m2 = np.atleast_1d(_as_float64(mu2, "mu2"))
    if m1.ndim != 1:
        raise ValueError(f"mu1 must be a vector, got shape {m1.shape}")
    if m2.shape != m1.shape:
        raise ValueError(f"mu2 must have the shape of mu1 {m1.shape}, got {m2.shape}")
    dim = m1.shape[0]
    s1 = _check_cov(np.atleast_2d(_as_float64(sigma1, "sigma1")), "sigma1", dim)
    s2 = _check_cov(np.atleast_2d(_as_float64(sigma2, "sigma2")), "sigma2", dim)
    diff = m1 - m2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * _trace_sqrt_product(s1, s2))
    return max(value, 0.0)


def feature_statistics(features: Any, name: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``ddof=1``) of an (N, D) feature array, in float64."""
    f = _as_float64(features, name)
    if f.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples x features), got shape {f.shape}")
    if f.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples for a covariance, got {f.shape[0]}")
    mu = f.mean(axis=0)
    centred = f - mu
    sigma = centred.T @ centred / (f.shape[0] - 1)
    return mu, sigma


def fid(features_a: Any, features_b: Any) -> float:
    """Frechet distance between Gaussian fits of two feature sets (FID for Inception features).

    Parameters
    ----------
    features_a, features_b : array-like, shape (N_a, D) and (N_b, D)
        Features (rows are samples), e.g. from :func:`disbench.metrics.inception_features`.
        The score is called FID only when these are InceptionV3 pool3 features.

    Returns
    -------
    float
        :func:`frechet_distance` of the float64 means and ``ddof=1`` covariances. Lower is
        better; 0 for a set against itself.
    """
    mu_a, s_a = feature_statistics(features_a, "features_a")
    mu_b, s_b = feature_statistics(features_b, "features_b")
    if mu_a.shape != mu_b.shape:
        raise ValueError(
            f"features_a and features_b must have the same number of columns, "
            f"got {mu_a.shape[0]} and {mu_b.shape[0]}"
        )
    return frechet_distance(mu_a, s_a, mu_b, s_b)
