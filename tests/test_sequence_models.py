"""Sequence models: a few training steps with finite losses, shapes, swapping, bad input."""
import math

import disbench.baselines.dsvae
import disbench.baselines.rwae  # noqa: F401  (registers rwae_mmd, rwae_gan)
import pytest
import torch
from disbench.baselines import create
from disbench.baselines.rwae import minibatch_mutual_information
from disbench.errors import DisbenchError

SMALL = {"static_dim": 8, "dynamic_dim": 4, "hidden_dim": 16, "frames": 4}
CASES = [
    ("dsvae", {}),
    ("rwae_mmd", {}),
    ("rwae_gan", {}),
    ("rwae_mmd", {"num_actions": 3}),
    ("rwae_mmd", {"dynamic_penalty": "previous"}),
    ("rwae_gan", {"dynamic_penalty": "previous"}),
]


def _batch(n=4, t=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, t, 3, 64, 64, generator=g)


@pytest.mark.parametrize("name,extra", CASES)
def test_trains_a_few_steps(name, extra):
    torch.manual_seed(0)
    model = create(name, image_shape=(3, 64, 64), **SMALL, **extra)
    assert model.latent_dim == 8 + 4 * 4
    opts = model.make_optimizers(lr=1e-3)
    x = _batch()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    logs = [model.training_step(x, step, opts) for step in range(3)]
    for log in logs:
        assert "loss" in log and all(math.isfinite(v) for v in log.values()), log
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("frames.") for k in changed)
    assert any(k.startswith("prior.") for k in changed)  # the learned prior is trained
    if name == "rwae_gan":
        assert "disc_loss" in logs[0]
        assert any(k.startswith("disc_") for k in changed)


@pytest.mark.parametrize("name,extra", CASES)
def test_shapes_swap_and_sample(name, extra):
    torch.manual_seed(0)
    model = create(name, **SMALL, **extra).eval()
    a, b = _batch(3, seed=1), _batch(3, seed=2)
    with torch.no_grad():
        assert model.encode_static(a).shape == (3, 8)
        assert model.encode_dynamic(a).shape == (3, 4, 4)
        z = model.encode(a)
        assert z.shape == (3, model.latent_dim)
        torch.testing.assert_close(z[:, :8], model.encode_static(a))
        torch.testing.assert_close(z[:, 8:].reshape(3, 4, 4), model.encode_dynamic(a))
        rec = model.decode(z)
        assert rec.shape == a.shape and rec.min() >= 0 and rec.max() <= 1
        sw = model.swap(a, b)
        assert sw.shape == a.shape
        torch.testing.assert_close(sw, model.decode_parts(model.encode_static(a),
                                                          model.encode_dynamic(b)))
        g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        s1, s2 = model.sample(2, generator=g1), model.sample(2, generator=g2)
        assert s1.shape == (2, 4, 3, 64, 64)
        torch.testing.assert_close(s1, s2)
        assert model.sample_dynamic(2).shape == (2, 4, 4)


def test_dsvae_elbo_and_bad_input():
    model = create("dsvae", **SMALL)
    x = _batch(2)
    assert model.elbo(x).shape == (2,)
    with pytest.raises(ValueError, match="shape"):
        model.loss(torch.rand(2, 3, 3, 64, 64), 0)  # wrong T
    with pytest.raises(DisbenchError, match="latent_dim"):
        create("dsvae", latent_dim=10)
    with pytest.raises(DisbenchError, match="unknown"):
        create("dsvae", beta_1=1.0)
    with pytest.raises(DisbenchError, match="num_actions"):
        create("rwae_mmd", num_actions=1)


def test_minibatch_mutual_information_closed_form():
    # Identical posteriors for every x: I(x; z) estimate is exactly 0.
    m = torch.zeros(5, 3)
    lv = torch.zeros(5, 3)
    z = torch.randn(5, 3)
    assert abs(float(minibatch_mutual_information(z, m, lv))) < 1e-6
    # Well separated, nearly deterministic posteriors: the estimate reaches log M.
    means = torch.arange(5.0).unsqueeze(1).repeat(1, 3) * 100
    lv = torch.full((5, 3), -10.0)
    est = float(minibatch_mutual_information(means, means, lv))
    assert abs(est - math.log(5)) < 1e-4


@pytest.mark.parametrize("name", ["dsvae", "rwae_mmd", "rwae_gan"])
def test_loss_falls_on_a_fixed_batch(name):
    torch.manual_seed(1)
    model = create(name, **SMALL)
    opts = model.make_optimizers(lr=1e-3)
    x = _batch(4, seed=3)

    def recon():
        with torch.no_grad():
            torch.manual_seed(2)
            return float(model.loss(x, 0)["recon"])

    before = recon()
    for step in range(15):
        model.training_step(x, step, opts)
    assert recon() < before


def test_sequence_models_are_flagged():
    from disbench.baselines import MODELS

    for name in ("dsvae", "rwae_mmd", "rwae_gan"):
        assert MODELS[name].is_sequence


def _manual_prior_states(prior, zm):
    """The prior LSTM cell stepped by hand over z_0 = 0, z_1, ..., z_{T-1}."""
    n, t, d = zm.shape
    state, prev, out = None, torch.zeros(n, d), []
    for k in range(t):
        state = prior.cell(prev, state)
        out.append(state[0])
        prev = zm[:, k]
    return torch.stack(out, 1)


@pytest.mark.parametrize("name", ["rwae_mmd", "rwae_gan"])
def test_dynamic_penalty_pairs_z_t_with_the_prior_state_after_the_whole_history(name):
    """issue 13: the conditional term conditions on a summary of z_<t (the prior LSTM's
    state after reading it), the same for posterior and prior pairs."""
    torch.manual_seed(0)
    model = create(name, **SMALL)
    assert model.hparams.dynamic_penalty == "history"
    torch.manual_seed(1)
    lat = model.latents(_batch())
    zm = lat["zm"]
    h = 16  # hidden_dim
    with torch.no_grad():
        expected = _manual_prior_states(model.prior, zm)
    torch.testing.assert_close(lat["pair_q"][..., :h], expected)
    torch.testing.assert_close(lat["pair_p"][..., :h], expected)
    torch.testing.assert_close(lat["pair_q"][..., h:], zm)
    # the prior's side is its conditional draw given that same state
    p_mean, p_logvar = model.prior.conditionals(zm)
    assert not torch.allclose(lat["pair_p"][..., h:], zm)
    z_scores = (lat["pair_p"][..., h:] - p_mean) * torch.exp(-0.5 * p_logvar)
    assert z_scores.abs().max() < 6
    # the summary at t = 3 depends on z_1 (not only on z_2); the "previous" form does not
    with torch.no_grad():
        moved = zm.clone()
        moved[:, 0] += 1.0
        assert not torch.allclose(_manual_prior_states(model.prior, moved)[:, 2], expected[:, 2])
    torch.manual_seed(0)
    first_order = create(name, **SMALL, dynamic_penalty="previous")
    torch.manual_seed(1)
    lat1 = first_order.latents(_batch())
    torch.testing.assert_close(lat1["pair_q"][:, 1:, :4], lat1["zm"][:, :-1])
    torch.testing.assert_close(lat1["pair_p"][:, 1:, :4], lat1["zm"][:, :-1])


def test_history_summary_is_a_fixed_statistic_in_the_penalty():
    torch.manual_seed(0)
    model = create("rwae_mmd", **SMALL)
    torch.manual_seed(1)
    lat = model.latents(_batch())
    states = model.prior.states_and_conditionals(lat["zm"])[0]
    assert states.requires_grad and not model.history_summary(lat["zm"], states).requires_grad
    d = model.divergences(lat)["d_dynamic"]
    d.backward()
    assert model.prior.mean.weight.grad is not None  # the prior learns through z~_t
    assert model.m_mean.weight.grad is not None  # the encoder through z_m_t
    with pytest.raises(DisbenchError, match="dynamic_penalty must be one of history, previous"):
        create("rwae_mmd", dynamic_penalty="full")
