"""Sweeps: killed and restarted loses no finished run and repeats none; concurrent sweeps on one
folder train each run once; a failing run is recorded and the sweep goes on."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from disbench.sweeps.spec import load_spec
from disbench.sweeps.sweep import run_dir_for, run_sweep

if not hasattr(__import__("disbench.metrics").metrics, "evaluate"):
    pytest.skip("disbench.metrics.evaluate is not built yet", allow_module_level=True)

SPEC = """\
name: tiny
datasets: [{{name: dsprites, source: synthetic}}]
models: [{models}]
train: {{steps: {steps}, batch_size: 8, log_every: 2, device: cpu}}
seeds: [{seeds}]
metrics: [hoyer]
eval: {{num_train: 64, num_test: 32}}
"""


def _spec(tmp_path, *, models="{name: vae, latent_dim: 4}", steps=4, seeds="0, 1"):
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC.format(models=models, steps=steps, seeds=seeds))
    return path


def _env():
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _sweep_cmd(spec, out):
    return [sys.executable, "-m", "disbench", "sweep", str(spec), "--out", str(out),
            "--jobs", "1", "--no-progress"]


def _counts(stdout):
    m = re.search(r"(\d+) runs: (\d+) trained and evaluated, (\d+) already complete, "
                  r"(\d+) failed", stdout)
    assert m, stdout
    return tuple(int(g) for g in m.groups())


def _complete_dirs(spec_path, out):
    spec = load_spec(spec_path)
    dirs = [run_dir_for(cfg, out) for cfg in spec.run_configs()]
    return dirs, [d for d in dirs if (d / "metrics.json").is_file()]


def test_sweep_in_process_then_skips(tmp_path):
    spec = load_spec(_spec(tmp_path))
    out = tmp_path / "runs"
    first = run_sweep(spec, out, jobs=1, progress=False)
    assert first.count("done") == 2 and first.count("failed") == 0
    for cfg in spec.run_configs():
        d = run_dir_for(cfg, out)
        assert d.parent == out / "dsprites" / "vae"
        assert d.name.endswith(f"-s{cfg.seed}")
        for f in ("config.json", "model.pt", "train_log.csv", "metrics.json"):
            assert (d / f).is_file(), f
        assert not (d / ".lock").exists()
        doc = json.loads((d / "metrics.json").read_text())
        assert {r["metric"] for r in doc["records"]} >= {"hoyer"}
        prov = doc["provenance"]
        assert prov["dataset"]["name"] == "dsprites" and prov["dataset"]["fingerprint"]
        assert prov["disbench_version"] and prov["config_hash"] == d.name.rsplit("-s", 1)[0]
    again = run_sweep(spec, out, jobs=1, progress=False)
    assert again.count("skipped") == 2 and again.count("done") == 0
    # Figures of a trained run: traversals (one row per latent), reconstructions, samples.
    from disbench.report.plots import run_figures

    figs = run_figures(run_dir_for(spec.run_configs()[0], out), tmp_path / "fig")
    assert sorted(p.name for p in figs) == sorted(
        f"{n}.{e}" for n in ("reconstructions", "traversals", "prior_samples")
        for e in ("png", "pdf"))


def test_killed_sweep_restarts_without_losing_or_repeating(tmp_path):
    spec_path = _spec(tmp_path, steps=20, seeds="0, 1, 2")
    out = tmp_path / "runs"
    proc = subprocess.Popen(_sweep_cmd(spec_path, out), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    done: list[Path] = []
    while time.time() < deadline and proc.poll() is None:
        _, done = _complete_dirs(spec_path, out)
        if done:
            break
        time.sleep(0.05)
    assert done, "no run finished before the deadline"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    dirs, done = _complete_dirs(spec_path, out)
    assert 1 <= len(done) < len(dirs), "kill came too late to interrupt the sweep"
    stamps = {d: (d / "metrics.json").stat().st_mtime_ns for d in done}
    stamps_model = {d: (d / "model.pt").stat().st_mtime_ns for d in done}

    res = subprocess.run(_sweep_cmd(spec_path, out), env=_env(), capture_output=True,
                         text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    total, trained, skipped, failed = _counts(res.stdout)
    assert (total, failed) == (3, 0)
    assert skipped == len(done) and trained == 3 - len(done)
    _, now_done = _complete_dirs(spec_path, out)
    assert len(now_done) == 3
    for d in done:  # finished runs were neither lost nor redone
        assert (d / "metrics.json").stat().st_mtime_ns == stamps[d]
        assert (d / "model.pt").stat().st_mtime_ns == stamps_model[d]
    for d in dirs:
        assert not (d / ".lock").exists()


def test_two_concurrent_sweeps_train_each_run_once(tmp_path):
    spec_path = _spec(tmp_path, steps=4, seeds="0, 1, 2")
    out = tmp_path / "runs"
    procs = [subprocess.Popen(_sweep_cmd(spec_path, out), env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (o, e) in zip(procs, outs, strict=True):
        assert p.returncode == 0, e
    counts = [_counts(o) for o, _ in outs]
    assert sum(c[1] for c in counts) == 3  # each run trained by exactly one sweep
    assert all(c[0] == 3 and c[3] == 0 for c in counts)
    dirs, done = _complete_dirs(spec_path, out)
    assert len(done) == 3
    for d in dirs:
        json.loads((d / "metrics.json").read_text())  # intact JSON
        assert not (d / ".lock").exists()
        assert not list(d.glob(".*.tmp"))


def test_failed_run_is_recorded_and_sweep_goes_on(tmp_path):
    spec_path = _spec(tmp_path, models="{name: vae, latent_dim: 4}, "
                                       "{name: ab_vae, latent_dim: 4}", seeds="0")
    spec = load_spec(spec_path)
    out = tmp_path / "runs"
    # A corrupt checkpoint makes the ab_vae run fail when the trainer loads it.
    bad = run_dir_for(spec.run_configs()[1], out)
    bad.mkdir(parents=True)
    (bad / "model.pt").write_bytes(b"not a checkpoint")
    summary = run_sweep(spec, out, jobs=1, progress=False)
    assert summary.count("done") == 1 and summary.count("failed") == 1
    assert Path(summary.failed[0].run_dir) == bad
    err = json.loads((bad / "error.json").read_text())
    assert err["stage"] == "train" and "model.pt" in err["message"]
    assert "Traceback" in err["traceback"] and err["config"]["model"] == "ab_vae"
    assert not (bad / ".lock").exists()
    # The leaderboard lists the failure.
    from disbench.report import leaderboard

    runs, board, _ = leaderboard.build(out)
    assert sorted(runs["status"]) == ["failed", "ok"]
    assert int(board.loc[board["model"] == "ab_vae", "n_failed"].iloc[0]) == 1
    # The CLI retries it, exits non-zero and names the failed run.
    res = subprocess.run(_sweep_cmd(spec_path, out), env=_env(), capture_output=True,
                         text=True, timeout=300, check=False)
    assert res.returncode == 1 and str(bad) in res.stdout
    assert _counts(res.stdout) == (2, 0, 1, 1)
    # Once the cause is gone, the next sweep trains it and clears the error record.
    (bad / "model.pt").unlink()
    summary = run_sweep(spec, out, jobs=1, progress=False)
    assert summary.count("done") == 1 and summary.count("skipped") == 1
    assert not (bad / "error.json").exists() and (bad / "metrics.json").is_file()


@pytest.mark.usefixtures("empty_cache")
def test_missing_official_data_and_gpu_named(tmp_path, monkeypatch):
    import torch
    from disbench.errors import DisbenchError
    from disbench.sweeps.sweep import check_requirements

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    text = SPEC.format(models="{name: vae}", steps=10, seeds="0").replace(
        "source: synthetic", "source: official").replace("device: cpu", "device: cuda")
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(DisbenchError) as info:
        check_requirements(load_spec(tmp_path / "p.yaml"))
    msg = str(info.value)
    assert "official dsprites" in msg and "disbench datasets prepare dsprites" in msg
    assert "CUDA GPU" in msg


def test_ensemble_jobs_write_the_single_run_layout(tmp_path):
    from disbench.sweeps.sweep import plan_jobs

    spec = load_spec(_spec(tmp_path, models="{name: beta_vae, latent_dim: 4, beta: [2, 4]}"))
    cfgs = spec.run_configs()
    jobs = plan_jobs(cfgs, ensembles=True)
    assert [len(j) for j in jobs] == [4]  # seeds and a float hyperparameter batch together
    out = tmp_path / "runs"
    summary = run_sweep(spec, out, jobs=1, progress=False, ensembles=True)
    assert summary.count("done") == 4, summary.results
    for cfg in cfgs:
        d = run_dir_for(cfg, out)
        assert (d / "metrics.json").is_file() and not (d / ".lock").exists()
    assert run_sweep(spec, out, jobs=1, progress=False, ensembles=True).count("skipped") == 4


def test_cuda_graphs_is_an_argument_down_to_the_ensemble(tmp_path, monkeypatch):
    from disbench import cli
    from disbench.run import trainer
    from disbench.sweeps import sweep

    seen = []
    real = trainer.train_ensemble

    def spy(cfgs, out_root, **kw):
        seen.append(kw["cuda_graphs"])
        return real(cfgs, out_root, **kw)

    monkeypatch.setattr(trainer, "train_ensemble", spy)
    monkeypatch.delenv("DISBENCH_CUDA_GRAPHS", raising=False)
    spec = load_spec(_spec(tmp_path, models="{name: beta_vae, latent_dim: 4, beta: [2, 4]}",
                           seeds="0"))
    summary = run_sweep(spec, tmp_path / "runs", jobs=1, progress=False, ensembles=True,
                        cuda_graphs=True)
    assert summary.count("done") == 2 and seen == [True]
    assert "DISBENCH_CUDA_GRAPHS" not in os.environ
    got = {}
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **kw: (got.update(kw),
                                                              sweep.SweepSummary(a[1]))[1])
    assert cli.main(["sweep", str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "o"),
                     "--cuda-graphs", "--no-progress"]) == 0
    assert got["cuda_graphs"] is True


# -- issue 21 item 5: stopping a parallel sweep ----------------------------------------------
def _start_parallel_sweep(tmp_path):
    """A --jobs 2 sweep of two long runs, returned once both workers are training."""
    spec_path = _spec(tmp_path, steps=100000, seeds="0, 1")
    out = tmp_path / "runs"
    cmd = _sweep_cmd(spec_path, out)
    cmd[cmd.index("--jobs") + 1] = "2"
    # Files, not pipes: workers left running would hold a pipe open (and communicate() with it).
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
    dirs = [run_dir_for(cfg, out) for cfg in load_spec(spec_path).run_configs()]
    deadline = time.time() + 240
    holders: set[int] = set()
    while time.time() < deadline and proc.poll() is None:
        holders = set()
        for d in dirs:
            try:
                holders.add(json.loads((d / ".lock").read_text())["pid"])
            except (OSError, ValueError, KeyError):
                pass
        if len(holders) == 2 and all((d / "config.json").is_file() for d in dirs):
            break  # both workers hold their run and are inside the trainer
        time.sleep(0.1)
    else:
        _kill_session(proc)
        raise AssertionError(f"the workers did not start: {(tmp_path / 'stderr.txt').read_text()}")
    assert proc.pid not in holders
    return proc, dirs, holders


def _kill_session(proc):
    """SIGKILL the sweep's session (it and any worker left), e.g. after a failed check."""
    import contextlib

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _running(pid):
    from disbench.run.stop import running

    return running(pid)


def _assert_stopped_cleanly(dirs, workers, within):
    deadline = time.time() + within
    while time.time() < deadline and any(_running(p) for p in workers):
        time.sleep(0.1)
    still = [p for p in workers if _running(p)]
    for p in still:
        os.kill(p, signal.SIGKILL)
    assert not still, "workers still running after their sweep stopped"
    from disbench.run.folder import RunFolder

    for d in dirs:
        assert not (d / ".lock").exists(), d  # released
        status = RunFolder(d).status()  # a checkpoint of the step reached, described
        assert status is not None and 0 <= status["step"] < 100000, (d, status)
        assert not (d / "error.json").exists()  # a stop is not a failure


def test_sigterm_stops_a_parallel_sweep_and_its_workers(tmp_path):
    proc, dirs, workers = _start_parallel_sweep(tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=150)
        err = (tmp_path / "stderr.txt").read_text()
        assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
        assert "interrupted (stopped by SIGTERM)" in err, err[-3000:]
        _assert_stopped_cleanly(dirs, workers, within=10)
    finally:
        _kill_session(proc)


def test_workers_stop_when_their_sweep_is_killed(tmp_path):
    proc, dirs, workers = _start_parallel_sweep(tmp_path)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        _assert_stopped_cleanly(dirs, workers, within=120)
    finally:
        _kill_session(proc)


def test_sigterm_stops_an_in_process_sweep_with_a_checkpoint(tmp_path):
    spec_path = _spec(tmp_path, steps=100000, seeds="0")
    out = tmp_path / "runs"
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(_sweep_cmd(spec_path, out), env=_env(),
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        (run_dir,) = [run_dir_for(cfg, out) for cfg in load_spec(spec_path).run_configs()]
        deadline = time.time() + 180
        while time.time() < deadline and not (run_dir / "config.json").is_file():
            assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 128 + signal.SIGTERM, (tmp_path / "stderr.txt").read_text()
    finally:
        proc.kill()
    _assert_stopped_cleanly([run_dir], [], within=1)


def test_missing_fid_weights_are_named_before_a_sweep_starts(tmp_path, monkeypatch):
    from disbench.errors import DisbenchError
    from disbench.metrics import inception
    from disbench.sweeps.sweep import check_requirements

    text = SPEC.format(models="{name: vae}", steps=10, seeds="0").replace(
        "metrics: [hoyer]", "metrics: [hoyer, fid]")
    assert "fid" in text
    (tmp_path / "p.yaml").write_text(text)
    spec = load_spec(tmp_path / "p.yaml")
    monkeypatch.setattr(inception, "missing_requirements",
                        lambda weights=None:  # noqa: ARG005 (the replaced signature)
                        ["Inception weights W not found: put it at P"])
    with pytest.raises(DisbenchError, match="cannot start; it needs .*for FID, Inception "
                                            "weights W not found"):
        check_requirements(spec)
    monkeypatch.setattr(inception, "missing_requirements",
                        lambda weights=None: [])  # noqa: ARG005 (the replaced signature)
    check_requirements(spec)  # nothing missing
