"""The study suites: paper.yaml covers the six methods of Locatello et al. 2019 with
disentanglement_lib's sweep values; weak.yaml and few_labels.yaml describe the follow-up
studies and run, shrunk to CPU size on the twins, through a real sweep."""
from pathlib import Path

import disbench
import yaml
from disbench.run.folder import RunFolder, find_run_folders
from disbench.sweeps.spec import load_spec, parse_spec
from disbench.sweeps.sweep import run_sweep

SUITES = Path(disbench.__file__).parent / "sweeps" / "suites"


def _values(spec, model, hp):
    return sorted({m["hparams"][hp] for m in spec.models if m["name"] == model})


def test_paper_suite_covers_the_six_methods_with_the_study_values():
    """config/unsupervised_study_v1/sweep.py of disentanglement_lib."""
    spec = load_spec(SUITES / "paper.yaml")
    assert {m["name"] for m in spec.models} == {"beta_vae", "annealed_vae", "factor_vae",
                                                "dip_vae_i", "dip_vae_ii", "beta_tcvae"}
    assert _values(spec, "beta_vae", "beta") == [1, 2, 4, 6, 8, 16]
    assert _values(spec, "annealed_vae", "c_max") == [5, 10, 25, 50, 75, 100]
    assert _values(spec, "annealed_vae", "gamma") == [1000]
    assert _values(spec, "annealed_vae", "iteration_threshold") == [100000]
    assert _values(spec, "factor_vae", "gamma") == [10, 20, 30, 40, 50, 100]
    assert _values(spec, "dip_vae_i", "lambda_od") == [1, 2, 5, 10, 20, 50]
    assert all(m["hparams"]["lambda_d"] == 10 * m["hparams"]["lambda_od"]
               for m in spec.models if m["name"] == "dip_vae_i")
    assert _values(spec, "dip_vae_ii", "lambda_od") == [1, 2, 5, 10, 20, 50]
    assert _values(spec, "beta_tcvae", "beta") == [1, 2, 4, 6, 8, 10]
    assert spec.train == [{"steps": 300000, "batch_size": 64, "log_every": 1000,
                           "device": "cuda"}]


def _cpu_size(name, models, train=None):
    """The suite with its protocol kept but shrunk: the dSprites twin, a few steps, one
    seed, cheap metrics on a few hundred points, and the given model entries."""
    data = yaml.safe_load((SUITES / f"{name}.yaml").read_text())
    data.update(datasets=[{"name": "dsprites", "source": "synthetic"}], models=models,
                seeds=[0], metrics=["mig"], eval={"num_train": 200, "num_test": 100})
    data["train"] = {**data["train"], "steps": 3, "batch_size": 8, "log_every": 1,
                     "device": "cpu", **(train or {})}
    return parse_spec(yaml.safe_dump(data), source=f"{name}.yaml (CPU size)")


def _sweep(spec, out):
    summary = run_sweep(spec, out, jobs=1, progress=False)
    assert summary.count("failed") == 0, [r.error for r in summary.failed]
    folders = find_run_folders(out)
    assert len(folders) == len(spec.run_dicts())
    for f in folders:
        assert f.is_trained() and [r["metric"] for r in f.metric_records()] == ["mig"]
    return folders


def test_weak_suite_runs_at_cpu_size(tmp_path):
    full = load_spec(SUITES / "weak.yaml")
    assert {m["name"] for m in full.models} == {"group_vae", "ml_vae"}
    assert {m["hparams"]["aggregation"] for m in full.models} == {"argmax", "labels"}
    assert {t["pair_k"] for t in full.train} == {1, "one_or_random"}
    spec = _cpu_size("weak", [{"name": "group_vae", "aggregation": ["argmax", "labels"]},
                              {"name": "ml_vae", "aggregation": "argmax"}])
    assert len(spec.run_dicts()) == 6  # 3 model variants x pair_k in {1, one_or_random}
    folders = _sweep(spec, tmp_path)
    assert {f.read_config()["pair_k"] for f in folders} == {1, "one_or_random"}


def test_few_labels_suite_runs_at_cpu_size(tmp_path):
    full = load_spec(SUITES / "few_labels.yaml")
    assert {m["name"] for m in full.models} == {"s2_vae", "s2_beta_tcvae", "s2_factor_vae",
                                                "s2_dip_vae", "supervised_vae"}
    assert {m["hparams"]["supervised_loss"] for m in full.models} == {"l2", "xent", "cov",
                                                                     "embed"}
    assert {t["labeller"] for t in full.train} == {"perfect", "binned", "noisy", "permuted",
                                                   "partial"}
    # one run per model, together covering every supervised loss and every labeller
    models = [{"name": "s2_vae", "supervised_loss": "l2", "train": {"labeller": "perfect"}},
              {"name": "s2_beta_tcvae", "supervised_loss": "xent",
               "train": {"labeller": "binned"}},
              {"name": "s2_factor_vae", "supervised_loss": "cov",
               "train": {"labeller": "noisy"}},
              {"name": "s2_dip_vae", "supervised_loss": "embed",
               "train": {"labeller": "permuted"}},
              {"name": "supervised_vae", "supervised_loss": "l2",
               "train": {"labeller": "partial"}}]
    spec = _cpu_size("few_labels", models, {"num_labelled": 20, "labeller": "perfect"})
    assert len(spec.run_dicts()) == 5
    folders = _sweep(spec, tmp_path)
    for f in folders:
        lab = RunFolder(f.path).read_labelled()
        assert lab["indices"].shape == (20,)
        assert str(lab["labeller"]) == f.read_config()["labeller"]
