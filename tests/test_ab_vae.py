"""ab_vae (Mathieu et al. 2019): divergence estimators and short training runs."""
import math

import numpy as np
import pytest
import torch
from disbench import baselines
from disbench.baselines.ab_vae import MMD_DIM_SCALES, inclusive_kl, mmd_dim
from disbench.baselines.priors import PRIORS, make_prior
from disbench.errors import DisbenchError


def _mmd_dim_loops(a: np.ndarray, b: np.ndarray) -> float:
    """Independent reference: per dimension, the unbiased U-statistic written with loops."""
    n = a.shape[0]
    total = 0.0
    for d in range(a.shape[1]):
        x, y = a[:, d], b[:, d]
        acc = 0.0
        for i in range(n):
            for j in range(n):
                if i == j:
                    continue
                for s in MMD_DIM_SCALES:
                    c = 2 * s
                    acc += (
                        c / (c + (x[i] - x[j]) ** 2) + c / (c + (y[i] - y[j]) ** 2)
                        - c / (c + (x[i] - y[j]) ** 2) - c / (c + (x[j] - y[i]) ** 2)
                    )
        total += acc / (n * (n - 1))
    return total


def test_mmd_dim_matches_loop_reference():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 3)), rng.normal(loc=0.5, size=(6, 3))
    got = mmd_dim(torch.from_numpy(a), torch.from_numpy(b)).item()
    assert got == pytest.approx(_mmd_dim_loops(a, b), rel=1e-10)


def test_mmd_dim_zero_for_same_sample_and_grows_with_shift():
    torch.manual_seed(0)
    z = torch.randn(64, 4, dtype=torch.float64)
    assert mmd_dim(z, z).item() == pytest.approx(0.0, abs=1e-12)
    other = torch.randn(64, 4, dtype=torch.float64)
    same_dist = mmd_dim(z, other).item()
    values = [mmd_dim(z, other + shift).item() for shift in (0.5, 1.0, 2.0)]
    assert abs(same_dist) < 0.1 * values[0]
    assert values[0] < values[1] < values[2]


def test_inclusive_kl_near_zero_when_q_equals_p():
    # Encoders whose mixture is N(0, I): q(z|x_j) = N(m_j, 0.5 I) with m_j ~ N(0, 0.5 I).
    g = torch.Generator().manual_seed(0)
    b, d = 4000, 2
    mean = torch.randn(b, d, generator=g, dtype=torch.float64) * math.sqrt(0.5)
    logvar = torch.full((b, d), math.log(0.5), dtype=torch.float64)
    prior = make_prior("gaussian", d).double()
    z_p = prior.sample(2000, generator=g)
    matched = inclusive_kl(z_p, prior.log_prob(z_p), mean, logvar).item()
    shifted = inclusive_kl(z_p, prior.log_prob(z_p), mean + 1.5, logvar).item()
    assert abs(matched) < 0.05
    # closed form for the shifted case: KL(N(0,I) || N(1.5*1, I)) = 0.5 * d * 1.5^2 = 2.25
    assert shifted == pytest.approx(2.25, abs=0.15)


def _make(prior, divergence="kl", alpha=1.0, **kw):
    torch.manual_seed(0)
    return baselines.create(
        "ab_vae", image_shape=(1, 28, 28), latent_dim=4, likelihood="bernoulli",
        prior=prior, divergence=divergence, alpha=alpha, **kw,
    )


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(1)
    return (torch.rand(8, 1, 28, 28, generator=g) > 0.7).float()


@pytest.mark.parametrize("prior", sorted(PRIORS))
def test_every_prior_trains_and_loss_falls(prior, batch):
    divergence = "mmd_dim" if prior in ("sparse", "student_t") else "kl"
    model = _make(prior, divergence=divergence, alpha=10.0 if divergence == "mmd_dim" else 1.0)
    opt = model.make_optimizers(lr=1e-3)
    torch.manual_seed(2)
    first = model.training_step(batch, 0, opt)
    assert set(first) >= {"loss", "recon", "kl", "divergence", "elbo"}
    losses = [first["loss"]] + [model.training_step(batch, s, opt)["loss"] for s in range(1, 15)]
    assert all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-3:]) < losses[0] - 0.05 * abs(losses[0])
    with torch.no_grad():
        assert model.encode(batch).shape == (8, 4)
        assert model.elbo(batch).shape == (8,)
        s = model.sample(3, generator=torch.Generator().manual_seed(0))
        assert s.shape == (3, 1, 28, 28) and float(s.min()) >= 0 and float(s.max()) <= 1
        assert model.prior.log_prob(model.encode(batch)).shape == (8,)


def test_learnable_anisotropic_prior_is_trained_and_saved(batch):
    model = _make("anisotropic", prior_variances=[0.5, 1.0, 1.5, 2.0])
    assert "prior.logits" in model.state_dict()
    before = model.prior.variances.detach().clone()
    torch.testing.assert_close(before, torch.tensor([0.5, 1.0, 1.5, 2.0]))
    opt = model.make_optimizers(lr=1e-2)
    for s in range(3):
        model.training_step(batch, s, opt)
    after = model.prior.variances.detach()
    assert not torch.allclose(before, after)
    assert after.sum().item() == pytest.approx(5.0, rel=1e-5)  # trace is held fixed


def test_alpha_zero_ignores_divergence_gradient(batch):
    model = _make("gaussian", alpha=0.0)
    terms = model.loss(batch, 0)
    assert not terms["divergence"].requires_grad
    torch.testing.assert_close(terms["loss"], terms["recon"] + terms["kl"])


def test_bad_hparams_are_clear_errors():
    with pytest.raises(DisbenchError, match="prior must be one of"):
        baselines.create("ab_vae", prior="laplace")
    with pytest.raises(DisbenchError, match="divergence"):
        baselines.create("ab_vae", divergence="mmd")
    with pytest.raises(DisbenchError, match="valid keys"):
        baselines.create("ab_vae", kappa=1.0)
    with pytest.raises(DisbenchError, match="mixture k"):
        baselines.create("ab_vae", prior="mixture", latent_dim=1)
