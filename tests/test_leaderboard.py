"""Leaderboard aggregation and export, checked against numbers worked out by hand."""
import hashlib
import json
import math

import pandas as pd
import pytest
from disbench.cli import main
from disbench.report import export, leaderboard
from disbench.sweeps.spec import load_spec


def _run(root, model, hparams, seed, metrics=None, error=None, steps=100):
    cfg = {
        "model": model, "hparams": hparams, "dataset": "dsprites", "source": "synthetic",
        "split": "train", "steps": steps, "batch_size": 64, "seed": seed, "lr": None,
        "log_every": 50, "amp": None, "compile": False, "device": "cpu",
    }
    tag = hashlib.sha1(json.dumps(hparams, sort_keys=True).encode()).hexdigest()[:8]
    d = root / "dsprites" / model / f"{tag}-s{seed}"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg))
    if metrics is not None:
        recs = [
            {"metric": m, "value": v, "higher_is_better": hib, "version": "1", "spec": {}}
            for m, (v, hib) in metrics.items()
        ]
        (d / "metrics.json").write_text(json.dumps({"records": recs, "provenance": {}}))
    if error is not None:
        (d / "error.json").write_text(json.dumps({"type": "RuntimeError", "message": error}))
    return d


@pytest.fixture
def runs_root(tmp_path):
    root = tmp_path / "runs"
    # mig: higher is better; gaussian_total_correlation: lower is better (flag in records).
    _run(root, "vae", {"latent_dim": 10}, 0, {"mig": (0.1, True), "gaussian_total_correlation": (2.0, False)})
    _run(root, "vae", {"latent_dim": 10}, 1, {"mig": (0.3, True), "gaussian_total_correlation": (4.0, False)})
    _run(root, "beta_vae", {"latent_dim": 10, "beta": 4}, 0, {"mig": (0.4, True), "gaussian_total_correlation": (1.0, False)})
    _run(root, "beta_vae", {"latent_dim": 10, "beta": 4}, 1, {"mig": (0.2, True), "gaussian_total_correlation": (1.5, False)})
    _run(root, "beta_vae", {"latent_dim": 10, "beta": 4}, 2, {"mig": (0.6, True), "gaussian_total_correlation": (0.5, False)})
    _run(root, "beta_vae", {"latent_dim": 10, "beta": 4}, 3, error="CUDA out of memory")
    _run(root, "beta_vae", {"latent_dim": 10, "beta": 2}, 0, {"mig": (0.25, True), "gaussian_total_correlation": (3.0, False)})
    return root


def test_runs_table(runs_root):
    runs, hib = leaderboard.collect_runs(runs_root)
    assert len(runs) == 7
    assert list(hib) == ["mig", "gaussian_total_correlation"]
    assert hib["gaussian_total_correlation"] is False and hib["mig"] is True
    # beta differs between beta_vae variants -> in the label; latent_dim is shared -> not.
    assert set(runs["variant"]) == {"vae", "beta_vae (beta=4)", "beta_vae (beta=2)"}
    failed = runs[runs["status"] == "failed"]
    assert len(failed) == 1 and "CUDA out of memory" in failed["error"].iloc[0]


def test_label_names_a_non_default_likelihood_even_when_shared(tmp_path):
    root = tmp_path / "runs"
    _run(root, "beta_vae", {"beta": 4, "likelihood": "gaussian"}, 0, {"mig": (0.1, True)})
    _run(root, "beta_vae", {"beta": 4, "likelihood": "gaussian"}, 1, {"mig": (0.2, True)})
    _run(root, "vae", {"likelihood": "bernoulli"}, 0, {"mig": (0.3, True)})  # the default
    runs, _ = leaderboard.collect_runs(root)
    assert set(runs["variant"]) == {"beta_vae (likelihood=gaussian)", "vae"}
    # the default next to the option: both named
    _run(root, "beta_vae", {"beta": 4, "likelihood": "bernoulli"}, 0, {"mig": (0.4, True)})
    runs, _ = leaderboard.collect_runs(root)
    assert set(runs["variant"]) == {"beta_vae (likelihood=gaussian)",
                                    "beta_vae (likelihood=bernoulli)", "vae"}


def test_aggregate_by_hand(runs_root):
    _runs, board, _hib = leaderboard.build(runs_root)
    row = board.set_index("variant")
    # vae: mig (0.1, 0.3) -> mean 0.2, sample std sqrt((0.01 + 0.01) / 1)
    assert row.loc["vae", "mig_mean"] == pytest.approx(0.2)
    assert row.loc["vae", "mig_std"] == pytest.approx(math.sqrt(0.02))
    assert row.loc["vae", "n"] == 2
    # beta=4: mig (0.4, 0.2, 0.6) -> mean 0.4, std sqrt((0 + 0.04 + 0.04) / 2) = 0.2
    assert row.loc["beta_vae (beta=4)", "mig_mean"] == pytest.approx(0.4)
    assert row.loc["beta_vae (beta=4)", "mig_std"] == pytest.approx(0.2)
    # TC (1.0, 1.5, 0.5) -> mean 1.0, std 0.5
    assert row.loc["beta_vae (beta=4)", "gaussian_total_correlation_mean"] == pytest.approx(1.0)
    assert row.loc["beta_vae (beta=4)", "gaussian_total_correlation_std"] == pytest.approx(0.5)
    assert row.loc["beta_vae (beta=4)", "n"] == 3
    assert row.loc["beta_vae (beta=4)", "n_failed"] == 1
    # a single seed: std is undefined
    assert row.loc["beta_vae (beta=2)", "n"] == 1
    assert math.isnan(row.loc["beta_vae (beta=2)", "mig_std"])


def test_latex_and_markdown_bold_best(runs_root):
    _runs, board, hib = leaderboard.build(runs_root)
    md = export.to_markdown(board, hib)
    # mig best = beta=4 (0.4, higher is better); TC best = beta=4 (1.0, lower is better)
    line = next(ln for ln in md.splitlines() if ln.startswith("| beta_vae (beta=4)"))
    assert "**0.400 ± 0.200**" in line and "**1.000 ± 0.500**" in line
    vae = next(ln for ln in md.splitlines() if ln.startswith("| vae "))
    assert "0.200 ± 0.141" in vae and "**" not in vae
    single = next(ln for ln in md.splitlines() if ln.startswith("| beta_vae (beta=2)"))
    assert "| 0.250 |" in single  # one seed: mean only
    tex = export.to_latex(board, hib)
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "$\\mathbf{0.400 \\pm 0.200}$" in tex and "$\\mathbf{1.000 \\pm 0.500}$" in tex
    assert "beta\\_vae (beta=4)" in tex
    assert tex.count("\\mathbf") == 2


def test_lower_is_better_picks_minimum():
    board = pd.DataFrame({
        "dataset": ["d", "d"], "source": ["s", "s"], "model": ["a", "b"], "variant": ["a", "b"],
        "n": [1, 1], "n_failed": [0, 0], "fid_mean": [10.0, 5.0], "fid_std": [float("nan")] * 2,
        "fid_n": [1, 1],
    })
    assert export.best_rows(board, "fid", False) == {1}
    assert export.best_rows(board, "fid", True) == {0}


def test_cli_writes_files(runs_root, tmp_path):
    out = tmp_path / "results"
    rc = main(["leaderboard", str(runs_root), "--format", "csv,latex,markdown", "--out", str(out)])
    assert rc == 0
    for name in ("runs.csv", "leaderboard.csv", "leaderboard.tex", "leaderboard.md"):
        assert (out / name).is_file()
    agg = pd.read_csv(out / "leaderboard.csv")
    assert len(agg) == 3
    per_run = pd.read_csv(out / "runs.csv")
    assert len(per_run) == 7


def test_cli_bad_format(runs_root, tmp_path, capsys):
    rc = main(["leaderboard", str(runs_root), "--format", "xlsx", "--out", str(tmp_path)])
    assert rc != 0
    assert "xlsx" in capsys.readouterr().err


def test_leaderboard_figures(runs_root, tmp_path):
    import numpy as np
    from disbench.report import plots

    # An OoD evaluation left its ROC curve in one run folder.
    run = next((runs_root / "dsprites" / "vae").iterdir())
    np.savez(run / "roc_omniglot.npz", fpr=np.array([0.0, 0.2, 1.0]),
             tpr=np.array([0.0, 0.7, 1.0]), auroc=np.float64(0.75))
    runs, board, hib = leaderboard.build(runs_root)
    written = plots.leaderboard_figures(runs, board, hib, tmp_path / "fig")
    names = sorted(p.name for p in written)
    assert names == ["bars_dsprites_synthetic.pdf", "bars_dsprites_synthetic.png",
                     "roc_dsprites_synthetic.pdf", "roc_dsprites_synthetic.png"]
    assert all(p.stat().st_size > 1000 for p in written)


def test_image_grid_layout():
    import numpy as np
    from disbench.report.plots import image_grid

    imgs = np.zeros((5, 1, 4, 4), dtype=np.float32)
    imgs[4] = 1.0
    grid = image_grid(imgs, 3, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 1)
    # the 5th image sits in row 1, column 1
    assert grid[6:10, 6:10].min() == 1.0 and grid[1:5, 1:5].max() == 0.0


def test_spec_filter_leaves_out_runs_of_other_specs(tmp_path):
    # A runs folder holding the run of the spec and a stale one from an older spec version.
    import yaml
    from disbench.report import leaderboard

    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "s", "datasets": [{"name": "dsprites", "source": "synthetic"}],
        "models": [{"name": "vae"}], "train": {"steps": 5, "batch_size": 8},
        "seeds": [0], "metrics": ["mig"]}))
    root = tmp_path / "runs"
    (cfg,) = load_spec(spec).run_configs()
    keep = cfg.run_dir(root)
    stale = root / "dsprites" / "vae" / "000000000000-s0"
    for d in (keep, stale):
        d.mkdir(parents=True)
        (d / "config.json").write_text("{}")
    assert load_spec(spec).run_dirs(root) == {keep}
    assert leaderboard.find_run_dirs(root, load_spec(spec).run_dirs(root)) == [keep]
    assert len(leaderboard.find_run_dirs(root)) == 2
