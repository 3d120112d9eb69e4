"""CPU tuning (glibc malloc thresholds): applied by the trainer and the sweep's workers,
numerically neutral, and a no-op that never raises where glibc's mallopt is absent."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from disbench.run import cpu_tuning
from disbench.run.cpu_tuning import MALLOPT_SETTINGS, CpuTuning

GLIBC = cpu_tuning.glibc_mallopt() is not None
TESTS = Path(__file__).resolve().parent


class _Squares:
    """The dataset interface the trainer needs on the CPU: 40 binary 64x64 squares."""

    name, source, split, binary, fingerprint = "squares", "synthetic", "train", True, "sq-v1"
    image_shape = (1, 64, 64)

    def __init__(self):
        rng = np.random.default_rng(0)
        self.images = np.zeros((40, 1, 64, 64), np.uint8)
        for i, (r, c) in enumerate(rng.integers(0, 48, size=(40, 2))):
            self.images[i, 0, r:r + 16, c:c + 16] = 255

    def __len__(self):
        return len(self.images)


class SquaresSpec:
    default_split = "train"

    @staticmethod
    def official_available(split):  # noqa: ARG004 (the registry entry's signature)
        return False

    @staticmethod
    def load_synthetic(split, **kw):  # noqa: ARG004 (the registry entry's signature)
        return _Squares()


@pytest.fixture
def fresh(monkeypatch):
    """Forget what this process applied, so tune_cpu runs again (and is undone after)."""
    monkeypatch.setattr(cpu_tuning, "_DONE", None)


@pytest.mark.usefixtures("fresh")
def test_each_setting_goes_to_mallopt(monkeypatch):
    calls = []
    monkeypatch.setattr(cpu_tuning, "glibc_mallopt", lambda: lambda p, v: calls.append((p, v)) or 1)
    done = cpu_tuning.tune_cpu()
    assert done.applied == MALLOPT_SETTINGS and done.reason == ""
    assert sorted(calls) == sorted([(cpu_tuning.M_MMAP_THRESHOLD, 32 * 2**20),
                                    (cpu_tuning.M_TRIM_THRESHOLD, 512 * 2**20),
                                    (cpu_tuning.M_TOP_PAD, 64 * 2**20)])
    assert cpu_tuning.tune_cpu() is done and len(calls) == 3  # once per process


@pytest.mark.usefixtures("fresh")
def test_no_glibc_is_a_no_op(monkeypatch):
    monkeypatch.setattr(cpu_tuning.platform, "libc_ver", lambda: ("", ""))
    assert cpu_tuning.glibc_mallopt() is None
    done = cpu_tuning.tune_cpu()
    assert done.applied == {} and "no mallopt" in done.reason


@pytest.mark.parametrize("failure", ["lookup raises", "call raises", "refused"])
def test_a_failing_mallopt_never_raises(monkeypatch, failure):
    def boom(*_):
        raise OSError("no such symbol")

    if failure == "lookup raises":
        monkeypatch.setattr(cpu_tuning, "glibc_mallopt", boom)
    else:
        monkeypatch.setattr(cpu_tuning, "glibc_mallopt",
                            lambda: boom if failure == "call raises" else (lambda *_: 0))
    done = cpu_tuning.set_malloc_thresholds()
    assert done.applied == {} and done.reason


def test_not_on_cuda(monkeypatch):
    calls = []
    monkeypatch.setattr(cpu_tuning, "tune_cpu", lambda: calls.append(1) or CpuTuning())
    assert cpu_tuning.tune_for(type("Dev", (), {"type": "cuda"})()) is None and calls == []
    cpu_tuning.tune_for(type("Dev", (), {"type": "cpu"})())
    assert calls == [1]


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt is absent")
def test_settings_are_accepted_by_glibc():
    """The real mallopt accepts every setting."""
    code = ("from disbench.run.cpu_tuning import tune_cpu; "
            "print(sorted(tune_cpu().applied.items()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == str(sorted(MALLOPT_SETTINGS.items()))


_CHURN = r"""
import ctypes, resource, sys
if sys.argv[1] == "on":
    from disbench.run.cpu_tuning import tune_cpu
    assert tune_cpu().applied
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def step():  # a training step's activations: 8 blocks of 8 MiB, written, then freed
    blocks = [libc.malloc(8 << 20) for _ in range(8)]
    for b in blocks:
        ctypes.memset(b, 1, 8 << 20)
    for b in reversed(blocks):
        libc.free(b)
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt is absent")
def test_freed_memory_is_reused_not_faulted_back_in():
    """What the settings are for: memory freed at a step's end is not returned to the
    system, so the next step does not page-fault it back in."""
    faults = {}
    for mode in ("off", "on"):
        out = subprocess.run([sys.executable, "-c", _CHURN, mode], capture_output=True,
                             text=True, check=True).stdout
        faults[mode] = int(out.strip())
    if faults["off"] < 1000:
        pytest.skip(f"this malloc keeps freed memory even untuned ({faults})")
    assert faults["on"] * 20 < faults["off"], faults


_TRAIN = r"""
import hashlib, json, sys
import torch
sys.path.insert(0, sys.argv[3])
from test_cpu_tuning import SquaresSpec
from disbench.datasets.registry import DATASETS
from disbench.run import cpu_tuning
from disbench.run.config import RunConfig
from disbench.run.folder import RunFolder
from disbench.run.trainer import train
if sys.argv[1] == "off":
    cpu_tuning.set_malloc_thresholds = lambda settings=None: cpu_tuning.CpuTuning(reason="off")
DATASETS["squares"] = SquaresSpec
torch.set_num_threads(1)
cfg = RunConfig(model="beta_vae", dataset="squares", steps=4, batch_size=64, seed=3,
                log_every=1, checkpoint_every=4, device="cpu")
run = train(cfg, sys.argv[2], progress=False)
state = RunFolder(run).load_checkpoint()["model"]
h = hashlib.sha256()
for k in sorted(state):
    h.update(state[k].numpy().tobytes())
print(json.dumps({"applied": cpu_tuning.tune_cpu().applied, "log": RunFolder(run).read_log(),
                  "weights": h.hexdigest()}))
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt is absent")
def test_training_is_bit_identical_with_and_without(tmp_path):
    """The trainer applies the tuning, and a run's losses and weights do not change."""
    res = {}
    for mode in ("off", "on"):
        out = subprocess.run([sys.executable, "-c", _TRAIN, mode, str(tmp_path / mode),
                              str(TESTS)], capture_output=True, text=True, check=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"}).stdout
        res[mode] = json.loads(out.strip().splitlines()[-1])
    assert res["off"]["applied"] == {} and res["on"]["applied"] == MALLOPT_SETTINGS
    assert len(res["on"]["log"]) == 4
    assert res["on"]["log"] == res["off"]["log"]
    assert res["on"]["weights"] == res["off"]["weights"]


def test_sweep_workers_apply_it(monkeypatch, tmp_path):
    from disbench.run import stop
    from disbench.sweeps import sweep

    calls = []
    monkeypatch.setattr(cpu_tuning, "tune_cpu", lambda: calls.append("tune") or CpuTuning())
    monkeypatch.setattr(stop, "worker_init", lambda _parent: None)
    monkeypatch.setattr(sweep, "run_job", lambda *a, **k: calls.append("job") or [])
    assert sweep._worker_job(os.getpid(), [], tmp_path, []) == []
    assert calls == ["tune", "job"]


def test_the_trainer_applies_it_on_cpu(monkeypatch, tmp_path):
    from disbench.datasets.registry import DATASETS
    from disbench.run.config import RunConfig
    from disbench.run.trainer import train

    calls = []
    monkeypatch.setattr(cpu_tuning, "tune_cpu", lambda: calls.append(1) or CpuTuning())
    monkeypatch.setitem(DATASETS, "squares", SquaresSpec)
    train(RunConfig(model="beta_vae", dataset="squares", steps=1, batch_size=4, seed=0,
                    log_every=1, checkpoint_every=1, device="cpu"), tmp_path, progress=False)
    assert calls == [1]


def test_openmp_env_is_set_unless_the_user_set_it():
    env = {}
    assert cpu_tuning.set_openmp_env(env) == {"OMP_WAIT_POLICY": "PASSIVE"} == env
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert cpu_tuning.set_openmp_env(env) == {} and env == {"OMP_WAIT_POLICY": "ACTIVE"}


@pytest.mark.parametrize("user", [None, "ACTIVE"])
def test_the_command_sets_it_before_torch_is_imported(user):
    code = ("import os, sys\n"
            "from disbench.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if user:
        env["OMP_WAIT_POLICY"] = user
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout.splitlines()[-1].split()
    assert out == [user or "PASSIVE", "False"]
