"""The trainer, run folders and `disbench train` on a tiny in-test dataset."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from disbench import cli
from disbench.datasets.registry import DATASETS
from disbench.errors import DisbenchError
from disbench.run.config import RunConfig
from disbench.run.folder import FORMAT_VERSION, is_trained, load_checkpoint, load_run
from disbench.run.trainer import train


class _FakeData:
    """The dataset interface the trainer needs: 40 binary 64x64 squares."""

    name, source, split, binary = "fake", "synthetic", "train", True

    def __init__(self):
        rng = np.random.default_rng(0)
        imgs = np.zeros((40, 1, 64, 64), np.uint8)
        for i, (r, c) in enumerate(rng.integers(0, 48, size=(40, 2))):
            imgs[i, 0, r:r + 16, c:c + 16] = 255
        self.images = imgs
        self.image_shape = (1, 64, 64)
        self.fingerprint = "fake-v1"

    def __len__(self):
        return len(self.images)

    def tensor(self, device):
        return torch.from_numpy(self.images).to(device)


class _FakeSpec:
    default_split = "train"

    @staticmethod
    def official_available(split):  # noqa: ARG004 (the registry-entry interface)
        return False

    @staticmethod
    def load_synthetic(split, **kw):  # noqa: ARG004 (the registry-entry interface)
        return _FakeData()


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setitem(DATASETS, "fake", _FakeSpec)
    return "fake"


def _cfg(model="beta_vae", **kw):
    base = {"model": model, "dataset": "fake", "steps": 6, "batch_size": 8, "seed": 3,
            "log_every": 2, "checkpoint_every": 4, "device": "cpu"}
    base.update(kw)
    return RunConfig(**base)


@pytest.mark.usefixtures("fake")
def test_train_writes_run_folder(tmp_path):
    cfg = _cfg()
    run_dir = train(cfg, tmp_path, progress=False)
    assert run_dir == tmp_path / "fake" / "beta_vae" / f"{cfg.run_id()}-s3"
    conf = json.loads((run_dir / "config.json").read_text())
    assert conf["hparams"]["beta"] == 4.0 and conf["hparams"]["likelihood"] == "bernoulli"
    assert conf["hparams"]["image_shape"] == [1, 64, 64]
    assert conf["dataset_fingerprint"] == "fake-v1" and conf["source"] == "synthetic"
    assert conf["lr"] == 1e-4 and conf["torch_version"] == torch.__version__
    rows = list(csv.DictReader((run_dir / "train_log.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    assert {"loss", "recon", "kl"} <= set(rows[0])
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    state = load_checkpoint(run_dir / "model.pt")
    assert state["step"] == 6 and state["format_version"] == FORMAT_VERSION
    assert is_trained(run_dir)
    model, lcfg, spec = load_run(run_dir)
    assert lcfg.model == "beta_vae" and spec["fingerprint"] == "fake-v1"
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["model"][k])


@pytest.mark.usefixtures("fake")
def test_finished_run_is_not_overwritten(tmp_path, caplog):
    run_dir = train(_cfg(), tmp_path, progress=False)
    before = (run_dir / "model.pt").read_bytes()
    with caplog.at_level("INFO"):
        assert train(_cfg(), tmp_path, progress=False) == run_dir
    assert "already complete" in caplog.text
    assert (run_dir / "model.pt").read_bytes() == before


@pytest.mark.parametrize("model", ["beta_vae", "factor_vae"])
@pytest.mark.usefixtures("fake")
def test_resume_equals_uninterrupted(tmp_path, model):
    cfg = _cfg(model, steps=8)
    full = train(cfg, tmp_path / "a", progress=False)
    part = train(cfg, tmp_path / "b", progress=False, stop_after=4)
    assert not is_trained(part)
    with pytest.raises(DisbenchError, match="--resume"):
        train(cfg, tmp_path / "b", progress=False)
    train(cfg, tmp_path / "b", progress=False, resume=True)
    a, b = load_checkpoint(full / "model.pt"), load_checkpoint(part / "model.pt")
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for name in a["optimizers"]:
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        for i in sa:
            for key in sa[i]:
                assert torch.equal(sa[i][key], sb[i][key])
    # the log is identical too, without duplicated rows
    assert (full / "train_log.csv").read_text() == (part / "train_log.csv").read_text()


@pytest.mark.usefixtures("fake")
def test_run_id_ignores_device_and_log_every_but_not_hparams():
    a = _cfg()
    assert a.run_id() == _cfg(device="auto", log_every=1, checkpoint_every=9).run_id()
    assert a.run_id() != _cfg(hparams={"beta": 8}).run_id()
    assert a.run_id() != _cfg(seed=4).run_id()
    # setting a hyperparameter to its default is the same run
    assert a.run_id() == _cfg(hparams={"beta": 4}).run_id()


@pytest.mark.usefixtures("fake")
def test_unknown_hparam_is_an_error_listing_valid_keys(tmp_path):
    with pytest.raises(DisbenchError, match=r"unknown hyperparameter\(s\) betta.*valid keys:.*beta"):
        train(_cfg(hparams={"betta": 2}), tmp_path, progress=False)


@pytest.mark.usefixtures("fake")
def test_corrupt_and_foreign_checkpoints_are_clear_errors(tmp_path):
    run_dir = train(_cfg(steps=2), tmp_path, progress=False)
    ckpt = run_dir / "model.pt"
    state = load_checkpoint(ckpt)
    state["format_version"] = 999
    torch.save(state, ckpt)
    with pytest.raises(DisbenchError, match="format_version 999.*retrain"):
        load_run(run_dir)
    ckpt.write_bytes(b"garbage")
    with pytest.raises(DisbenchError, match=r"model\.pt is not a readable disbench checkpoint"):
        load_run(run_dir)
    assert not is_trained(run_dir)


@pytest.mark.usefixtures("fake")
def test_cli_train(tmp_path, capsys):
    argv = ["train", "vae", "--dataset", "fake", "--steps", "3", "--batch-size", "8",
            "--seed", "1", "--device", "cpu", "--out", str(tmp_path), "--log-every", "1",
            "--set", "latent_dim=4", "--no-progress"]
    assert cli.main(argv) == 0
    run_dir = capsys.readouterr().out.strip().splitlines()[-1]
    conf = json.loads((Path(run_dir) / "config.json").read_text())
    assert conf["hparams"]["latent_dim"] == 4 and conf["steps"] == 3
    assert cli.main(argv[:-3] + ["--set", "nope=1", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unknown hyperparameter(s) nope") and "latent_dim" in err
    assert cli.main(argv[:-3] + ["--set", "novalue", "--no-progress"]) == 1
    assert "key=value" in capsys.readouterr().err


def test_cli_help_text(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    for flag in ("--dataset", "--set", "--resume", "--amp", "--compile", "--log-every", "--lr"):
        assert flag in out
