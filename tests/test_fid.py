import numpy as np
import pytest
import scipy.linalg
import torch
from disbench.metrics.fid import (
    feature_statistics,
    fid,
    frechet_distance,
    sqrtm_psd,
    trace_sqrt_product,
)


def _spd(rng, d, cond=10.0):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * np.linspace(1.0, cond, d)) @ q.T


def _standard_formula(mu1, s1, mu2, s2):
    """The textbook formula with scipy's general matrix square root (well-conditioned only)."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


def test_set_against_itself_is_zero():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 16)) * 3 + 1
    assert fid(x, x) == pytest.approx(0.0, abs=1e-9)


def test_closed_form_commuting_covariances():
    rng = np.random.default_rng(1)
    d = 12
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    l1, l2 = rng.uniform(0.1, 5.0, d), rng.uniform(0.1, 5.0, d)
    s1, s2 = (q * l1) @ q.T, (q * l2) @ q.T
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-10)


def test_univariate_closed_form():
    # N(1, 2^2) vs N(-2, 5^2): (1 + 2)^2 + (2 - 5)^2
    assert frechet_distance([1.0], [[4.0]], [-2.0], [[25.0]]) == pytest.approx(18.0, rel=1e-12)


def test_agrees_with_standard_formula_general_covariances():
    rng = np.random.default_rng(2)
    d = 20
    s1, s2 = _spd(rng, d), _spd(rng, d, cond=50.0)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(_standard_formula(mu1, s1, mu2, s2), rel=1e-6)


def test_fid_uses_ddof1_float64_moments():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((300, 8)).astype(np.float32)
    b = (rng.standard_normal((250, 8)) @ rng.standard_normal((8, 8)) + 0.5).astype(np.float32)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    expected = _standard_formula(a64.mean(0), np.cov(a64, rowvar=False),
                                 b64.mean(0), np.cov(b64, rowvar=False))
    assert fid(a, b) == pytest.approx(expected, rel=1e-6)
    assert fid(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(expected, rel=1e-6)
    _, sigma = feature_statistics(a)
    np.testing.assert_allclose(sigma, np.cov(a64, rowvar=False), rtol=1e-12, atol=1e-14)


def test_large_sample_gaussians_approach_closed_form():
    rng = np.random.default_rng(4)
    n, d = 200_000, 3
    l1, l2 = np.array([1.0, 2.0, 0.5]), np.array([4.0, 1.0, 0.5])
    a = rng.standard_normal((n, d)) * np.sqrt(l1)
    b = rng.standard_normal((n, d)) * np.sqrt(l2) + np.array([1.0, 0.0, -1.0])
    expected = 2.0 + np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2)
    assert fid(a, b) == pytest.approx(expected, rel=0.02)


def test_sqrtm_agrees_with_scipy():
    rng = np.random.default_rng(5)
    s = _spd(rng, 30, cond=100.0)
    root = sqrtm_psd(s)
    np.testing.assert_allclose(root, scipy.linalg.sqrtm(s).real, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(root @ root, s, rtol=1e-9, atol=1e-11)
    s2 = _spd(rng, 30, cond=20.0)
    assert trace_sqrt_product(s, s2) == pytest.approx(
        np.trace(scipy.linalg.sqrtm(s @ s2)).real, rel=1e-9
    )


def test_singular_covariances_stay_finite_and_exact():
    # rank-deficient commuting case: closed form still holds
    assert frechet_distance([0, 0], np.diag([1.0, 0.0]), [0, 0], np.diag([4.0, 0.0])) == (
        pytest.approx(1.0, rel=1e-12)
    )
    rng = np.random.default_rng(6)
    a = rng.standard_normal((10, 64))  # fewer samples than dimensions: rank 9
    b = rng.standard_normal((12, 64)) + 0.1
    b[:, 5] = 3.0  # a constant feature
    value = fid(a, b)
    assert np.isfinite(value) and value > 0
    assert fid(a, a) == pytest.approx(0.0, abs=1e-9)


def test_bad_input_names_the_argument():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((10, 4))
    with pytest.raises(ValueError, match="features_a and features_b"):
        fid(a, rng.standard_normal((10, 5)))
    with pytest.raises(ValueError, match="features_b needs at least 2"):
        fid(a, a[:1])
    bad = a.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="features_a contains NaN"):
        fid(bad, a)
    with pytest.raises(ValueError, match="features_b must be a 2-D"):
        fid(a, a[0])
    with pytest.raises(ValueError, match="sigma2 must be symmetric"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="mu2"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
