"""gwae (Nakagawa et al. 2023): GW term, gradient penalty, priors, critic and training."""
import math

import numpy as np
import pytest
import torch
from disbench import baselines
from disbench.baselines.gwae import (
    GWAE_PRIORS,
    gradient_penalty,
    gw_term,
    make_sampler,
    prior_scale,
)
from disbench.errors import DisbenchError


def _orthonormal(p, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(p, d, generator=g, dtype=torch.float64))
    return q  # (p, d) with orthonormal columns


def test_gw_term_zero_for_isometric_decoder_at_the_right_scale():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(16, 5, generator=g, dtype=torch.float64) * 1.7
    q = _orthonormal(28 * 28, 5)
    kappa = torch.tensor(2.5, dtype=torch.float64)
    s = z.std(dim=0).mean()
    x = ((kappa / s) * z @ q.T).reshape(16, 1, 28, 28)
    assert gw_term(z, x, kappa).item() == pytest.approx(0.0, abs=1e-12)
    # At any other scale the term is the mean |c - kappa/s| * ||z_a - z_b|| over pairs.
    x2 = (2.0 * (kappa / s) * z @ q.T).reshape(16, 1, 28, 28)
    dz = torch.cdist(z, z)
    expected = ((kappa / s) * dz).mean().item()
    assert gw_term(z, x2, kappa).item() == pytest.approx(expected, rel=1e-10)


def test_gw_term_matches_naive_pairwise_mean():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(7, 3, generator=g, dtype=torch.float64)
    x = torch.randn(7, 2, 4, 4, generator=g, dtype=torch.float64)
    kappa = 1.3
    s = np.mean(np.std(z.numpy(), axis=0, ddof=1))
    zn, xn = z.numpy(), x.reshape(7, -1).numpy()
    ref = np.mean([
        abs(np.linalg.norm(xn[a] - xn[b]) - kappa * np.linalg.norm(zn[a] - zn[b]) / s)
        for a in range(7) for b in range(7)
    ])
    assert gw_term(z, x, kappa).item() == pytest.approx(ref, rel=1e-10)
    assert prior_scale(z).item() == pytest.approx(s, rel=1e-12)


def test_gradient_penalty_on_a_linear_critic():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(1, 6, 6, generator=g, dtype=torch.float64) * 0.2
    bvec = torch.randn(3, generator=g, dtype=torch.float64) * 0.3

    def critic(x, z):
        return (x * a).flatten(1).sum(1) + z @ bvec

    x_r, x_f = torch.rand(5, 1, 6, 6, dtype=torch.float64), torch.rand(5, 1, 6, 6, dtype=torch.float64)
    z_r, z_f = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    norm = math.sqrt(float(a.pow(2).sum() + bvec.pow(2).sum()))
    gp = gradient_penalty(critic, x_r, z_r, x_f, z_f)
    assert gp.item() == pytest.approx((norm - 1.0) ** 2, rel=1e-12)
    # A critic with unit gradient norm has zero penalty.
    unit = torch.cat([a.flatten(), bvec]) / norm
    ua, ub = unit[:36].view(1, 6, 6), unit[36:]
    gp0 = gradient_penalty(lambda x, z: (x * ua).flatten(1).sum(1) + z @ ub, x_r, z_r, x_f, z_f)
    assert gp0.item() == pytest.approx(0.0, abs=1e-12)


def test_gradient_penalty_uses_interpolates():
    # f = 0.5 * ||z||^2: grad = z^, so with t = 1 the penalty is on the real codes.
    z_r, z_f = torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 1.0]])
    x = torch.zeros(1, 1, 2, 2)

    def critic(x, z):  # noqa: ARG001 (a critic takes (x, z))
        return 0.5 * z.pow(2).sum(1)

    assert gradient_penalty(critic, x, z_r, x, z_f, t=torch.ones(1)).item() == pytest.approx(16.0)
    assert gradient_penalty(critic, x, z_r, x, z_f, t=torch.zeros(1)).item() == pytest.approx(0.0)


def test_fnp_dimensions_are_independent():
    torch.manual_seed(0)
    s = make_sampler("fnp", 4).eval()
    eps = torch.randn(6, 4)
    out = s.norm(s.net(eps.unsqueeze(-1)).squeeze(-1))
    eps2 = eps.clone()
    eps2[:, 1] += 1.0
    out2 = s.norm(s.net(eps2.unsqueeze(-1)).squeeze(-1))
    changed = (out2 - out).abs().amax(0)
    assert changed[1] > 0 and torch.all(changed[[0, 2, 3]] == 0)


def test_gmp_straight_through_option_is_a_hard_draw_with_gradient_to_logits():
    torch.manual_seed(0)
    s = make_sampler("gmp", 3, components=4, straight_through=True)
    w = s.membership(50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(w.detach().sum(1), torch.ones(50))
    assert set(w.detach().unique().tolist()) <= {0.0, 1.0}
    z = s(50, generator=torch.Generator().manual_seed(0))
    z.pow(2).sum().backward()
    assert s.logits.grad is not None and s.logits.grad.abs().sum() > 0
    official = make_sampler("gmp", 3, components=4, straight_through=False)
    official(50).pow(2).sum().backward()
    assert official.logits.grad is None


def test_gmp_default_is_the_official_hard_draw_without_logit_gradient():
    torch.manual_seed(0)
    s = make_sampler("gmp", 3, components=4)
    z = s(64)
    z.pow(2).sum().backward()
    assert s.logits.grad is None  # argmax of Gumbel-perturbed logits: no gradient
    assert s.means.grad is not None and s.scales.grad is not None
    hp = baselines.create("gwae", prior="gmp").hparams
    assert hp.gmp_straight_through is False and hp.gmp_covariance == "diagonal"


def _one_component_sampler(covariance, d=3, seed=0):
    """A gmp sampler whose component 0 has probability ~1 and a far-from-identity A_0."""
    torch.manual_seed(seed)
    s = make_sampler("gmp", d, components=3, covariance=covariance).double()
    with torch.no_grad():
        s.logits.copy_(torch.tensor([60.0, -60.0, -60.0]))
        g = torch.Generator().manual_seed(seed + 1)
        s.scales.copy_(torch.randn(3, d, d, generator=g, dtype=torch.float64))
        s.means.copy_(torch.randn(3, d, generator=g, dtype=torch.float64))
    return s


def test_gmp_official_component_covariance_is_diagonal_from_column_sums():
    """ganmodokix/gwae models/gwae.py: z = mean[c] + (eps[:, None, :] * A[c]).sum(dim=1),
    so Cov(z | c) = diag((sum_i A[c, i, j])^2) for eps ~ N(0, I)."""
    s = _one_component_sampler("diagonal")
    with torch.no_grad():
        z = s.draw(200_000, generator=torch.Generator().manual_seed(5)).numpy()
        a, m = s.scales[0].numpy(), s.means[0].numpy()
    expected = np.diag(a.sum(axis=0) ** 2)
    cov = np.cov(z, rowvar=False)
    np.testing.assert_allclose(cov, expected, atol=0.03 * expected.max())
    np.testing.assert_allclose(z.mean(0), m, atol=0.02 * math.sqrt(expected.max()))
    # the full form would have the (far from diagonal) covariance A^T A
    assert np.abs(a.T @ a - expected).max() > 0.5


def test_gmp_full_covariance_option():
    s = _one_component_sampler("full")
    with torch.no_grad():
        z = s.draw(200_000, generator=torch.Generator().manual_seed(5)).numpy()
        a = s.scales[0].numpy()
    expected = a.T @ a  # z = m + eps^T A
    np.testing.assert_allclose(np.cov(z, rowvar=False), expected,
                               atol=0.03 * np.abs(expected).max())


def test_gmp_component_frequencies_follow_the_mixing_weights():
    """Gumbel-max: argmax(log w + Gumbel) is a draw from Categorical(w)."""
    torch.manual_seed(0)
    s = make_sampler("gmp", 2, components=3)
    with torch.no_grad():
        s.logits.copy_(torch.tensor([0.0, 1.0, -1.0]))
        w = s.membership(100_000, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(w.mean(0).numpy(), torch.softmax(s.logits, 0).detach().numpy(),
                               atol=0.01)


def test_critic_energy_is_the_official_ood_energy():
    torch.manual_seed(0)
    model = baselines.create("gwae", image_shape=(3, 64, 64), latent_dim=4).eval()
    z = torch.randn(5, 4)
    with torch.no_grad():
        expected = model.critic(model.decode(z), z)  # clu.py: disc_block(decode(z), z)
    torch.testing.assert_close(model.critic_energy(z), expected)


def _make(prior):
    torch.manual_seed(0)
    return baselines.create(
        "gwae", image_shape=(1, 28, 28), latent_dim=4, prior=prior, critic_steps=2,
    )


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(8, 1, 28, 28, generator=g)


@pytest.mark.parametrize("prior", GWAE_PRIORS)
def test_every_prior_trains_with_finite_losses(prior, batch):
    model = _make(prior)
    opt = model.make_optimizers(lr=1e-3)
    assert set(opt) == {"model", "critic"}
    critic_before = [p.detach().clone() for p in model.critic_net.parameters()]
    logs = [model.training_step(batch, s, opt) for s in range(6)]
    keys = {"loss", "gw", "recon", "entropy", "sufficiency", "kappa", "critic_loss", "gp"}
    assert keys <= set(logs[0])
    assert all(math.isfinite(v) for log in logs for v in log.values())
    # The reconstruction falls on a fixed batch.
    assert logs[-1]["recon"] < logs[0]["recon"]
    # The critic was updated by its own optimiser, and kappa by the main one.
    assert any(not torch.equal(a, b)
               for a, b in zip(critic_before, model.critic_net.parameters(), strict=True))
    assert logs[-1]["kappa"] != pytest.approx(2.5, abs=1e-9)
    model.eval()  # spectral norm's power iteration only runs in training mode
    with torch.no_grad():
        z = model.encode(batch)
        assert z.shape == (8, 4)
        assert model.critic(batch, z).shape == (8,)
        torch.testing.assert_close(model.ood_score(batch), -model.critic(batch, z))
        s = model.sample(3, generator=torch.Generator().manual_seed(0))
        assert s.shape == (3, 1, 28, 28)


def test_critic_reachable_at_64x64_rgb():
    torch.manual_seed(0)
    model = baselines.create("gwae", image_shape=(3, 64, 64), latent_dim=6, prior="gaussian")
    x = torch.rand(2, 3, 64, 64)
    assert model.critic(x, model.encode(x)).shape == (2,)
    state = model.state_dict()
    assert "log_kappa" in state
    assert math.exp(float(state["log_kappa"])) == pytest.approx(2.5)


def test_main_optimizer_excludes_the_critic():
    model = _make("np")
    opts = model.make_optimizers()
    main = {id(p) for g in opts["model"].param_groups for p in g["params"]}
    critic = {id(p) for p in model.critic_net.parameters()}
    assert not main & critic
    assert main | critic == {id(p) for p in model.parameters()}
    assert isinstance(opts["model"], torch.optim.RMSprop)
    assert opts["model"].param_groups[0]["lr"] == pytest.approx(1e-4)


def test_bad_hparams():
    with pytest.raises(DisbenchError, match="gwae prior"):
        baselines.create("gwae", prior="vamp")
    with pytest.raises(DisbenchError, match="valid keys"):
        baselines.create("gwae", beta=2.0)
    with pytest.raises(DisbenchError, match="gmp_covariance must be one of diagonal, full"):
        baselines.create("gwae", prior="gmp", gmp_covariance="dense")
