"""Priors of the alpha-beta VAE: densities against scipy, sample moments, KL estimates."""
import numpy as np
import pytest
import torch
from disbench.baselines.priors import PRIORS, Prior, make_prior
from disbench.errors import DisbenchError
from scipy import stats

D = 3


def _z(seed=0, n=50):
    return torch.from_numpy(np.random.default_rng(seed).normal(scale=1.5, size=(n, D)))


def _logp(prior, z):
    return prior.double().log_prob(z).detach().numpy()


def test_gaussian_log_prob_matches_scipy():
    z = _z()
    ref = stats.norm.logpdf(z.numpy()).sum(1)
    np.testing.assert_allclose(_logp(make_prior("gaussian", D), z), ref, rtol=1e-10)


def test_anisotropic_log_prob_matches_scipy():
    var = [0.5, 2.0, 4.0]
    p = make_prior("anisotropic", D, variances=var, learnable=True)
    z = _z(1)
    ref = stats.norm.logpdf(z.numpy(), scale=np.sqrt(var)).sum(1)
    np.testing.assert_allclose(_logp(p, z), ref, rtol=2e-6)  # float32 parameters
    assert sum(1 for _ in p.parameters()) == 1
    assert sum(1 for _ in make_prior("anisotropic", D, learnable=False).parameters()) == 0


@pytest.mark.parametrize("df", [9.0, 2.5])
def test_student_t_log_prob_matches_scipy(df):
    z = _z(2)
    ref = stats.t.logpdf(z.numpy(), df).sum(1)
    np.testing.assert_allclose(_logp(make_prior("student_t", D, df=df), z), ref, rtol=1e-10)


def test_student_t_default_df_is_9():
    assert float(make_prior("student_t", D).df) == 9.0


def test_mixture_log_prob_matches_scipy():
    p = make_prior("mixture", D, k=4, variance=0.3)
    z = _z(3)
    means = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]], dtype=float)
    dens = np.stack(
        [stats.norm.pdf(z.numpy(), loc=m, scale=np.sqrt(0.3)).prod(1) for m in means], 1
    )
    ref = np.log(dens.mean(1))
    np.testing.assert_allclose(_logp(p, z), ref, rtol=2e-6)  # float32 parameters
    np.testing.assert_array_equal(p.means.numpy(), means)


def test_sparse_log_prob_matches_scipy():
    p = make_prior("sparse", D)
    assert float(p.gamma) == pytest.approx(0.8)
    z = _z(4) * 0.1
    zn = z.numpy()
    ref = np.log(0.8 * stats.norm.pdf(zn, scale=0.05) + 0.2 * stats.norm.pdf(zn)).sum(1)
    np.testing.assert_allclose(_logp(p, z), ref, rtol=2e-6)  # float32 parameters


def _moments(prior, n=40000, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = prior.sample(n, generator=g).detach().double().numpy()
    assert s.shape == (n, D)
    return s


def test_sample_moments():
    g = _moments(make_prior("gaussian", D))
    np.testing.assert_allclose(g.mean(0), 0, atol=0.03)
    np.testing.assert_allclose(g.var(0), 1, atol=0.04)

    a = _moments(make_prior("anisotropic", D, variances=[0.5, 2.0, 4.0]))
    np.testing.assert_allclose(a.var(0), [0.5, 2.0, 4.0], rtol=0.04)

    t = _moments(make_prior("student_t", D, df=9.0))
    np.testing.assert_allclose(t.var(0), 9.0 / 7.0, rtol=0.06)  # var = df / (df - 2)
    # kurtosis excess 6/(df-4) = 1.2 separates t from a Gaussian
    assert np.all(stats.kurtosis(t, axis=0) > 0.6)

    m = _moments(make_prior("mixture", D, k=4, variance=0.01))
    np.testing.assert_allclose(m.var(0), [0.5 + 0.01, 0.5 + 0.01, 0.01], rtol=0.05)

    s = _moments(make_prior("sparse", D, gamma=0.8))
    np.testing.assert_allclose(s.var(0), 0.8 * 0.05**2 + 0.2, rtol=0.06)
    np.testing.assert_allclose((np.abs(s) < 0.2).mean(0), 0.8 + 0.2 * 0.1585, atol=0.01)


@pytest.mark.parametrize("name", sorted(PRIORS))
def test_sampling_is_deterministic_given_generator(name):
    p = make_prior(name, D)
    a = p.sample(7, generator=torch.Generator().manual_seed(3))
    b = p.sample(7, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_closed_form_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mu = torch.randn(4, D, dtype=torch.float64)
    logvar = torch.randn(4, D, dtype=torch.float64) * 0.3
    for name, kw in [("gaussian", {}), ("anisotropic", {"variances": [0.5, 2.0, 4.0]})]:
        p = make_prior(name, D, **kw).double()
        eps = torch.randn(20000, 4, D, dtype=torch.float64)
        z = (mu + eps * (0.5 * logvar).exp()).reshape(-1, D)
        mu_r, lv_r = mu.expand(20000, 4, D).reshape(-1, D), logvar.expand(20000, 4, D).reshape(-1, D)
        # the base-class (Monte-Carlo) estimator, averaged over the 20000 draws
        mc = Prior.kl_from_gaussian(p, mu_r, lv_r, z).view(20000, 4).mean(0)
        torch.testing.assert_close(p.kl_from_gaussian(mu, logvar, None), mc, atol=0.03, rtol=0)
    # KL of identical Gaussians is 0
    zero = make_prior("gaussian", D).kl_from_gaussian(torch.zeros(2, D), torch.zeros(2, D))
    torch.testing.assert_close(zero, torch.zeros(2))


def test_unknown_prior_and_bad_params():
    with pytest.raises(DisbenchError, match="unknown prior"):
        make_prior("laplace", D)
    with pytest.raises(ValueError, match="gamma"):
        make_prior("sparse", D, gamma=1.5)
    with pytest.raises(ValueError, match="variances"):
        make_prior("anisotropic", D, variances=[1.0, -1.0, 1.0])


def test_anisotropic_trace_rescales_the_given_variances():
    p = make_prior("anisotropic", D, variances=[0.5, 2.0, 4.0], trace=3.0)
    torch.testing.assert_close(p.variances, 3.0 * torch.tensor([0.5, 2.0, 4.0]) / 6.5)
    with pytest.raises(ValueError, match="trace"):
        make_prior("anisotropic", D, trace=0.0)
