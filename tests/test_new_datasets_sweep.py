"""Every dataset added for issue 15 trains a model and evaluates MIG through ``disbench sweep``
on its twin (a few steps and points each: this checks the plumbing, not the scores)."""
import json

from disbench.cli import main
from disbench.sweeps.spec import load_spec
from disbench.sweeps.sweep import run_dir_for

NEW = ("dsprites_noshape", "color_dsprites", "noisy_dsprites", "scream_dsprites", "smallnorb",
       "cars3d", "mpi3d_toy", "mpi3d_realistic", "mpi3d_real", "xyobject", "xysquares")

SPEC = """\
name: new-datasets
datasets: [{datasets}]
models: [{{name: vae, latent_dim: 3}}]
train: {{steps: 2, batch_size: 8, log_every: 1, device: cpu}}
seeds: [0]
metrics: [mig]
eval: {{num_train: 48, num_test: 16, batch_size: 48}}
"""


def test_every_new_dataset_trains_and_evaluates_mig_on_its_twin(tmp_path, capsys):
    spec_path = tmp_path / "new.yaml"
    spec_path.write_text(SPEC.format(datasets=", ".join(
        f"{{name: {n}, source: synthetic}}" for n in NEW)))
    out = tmp_path / "runs"
    assert main(["sweep", str(spec_path), "--out", str(out), "--jobs", "1",
                 "--no-progress"]) == 0
    assert f"{len(NEW)} runs: {len(NEW)} trained and evaluated" in capsys.readouterr().out
    for cfg in load_spec(spec_path).run_configs():
        folder = run_dir_for(cfg, out)
        config = json.loads((folder / "config.json").read_text())
        assert config["dataset"] == cfg.dataset and config["source"] == "synthetic"
        records = json.loads((folder / "metrics.json").read_text())["records"]
        mig = [r for r in records if r["metric"] == "mig"]
        assert len(mig) == 1 and 0.0 <= mig[0]["value"] <= 1.0, (cfg.dataset, mig)
