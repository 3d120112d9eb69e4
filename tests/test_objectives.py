"""Objective terms on cases with known values (closed forms or independent computation)."""
import itertools
import math

import numpy as np
import pytest
import torch
from disbench.baselines import objectives as obj
from scipy import stats


@pytest.fixture(autouse=True)
def _float64():
    # Exact comparisons in double precision; restore the default for other test files.
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_kl_of_identical_gaussians_is_zero():
    g = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    assert torch.allclose(obj.kl_normal(mean, logvar, mean, logvar), torch.zeros(5), atol=1e-12)
    assert torch.allclose(obj.kl_normal_std(torch.zeros(3, 4), torch.zeros(3, 4)), torch.zeros(3))


def test_kl_matches_closed_form_and_numerical_integration():
    # 1-D closed form, and the integral of q log(q / p) with scipy's densities.
    mq, sq, mp, sp = 0.3, 0.7, -0.5, 1.6
    expected = math.log(sp / sq) + (sq**2 + (mq - mp) ** 2) / (2 * sp**2) - 0.5
    got = obj.kl_normal(torch.tensor([[mq]]), torch.tensor([[2 * math.log(sq)]]),
                        torch.tensor([[mp]]), torch.tensor([[2 * math.log(sp)]]))
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # and against numerical integration with scipy densities
    xs = np.linspace(-12, 12, 200001)
    q, p = stats.norm(mq, sq).pdf(xs), stats.norm(mp, sp).pdf(xs)
    numeric = np.trapezoid(q * (np.log(q) - np.log(p)), xs)
    assert got.item() == pytest.approx(numeric, rel=1e-6)
    std = obj.kl_normal_std(torch.tensor([[mq]]), torch.tensor([[2 * math.log(sq)]]))
    assert std.item() == pytest.approx(-math.log(sq) + (sq**2 + mq**2) / 2 - 0.5, rel=1e-12)


def test_log_normal_matches_scipy():
    z = torch.tensor([[0.1, -2.0, 3.0]])
    mean = torch.tensor([[0.0, -1.0, 2.5]])
    logvar = torch.tensor([[0.0, 0.5, -1.0]])
    expected = stats.norm(mean.numpy(), np.exp(0.5 * logvar.numpy())).logpdf(z.numpy()).sum()
    assert obj.log_normal_diag(z, mean, logvar).item() == pytest.approx(expected, rel=1e-12)


def test_mmd_of_sample_with_itself_is_zero_and_grows_with_shift():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 3, generator=g)
    cs = obj.wae_imq_scales(3)
    assert obj.mmd_imq(x, x, cs).item() == pytest.approx(0.0, abs=1e-12)
    values = [obj.mmd_imq(x, x + s, cs).item() for s in (0.25, 0.5, 1.0, 2.0)]
    assert all(b > a for a, b in itertools.pairwise(values)), values
    assert values[0] > 0


def test_mmd_unbiased_matches_direct_sum():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(6, 2, generator=g), torch.randn(9, 2, generator=g) + 0.5
    cs = [1.0, 3.0]

    def k(a, b):
        d = float(((a - b) ** 2).sum())
        return sum(c / (c + d) for c in cs)

    n, m = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    assert obj.mmd_imq(x, y, cs).item() == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-10)


def test_mmd_batched_leading_dims():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(4, 10, 1, generator=g), torch.randn(4, 10, 1, generator=g)
    batched = obj.mmd_imq(x, y, [1.0])
    single = torch.stack([obj.mmd_imq(x[i], y[i], [1.0]) for i in range(4)])
    assert torch.allclose(batched, single)


def _codes(correlated: bool, n=2000, d=2, sigma=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(n, d, generator=g)
    if correlated:
        mean[:, 1] = mean[:, 0]
    logvar = torch.full((n, d), 2 * math.log(sigma))
    z = mean + sigma * torch.randn(n, d, generator=g)
    return z, mean, logvar


def test_tc_near_zero_for_independent_and_positive_for_correlated():
    # z_d = m_d + 0.05 e_d. Independent m: TC = 0. Shared m: TC = I(z_1; z_2) =
    # 0.5 log((1 + s^2)^2 / ((1 + s^2)^2 - 1)) in closed form (bivariate Gaussian).
    s2 = 0.05**2
    true_cor = 0.5 * math.log((1 + s2) ** 2 / ((1 + s2) ** 2 - 1))
    for estimate in (
        lambda z, m, lv: obj.total_correlation_mws(z, m, lv, dataset_size=1),
        lambda z, m, lv: obj.total_correlation_weighted(z, m, lv, dataset_size=len(z)),
        lambda z, m, lv: obj.total_correlation_weighted(z, m, lv, dataset_size=10**5),
    ):
        tc_ind = estimate(*_codes(False)).item()
        tc_cor = estimate(*_codes(True)).item()
        assert abs(tc_ind) < 0.3, tc_ind
        assert tc_cor == pytest.approx(true_cor, abs=0.2), (tc_cor, true_cor)


def test_tc_mws_constant_is_d_minus_one_log_n():
    z, m, lv = _codes(True, n=50, d=4)
    n_data = 737280
    diff = obj.total_correlation_mws(z, m, lv, n_data) - obj.total_correlation_mws(z, m, lv, 1)
    assert diff.item() == pytest.approx(3 * math.log(n_data), rel=1e-10)


def test_tc_mws_matches_loop_definition():
    z, m, lv = _codes(True, n=7, d=3, sigma=0.5, seed=4)
    n_data = 1000
    total = 0.0
    for i in range(len(z)):
        lq = [obj.log_normal(z[i], m[j], lv[j]) for j in range(len(z))]  # each (D,)
        log_qz = torch.logsumexp(torch.stack([v.sum() for v in lq]), 0) - math.log(n_data * 7)
        log_marg = sum(torch.logsumexp(torch.stack([v[d] for v in lq]), 0) - math.log(n_data * 7)
                       for d in range(3))
        total += float(log_qz - log_marg)
    got = obj.total_correlation_mws(z, m, lv, dataset_size=n_data).item()
    assert got == pytest.approx(total / 7, rel=1e-10)


def test_permute_dims_keeps_each_marginal():
    g = torch.Generator().manual_seed(5)
    z = torch.randn(64, 6, generator=g)
    p = obj.permute_dims(z, generator=torch.Generator().manual_seed(6))
    assert torch.equal(p.sort(0).values, z.sort(0).values)
    assert not torch.equal(p, z)
    # dimensions are permuted independently: rows are no longer the original rows
    assert (p.unsqueeze(1) == z.unsqueeze(0)).all(-1).any(1).float().mean() < 0.2


def test_dip_penalties_zero_for_identity_and_known_value():
    off, diag = obj.dip_penalties(torch.eye(4))
    assert off.item() == 0 and diag.item() == 0
    c = torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    off, diag = obj.dip_penalties(c)
    assert off.item() == pytest.approx(0.5)
    assert diag.item() == pytest.approx(1.0)


def test_dip_covariances_match_numpy():
    g = torch.Generator().manual_seed(7)
    mean, logvar = torch.randn(50, 3, generator=g), torch.randn(50, 3, generator=g)
    cov_i = np.cov(mean.numpy(), rowvar=False, bias=True)
    assert np.allclose(obj.dip_i_covariance(mean).numpy(), cov_i)
    cov_ii = cov_i + np.diag(np.exp(logvar.numpy()).mean(0))
    assert np.allclose(obj.dip_ii_covariance(mean, logvar).numpy(), cov_ii)
