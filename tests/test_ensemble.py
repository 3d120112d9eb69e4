"""Batched ensembles: each member trains as the same model alone with the same seed."""
import csv

import pytest
import torch
from disbench.baselines import MODELS
from disbench.run.config import RunConfig
from disbench.run.ensemble import compatible, group_runs
from disbench.run.folder import load_checkpoint, load_run
from disbench.run.loop import TrainingDiverged
from disbench.run.trainer import train, train_ensemble

STEPS = 4


def _cfgs(model="beta_vae", betas=(1.0, 4.0, 8.0)):
    return [RunConfig(model=model, dataset="dsprites", source="synthetic", steps=STEPS,
                      batch_size=8, seed=s, hparams={"beta": b}, device="cpu", log_every=2)
            for s, b in enumerate(betas)]


def _log(path):
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ens")
    cfgs = _cfgs()
    train_ensemble(cfgs, out / "ensemble", progress=False)
    for c in cfgs:
        train(c, out / "single", progress=False)
    return out, cfgs


def test_members_equal_single_runs(trained):
    out, cfgs = trained
    lr = 1e-4
    for c in cfgs:
        a = load_checkpoint(c.run_dir(out / "ensemble") / "model.pt")
        b = load_checkpoint(c.run_dir(out / "single") / "model.pt")
        assert a["step"] == b["step"] == STEPS
        # The logged losses agree to float tolerance (batched kernels sum in another order).
        la, lb = _log(c.run_dir(out / "ensemble") / "train_log.csv"), \
            _log(c.run_dir(out / "single") / "train_log.csv")
        assert len(la) == len(lb) == STEPS // 2
        for ra, rb in zip(la, lb, strict=True):
            for k in rb:
                assert ra[k] == pytest.approx(rb[k], rel=1e-5, abs=1e-6), (c.seed, k)
        diffs = torch.cat([(a["model"][k] - b["model"][k]).abs().flatten() for k in b["model"]])
        # Adam normalises each step to about lr, so an element whose gradient is ~0 can
        # move by up to lr per step in either run; everything else agrees to float error.
        assert diffs.max() <= 2 * lr * STEPS
        # Measured: about 0.1% of elements sit at such near-zero gradients here.
        assert (diffs > 1e-5).float().mean() < 1e-2
        # What the models compute agrees: codes of one batch.
        ma, _, _ = load_run(c.run_dir(out / "ensemble"))
        mb, _, _ = load_run(c.run_dir(out / "single"))
        x = torch.rand(16, 1, 64, 64, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            torch.testing.assert_close(ma.encode(x), mb.encode(x), rtol=1e-3, atol=1e-4)


def test_members_differ_from_each_other(trained):
    out, cfgs = trained
    a = load_checkpoint(cfgs[0].run_dir(out / "ensemble") / "model.pt")["model"]
    b = load_checkpoint(cfgs[1].run_dir(out / "ensemble") / "model.pt")["model"]
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_member_folder_is_a_normal_run(trained):
    out, cfgs = trained
    model, cfg, _ = load_run(cfgs[1].run_dir(out / "ensemble"))
    assert cfg.hparams.get("beta", model.hparams.beta) == 4.0
    assert model.hparams.beta == 4.0


def test_resume_single_from_member_checkpoint(trained, tmp_path):
    # A member's checkpoint holds its optimiser and noise state: resuming it alone for
    # more steps gives what the single run gives when it goes on for the same steps.
    out, cfgs = trained
    import shutil

    c = cfgs[2]
    longer = RunConfig(**{**c.__dict__, "steps": STEPS + 2})
    for root in ("ensemble", "single"):
        src = c.run_dir(out / root)
        dst = longer.run_dir(tmp_path / root)
        shutil.copytree(src, dst)
        ck = load_checkpoint(dst / "model.pt")
        assert ck["step"] == STEPS
        train(longer, tmp_path / root, resume=True, progress=False)
    la = _log(longer.run_dir(tmp_path / "ensemble") / "train_log.csv")
    lb = _log(longer.run_dir(tmp_path / "single") / "train_log.csv")
    assert la[-1]["loss"] == pytest.approx(lb[-1]["loss"], rel=1e-5)


def test_compatibility_rules():
    assert compatible(MODELS["beta_vae"], _cfgs()) is None
    reason = compatible(MODELS["factor_vae"], _cfgs("factor_vae", (1.0, 2.0)))
    assert reason and "own step" in reason
    mixed = _cfgs()
    mixed[1] = RunConfig(**{**mixed[1].__dict__, "steps": 99})
    assert len(group_runs(mixed)) == 2
    assert compatible(MODELS["beta_vae"], mixed) is not None


def test_cuda_graphs_flag_without_cuda_trains_eagerly(trained, tmp_path):
    """--cuda-graphs on a CPU run is a no-op: the same checkpoints as without it."""
    out, cfgs = trained
    train_ensemble(cfgs, tmp_path, progress=False, cuda_graphs=True)
    for c in cfgs:
        a = load_checkpoint(c.run_dir(tmp_path) / "model.pt")["model"]
        b = load_checkpoint(c.run_dir(out / "ensemble") / "model.pt")["model"]
        assert all(torch.equal(a[k], b[k]) for k in b)


def test_ensemble_resumes_where_it_stopped(trained, tmp_path):
    """Members stopped at step 4 and resumed as an ensemble to step 6 equal an ensemble
    trained to step 6 in one go (weights bit for bit, on CPU)."""
    import shutil

    out, cfgs = trained
    longer = [RunConfig(**{**c.__dict__, "steps": STEPS + 2}) for c in cfgs]
    for c, lc in zip(cfgs, longer, strict=True):
        shutil.copytree(c.run_dir(out / "ensemble"), lc.run_dir(tmp_path / "resumed"))
    train_ensemble(longer, tmp_path / "resumed", progress=False)
    train_ensemble(longer, tmp_path / "straight", progress=False)
    for lc in longer:
        a = load_checkpoint(lc.run_dir(tmp_path / "resumed") / "model.pt")
        b = load_checkpoint(lc.run_dir(tmp_path / "straight") / "model.pt")
        assert a["step"] == b["step"] == STEPS + 2
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in b["model"])


def test_ensemble_resumed_mid_log_row_logs_as_straight(tmp_path):
    """Stopped between two log rows, members checkpoint their partial log sums (they were
    dropped once): the resumed ensemble's logs and weights equal one trained straight."""
    cfgs = [RunConfig(**{**c.__dict__, "steps": 6, "log_every": 3, "checkpoint_every": 2})
            for c in _cfgs()]
    train_ensemble(cfgs, tmp_path / "resumed", progress=False, stop_after=2)
    for c in cfgs:
        st = load_checkpoint(c.run_dir(tmp_path / "resumed") / "model.pt")
        assert st["step"] == 2 and st["log_count"] == 2 and set(st["log_acc"]) >= {"loss"}
    train_ensemble(cfgs, tmp_path / "resumed", progress=False)
    train_ensemble(cfgs, tmp_path / "straight", progress=False)
    for c in cfgs:
        a, b = (c.run_dir(tmp_path / r) for r in ("resumed", "straight"))
        assert (a / "train_log.csv").read_text() == (b / "train_log.csv").read_text()
        wa, wb = load_checkpoint(a / "model.pt")["model"], load_checkpoint(b / "model.pt")["model"]
        assert all(torch.equal(wa[k], wb[k]) for k in wb)


def test_ensemble_seeds_every_generator_and_warns_on_non_finite(tmp_path, monkeypatch, caplog):
    import random

    from disbench.run import graph_step

    seeded = []
    real_seed = random.seed
    monkeypatch.setattr(random, "seed", lambda s=None, *a: (seeded.append(s),
                                                             real_seed(s, *a))[1])
    real_call = graph_step.GraphedStep.__call__

    def nan_for_member_0(self):
        out = {k: v.clone() for k, v in real_call(self).items()}
        out["loss"][0] = float("nan")
        return out

    monkeypatch.setattr(graph_step.GraphedStep, "__call__", nan_for_member_0)
    cfgs = _cfgs(betas=(1.0, 4.0))
    with caplog.at_level("WARNING"), pytest.raises(TrainingDiverged) as info:
        train_ensemble(cfgs, tmp_path, progress=False)
    assert seeded == [c.seed for c in cfgs]  # python random too, member by member
    warned = [r.getMessage() for r in caplog.records if "non-finite loss" in r.getMessage()]
    # Issue 21: a member whose loss is non-finite stops at that row (it was trained on
    # with a warning per row); the other members train to the end.
    assert len(warned) == 1 and str(cfgs[0].run_dir(tmp_path)) in warned[0]
    assert info.value.diverged == {cfgs[0].run_dir(tmp_path): {"step": 1, "what": "loss"}}
    assert not (cfgs[0].run_dir(tmp_path) / "model.pt").exists()
    for c in cfgs[1:]:
        assert load_checkpoint(c.run_dir(tmp_path) / "model.pt")["step"] == STEPS
