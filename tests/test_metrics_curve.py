"""eval_every: metrics on a fixed draw during training, in metrics_curve.csv; resumable
without recomputing or losing points; drawn by `disbench plot`."""
import csv

import pytest
import torch
from disbench import cli, datasets, metrics
from disbench.metrics.evaluators import EvalOptions
from disbench.run import curve as curve_mod
from disbench.run.config import RunConfig
from disbench.run.folder import RunFolder, load_checkpoint, load_run
from disbench.run.trainer import train


def _cfg(**kw):
    base = {"model": "beta_vae", "dataset": "dsprites", "source": "synthetic", "steps": 4,
            "batch_size": 8, "device": "cpu", "log_every": 2, "checkpoint_every": 2,
            "eval_every": 2, "eval_metrics": "mig,hoyer", "eval_points": 100,
            "hparams": {"latent_dim": 4}}
    return RunConfig(**{**base, **kw})


def _rows(run):
    with open(RunFolder(run).curve_path, newline="") as f:
        return list(csv.DictReader(f))


def test_curve_points_are_the_metrics_of_the_run_at_those_steps(tmp_path):
    run = train(_cfg(), tmp_path, progress=False)
    rows = _rows(run)
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert set(rows[0]) == {"step", "mig", "hoyer"}
    model, _, _ = load_run(run)
    recs = metrics.evaluate(model, datasets.get("dsprites", source="synthetic"),
                            ["mig", "hoyer"], EvalOptions(num_train=100, num_test=50))
    want = {r["metric"]: r["value"] for r in recs}
    assert float(rows[-1]["mig"]) == pytest.approx(want["mig"], rel=1e-9)
    assert float(rows[-1]["hoyer"]) == pytest.approx(want["hoyer"], rel=1e-9)


def test_evaluating_during_training_changes_nothing_learned(tmp_path):
    a = train(_cfg(), tmp_path / "a", progress=False)
    b = train(_cfg(eval_every=0), tmp_path / "b", progress=False)
    assert a.name == b.name  # eval settings are not part of the run id
    wa, wb = load_checkpoint(a / "model.pt")["model"], load_checkpoint(b / "model.pt")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wb)
    assert not RunFolder(b).curve_path.exists()


def test_resumed_curve_neither_recomputes_nor_loses_points(tmp_path, monkeypatch):
    cfg = _cfg(steps=6)
    straight = train(cfg, tmp_path / "a", progress=False)
    run = train(cfg, tmp_path / "b", progress=False, stop_after=3)
    assert [int(r["step"]) for r in _rows(run)] == [2]
    # a point written after the last checkpoint (step 3) of an interrupted run is dropped
    with open(RunFolder(run).curve_path, "a") as f:
        f.write("5,0.5,0.5\n")
    seen = []
    real = curve_mod.MetricsCurve.evaluate
    monkeypatch.setattr(curve_mod.MetricsCurve, "evaluate",
                        lambda self, step, model: (seen.append(step), real(self, step, model))[1])
    train(cfg, tmp_path / "b", progress=False, resume=True)
    assert seen == [4, 6]  # step 2 is kept, not recomputed
    assert RunFolder(run).curve_path.read_text() == RunFolder(straight).curve_path.read_text()


def test_unknown_curve_metric_is_a_clear_error(tmp_path):
    from disbench.errors import DisbenchError

    with pytest.raises(DisbenchError, match="eval_metrics: unknown metric.*nope"):
        train(_cfg(eval_metrics="mig,nope"), tmp_path, progress=False)


def test_plot_draws_the_curve(tmp_path, capsys):
    run = train(_cfg(), tmp_path / "runs", progress=False)
    assert cli.main(["plot", str(run), "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "metrics_curve.png").stat().st_size > 0
    assert (tmp_path / "fig" / "metrics_curve.pdf").is_file()
    assert "metrics_curve.png" in capsys.readouterr().out
