"""The regression gate: passes on its own baseline, fails naming an injected regression."""
import json

import pandas as pd
import pytest
from disbench.errors import DisbenchError
from disbench.sweeps import regress


def _fixture_runs(root, mig_values):
    for seed, mig in enumerate(mig_values):
        d = root / "dsprites" / "beta_vae" / f"abc-s{seed}"
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({
            "model": "beta_vae", "hparams": {"beta": 4}, "dataset": "dsprites",
            "source": "synthetic", "seed": seed, "steps": 10,
        }))
        recs = [
            {"metric": "mig", "value": mig, "higher_is_better": True, "version": "1", "spec": {}},
            {"metric": "hoyer", "value": 0.5, "higher_is_better": True, "version": "1",
             "spec": {}},
        ]
        (d / "metrics.json").write_text(json.dumps({"records": recs}))


def test_compare_passes_on_baseline_and_fails_on_injected_regression(tmp_path):
    _fixture_runs(tmp_path / "runs", [0.2, 0.4])
    new = regress.scores(tmp_path / "runs")
    assert set(new["metric"]) == {"mig", "hoyer"}
    assert new.set_index("metric").loc["mig", "value"] == pytest.approx(0.3)
    base_path = tmp_path / "ci.csv"
    regress.write_baseline(base_path, new, "ci")
    base = regress.read_baseline(base_path)
    assert base.set_index("metric").loc["mig", "tolerance"] == regress.default_tolerance("mig")
    failures, notes = regress.compare(new, base)
    assert failures == [] and notes == []

    # Inject a regression: mig drops by 0.1 (tolerance 0.02).
    assert regress.default_tolerance("mig") < 0.1
    worse = new.copy()
    worse.loc[worse["metric"] == "mig", "value"] -= 0.1
    failures, _ = regress.compare(worse, base)
    assert len(failures) == 1
    msg = str(failures[0])
    for part in ("dsprites", "beta_vae", "mig", "0.3000", "0.2000"):
        assert part in msg, msg
    # Within tolerance: passes.
    close = new.copy()
    close.loc[close["metric"] == "mig", "value"] += 0.9 * regress.default_tolerance("mig")
    assert regress.compare(close, base)[0] == []


def test_missing_score_fails_and_new_score_is_a_note():
    base = pd.DataFrame([
        {"dataset": "d", "model": "vae", "metric": "mig", "value": 0.1, "tolerance": 0.01},
    ])
    new = pd.DataFrame([{"dataset": "d", "model": "vae", "metric": "sap", "value": 0.2}])
    failures, notes = regress.compare(new, base)
    assert len(failures) == 1 and "missing" in str(failures[0])
    assert len(notes) == 1 and "sap" in notes[0]


def test_update_keeps_stated_tolerances(tmp_path):
    new = pd.DataFrame([{"dataset": "d", "model": "vae", "metric": "mig", "value": 0.1}])
    old = pd.DataFrame([
        {"dataset": "d", "model": "vae", "metric": "mig", "value": 0.5, "tolerance": 0.123},
    ])
    regress.write_baseline(tmp_path / "b.csv", new, "ci", old)
    text = (tmp_path / "b.csv").read_text()
    assert text.startswith("#")
    got = regress.read_baseline(tmp_path / "b.csv")
    assert got.iloc[0]["tolerance"] == pytest.approx(0.123)
    assert got.iloc[0]["value"] == pytest.approx(0.1)


def test_bad_baseline_files(tmp_path):
    with pytest.raises(DisbenchError, match="not found"):
        regress.read_baseline(tmp_path / "none.csv")
    (tmp_path / "b.csv").write_text("dataset,model,metric,value\nd,vae,mig,0.1\n")
    with pytest.raises(DisbenchError, match="tolerance"):
        regress.read_baseline(tmp_path / "b.csv")
    (tmp_path / "c.csv").write_text(
        "dataset,model,metric,value,tolerance\nd,vae,mig,high,0.1\n"
    )
    with pytest.raises(DisbenchError, match="value is not a number"):
        regress.read_baseline(tmp_path / "c.csv")


def test_unknown_suite():
    with pytest.raises(DisbenchError, match="unknown suite"):
        regress.suite_path("nosuchsuite")


TINY = """\
name: tiny_ci
datasets: [{name: dsprites, source: synthetic}]
models: [{name: vae, latent_dim: 4}]
train: {steps: 6, batch_size: 8, lr: 0.001, log_every: 3, device: cpu}
seeds: [0]
metrics: [hoyer, mig]
eval: {num_train: 200, num_test: 100}
"""


def test_end_to_end_update_pass_and_injected_regression(tmp_path, capsys):
    from disbench.cli import main

    spec = tmp_path / "tiny_ci.yaml"
    spec.write_text(TINY)
    base = tmp_path / "baseline.csv"
    args = ["regress", "--suite", str(spec), "--baseline", str(base), "--no-progress",
            "--jobs", "1"]
    assert main([*args, "--update"]) == 0
    written = regress.read_baseline(base)
    assert set(written["metric"]) == {"hoyer", "mig"} and set(written["model"]) == {"vae"}
    # A fresh re-run reproduces the scores (deterministic on CPU): the gate passes.
    capsys.readouterr()
    assert main(args) == 0
    assert "within tolerance" in capsys.readouterr().out
    # Inject a regression: the baseline claims a hoyer score far above what the code gives.
    text = base.read_text().splitlines()
    row = next(i for i, ln in enumerate(text) if ",hoyer," in ln)
    parts = text[row].split(",")
    old = float(parts[3])
    parts[3] = f"{old + 0.5:.6f}"
    text[row] = ",".join(parts)
    base.write_text("\n".join(text) + "\n")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "REGRESSION dsprites / vae / hoyer" in err
    assert f"baseline {old + 0.5:.4f}" in err and f"new {old:.4f}" in err
    # A truncated baseline (the hoyer row lost): the gate says how many rows it compared
    # against and fails on the score without a row, unless told to accept new metrics.
    del text[row]
    base.write_text("\n".join(text) + "\n")
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert "1 baseline row" in out + err and "hoyer" in err and "no baseline row" in err
    assert main([*args, "--accept-new"]) == 0
    out = capsys.readouterr().out
    assert "note: dsprites / vae / hoyer" in out and "against 1 baseline row" in out
    assert "1 scores within tolerance, 1 new score(s) accepted without a baseline row" in out


def test_new_metric_without_baseline_row_fails_unless_accepted():
    base = pd.DataFrame([
        {"dataset": "d", "model": "vae", "metric": "mig", "value": 0.1, "tolerance": 0.01},
    ])
    new = pd.DataFrame([{"dataset": "d", "model": "vae", "metric": "mig", "value": 0.1},
                        {"dataset": "d", "model": "vae", "metric": "sap", "value": 0.2}])
    failures, notes = regress.compare(new, base, accept_new=False)
    assert len(failures) == 1 and notes == []
    assert "sap" in str(failures[0]) and "no baseline row" in str(failures[0])
    failures, notes = regress.compare(new, base, accept_new=True)
    assert failures == [] and len(notes) == 1 and "sap" in notes[0]


def test_accepted_new_scores_are_not_counted_as_within_tolerance(tmp_path, monkeypatch, capsys):
    from disbench.cli import main
    from disbench.sweeps import sweep

    spec = tmp_path / "tiny_ci.yaml"
    spec.write_text(TINY)
    rows = [{"dataset": "dsprites", "model": "vae", "metric": m, "value": v}
            for m, v in (("hoyer", 0.5), ("mig", 0.1), ("sap", 0.2))]
    base = tmp_path / "baseline.csv"
    regress.write_baseline(base, pd.DataFrame(rows[:1]), str(spec))  # hoyer only
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **kw: sweep.SweepSummary(a[1]))
    monkeypatch.setattr(regress, "scores", lambda *a: pd.DataFrame(rows))
    assert main(["regress", "--suite", str(spec), "--baseline", str(base), "--no-progress",
                 "--accept-new"]) == 0
    out = capsys.readouterr().out
    assert "regress: 1 scores within tolerance, 2 new score(s) accepted without a baseline " \
           "row, compared against 1 baseline row of" in out, out
