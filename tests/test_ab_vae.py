"""ab_vae (Mathieu et al. 2019): divergence estimators and short training runs."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from disbench import baselines
from disbench.baselines.ab_vae import MMD_DIM_SCALES, OFFICIAL_SETTINGS, inclusive_kl, mmd_dim
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
    # issue 13: renormalised to trace D = 4 as the official pz_params (was the raw trace 5)
    torch.testing.assert_close(before, 4 * torch.tensor([0.5, 1.0, 1.5, 2.0]) / 5)
    opt = model.make_optimizers(lr=1e-2)
    for s in range(3):
        model.training_step(batch, s, opt)
    after = model.prior.variances.detach()
    assert not torch.allclose(before, after)
    assert after.sum().item() == pytest.approx(4.0, rel=1e-5)  # trace is held fixed


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


# -- issue 13: the official code's behaviour ------------------------------------------------
def test_anisotropic_prior_variances_are_renormalised_to_trace_d():
    """Official pz_params: scale = sqrt(prior_variance_scale * D * softmax(log v)) with
    prior_variance_scale 1, so the variances are D * v / sum(v) (trace D)."""
    v = torch.tensor([9.0, 4.0, 1.0, 0.25])  # e.g. PCA variances, trace 14.25
    model = _make("anisotropic", prior_variances=v.tolist(), prior_learnable=False)
    official = (4 * torch.softmax(torch.log(v)[None], dim=1))[0]
    torch.testing.assert_close(model.prior.variances, official)
    assert model.prior.variances.sum().item() == pytest.approx(4.0, rel=1e-6)
    draws = model.prior.sample(200_000, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(draws.var(0).numpy(), official.numpy(), rtol=0.02)
    iso = _make("anisotropic")
    torch.testing.assert_close(iso.prior.variances, torch.ones(4))


def test_mmd_dim_passes_no_gradient_to_a_learnable_prior(batch):
    """Official decomp_objective: regs(pz.sample(...), zs) for mmd_dim, no gradient to p(z)."""
    model = _make("anisotropic", divergence="mmd_dim", alpha=100.0, prior_learnable=True)
    div = model.loss(batch, 0)["divergence"]
    assert div.requires_grad  # it trains the encoder
    div.backward()
    assert model.prior.logits.grad is None
    assert model.encoder.mean.weight.grad is not None
    # kld_inc draws with pz.rsample: the prior does get a gradient there
    kl_model = _make("anisotropic", divergence="kl", alpha=1.0, prior_learnable=True)
    kl_model.loss(batch, 0)["divergence"].backward()
    assert kl_model.prior.logits.grad is not None
    assert kl_model.prior.logits.grad.abs().sum() > 0


def _official_fashion_model(**kw):
    torch.manual_seed(0)
    hp = {**OFFICIAL_SETTINGS["sparsity_fashion_mnist"]["hparams"], **kw}
    return baselines.create("ab_vae", **hp)


def test_sparsity_setting_is_the_official_one():
    s = OFFICIAL_SETTINGS["sparsity_fashion_mnist"]
    hp = _official_fashion_model().hparams
    # sparsity.sh: --batch-size 500 --lr 5e-4 --latent-dim 50 --regulariser mmd_dim
    # --beta 1. --alpha {0, 100} --gamma {0.0, 0.8} --epochs 80; vae_fashion_mnist.py:
    # Sparse prior, Laplace likelihood with scale 0.1, 1x32x32 input
    assert (hp.latent_dim, hp.divergence, hp.beta, hp.prior) == (50, "mmd_dim", 1.0, "sparse")
    assert (hp.likelihood, hp.likelihood_scale, hp.image_shape) == ("laplace", 0.1, (1, 32, 32))
    assert (hp.alpha, hp.gamma) == (100.0, 0.8)
    assert sorted((r["gamma"], r["alpha"]) for r in s["runs"]) == [
        (0.0, 0.0), (0.0, 100.0), (0.8, 0.0), (0.8, 100.0)]
    assert s["train"]["batch_size"] == 500 and s["train"]["lr"] == 5e-4
    assert s["train"]["steps"] == s["train"]["epochs"] * 60000 // 500 == 9600
    assert baselines.MODELS["ab_vae"].default_amsgrad


def test_fashion_laplace_log_likelihood_matches_torch_laplace():
    """vae_fashion_mnist.py: px_z = Laplace(d, 0.1) with d the raw decoder output."""
    model = _official_fashion_model().eval()
    z = torch.randn(3, 50)
    x = torch.rand(3, 1, 32, 32).clamp(1e-6, 1 - 1e-6)
    with torch.no_grad():
        d = model.decoder(z)
        got = model.likelihood.log_prob(x, d)
    ref = torch.distributions.Laplace(d, 0.1).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(got, ref)
    # the location is not squashed (a sigmoid would change the value)
    squashed = torch.distributions.Laplace(torch.sigmoid(d), 0.1).log_prob(x).flatten(1).sum(1)
    assert not torch.allclose(got, squashed)
    assert model.decode(z).min() >= 0 and model.decode(z).max() <= 1


def _conv_specs(module, kind):
    return [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0],
             m.bias is not None) for m in module.modules() if isinstance(m, kind)]


def test_fashion_network_is_the_official_one():
    """vae_fashion_mnist.py Enc / Dec with fBase 32 (main.py's default), written out here."""
    model = _official_fashion_model()
    enc, dec = model.encoder, model.decoder
    conv, convt = torch.nn.Conv2d, torch.nn.ConvTranspose2d
    assert _conv_specs(enc.enc, conv) == [
        (1, 32, 4, 2, 1, False), (32, 64, 4, 2, 1, False), (64, 128, 4, 2, 1, False)]
    assert [type(m).__name__ for m in enc.enc] == [
        "Conv2d", "LeakyReLU", "Conv2d", "BatchNorm2d", "LeakyReLU",
        "Conv2d", "BatchNorm2d", "LeakyReLU"]
    assert all(m.negative_slope == 0.2 for m in enc.enc if isinstance(m, torch.nn.LeakyReLU))
    assert _conv_specs(enc.c1, conv) == _conv_specs(enc.c2, conv) == [(128, 50, 4, 1, 0, True)]
    assert _conv_specs(dec, convt) == [
        (50, 128, 4, 1, 0, False), (128, 64, 4, 2, 1, False), (64, 32, 4, 2, 1, False),
        (32, 1, 4, 2, 1, False)]
    assert [type(m).__name__ for m in dec.dec][-1] == "ConvTranspose2d"  # no output activation
    # weights ~ N(0, 0.02), biases 0 (the official init loops)
    w = torch.cat([m.weight.flatten() for m in enc.modules() if isinstance(m, conv)])
    assert w.std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.all(enc.c1.bias == 0) and torch.all(enc.c2.bias == 0)
    # posterior scale = softplus(c2(e)) + 1e-6; feature maps 32 -> 16 -> 8 -> 4 -> 1
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        e = enc.enc(x)
        assert e.shape == (2, 128, 4, 4)
        mean, logvar = enc(x)
        torch.testing.assert_close(torch.exp(0.5 * logvar),
                                   F.softplus(enc.c2(e)).flatten(1) + 1e-6)
        torch.testing.assert_close(mean, enc.c1(e).flatten(1))
        assert dec(mean).shape == (2, 1, 32, 32)


def test_dsprites_network_is_the_official_one():
    """vae_dsprites.py Enc / Dec, written out here; Bernoulli logits likelihood."""
    torch.manual_seed(0)
    hp = OFFICIAL_SETTINGS["independence_dsprites"]["hparams"]
    model = baselines.create("ab_vae", **hp)
    enc, dec = model.encoder, model.decoder
    conv, convt = torch.nn.Conv2d, torch.nn.ConvTranspose2d
    assert _conv_specs(enc, conv) == [
        (1, 32, 4, 2, 1, True), (32, 32, 4, 2, 1, True), (32, 64, 4, 2, 1, True),
        (64, 64, 4, 2, 1, True)]
    assert [type(m).__name__ for m in enc.enc] == ["Conv2d", "ReLU"] * 4
    lin = [(m.in_features, m.out_features) for m in enc.modules()
           if isinstance(m, torch.nn.Linear)]
    assert lin == [(1024, 128), (128, 10), (128, 10)]
    assert _conv_specs(dec, convt) == [
        (64, 64, 4, 2, 1, True), (64, 64, 4, 2, 1, True), (64, 32, 4, 2, 1, True),
        (32, 1, 4, 2, 1, True)]
    assert [(m.in_features, m.out_features) for m in dec.lin
            if isinstance(m, torch.nn.Linear)] == [(10, 128), (128, 1024)]
    x = (torch.rand(2, 1, 64, 64) > 0.5).float()
    with torch.no_grad():
        e = enc.lin(enc.enc(x).flatten(1))  # the official Enc applies no activation to lin
        mean, logvar = enc(x)
        torch.testing.assert_close(mean, enc.c1(e))
        torch.testing.assert_close(torch.exp(0.5 * logvar), torch.exp(0.5 * enc.c2(e)) + 1e-6)
        d = dec(mean)
        assert d.shape == (2, 1, 64, 64)
        ref = -F.binary_cross_entropy_with_logits(d, x, reduction="none").flatten(1).sum(1)
        torch.testing.assert_close(model.likelihood.log_prob(x, d), ref)


@pytest.mark.parametrize("setting", sorted(OFFICIAL_SETTINGS))
def test_official_settings_train(setting):
    s = OFFICIAL_SETTINGS[setting]
    for run in s["runs"][:2]:
        torch.manual_seed(0)
        hp = {**s["hparams"], **run}
        if hp["prior"] == "anisotropic":
            hp["prior_variances"] = [float(10 - i) for i in range(hp["latent_dim"])]
        model = baselines.create("ab_vae", **hp)
        shape = tuple(hp["image_shape"])
        x = (torch.rand(6, *shape) > 0.5).float().clamp(1e-6, 1 - 1e-6)
        opt = model.make_optimizers(lr=s["train"]["lr"])
        terms = [model.training_step(x, i, opt) for i in range(2)]
        assert all(math.isfinite(v) for t in terms for v in t.values())
        model.eval()
        with torch.no_grad():
            assert model.encode(x).shape == (6, hp["latent_dim"])
            assert model.sample(2).shape == (2, *shape)


def test_official_networks_check_the_image_size():
    with pytest.raises(DisbenchError, match=r"image_shape must be \(C, 32, 32\)"):
        baselines.create("ab_vae", network="fashion_mnist", image_shape=(1, 28, 28))
    with pytest.raises(DisbenchError, match=r"image_shape must be \(C, 64, 64\)"):
        baselines.create("ab_vae", network="dsprites", image_shape=(1, 28, 28))
    with pytest.raises(DisbenchError, match="network must be one of shared, fashion_mnist"):
        baselines.create("ab_vae", network="mnist")
    with pytest.raises(DisbenchError, match="image_shape must be"):
        baselines.create("ab_vae", image_shape=(1, 32, 32))  # the shared networks: no 32x32
