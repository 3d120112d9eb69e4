"""Unsupervised scores and Hoyer sparsity against closed forms."""
import itertools

import numpy as np
import pytest
import torch
from disbench.metrics import (
    hoyer_per_sample,
    hoyer_sparsity,
    unsupervised,
)
from disbench.metrics.unsupervised import gaussian_total_correlation


def with_exact_covariance(cov, n=2000, seed=0):
    """Samples whose sample covariance (ddof 1) is exactly ``cov`` (up to rounding)."""
    x = np.random.default_rng(seed).normal(size=(n, len(cov)))
    x -= x.mean(0)
    white = x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False))).T
    return white @ np.linalg.cholesky(cov).T


@pytest.mark.parametrize("rho", [0.0, 0.3, -0.8])
def test_two_dim_gaussian_closed_forms(rho):
    cov = np.array([[1.0, rho], [rho, 1.0]])
    out = unsupervised(with_exact_covariance(cov))
    assert out["gaussian_total_correlation"] == pytest.approx(-0.5 * np.log(1 - rho**2), abs=1e-9)
    # Unit variances: sqrtm(C) has eigenvalues sqrt(1 +- rho).
    wc = 4.0 - 2.0 * (np.sqrt(1 + rho) + np.sqrt(1 - rho))
    assert out["gaussian_wasserstein_correlation"] == pytest.approx(wc, abs=1e-9)
    assert out["gaussian_wasserstein_correlation_norm"] == pytest.approx(wc / 2.0, abs=1e-9)


def test_scaled_covariance_and_total_correlation_is_scale_free():
    cov = np.array([[4.0, 1.0, 0.0], [1.0, 1.0, 0.2], [0.0, 0.2, 9.0]])
    tc = gaussian_total_correlation(cov)
    d = np.diag(1 / np.sqrt(np.diag(cov)))
    assert tc == pytest.approx(gaussian_total_correlation(d @ cov @ d), abs=1e-12)
    assert unsupervised(with_exact_covariance(cov))["gaussian_total_correlation"] == pytest.approx(
        tc, abs=1e-9
    )


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # duplicate columns: singular C
def test_mutual_info_score_dependent_vs_independent():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5000, 3))
    indep = unsupervised(x)["mutual_info_score"]
    assert indep < 0.05  # plug-in bias only: ~ (20-1)^2 / (2 * 5000)
    dup = unsupervised(np.c_[x[:, :1], x[:, :1]])["mutual_info_score"]
    # Identical columns: MI = entropy of the 20-bin discretisation.
    counts = np.bincount(np.digitize(x[:, 0], np.histogram(x[:, 0], 20)[1][:-1]))
    p = counts[counts > 0] / 5000
    assert dup == pytest.approx(-(p * np.log(p)).sum(), abs=1e-12)
    assert unsupervised(torch.from_numpy(x)) == unsupervised(x)


def test_unsupervised_bad_input():
    with pytest.raises(ValueError, match="codes: got a 1-D array"):
        unsupervised(np.zeros(100))
    with pytest.raises(ValueError, match="codes: column 1 is constant"):
        unsupervised(np.c_[np.arange(100.0), np.ones(100)])
    with pytest.raises(ValueError, match="codes: 5 samples is fewer"):
        unsupervised(np.random.default_rng(0).normal(size=(5, 2)))


def test_hoyer_closed_forms():
    assert hoyer_per_sample(np.array([0.0, 0.0, 3.0, 0.0])) == pytest.approx(1.0)
    assert hoyer_per_sample(np.ones(5)) == pytest.approx(0.0, abs=1e-12)
    assert hoyer_per_sample(-2.0 * np.ones(5)) == pytest.approx(0.0, abs=1e-12)
    # z = (1, 1, 0, 0): l1/l2 = sqrt(2) -> (2 - sqrt 2) / (2 - 1)
    assert hoyer_per_sample(np.array([1.0, 1.0, 0.0, 0.0])) == pytest.approx(2 - np.sqrt(2))
    rows = hoyer_per_sample(np.array([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0]]))
    assert rows == pytest.approx([1.0, 0.0], abs=1e-12)


def test_hoyer_sparsity_scales_dimensions_first():
    # One-hot rows with very different scales per dimension stay one-hot: score 1.
    onehot = np.eye(4)[np.arange(40) % 4] * np.array([100.0, 1.0, 0.01, 5.0])
    assert hoyer_sparsity(onehot) == pytest.approx(1.0)
    # Every sign pattern once: each column is balanced, so its std is exactly its scale and
    # every row has equal magnitudes after scaling: score 0.
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=3)))
    assert hoyer_sparsity(signs * np.array([3.0, 0.1, 7.0])) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="codes: contains NaN"):
        hoyer_sparsity(np.array([[np.nan, 1.0], [1.0, 2.0]]))
