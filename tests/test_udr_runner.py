"""disbench udr: the seeds of a variant scored against each other on one shared draw, each
run's score written into its metrics.json as the record ``udr`` and shown by the leaderboard.

The runs are tiny (5 steps); beta_vae with beta 0.01 and lr 1e-3 is a setting where every seed
already has latents with KL above UDR's 0.01 and scores differ between seeds (both checked
below, not assumed)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from disbench import datasets, metrics
from disbench.cli import main
from disbench.errors import DisbenchError
from disbench.run.config import RunConfig
from disbench.run.evaluate import evaluate_run, missing_metrics
from disbench.run.folder import RunFolder, load_run
from disbench.run.trainer import train
from disbench.run.udr import compute_udr
from disbench.sweeps.spec import load_spec
from disbench.sweeps.sweep import run_sweep

SPEC = """\
name: udr
datasets: [{name: dsprites, source: synthetic}]
models: [{name: beta_vae, beta: 0.01}]
train: {steps: 5, batch_size: 8, lr: 0.001, log_every: 5, device: cpu}
seeds: [0, 1, 2]
metrics: [hoyer, udr]
eval: {num_train: 64, num_test: 32}
"""
POINTS, SEED = 100, 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A spec's three seeds (trained and evaluated by a sweep) and a collapsed vae variant
    with two seeds trained outside the spec."""
    root = tmp_path_factory.mktemp("udr")
    spec_path = root / "udr.yaml"
    spec_path.write_text(SPEC)
    spec = load_spec(spec_path)
    out = root / "runs"
    summary = run_sweep(spec, out, jobs=1, progress=False)
    assert summary.count("failed") == 0, summary.results
    collapsed = [train(RunConfig(model="vae", dataset="dsprites", source="synthetic",
                                 hparams={"latent_dim": 4}, steps=4, batch_size=8, seed=s,
                                 log_every=2, device="cpu"), out, progress=False)
                 for s in (0, 1)]
    spec_runs = sorted(spec.run_dirs(out))
    return spec_path, out, spec_runs, collapsed


def _independent_udr(run_dirs):
    """UDR computed here from the models: the reference's draw (batches of 10 from
    RandomState(SEED)), posterior means and mean Gaussian KL, then metrics.udr."""
    models = [load_run(d)[0] for d in run_dirs]
    ds = datasets.get("dsprites", source="synthetic")
    rng = np.random.RandomState(SEED)
    obs = np.concatenate([ds.sample_observations_from_factors(ds.sample_factors(10, rng), rng)
                          for _ in range(POINTS // 10)])
    x = torch.from_numpy(obs).float() / 255.0
    codes, kls = [], []
    with torch.no_grad():
        for m in models:
            mean, logvar = (t.double().numpy() for t in m.posterior(x))
            codes.append(mean)
            kls.append(np.mean(0.5 * (mean ** 2 + np.exp(logvar) - logvar - 1), axis=0))
    return metrics.udr(codes, np.array(kls))["model_scores"], np.array(kls)


def _udr_record(run_dir):
    doc = RunFolder(run_dir).read_metrics()
    recs = [r for r in doc["records"] if r["metric"] == "udr"]
    assert len(recs) == 1, doc["records"]
    return recs[0], doc


def test_udr_command_writes_each_seeds_score_and_the_leaderboard_shows_it(runs, capsys):
    spec_path, out, spec_runs, _ = runs
    expected, kls = _independent_udr(spec_runs)
    assert (kls.max(axis=1) > 0.01).all(), kls  # the precondition of a defined UDR
    assert len({round(float(v), 6) for v in expected}) == 3 and min(expected) > 0, expected
    rc = main(["udr", str(out), "--spec", str(spec_path), "--num-points", str(POINTS),
               "--random-state", str(SEED), "--device", "cpu"])
    assert rc == 0
    assert "udr written for 3 runs in 1 variants" in capsys.readouterr().out
    ids = [RunFolder(d).run_id() for d in spec_runs]
    for run_dir, score in zip(spec_runs, expected, strict=True):
        rec, doc = _udr_record(run_dir)
        assert rec["value"] == pytest.approx(float(score), abs=1e-12)
        assert rec["higher_is_better"] is True and rec["version"] == "1"
        assert rec["spec"]["points"] == POINTS and rec["spec"]["seed"] == SEED
        assert rec["spec"]["runs"] == ids and rec["spec"]["models"] == 3
        assert {r["metric"] for r in doc["records"]} == {"hoyer", "udr"}  # merged, not replaced
        opts = doc["evaluated"]["udr"]["options"]
        assert opts == {"num_points": POINTS, "random_state": SEED, "codes": "mean",
                        "correlation": "lasso", "filter_low_kl": True,
                        "kl_filter_threshold": 0.01, "runs": ids}
        assert doc["evaluated"]["hoyer"]["options"]["num_train"] == 64
        assert doc["provenance"]["evaluation"] == opts
        assert not (Path(run_dir) / ".lock").exists()
    # exactly the records the udr evaluator declares
    names = {r["metric"] for d in spec_runs for r in RunFolder(d).metric_records()} - {"hoyer"}
    assert names == set(metrics.EVALUATORS["udr"].record_names)
    from disbench.report.leaderboard import build

    table, board, hib = build(out, set(spec_runs))
    assert hib["udr"] is True
    assert len(board) == 1 and board.loc[0, "udr_n"] == 3
    assert board.loc[0, "udr_mean"] == pytest.approx(float(np.mean(expected)), abs=1e-12)
    assert sorted(table["udr"]) == pytest.approx(sorted(float(s) for s in expected), abs=1e-12)


def test_groups_without_a_score_say_why(runs):
    _, out, spec_runs, collapsed = runs
    groups = compute_udr(out, num_points=POINTS, random_state=SEED, device="cpu")
    by_runs = {tuple(g.runs): g for g in groups}
    assert set(by_runs) == {tuple(str(d) for d in spec_runs),
                            tuple(sorted(str(d) for d in collapsed))}
    dead = by_runs[tuple(sorted(str(d) for d in collapsed))]
    assert dead.scores == [] and "no latent with KL > kl_filter_threshold" in dead.reason
    assert all(not any(r["metric"] == "udr" for r in RunFolder(d).metric_records())
               for d in collapsed)
    alone = compute_udr(out, only={spec_runs[0]}, num_points=POINTS, random_state=SEED)
    assert len(alone) == 1 and alone[0].scores == [] and "one trained seed" in alone[0].reason
    with pytest.raises(DisbenchError, match="--num-points"):
        compute_udr(out, num_points=1)


def test_sweeps_and_evaluate_leave_udr_to_the_udr_command(runs, caplog):
    spec_path, out, spec_runs, _ = runs
    spec = load_spec(spec_path)
    assert all(missing_metrics(d, ["hoyer", "udr"], spec.eval) == [] for d in spec_runs)
    again = run_sweep(spec, out, jobs=1, progress=False)
    assert again.count("skipped") == 3  # complete although no per-run udr was computed
    before = json.loads((spec_runs[0] / "metrics.json").read_text())
    with caplog.at_level("INFO"):
        evaluate_run(spec_runs[0], ["udr"], spec.eval, force=True)
    assert "disbench udr" in caplog.text
    assert json.loads((spec_runs[0] / "metrics.json").read_text()) == before
    caplog.clear()
    with caplog.at_level("INFO"):  # with work to do, the hint is still said once
        evaluate_run(spec_runs[0], ["hoyer", "udr"], spec.eval, force=True)
    assert caplog.text.count("compute it with 'disbench udr") == 1, caplog.text
