"""AnnealedVAE: the capacity at chosen steps, and step-dependent training in ensembles and
in the fixed-buffer (CUDA-graph) step, whose loss reads a device step counter."""
import copy
import csv

import pytest
import torch
from disbench import baselines
from disbench.run.config import RunConfig
from disbench.run.ensemble import Ensemble
from disbench.run.folder import load_checkpoint
from disbench.run.graph_step import GraphedStep
from disbench.run.trainer import train, train_ensemble

K, B, N = 3, 4, 20


def _independent_loss(model, x, step, eps):
    """gamma * |mean KL - C| + mean Bernoulli NLL, written out from the paper's eq. (8)."""
    hp = model.hparams
    mean, logvar = model.encoder(x)
    z = mean + torch.exp(0.5 * logvar) * eps
    logits = model.decoder(z)
    nll = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, x, reduction="none").flatten(1).sum(1).mean()
    kl = (0.5 * (mean ** 2 + logvar.exp() - logvar - 1).sum(1)).mean()
    c = min(hp.c_max, hp.c_max * step / hp.iteration_threshold)
    return nll + hp.gamma * abs(kl - c), c


@pytest.mark.parametrize("step", [0, 1, 250, 999, 1000, 5000])
def test_capacity_and_loss_at_chosen_steps(step):
    torch.manual_seed(0)
    model = baselines.create("annealed_vae", image_shape=(1, 28, 28), latent_dim=4,
                             c_max=10.0, gamma=100.0, iteration_threshold=1000)
    x = (torch.rand(6, 1, 28, 28) > 0.5).float()
    with torch.no_grad():
        torch.manual_seed(1)
        got = model.loss(x, step)
        mean, _ = model.encoder(x)
        torch.manual_seed(1)
        want, c = _independent_loss(model, x, step, torch.randn_like(mean))
    assert float(got["capacity"]) == pytest.approx(c, abs=1e-6)
    assert float(got["capacity"]) == pytest.approx({0: 0.0, 1: 0.01, 250: 2.5, 999: 9.99,
                                                    1000: 10.0, 5000: 10.0}[step], rel=1e-6)
    assert float(got["loss"]) == pytest.approx(float(want), rel=1e-5)
    # a tensor step (as an ensemble's graph passes it) gives the same value
    with torch.no_grad():
        torch.manual_seed(1)
        again = model.loss(x, torch.tensor(float(step)))
    assert torch.equal(again["loss"], got["loss"])


def test_paper_defaults_of_the_study():
    hp = baselines.create("annealed_vae").hparams
    assert (hp.gamma, hp.c_max, hp.iteration_threshold) == (1000.0, 25.0, 100000)
    assert baselines.MODELS["annealed_vae"].loss_depends_on_step


def _log(path):
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def test_ensemble_of_annealed_vaes_equals_single_runs(tmp_path):
    """Members with different c_max (a short threshold, so C moves every step) train as
    the same runs alone: same logged capacity and losses, weights within Adam's step."""
    steps = 4
    cfgs = [RunConfig(model="annealed_vae", dataset="dsprites", source="synthetic",
                      steps=steps, batch_size=8, seed=s, device="cpu", log_every=1,
                      hparams={"c_max": c, "iteration_threshold": 3, "gamma": 10.0})
            for s, c in enumerate((5.0, 25.0, 100.0))]
    train_ensemble(cfgs, tmp_path / "ens", progress=False)
    for c in cfgs:
        train(c, tmp_path / "one", progress=False)
    for c in cfgs:
        la, lb = (_log(c.run_dir(tmp_path / r) / "train_log.csv") for r in ("ens", "one"))
        assert [r["capacity"] for r in lb] == pytest.approx(
            [min(c.hparams["c_max"], c.hparams["c_max"] * s / 3) for s in range(steps)])
        for ra, rb in zip(la, lb, strict=True):
            for k in rb:
                assert ra[k] == pytest.approx(rb[k], rel=1e-5, abs=1e-6), (c.seed, k)
        a = load_checkpoint(c.run_dir(tmp_path / "ens") / "model.pt")["model"]
        b = load_checkpoint(c.run_dir(tmp_path / "one") / "model.pt")["model"]
        diffs = torch.cat([(a[k] - b[k]).abs().flatten() for k in b])
        assert diffs.max() <= 2 * 1e-4 * steps
    conf = (cfgs[0].run_dir(tmp_path / "ens") / "config.json").read_text()
    assert '"ensemble"' in conf  # it really trained as an ensemble


def _models(model, **hp):
    out = []
    for s in range(K):
        torch.manual_seed(s)
        out.append(baselines.create(model, image_shape=(1, 28, 28), latent_dim=4,
                                    **{k: (v(s) if callable(v) else v) for k, v in hp.items()}))
    return out


def _data():
    g = torch.Generator().manual_seed(7)
    return torch.randint(0, 256, (N, 1, 28, 28), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("model,hp,vary", [
    ("annealed_vae", {"c_max": lambda s: 5.0 * (s + 1), "iteration_threshold": 2}, ["c_max"]),
    ("beta_vae", {"beta": "cyclic_cosine(0, 4, 3, ratio=0.5)"}, []),
])
def test_graphed_step_with_step_counter_equals_ensemble_steps(model, hp, vary):
    """The eager fixed-buffer step feeds the loss a float32 step counter (what a captured
    graph reads); it equals Ensemble.step with Python int steps, bit for bit."""
    models = _models(model, **hp)
    data = _data()
    gens = lambda: [torch.Generator().manual_seed(100 + i) for i in range(K)]
    a = Ensemble(copy.deepcopy(models), 1e-3, gens(), vary)
    step = GraphedStep(a, data, B, [torch.Generator().manual_seed(s) for s in range(K)],
                       gens(), graph=False)
    assert step.step_counter is not None and a.step_dependent
    b = Ensemble(copy.deepcopy(models), 1e-3, gens(), vary)
    batch_gens = [torch.Generator().manual_seed(s) for s in range(K)]
    for i in range(4):
        got = {k: v.clone() for k, v in step().items()}
        assert float(step.step_counter) == i
        idx = torch.stack([torch.randint(N, (B,), generator=g).sort().values
                           for g in batch_gens])
        want = b.step(data[idx].float().div(255.0), i)
        for k in want:
            assert torch.equal(got[k], want[k]), (i, k)
    for name in a.params:
        assert torch.equal(a.params[name], b.params[name]), name


def test_scheduled_single_run_equals_ensemble_member(tmp_path):
    """A scheduled beta trains the same alone and in an ensemble (the schedule is applied
    in both paths to a float32 step)."""
    cfgs = [RunConfig(model="beta_vae", dataset="dsprites", source="synthetic", steps=3,
                      batch_size=8, seed=s, device="cpu", log_every=1,
                      hparams={"beta": "linear(0, 4, 2)", "latent_dim": 4}) for s in (0, 1)]
    train_ensemble(cfgs, tmp_path / "ens", progress=False)
    for c in cfgs:
        train(c, tmp_path / "one", progress=False)
    for c in cfgs:
        la, lb = (_log(c.run_dir(tmp_path / r) / "train_log.csv") for r in ("ens", "one"))
        for ra, rb in zip(la, lb, strict=True):
            assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-5)
        # beta = 0, 2, 4 at steps 0, 1, 2: the loss is recon + beta * kl
        for s, r in enumerate(lb):
            assert r["loss"] == pytest.approx(r["recon"] + min(2.0 * s, 4.0) * r["kl"], rel=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_captured_graph_reads_the_step_counter_on_cuda():
    dev = torch.device("cuda")
    models = [m.to(dev) for m in _models("annealed_vae", c_max=lambda s: 5.0 * (s + 1),
                                         iteration_threshold=4)]
    data = _data().to(dev)
    runs = []
    for graph in (False, True):
        ens = Ensemble(copy.deepcopy(models), 1e-3,
                       [torch.Generator(device=dev).manual_seed(100 + i) for i in range(K)],
                       ["c_max"])
        step = GraphedStep(ens, data, B, torch.Generator(device=dev).manual_seed(1),
                           torch.Generator(device=dev).manual_seed(2), graph=graph, warmup=2)
        out = [{k: v.clone() for k, v in step().items()} for _ in range(7)]
        runs.append(out)
    for eager, graphed in zip(*runs, strict=True):
        torch.testing.assert_close(graphed["capacity"], eager["capacity"])
        torch.testing.assert_close(graphed["loss"], eager["loss"], rtol=1e-4, atol=1e-3)
    # the replayed graph saw the capacity grow with the counter (not frozen at capture)
    caps = [float(r["capacity"][0]) for r in runs[1]]
    assert caps == pytest.approx([min(5.0, 5.0 * s / 4) for s in range(7)])
