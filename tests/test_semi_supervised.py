"""Few labels: the supervised losses on hand-made codes and labels, the annealers, the
labellers, and the labelled subset a run draws once from its seed and keeps in its folder."""
import math

import numpy as np
import pytest
import torch
from disbench import baselines
from disbench.baselines.batches import LabelledBatch
from disbench.baselines.semi_supervised import anneal
from disbench.datasets.labellers import apply_labeller, canonical_labeller, parse_labeller
from disbench.errors import DisbenchError
from disbench.run.config import RunConfig
from disbench.run.folder import RunFolder, load_checkpoint, load_run
from disbench.run.trainer import train

# two labelled examples, three latent dimensions, two factors of 3 and 4 values
R = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]])
Y = torch.tensor([[2.0, 1.0], [0.0, 3.0]])
SIZES = (3, 4)


def _sup(kind, **hp):
    torch.manual_seed(0)
    model = baselines.create("s2_vae", image_shape=(1, 28, 28), latent_dim=3,
                             factor_sizes=SIZES, supervised_loss=kind, **hp)
    return model, model.supervision


def _bce(logit, target):
    return -(target * math.log(1 / (1 + math.exp(-logit)))
             + (1 - target) * math.log(1 - 1 / (1 + math.exp(-logit))))


@torch.no_grad()
def test_l2_and_xent_by_hand():
    _, sup = _sup("l2")
    want = sum((R[i, j].item() - Y[i, j].item()) ** 2 for i in range(2) for j in range(2))
    assert float(sup(R, Y)) == pytest.approx(want, rel=1e-6)  # the scale starts at 1
    sup.scale.fill_(2.0)
    want = sum((2 * R[i, j].item() - Y[i, j].item()) ** 2 for i in range(2) for j in range(2))
    assert float(sup(R, Y)) == pytest.approx(want, rel=1e-6)
    _, sup = _sup("l2", l2_learn_scale=False)
    want = sum((1 / (1 + math.exp(-R[i, j].item())) - Y[i, j].item() / SIZES[j]) ** 2
               for i in range(2) for j in range(2))
    assert float(sup(R, Y)) == pytest.approx(want, rel=1e-6)
    _, sup = _sup("xent")
    want = sum(_bce(R[i, j].item(), Y[i, j].item() / SIZES[j]) for i in range(2) for j in range(2))
    assert float(sup(R, Y)) == pytest.approx(want, rel=1e-6)


def test_cov_by_hand():
    _, sup = _sup("cov")
    r, y = R.numpy().astype(float), Y.numpy().astype(float)
    cov = np.zeros((3, 2))
    for a in range(3):
        for b in range(2):
            cov[a, b] = np.mean((r[:, a] - r[:, a].mean()) * (y[:, b] - y[:, b].mean()))
    want = sum(cov[a, b] ** 2 for a in range(3) for b in range(2) if a != b)
    assert float(sup(R, Y)) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("order", [False, True])
@torch.no_grad()
def test_embed_by_hand(order):
    _, sup = _sup("embed", embed_sigma=0.5, embed_use_order=order)
    if order:
        for j, (a, b) in enumerate(((1.0, -1.0), (0.5, 0.0))):
            sup.slope[j].fill_(a)
            sup.bias[j].fill_(b)
        emb = [[v * 1.0 - 1.0 for v in range(3)], [v * 0.5 for v in range(4)]]
    else:
        emb = [e.detach().tolist() for e in sup.embedding]
        assert all(abs(v) <= math.sqrt(3 / s) for e, s in zip(emb, SIZES, strict=True) for v in e)
    want = 0.0
    for j in range(2):
        ce = 0.0
        for i in range(2):
            logits = [-((R[i, j].item() - e) * 0.5) ** 2 for e in emb[j]]
            lse = math.log(sum(math.exp(v) for v in logits))
            ce += lse - logits[int(Y[i, j])]
        want += ce / 2
    assert float(sup(R, Y)) == pytest.approx(want, rel=1e-5)
    _, learned = _sup("embed")
    assert learned.sigma.shape == (1,) and abs(float(learned.sigma)) <= math.sqrt(3)


@pytest.mark.parametrize("step,want", [(0, (4.0, 0.0, 0.0)), (50, (4.0, 2.0, 0.0)),
                                       (100, (4.0, 4.0, 0.0)), (101, (4.0, 4.0, 4.0)),
                                       (500, (4.0, 4.0, 4.0))])
def test_annealers_at_chosen_steps(step, want):
    got = [float(anneal(4.0, step, a, 100)) for a in ("fixed", "anneal", "fine_tune")]
    assert got == pytest.approx(list(want))


@pytest.mark.parametrize("name", ["s2_vae", "s2_beta_tcvae", "s2_dip_vae", "s2_factor_vae"])
def test_s2_loss_is_the_unsupervised_loss_plus_the_weighted_supervision(name):
    unsup = {"s2_vae": "beta_vae", "s2_beta_tcvae": "beta_tcvae", "s2_dip_vae": "dip_vae_i",
             "s2_factor_vae": "factor_vae"}[name]
    hp = {"image_shape": (1, 28, 28), "latent_dim": 3}
    torch.manual_seed(0)
    model = baselines.create(name, factor_sizes=SIZES, gamma_sup=2.5, annealer="anneal",
                             anneal_steps=10, supervised_loss="l2", **hp)
    plain = baselines.create(unsup, **hp)
    plain.load_state_dict({k: v for k, v in model.state_dict().items()
                           if not k.startswith("supervision.")})
    g = torch.Generator().manual_seed(3)
    x, xl = torch.rand(4, 1, 28, 28, generator=g), torch.rand(2, 1, 28, 28, generator=g)
    with torch.no_grad():
        torch.manual_seed(5)
        got = model.loss(LabelledBatch(x, xl, Y), 4)
        torch.manual_seed(5)
        base = plain.loss(x, 4)
        r = model.encoder(xl)[0]
    sup = sum((r[i, j].item() - Y[i, j].item()) ** 2 for i in range(2) for j in range(2))
    assert float(got["supervised"]) == pytest.approx(sup, rel=1e-5)
    assert float(got["gamma_sup"]) == pytest.approx(1.0)  # 2.5 * 4 / 10
    assert float(got["loss"]) == pytest.approx(float(base["loss"]) + 1.0 * sup, rel=1e-5)


def test_s2_factor_vae_keeps_the_reference_optimiser_split():
    model = baselines.create("s2_factor_vae", factor_sizes=SIZES, latent_dim=3,
                             supervised_loss="l2")
    opts = model.make_optimizers()
    in_model = {id(p) for g in opts["model"].param_groups for p in g["params"]}
    assert id(model.supervision.scale) not in in_model  # as disentanglement_lib's var_list
    s2 = baselines.create("s2_vae", factor_sizes=SIZES, latent_dim=3, supervised_loss="l2")
    assert id(s2.supervision.scale) in {id(p) for g in s2.make_optimizers()["model"]
                                        .param_groups for p in g["params"]}


def test_supervised_vae_trains_the_encoder_on_labels_only():
    torch.manual_seed(0)
    model = baselines.create("supervised_vae", image_shape=(1, 28, 28), latent_dim=3,
                             factor_sizes=SIZES)
    x, xl = torch.rand(4, 1, 28, 28), torch.rand(2, 1, 28, 28)
    terms = model.loss(LabelledBatch(x, xl, Y), 0)
    terms["recon"].backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert any(p.grad is not None for p in model.decoder.parameters())


# -- labellers -----------------------------------------------------------------------------------
FACTORS = np.array([[0, 5, 39, 0], [2, 0, 8, 31], [1, 3, 17, 16]])
FSIZES = (3, 6, 40, 32)


def test_labellers_by_hand():
    perfect = apply_labeller("perfect", FACTORS, FSIZES, np.random.RandomState(0))
    assert perfect.labels.dtype == np.float32 and np.array_equal(perfect.labels, FACTORS)
    binned = apply_labeller("binned", FACTORS, FSIZES, np.random.RandomState(0))
    # sizes > 5 are binned into 5 bins of size / 5 values: 6 -> 1.2, 40 -> 8, 32 -> 6.4
    assert binned.labels.tolist() == [[0, 4, 4, 0], [2, 0, 1, 4], [1, 2, 2, 2]]
    assert binned.sizes.tolist() == [3, 5, 5, 5]
    assert apply_labeller("noisy(0)", FACTORS, FSIZES, 0).labels.tolist() == FACTORS.tolist()
    permuted = apply_labeller("permuted", FACTORS, FSIZES, np.random.RandomState(1))
    rs = np.random.RandomState(1)
    perms = [rs.permutation(s) for s in FSIZES]
    assert permuted.labels.tolist() == [[perms[j][v] for j, v in enumerate(row)]
                                        for row in FACTORS]
    partial = apply_labeller("partial", FACTORS, FSIZES, np.random.RandomState(2))
    keep = np.random.RandomState(2).choice(4, size=2, replace=False)
    assert partial.observed.tolist() == keep.tolist()
    assert partial.labels.tolist() == FACTORS[:, keep].tolist()
    assert partial.sizes.tolist() == [FSIZES[i] for i in keep]


def test_noisy_labeller_draws_in_the_reference_order():
    rows = np.zeros((2000, 2), np.int64)
    out = apply_labeller("noisy(0.3)", rows, (10, 10), np.random.RandomState(4))
    assert (out.labels != 0).mean() == pytest.approx(0.3 * 0.9, abs=0.02)
    rs, want = np.random.RandomState(4), rows.copy()
    for j in range(2000):  # row by row, factor by factor: rand, then randint if it fires
        for i in range(2):
            if rs.rand() < 0.3:
                want[j, i] = rs.randint(10)
    assert np.array_equal(out.labels, want)


def test_labeller_names():
    assert canonical_labeller("binned") == "binned(5)"
    assert canonical_labeller("noisy") == "noisy(0.1)" and parse_labeller("partial(3)") == (
        "partial", 3)
    for bad in ("sloppy", "perfect(2)", "binned(x)", "noisy(2)", "partial(0)"):
        with pytest.raises(ValueError):
            parse_labeller(bad)


# -- the labelled subset of a run ----------------------------------------------------------------
def _cfg(**kw):
    base = {"model": "s2_vae", "dataset": "dsprites", "source": "synthetic", "steps": 4,
            "batch_size": 4, "seed": 1, "device": "cpu", "log_every": 1,
            "checkpoint_every": 2, "num_labelled": 6, "hparams": {"latent_dim": 5}}
    return RunConfig(**{**base, **kw})


def test_labelled_subset_is_drawn_once_from_the_seed_and_recorded(tmp_path):
    from disbench import datasets

    run = train(_cfg(), tmp_path / "a", progress=False)
    lab = RunFolder(run).read_labelled()
    ds = datasets.get("dsprites", source="synthetic")
    assert lab["indices"].shape == (6,) and str(lab["labeller"]) == "perfect"
    assert np.array_equal(ds.factors_of(lab["indices"]), lab["factors"])
    assert np.array_equal(lab["labels"], lab["factors"].astype(np.float32))  # perfect
    _, cfg, _ = load_run(run)
    assert cfg.hparams["factor_sizes"] == list(ds.factor_sizes) and cfg.num_labelled == 6
    # the same seed draws the same subset for another model; another seed another one
    other = train(_cfg(model="s2_beta_tcvae"), tmp_path / "a", progress=False)
    assert np.array_equal(RunFolder(other).read_labelled()["indices"], lab["indices"])
    third = train(_cfg(seed=2), tmp_path / "a", progress=False)
    assert not np.array_equal(RunFolder(third).read_labelled()["indices"], lab["indices"])
    # a partial labeller: two factors, and the model's factor_sizes follow them
    part = train(_cfg(labeller="partial"), tmp_path / "a", progress=False)
    pl = RunFolder(part).read_labelled()
    assert pl["labels"].shape == (6, 2)
    assert load_run(part)[1].hparams["factor_sizes"] == [ds.factor_sizes[i]
                                                         for i in pl["observed"]]


def test_labelled_run_resumes_as_uninterrupted(tmp_path):
    cfg = _cfg(labeller="noisy(0.5)", hparams={"latent_dim": 5, "supervised_loss": "embed"})
    full = train(cfg, tmp_path / "a", progress=False)
    part = train(cfg, tmp_path / "b", progress=False, stop_after=3)
    train(cfg, tmp_path / "b", progress=False, resume=True)
    a, b = load_checkpoint(full / "model.pt"), load_checkpoint(part / "model.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["rng"]["labelled_position"] == (4 * 4) % 6
    assert (full / "train_log.csv").read_text() == (part / "train_log.csv").read_text()


def test_label_settings_are_hashed_when_set_and_refused_elsewhere(tmp_path):
    assert _cfg().run_id() != _cfg(num_labelled=7).run_id()
    assert _cfg(labeller="binned").run_id() == _cfg(labeller="binned(5)").run_id()
    vae = RunConfig(model="vae", dataset="dsprites", source="synthetic", steps=1,
                    batch_size=4, device="cpu", labeller="noisy")
    with pytest.raises(DisbenchError, match=r"labeller='noisy\(0.1\)' applies to models trained on"):
        train(vae, tmp_path, progress=False)
