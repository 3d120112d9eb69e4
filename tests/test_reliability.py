"""Issue 21: the holes a hostile-but-realistic user finds, each reproduced here.

Stale temp files, a corrupt ``config.json`` on resume, a checkpoint copied from another run,
overlapping evaluations, locks of reused pids, hyperparameter ranges and diverged training,
impossible dataset x metric pairs and the command line's one-line errors. (Spec parsing is
in test_spec.py, signals of parallel sweeps in test_sweep.py, the gate in test_regress.py.)
"""
import json
import os
import shutil
import time

import numpy as np
import pytest
import torch
from disbench import atomic
from disbench.datasets.registry import DATASETS
from disbench.errors import DisbenchError
from disbench.run.config import RunConfig
from disbench.run.folder import RunFolder, load_checkpoint, load_run
from disbench.run.trainer import train


class _Data:
    """40 binary 64x64 squares, one factor (the image index): enough to train and evaluate."""

    name, split, binary, fingerprint, source = "fake", "train", True, "fake-v1", "synthetic"
    factor_names, factor_sizes = ("index",), (40,)

    def __init__(self):
        rng = np.random.default_rng(0)
        self.images = np.zeros((40, 1, 64, 64), np.uint8)
        for i, (r, c) in enumerate(rng.integers(0, 48, size=(40, 2))):
            self.images[i, 0, r:r + 16, c:c + 16] = 255
        self.image_shape = (1, 64, 64)

    def __len__(self):
        return len(self.images)

    def tensor(self, device):
        return torch.from_numpy(self.images).to(device)

    def sample_factors(self, n, rng):
        return rng.randint(0, 40, size=(n, 1))

    def sample_observations_from_factors(self, factors, rng):  # noqa: ARG002 (the dataset protocol)
        return self.images[factors[:, 0]]


class _Spec:
    default_split = "train"
    kind = "ground_truth"

    @staticmethod
    def official_available(split):  # noqa: ARG004 (the registry-entry interface)
        return False

    @staticmethod
    def load_synthetic(split, **kw):  # noqa: ARG004 (the registry-entry interface)
        return _Data()


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setitem(DATASETS, "fake", _Spec)
    return "fake"


def _cfg(**kw):
    base = {"model": "vae", "dataset": "fake", "steps": 4, "batch_size": 8, "seed": 1,
            "log_every": 2, "checkpoint_every": 2, "device": "cpu",
            "hparams": {"latent_dim": 4}}
    base.update(kw)
    return RunConfig(**base)


# -- item 10: leftovers ---------------------------------------------------------------------
def _age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_stale_temp_files_of_the_writer_are_cleaned_on_the_next_write(tmp_path):
    host = atomic._HOST_TAG
    dead = _dead_pid()
    killed = tmp_path / f".data.h5.abcdefgh.{host}-{dead}.tmp"  # this host, writer gone
    old_style = tmp_path / ".data.h5.k2j4l6m8.tmp"  # an older writer's, a day old
    live = tmp_path / f".other.h5.zzzzzzzz.{host}-{os.getpid()}.tmp"  # a live writer's
    young = tmp_path / ".more.h5.yyyyyyyy.tmp"  # recent, owner unknown: maybe live
    remote = tmp_path / ".x.pt.qqqqqqqq.00000000-1.tmp"  # another host's, recent
    foreign = tmp_path / "notes.tmp"  # not the writer's pattern
    for p in (killed, old_style, live, young, remote, foreign):
        p.write_bytes(b"x" * 100)
    for p in (killed, old_style, live, foreign):
        _age(p, 2 * atomic.STALE_TEMP_SECONDS)
    _age(killed, 5)  # a killed writer's file is stale at once, whatever its age
    atomic.write_text(tmp_path / "a.txt", "hi")
    assert (tmp_path / "a.txt").read_text() == "hi"
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["a.txt", live.name, young.name, remote.name, foreign.name]), left


def _dead_pid():
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.usefixtures("fake")
def test_corrupt_config_on_resume_is_rebuilt_from_the_checkpoint(tmp_path, caplog):
    cfg = _cfg(steps=6)
    run_dir = train(cfg, tmp_path, progress=False, stop_after=2)
    record = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text('{"model": "vae", "hpar')  # a torn write
    with caplog.at_level("WARNING"):
        train(cfg, tmp_path, progress=False, resume=True)
    assert any("rebuilt" in r.getMessage() for r in caplog.records)
    assert json.loads((run_dir / "config.json").read_text()) == record
    assert RunFolder(run_dir).is_trained()
    # Without a stored copy (an older checkpoint) the advice names the file.
    state = load_checkpoint(run_dir / "model.pt")
    del state["config"]
    torch.save(state, run_dir / "model.pt")
    (run_dir / "config.json").write_text("[1, 2")
    with pytest.raises(DisbenchError, match="config.json is not valid JSON"):
        RunFolder(run_dir).read_config()


@pytest.mark.usefixtures("fake")
def test_checkpoint_of_another_run_is_refused(tmp_path):
    a = train(_cfg(seed=1, steps=6), tmp_path, progress=False, stop_after=2)
    b = train(_cfg(seed=2, steps=6), tmp_path, progress=False, stop_after=2)
    shutil.copy(a / "model.pt", b / "model.pt")
    with pytest.raises(DisbenchError, match=f"belongs to run {a.name.split('-s')[0]}"):
        train(_cfg(seed=2, steps=6), tmp_path, progress=False, resume=True)
    with pytest.raises(DisbenchError, match="belongs to run"):
        load_run(b)


# -- item 3: overlapping evaluations ----------------------------------------------------------
@pytest.mark.usefixtures("fake")
def test_overlapping_evaluations_both_keep_their_metrics(tmp_path, monkeypatch):
    import threading

    from disbench import metrics
    from disbench.run.evaluate import evaluate_run

    run_dir = train(_cfg(), tmp_path, progress=False)
    real = metrics.evaluate
    inside, go_on = threading.Event(), threading.Event()

    def slow_hoyer(model, dataset, todo, *args, **kw):
        if "hoyer" in todo:  # the first evaluation stops mid-way, after reading metrics.json
            inside.set()
            go_on.wait(60)
        return real(model, dataset, todo, *args, **kw)

    monkeypatch.setattr(metrics, "evaluate", slow_hoyer)
    errors = []

    def run(names):
        try:
            evaluate_run(run_dir, names, num_train=50, num_test=30)
        except Exception as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    first = threading.Thread(target=run, args=(["hoyer"],))
    second = threading.Thread(target=run, args=(["mig"],))
    first.start()
    assert inside.wait(60)
    second.start()
    second.join(timeout=5)  # without the lock it finishes here; with it, it waits
    go_on.set()
    first.join(60)
    second.join(60)
    assert not errors, errors
    doc = RunFolder(run_dir).read_metrics()
    assert {r["metric"] for r in doc["records"]} >= {"hoyer", "mig"}
    assert set(doc["evaluated"]) == {"hoyer", "mig"}
    assert not (run_dir / ".lock").exists()


# -- item 4: a lock whose pid now belongs to another live process -----------------------------
@pytest.fixture
def stranger():
    """A live process that holds no lock (what a reused pid points at after a reboot)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_lock_of_a_reused_pid_is_stale_once_its_heartbeat_is_old(tmp_path, stranger):
    import socket

    from disbench.run import lock

    path = tmp_path / ".lock"
    path.write_text(json.dumps({"pid": stranger, "host": socket.gethostname(),
                                "time": time.time() - 3600}))
    assert lock.try_lock(tmp_path) is None  # a fresh heartbeat: maybe a real holder
    _age(path, lock.LOCAL_STALE_SECONDS + 5)
    assert lock.is_stale(path)
    got = lock.try_lock(tmp_path)
    assert got is not None
    assert json.loads(path.read_text())["pid"] == os.getpid()
    got.release()


def test_a_waiting_run_says_whom_it_waits_for(tmp_path, stranger, caplog):
    import socket

    from disbench.run import lock

    since = time.time() - 90
    (tmp_path / ".lock").write_text(json.dumps({"pid": stranger, "host": socket.gethostname(),
                                                "time": since}))
    with caplog.at_level("INFO"):
        assert lock.wait_lock(tmp_path, poll=0.05, timeout=0.3) is None
    said = [r.getMessage() for r in caplog.records if "waits for" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in caplog.records]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))
    assert str(tmp_path) in said[0] and f"pid {stranger}" in said[0] and stamp in said[0]


# -- item 6: hyperparameter ranges, diverged training -----------------------------------------
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(("model", "key", "value", "expect"), [
    ("beta_vae", "beta", NAN, "finite"),
    ("beta_vae", "beta", INF, "finite"),
    ("beta_vae", "beta", -4, ">= 0"),
    ("beta_tcvae", "beta", -1, ">= 0"),
    ("factor_vae", "gamma", -35, ">= 0"),
    ("factor_vae", "disc_lr", 0, "> 0"),
    ("factor_vae", "disc_beta1", 1.0, "< 1"),
    ("dip_vae_i", "lambda_od", NAN, "finite"),
    ("wae_mmd", "lambda", -10, ">= 0"),
    ("wae_gan", "disc_layers", 0, ">= 1"),
    ("ab_vae", "df", 0, "> 0"),
    ("ab_vae", "gamma", 1.5, "<= 1"),
    ("ab_vae", "prior_variances", [1.0, -2.0], "> 0"),
    ("gwae", "critic_lr", INF, "finite"),
    ("gwae", "coef_gp", -1, ">= 0"),
    ("dsvae", "beta", -1, ">= 0"),
    ("rwae_mmd", "beta_1", -1, ">= 0"),
    ("vae", "likelihood_scale", INF, "finite"),
])
def test_hyperparameter_ranges_are_checked(model, key, value, expect):
    from disbench import baselines

    with pytest.raises(DisbenchError) as info:
        baselines.create(model, **{key: value})
    msg = str(info.value)
    assert key in msg and expect in msg, msg


def test_every_numeric_hyperparameter_declares_its_range():
    from disbench import baselines
    from disbench.baselines.base import undeclared_ranges

    missing = {name: undeclared_ranges(baselines.MODELS[name].Hparams)
               for name in baselines.names()}
    assert not {k: v for k, v in missing.items() if v}, missing
    for name in baselines.names():  # every default is inside its own range
        baselines.MODELS[name].Hparams()


@pytest.mark.parametrize("lr", [INF, NAN, -1e-4, 0])
def test_learning_rate_must_be_finite_and_positive(lr):
    with pytest.raises(DisbenchError, match="lr must be a finite positive number"):
        _cfg(lr=lr)


def test_spec_refuses_nan_beta_before_training():
    from disbench.sweeps.spec import parse_spec

    text = "datasets: [dsprites]\nmodels: [{name: beta_vae, beta: .nan}]\n" \
           "train: {steps: 2}\nmetrics: [mig]\n"
    spec = parse_spec(text, source="s.yaml")
    with pytest.raises(DisbenchError, match=r"s.yaml: key 'models\[0\]' \(line 2\): .*beta"):
        spec.run_configs()
    with pytest.raises(DisbenchError, match=r"'train.lr' \(line 3\): must be a finite"):
        parse_spec(text.replace("steps: 2", "steps: 2, lr: .inf"), source="s.yaml")


@pytest.mark.usefixtures("fake")
def test_diverged_training_stops_names_the_step_and_exits_non_zero(tmp_path, capsys):
    from disbench import cli

    argv = ["train", "vae", "--dataset", "fake", "--steps", "40", "--batch-size", "8",
            "--device", "cpu", "--out", str(tmp_path), "--log-every", "10", "--lr", "1e30",
            "--set", "latent_dim=4", "--no-progress"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: training diverged") and "at step" in err, err
    assert len(err.strip().splitlines()) == 1, err
    run_dir = next((tmp_path / "fake" / "vae").iterdir())
    assert not (run_dir / "model.pt").exists()  # no checkpoint of non-finite weights
    rows = RunFolder(run_dir).read_log()
    assert len(rows) == 1 and rows[0]["loss"] == "nan"  # it stopped at the first bad row


@pytest.mark.usefixtures("fake")
def test_sweep_records_the_divergence_in_error_json(tmp_path):
    from disbench.sweeps.spec import parse_spec
    from disbench.sweeps.sweep import run_sweep

    spec = parse_spec("datasets: [{name: fake, source: synthetic}]\n"
                      "models: [{name: vae, latent_dim: 4}]\n"
                      "train: {steps: 40, batch_size: 8, lr: 1e30, log_every: 10, device: cpu}\n"
                      "metrics: [hoyer]\neval: {num_train: 40, num_test: 20}\n")
    summary = run_sweep(spec, tmp_path, jobs=1, progress=False)
    assert summary.count("failed") == 1, summary.results
    res = summary.failed[0]
    assert res.stage == "train" and "diverged" in res.error
    err = RunFolder(res.run_dir).read_error()
    assert err["type"] == "TrainingDiverged" and err["divergence"]["what"] == "loss"
    assert 1 <= err["divergence"]["step"] <= 10


# -- item 5 (the in-process half; parallel sweeps are in test_sweep.py) -----------------------
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_to_train_checkpoints_the_step_reached(tmp_path, signame):
    import signal
    import subprocess
    import sys

    signum = getattr(signal, signame)

    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "disbench", "train", "vae", "--dataset", "dsprites",
           "--source", "synthetic", "--steps", "100000", "--batch-size", "8", "--device", "cpu",
           "--set", "latent_dim=4", "--out", str(out), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(tmp_path / "err.txt", "w") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not list(out.glob("*/*/*/config.json")):
            assert proc.poll() is None, (tmp_path / "err.txt").read_text()
            time.sleep(0.05)
        proc.send_signal(signum)
        assert proc.wait(timeout=120) == 128 + signum, (tmp_path / "err.txt").read_text()
    finally:
        proc.kill()
    run_dir = next(out.glob("*/*/*"))
    status = RunFolder(run_dir).status()
    assert status is not None and 0 <= status["step"] < 100000
    assert f"interrupted (stopped by {signame})" in (tmp_path / "err.txt").read_text()


# -- item 8: one-line errors naming the file and the fix --------------------------------------
def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


TRAIN = ["train", "vae", "--dataset", "fake", "--steps", "4", "--batch-size", "8", "--seed", "1",
         "--device", "cpu", "--log-every", "2", "--checkpoint-every", "2", "--set",
         "latent_dim=4", "--no-progress"]


@pytest.mark.usefixtures("fake")
def test_full_disk_while_checkpointing_is_one_line_naming_the_file(tmp_path, monkeypatch,
                                                                   capsys):
    import errno

    from disbench import cli

    def full(*args, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")  # as write() raises it

    monkeypatch.setattr(torch, "save", full)
    assert cli.main([*TRAIN, "--out", str(tmp_path)]) == 1
    err = _one_line_error(capsys)
    assert "disk full" in err and "model.pt" in err and "free space" in err, err


@pytest.mark.parametrize(("code", "expect"), [
    ("EROFS", "read-only file system"),
    ("ENOTDIR", "is a file, not a folder"),
    ("EEXIST", "already exists"),
    ("EACCES", "permission denied"),
])
def test_os_errors_are_one_line_naming_the_file(code, expect, monkeypatch, capsys):
    import errno

    from disbench import cli
    from disbench.cli import leaderboard

    def fail(args):  # noqa: ARG001 (stands in for run(args))
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)), "/some/file")

    monkeypatch.setattr(leaderboard, "run", fail)
    assert cli.main(["leaderboard", "/runs"]) == 1
    err = _one_line_error(capsys)
    assert expect in err and "/some/file" in err, err


@pytest.mark.parametrize("exc", [
    EOFError("Compressed file ended before the end-of-stream marker was reached"),
    __import__("zipfile").BadZipFile("File is not a zip file"),
    OSError("Unable to synchronously open file (truncated file: eof = 96)"),
])
@pytest.mark.usefixtures("fake")
def test_corrupt_dataset_files_name_the_cache_and_the_fix(tmp_path, monkeypatch, capsys,
                                                          exc):
    from disbench import cli, paths

    def broken(split, **kw):  # noqa: ARG001 (stands in for load_synthetic)
        raise exc

    monkeypatch.setattr(_Spec, "load_synthetic", staticmethod(broken))
    assert cli.main([*TRAIN, "--out", str(tmp_path)]) == 1
    err = _one_line_error(capsys)
    assert str(paths.dataset_dir("fake")) in err and "disbench datasets prepare fake" in err, err


@pytest.mark.usefixtures("fake")
def test_out_of_memory_is_one_line_with_the_fix(tmp_path, monkeypatch, capsys):
    from disbench import cli
    from disbench.run import loop

    def oom(self):  # noqa: ARG001 (stands in for __call__)
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loop.SingleStep, "__call__", oom)
    assert cli.main([*TRAIN, "--out", str(tmp_path)]) == 1
    err = _one_line_error(capsys)
    assert "out of memory" in err and "--batch-size" in err, err


@pytest.mark.usefixtures("fake")
def test_state_dict_mismatch_on_resume_names_the_checkpoint(tmp_path, capsys):
    from disbench import cli

    cfg = _cfg(steps=6)
    run_dir = train(cfg, tmp_path, progress=False, stop_after=2)
    state = load_checkpoint(run_dir / "model.pt")
    key = next(iter(state["model"]))
    state["model"][key] = torch.zeros(3, 3)  # a checkpoint of other code or hparams
    torch.save(state, run_dir / "model.pt")
    argv = [*TRAIN, "--out", str(tmp_path), "--resume"]
    argv[argv.index("--steps") + 1] = "6"
    assert cli.main(argv) == 1
    err = _one_line_error(capsys)
    assert str(run_dir / "model.pt") in err and "does not match" in err, err


@pytest.mark.usefixtures("fake")
def test_evaluate_and_plot_check_the_device_first(tmp_path, monkeypatch, capsys):
    from disbench import cli
    from disbench.run.evaluate import evaluate_run

    run_dir = train(_cfg(), tmp_path, progress=False)
    evaluate_run(run_dir, ["hoyer"], num_train=50, num_test=30)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for argv in (["evaluate", str(run_dir), "--metrics", "hoyer", "--device", "cuda"],
                 ["plot", str(run_dir), "--device", "cuda"],
                 ["evaluate", str(run_dir), "--metrics", "hoyer", "--device", "gpu"]):
        assert cli.main(argv) == 1, argv
        err = _one_line_error(capsys)
        assert err.startswith("error: --device"), err


@pytest.mark.parametrize("n", ["0", "-3", "100000"])
@pytest.mark.usefixtures("fake")
def test_plot_num_images_is_bounded(tmp_path, capsys, n):
    from disbench import cli

    run_dir = train(_cfg(), tmp_path, progress=False)
    assert cli.main(["plot", str(run_dir), "--num-images", n, "--out", str(tmp_path / "f")]) == 1
    err = _one_line_error(capsys)
    assert "--num-images" in err and "1 to 64" in err, err


@pytest.mark.parametrize("command", [
    ["train", "vae", "--dataset", "fake", "--steps", "2"],
    ["sweep", "SPEC"],
    ["leaderboard", "RUNS"],
    ["plot", "RUN"],
    ["regress", "--suite", "ci"],
])
@pytest.mark.usefixtures("fake")
def test_out_naming_an_existing_file_is_an_error(tmp_path, capsys, command):
    from disbench import cli

    (tmp_path / "RUNS").mkdir()
    spec = tmp_path / "SPEC"
    spec.write_text("datasets: [dsprites]\nmodels: [vae]\ntrain: {steps: 2}\nmetrics: [mig]\n")
    afile = tmp_path / "results.txt"
    afile.write_text("keep me")
    argv = [str(tmp_path / a) if a in ("SPEC", "RUNS", "RUN") else a for a in command]
    assert cli.main([*argv, "--out", str(afile)]) == 1
    err = _one_line_error(capsys)
    assert f"--out {afile}" in err and "not a folder" in err, err
    assert afile.read_text() == "keep me"


@pytest.mark.usefixtures("fake")
def test_sweep_on_a_full_disk_records_the_failure_or_stops_with_one_line(tmp_path,
                                                                        monkeypatch):
    import errno

    from disbench.run.folder import RunFolder as Folder
    from disbench.sweeps import sweep as sweep_mod
    from disbench.sweeps.spec import parse_spec

    spec = parse_spec("datasets: [{name: fake, source: synthetic}]\n"
                      "models: [{name: vae, latent_dim: 4}]\n"
                      "train: {steps: 2, batch_size: 8, device: cpu}\nseeds: [0, 1]\n"
                      "metrics: [hoyer]\neval: {num_train: 40, num_test: 20}\n")

    def full(*args, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", "/cache/x")

    monkeypatch.setattr(sweep_mod, "_train", full)
    summary = sweep_mod.run_sweep(spec, tmp_path / "a", jobs=1, progress=False)
    assert summary.count("failed") == 2  # recorded, as any failed run
    assert all(Folder(r.run_dir).read_error()["type"] == "OSError" for r in summary.failed)
    monkeypatch.setattr(Folder, "write_error", full)  # the disk is too full even for that
    with pytest.raises(DisbenchError) as info:
        sweep_mod.run_sweep(spec, tmp_path / "b", jobs=1, progress=False)
    msg = str(info.value)
    assert "disk full" in msg and "error.json" in msg and "sweep stops" in msg, msg


# -- the gaps a check of the fixes found -------------------------------------------------------
class _LabelledData:
    """The squares as a labelled set (four classes), without factor sampling, like MNIST."""

    name, split, binary, fingerprint, source = "fake_labelled", "train", True, "fl-v1", "synthetic"
    num_classes = 4

    def __init__(self):
        squares = _Data()
        self.images, self.image_shape = squares.images, squares.image_shape
        self.labels = np.arange(len(self.images)) % self.num_classes

    def __len__(self):
        return len(self.images)

    def tensor(self, device):
        return torch.from_numpy(self.images).to(device)


class _LabelledSpec(_Spec):
    kind = "labelled"

    @staticmethod
    def load_synthetic(split, **kw):  # noqa: ARG004 (the registry-entry interface)
        return _LabelledData()


def test_evaluate_refuses_a_metric_the_run_dataset_cannot_give(tmp_path, monkeypatch, capsys):
    from disbench import cli
    from disbench.run import evaluate

    monkeypatch.setitem(DATASETS, "fake_labelled", _LabelledSpec)
    run_dir = train(_cfg(dataset="fake_labelled"), tmp_path, progress=False)

    def no_model(*args, **kw):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(evaluate, "load_run", no_model)
    assert cli.main(["evaluate", str(run_dir), "--metrics", "psnr,mig"]) == 1
    err = _one_line_error(capsys)
    assert str(run_dir) in err and "metric 'mig' needs a ground-truth dataset" in err, err
    assert "sample_factors" in err and "dataset 'fake_labelled' (labelled)" in err, err
    assert not (run_dir / "metrics.json").exists()


def test_out_of_memory_on_the_cpu_is_one_line_with_the_fix(tmp_path, monkeypatch, capsys):
    from disbench import cli
    from disbench.run import loop

    monkeypatch.setitem(DATASETS, "fake", _Spec)

    def oom(self):  # noqa: ARG001 (stands in for __call__); torch's CPU allocator says this
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: "
                           "can't allocate memory: you tried to allocate 10000000000000000 "
                           "bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(loop.SingleStep, "__call__", oom)
    assert cli.main([*TRAIN, "--out", str(tmp_path)]) == 1
    err = _one_line_error(capsys)
    assert err.startswith("error: out of memory") and "--batch-size" in err, err
    assert "num_train" in err and "DefaultCPUAllocator" in err, err


SWEEP = ("datasets: [{name: fake, source: synthetic}]\nmodels: [{name: vae, latent_dim: 4}]\n"
         "train: {steps: 2, batch_size: 8, device: cpu}\nseeds: [0]\nmetrics: [hoyer]\n"
         "eval: {num_train: 40, num_test: 20}\n")


def _write_fails(path, text):  # noqa: ARG001 (stands in for the lock's json.dump)
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")  # as a write() raises it: no name


@pytest.mark.usefixtures("fake")
def test_full_disk_when_a_sweep_locks_a_run_names_the_lock_and_leaves_none(tmp_path,
                                                                           monkeypatch,
                                                                           capsys):
    import json as json_mod
    import types

    from disbench import cli
    from disbench.run import lock
    from disbench.sweeps.spec import load_spec

    spec = tmp_path / "s.yaml"
    spec.write_text(SWEEP)
    monkeypatch.setattr(lock, "json", types.SimpleNamespace(
        dump=_write_fails, loads=json_mod.loads, JSONDecodeError=json_mod.JSONDecodeError))
    out = tmp_path / "runs"
    assert cli.main(["sweep", str(spec), "--out", str(out), "--jobs", "1", "--no-progress"]) == 1
    err = _one_line_error(capsys)
    (cfg,) = load_spec(spec).run_configs()
    lock_file = RunFolder.for_config(cfg, out).lock_path
    assert f"disk full writing {lock_file}" in err and "free space" in err, err
    assert not lock_file.exists()  # released, not left empty


@pytest.mark.usefixtures("fake")
def test_a_sweep_stopped_while_it_waits_for_a_lock_says_so(tmp_path, monkeypatch, capsys):
    import signal
    import socket
    import types

    from disbench import cli
    from disbench.run import lock
    from disbench.sweeps.spec import load_spec

    spec = tmp_path / "s.yaml"
    spec.write_text(SWEEP)
    out = tmp_path / "runs"
    (cfg,) = load_spec(spec).run_configs()
    run_dir = RunFolder.for_config(cfg, out).path
    run_dir.mkdir(parents=True)
    held = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}
    (run_dir / ".lock").write_text(json.dumps(held))  # another sweep (a live pid) holds it

    def sigterm(seconds):  # noqa: ARG001 (stands in for the wait's sleep)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(lock, "time", types.SimpleNamespace(
        time=time.time, monotonic=time.monotonic, strftime=time.strftime,
        localtime=time.localtime, sleep=sigterm))
    code = cli.main(["sweep", str(spec), "--out", str(out), "--jobs", "1", "--no-progress"])
    assert code == 128 + signal.SIGTERM
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("interrupted (stopped by SIGTERM)") and str(run_dir) in err, err
    assert "waiting for its lock" in err and f"pid {os.getpid()}" in err, err
    assert "nothing to save" in err and "saved a checkpoint" not in err, err
    assert json.loads((run_dir / ".lock").read_text()) == held  # the holder's lock is kept
    from disbench.run import stop
    assert stop.requested() is None  # the stop request ended with the command


@pytest.mark.parametrize(("model", "kw", "size"), [
    ("vae", {}, 28),
    ("ab_vae", {"network": "fashion_mnist"}, 32),  # its own network takes 32x32 only
])
def test_image_shape_error_keeps_the_dataset_view_hint(model, kw, size):
    from disbench import baselines

    with pytest.raises(DisbenchError, match="image_shape must be") as info:
        baselines.create(model, image_shape=(1, 105, 105), **kw)  # Omniglot's native size
    msg = str(info.value)
    assert "got (1, 105, 105)" in msg and f"--dataset-options size={size} for omniglot" in msg
    assert f"options: {{size: {size}}}" in msg and "disbench datasets info NAME" in msg, msg
