"""Weak supervision: the pair sampler's guarantee, the Ada-GVAE threshold and the averaging
of Group-VAE and ML-VAE on hand-made posteriors, and pair training through the trainer."""
import math

import numpy as np
import pytest
import torch
from disbench import baselines
from disbench.baselines.batches import PairBatch
from disbench.baselines.weak_vae import adaptive_keep, pair_divergence
from disbench.datasets.pairs import sample_pair_factors
from disbench.errors import DisbenchError
from disbench.run.config import RunConfig
from disbench.run.folder import load_checkpoint
from disbench.run.trainer import train

SIZES = (3, 6, 40, 32, 32)


@pytest.mark.parametrize("k", [1, 2, 5, "random", "one_or_random"])
def test_pairs_differ_in_exactly_the_factors_they_say(k):
    first, second, changed = sample_pair_factors(SIZES, 2000, k, np.random.RandomState(0))
    assert first.shape == second.shape == changed.shape == (2000, 5)
    assert np.array_equal(first != second, changed)  # changed factors always move
    assert ((first >= 0) & (first < SIZES) & (second >= 0) & (second < SIZES)).all()
    counts = changed.sum(1)
    if isinstance(k, int):
        assert (counts == k).all()
    elif k == "random":  # uniform on 1 .. K - 1
        assert set(counts) == {1, 2, 3, 4}
        assert np.allclose(np.bincount(counts)[1:] / 2000, 0.25, atol=0.04)
    else:  # 1 with probability 1/2 + 1/8, else 2, 3, 4 with 1/8 each
        share = np.bincount(counts)[1:] / 2000
        assert share[0] == pytest.approx(0.625, abs=0.04)
        assert np.allclose(share[1:], 0.125, atol=0.03)
    # every factor is chosen about equally often, and a new value is uniform on the others
    assert np.allclose(changed.mean(0), changed.mean(), atol=0.05)
    moved = second[changed[:, 0], 0] - first[changed[:, 0], 0]
    assert set(moved % 3) == {1, 2}


def test_pairs_are_reproducible_from_the_rng_alone():
    a = sample_pair_factors(SIZES, 50, "random", np.random.RandomState(3))
    np.random.seed(123)  # the global generator plays no part
    b = sample_pair_factors(SIZES, 50, "random", np.random.RandomState(3))
    np.random.seed(999)
    c = sample_pair_factors(SIZES, 50, "random", 3)  # an int seeds a RandomState
    for x, y, z in zip(a, b, c, strict=True):
        assert np.array_equal(x, y) and np.array_equal(x, z)
    d = sample_pair_factors(SIZES, 50, "random", np.random.default_rng(3))  # a Generator
    assert np.array_equal(d[0] != d[1], d[2])
    assert not np.array_equal(a[2], sample_pair_factors(SIZES, 50, "random", 4)[2])


def test_single_valued_factors_never_change_and_bad_k_is_refused():
    _, _, changed = sample_pair_factors((1, 4, 5), 200, "random", 0)
    assert not changed[:, 0].any() and (changed.sum(1) == 1).all()  # 1 .. K' - 1 = 1
    with pytest.raises(ValueError, match="at most 2"):
        sample_pair_factors((1, 4, 5), 10, 3, 0)
    with pytest.raises(ValueError, match="positive integer or one of random"):
        sample_pair_factors(SIZES, 10, "some", 0)


def test_dataset_sample_pairs_is_the_sampler():
    from disbench import datasets

    ds = datasets.get("dsprites", source="synthetic")
    got = ds.sample_pairs(20, 2, np.random.RandomState(5))
    want = sample_pair_factors(ds.factor_sizes, 20, 2, np.random.RandomState(5))
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)
    imgs = ds.sample_observations_from_factors(np.concatenate(got[:2]))
    assert imgs.shape == (40, 1, 64, 64)


# -- the adaptive threshold and the aggregation on hand-made posteriors -------------------------
M1 = torch.tensor([[0.0, 1.0, -1.0, 2.0]])
LV1 = torch.tensor([[0.0, 0.0, math.log(2.0), 0.0]])
M2 = torch.tensor([[0.0, 1.1, 2.0, -1.0]])
LV2 = torch.tensor([[0.0, 0.0, 0.0, math.log(0.5)]])


def _two_kl(m1, v1, m2, v2):
    """2 KL(N(m1, v1) || N(m2, v2)), by hand."""
    return v1 / v2 + (m2 - m1) ** 2 / v2 - 1 + math.log(v2) - math.log(v1)


def test_divergence_and_threshold_by_hand():
    delta = pair_divergence(M1, LV1, M2, LV2)[0].tolist()
    want = [_two_kl(0, 1, 0, 1), _two_kl(1, 1, 1.1, 1), _two_kl(-1, 2, 2, 1),
            _two_kl(2, 1, -1, 0.5)]
    assert delta == pytest.approx(want, rel=1e-5)
    # delta ~ [0, 0.01, 10.31, 19.31]: the middle of [0, 19.31] is 9.65; dims 2, 3 keep theirs
    assert adaptive_keep(pair_divergence(M1, LV1, M2, LV2)).tolist() == [[False, False, True,
                                                                         True]]
    # equal-width bins: exactly at the middle goes to the upper bin; all equal: all averaged
    assert adaptive_keep(torch.tensor([[0.0, 1.0, 2.0]])).tolist() == [[False, True, True]]
    assert adaptive_keep(torch.tensor([[3.0, 3.0, 3.0]])).tolist() == [[False, False, False]]
    g = torch.Generator().manual_seed(0)
    d = torch.rand(50, 10, generator=g)
    mid = 0.5 * (d.min(1, keepdim=True).values + d.max(1, keepdim=True).values)
    assert torch.equal(adaptive_keep(d), d >= mid)  # the paper's threshold 0.5 (min + max)


def _model(name, aggregation="argmax", **hp):
    torch.manual_seed(0)
    return baselines.create(name, image_shape=(1, 28, 28), latent_dim=4,
                            aggregation=aggregation, **hp)


def _fixed_posterior(model):
    """The encoder replaced by the hand-made posteriors of x1 and x2."""
    # `x` unused here: the signature of posterior(x)
    model.posterior = lambda x: (torch.cat([M1, M2]), torch.cat([LV1, LV2]))  # noqa: ARG005
    return model


@pytest.mark.parametrize("name", ["group_vae", "ml_vae"])
def test_aggregation_on_hand_made_posteriors(name):
    model = _fixed_posterior(_model(name))
    x = torch.zeros(1, 1, 28, 28)
    changed = torch.tensor([[True, False, False, False]])  # four factors
    (a1, b1), (a2, b2), keep = model.aggregated(PairBatch(x, x, changed))
    v1, v2 = LV1.exp(), LV2.exp()
    if name == "group_vae":
        mean, var = (M1 + M2) / 2, (v1 + v2) / 2
    else:
        var = 2 * v1 * v2 / (v1 + v2)
        mean = (M1 / v1 + M2 / v2) * var / 2
    avg = torch.tensor([[True, True, False, False]])  # the dims under the threshold
    torch.testing.assert_close(a1, torch.where(avg, mean, M1))
    torch.testing.assert_close(a2, torch.where(avg, mean, M2))
    torch.testing.assert_close(b1, torch.where(avg, var.log(), LV1))
    torch.testing.assert_close(b2, torch.where(avg, var.log(), LV2))
    # known factors: factor 0 changed, so dim 0 keeps its own posterior, the rest averaged
    model = _fixed_posterior(_model(name, "labels"))
    (a1, b1), (a2, _), keep = model.aggregated(PairBatch(x, x, changed))
    assert keep.tolist() == [[True, False, False, False]]
    torch.testing.assert_close(a1[:, 1:], mean[:, 1:])
    assert a1[0, 0] == M1[0, 0] and a2[0, 0] == M2[0, 0]


def test_weak_loss_against_an_independent_computation():
    model = _model("group_vae", beta=3.0)
    g = torch.Generator().manual_seed(1)
    x1, x2 = (torch.rand(5, 1, 28, 28, generator=g) > 0.5).float(), \
        (torch.rand(5, 1, 28, 28, generator=g) > 0.5).float()
    changed = torch.zeros(5, 5, dtype=torch.bool)
    with torch.no_grad():
        torch.manual_seed(7)
        got = model.loss(PairBatch(x1, x2, changed), 0)
        m, lv = model.encoder(torch.cat([x1, x2]))
        m1, m2, lv1, lv2 = m[:5], m[5:], lv[:5], lv[5:]
        v1, v2 = lv1.exp(), lv2.exp()
        delta = v1 / v2 + (m2 - m1) ** 2 / v2 - 1 + lv2 - lv1
        lo, hi = delta.min(1, keepdim=True).values, delta.max(1, keepdim=True).values
        keep = delta >= (lo + hi) / 2
        am, alv = (m1 + m2) / 2, torch.log((v1 + v2) / 2)
        post = [(torch.where(keep, m1, am), torch.where(keep, lv1, alv)),
                (torch.where(keep, m2, am), torch.where(keep, lv2, alv))]
        torch.manual_seed(7)
        recon, kl = 0.0, 0.0
        zs = [p[0] + torch.exp(0.5 * p[1]) * torch.randn_like(p[0]) for p in post]
        for x, z, (pm, plv) in zip((x1, x2), zs, post, strict=True):
            logits = model.decoder(z)
            recon += 0.5 * torch.nn.functional.binary_cross_entropy_with_logits(
                logits, x, reduction="none").flatten(1).sum(1).mean()
            kl += 0.5 * (0.5 * (pm ** 2 + plv.exp() - plv - 1).sum(1)).mean()
    assert float(got["recon"]) == pytest.approx(float(recon), rel=1e-5)
    assert float(got["kl"]) == pytest.approx(float(kl), rel=1e-5)
    assert float(got["loss"]) == pytest.approx(float(recon + 3.0 * kl), rel=1e-5)


def test_labels_rule_needs_a_latent_per_factor():
    model = _model("group_vae", "labels")
    x = torch.zeros(2, 1, 28, 28)
    with pytest.raises(DisbenchError, match="latent_dim >= the 5 factors"):
        model.loss(PairBatch(x, x, torch.ones(2, 5, dtype=torch.bool)), 0)


def test_pair_runs_train_resume_and_refuse_pair_settings_elsewhere(tmp_path):
    cfg = RunConfig(model="ml_vae", dataset="dsprites", source="synthetic", steps=4,
                    batch_size=4, seed=2, device="cpu", log_every=1, checkpoint_every=2,
                    pair_k="random", hparams={"latent_dim": 5})
    full = train(cfg, tmp_path / "a", progress=False)
    part = train(cfg, tmp_path / "b", progress=False, stop_after=2)
    train(cfg, tmp_path / "b", progress=False, resume=True)
    a, b = load_checkpoint(full / "model.pt"), load_checkpoint(part / "model.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert "pairs" in a["rng"]
    assert (full / "train_log.csv").read_text() == (part / "train_log.csv").read_text()
    assert cfg.run_id() != RunConfig(**{**cfg.__dict__, "pair_k": 1}).run_id()
    vae = RunConfig(model="vae", dataset="dsprites", source="synthetic", steps=1,
                    batch_size=4, device="cpu", pair_k=2)
    with pytest.raises(DisbenchError, match="pair_k=2 applies to models trained on pairs"):
        train(vae, tmp_path / "c", progress=False)
