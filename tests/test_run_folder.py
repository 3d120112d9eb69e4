"""The run folder: the stored run id and record, the cheap status, and what reads checkpoints."""
import json

import numpy as np
import pytest
import torch
from disbench import cli
from disbench.datasets.registry import DATASETS
from disbench.errors import DisbenchError
from disbench.run.config import RunConfig
from disbench.run.evaluate import evaluate_run
from disbench.run.folder import RunFolder, is_trained, load_checkpoint
from disbench.run.trainer import train
from disbench.sweeps.spec import parse_spec
from disbench.sweeps.sweep import is_complete, run_dir_for, run_sweep


class _Data:
    """40 binary 64x64 squares with the attributes the trainer reads."""

    name, split, binary, fingerprint = "fake", "train", True, "fake-v1"

    def __init__(self, source):
        rng = np.random.default_rng(0)
        self.images = np.zeros((40, 1, 64, 64), np.uint8)
        for i, (r, c) in enumerate(rng.integers(0, 48, size=(40, 2))):
            self.images[i, 0, r:r + 16, c:c + 16] = 255
        self.image_shape = (1, 64, 64)
        self.source = source

    def __len__(self):
        return len(self.images)

    def tensor(self, device):
        return torch.from_numpy(self.images).to(device)

    # one factor, the image index: enough for the evaluator to draw points
    factor_names, factor_sizes = ("index",), (40,)

    def sample_factors(self, n, rng):
        return rng.randint(0, 40, size=(n, 1))

    def sample_observations_from_factors(self, factors, rng):  # noqa: ARG002 (the dataset protocol)
        return self.images[factors[:, 0]]


class _Spec:
    """A registry entry whose official files 'appear in the cache' when ``cached`` is set;
    loading them is an error, so a run that loads them is caught."""

    default_split = "train"
    cached = False

    @classmethod
    def official_available(cls, split):  # noqa: ARG003 (the registry-entry interface)
        return cls.cached

    @staticmethod
    def load_synthetic(split, **kw):  # noqa: ARG004 (the registry-entry interface)
        return _Data("synthetic")

    @staticmethod
    def load_official(split, **kw):  # noqa: ARG004 (the registry-entry interface)
        raise AssertionError("the run loaded the official files")


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setitem(DATASETS, "fake", _Spec)
    monkeypatch.setattr(_Spec, "cached", False)
    return _Spec


def _cfg(**kw):
    base = {"model": "vae", "dataset": "fake", "steps": 4, "batch_size": 8, "seed": 1,
            "log_every": 2, "checkpoint_every": 2, "device": "cpu",
            "hparams": {"latent_dim": 4}}
    base.update(kw)
    return RunConfig(**base)


def _id_part(run_dir):
    return run_dir.name.rsplit("-s", 1)[0]


@pytest.mark.usefixtures("fake")
def test_metrics_config_hash_is_the_folder_id(tmp_path):
    run_dir = train(_cfg(source="synthetic"), tmp_path, progress=False)
    evaluate_run(run_dir, ["hoyer"], num_train=50, num_test=30)
    prov = json.loads((run_dir / "metrics.json").read_text())["provenance"]
    conf = json.loads((run_dir / "config.json").read_text())
    assert prov["config_hash"] == _id_part(run_dir) == conf["run_id"]
    assert RunFolder(run_dir).run_id() == _id_part(run_dir)
    # What the bug recorded: the hash of the resolved config read back from config.json.
    assert RunConfig.from_dict(conf).run_id() != prov["config_hash"]


def test_auto_source_id_does_not_depend_on_the_cache(fake, tmp_path):
    cfg = _cfg(source="auto")
    before = cfg.run_id()
    part = train(cfg, tmp_path, progress=False, stop_after=2)
    conf = json.loads((part / "config.json").read_text())
    assert conf["source"] == "synthetic" and conf["requested_source"] == "auto"
    assert cfg.run_id() != _cfg(source="synthetic").run_id()
    fake.cached = True  # the official files appear
    assert cfg.run_id() == before and cfg.run_dir(tmp_path) == part
    # The run keeps the source it was created on (load_official would raise).
    assert train(cfg, tmp_path, progress=False, resume=True) == part
    assert json.loads((part / "config.json").read_text()) == conf  # written once
    assert is_trained(part)
    evaluate_run(part, ["hoyer"], num_train=50, num_test=30)
    prov = json.loads((part / "metrics.json").read_text())["provenance"]
    assert prov["config_hash"] == before and prov["dataset"]["source"] == "synthetic"


@pytest.mark.usefixtures("fake")
def test_status_describes_its_checkpoint(tmp_path, monkeypatch):
    run_dir = train(_cfg(source="synthetic"), tmp_path, progress=False)
    folder = RunFolder(run_dir)
    status = json.loads(folder.status_path.read_text())
    assert status["step"] == status["steps"] == 4 and status["run_id"] == _id_part(run_dir)
    ckpt = folder.checkpoint_path.read_bytes()

    def no_load(*a, **kw):
        raise AssertionError("a status check loaded a checkpoint")

    with monkeypatch.context() as m:
        m.setattr(torch, "load", no_load)
        assert folder.is_trained() and folder.trained_step() == 4
        assert RunFolder.for_config(_cfg(source="synthetic"), tmp_path).is_trained()
        # A status written for another run (a copied folder) is not this run's.
        assert not RunFolder(run_dir, run_id="0" * 12).is_trained()
        assert is_complete(RunFolder(run_dir), [], {})
        folder.checkpoint_path.write_bytes(b"garbage")
        assert not folder.is_trained() and folder.trained_step() is None
    # A folder without a status (written before status files): train() reads the
    # checkpoint once, finds it complete, records the status and changes nothing else.
    folder.checkpoint_path.write_bytes(ckpt)
    folder.status_path.unlink()
    assert not folder.is_trained()
    assert train(_cfg(source="synthetic"), tmp_path, progress=False) == run_dir
    assert folder.is_trained() and folder.checkpoint_path.read_bytes() == ckpt


@pytest.mark.usefixtures("fake")
def test_evaluate_records_the_status_of_an_old_folder(tmp_path):
    run_dir = train(_cfg(source="synthetic"), tmp_path, progress=False)
    RunFolder(run_dir).status_path.unlink()
    evaluate_run(run_dir, ["hoyer"], num_train=50, num_test=30)
    assert is_trained(run_dir)
    state = load_checkpoint(run_dir / "model.pt")
    state["step"] = 2  # an unfinished checkpoint, and no status: not trained
    torch.save(state, run_dir / "model.pt")
    RunFolder(run_dir).status_path.unlink()
    with pytest.raises(DisbenchError, match="not fully trained"):
        evaluate_run(run_dir, ["hoyer"], num_train=50, num_test=30, force=True)


SPEC = """\
name: tiny
datasets: [{name: dsprites, source: synthetic}]
models: [{name: beta_vae, latent_dim: 4, beta: [2, 4]}]
train: {steps: 3, batch_size: 8, log_every: 1, device: cpu}
seeds: [0]
metrics: [hoyer]
eval: {num_train: 64, num_test: 32}
"""


@pytest.mark.parametrize("ensembles", [False, True])
def test_finished_sweep_loads_no_checkpoint(tmp_path, monkeypatch, capsys, ensembles):
    spec = parse_spec(SPEC)
    out = tmp_path / "runs"
    first = run_sweep(spec, out, jobs=1, progress=False, ensembles=ensembles)
    assert first.count("done") == 2, first.results
    for cfg in spec.run_configs():
        d = run_dir_for(cfg, out)
        prov = json.loads((d / "metrics.json").read_text())["provenance"]
        assert prov["config_hash"] == _id_part(d)
    loads = []
    real_load = torch.load

    def counting_load(*a, **kw):
        loads.append(a[0] if a else kw.get("f"))
        return real_load(*a, **kw)

    monkeypatch.setattr(torch, "load", counting_load)
    again = run_sweep(spec, out, jobs=1, progress=False, ensembles=ensembles)
    assert again.count("skipped") == 2
    (tmp_path / "tiny.yaml").write_text(SPEC)
    assert cli.main(["sweep", str(tmp_path / "tiny.yaml"), "--out", str(out), "--jobs", "1",
                     "--no-progress"]) == 0
    assert "2 already complete" in capsys.readouterr().out
    assert loads == []
    # The counter does count: loading a run reads its checkpoint.
    load_checkpoint(run_dir_for(spec.run_configs()[0], out) / "model.pt")
    assert len(loads) == 1
