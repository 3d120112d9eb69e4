"""Report figures, traversals, dataset pictures and the results site, checked on small run
folders: synthesised through RunFolder's writers (exact numbers) or trained for a few steps
(tests/tiny_runs.py). The browser test is tests/test_site_browser.py."""
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from disbench.cli import main
from disbench.errors import DisbenchError
from disbench.report import leaderboard, media, plots, study, style, traversals
from disbench.run.folder import RunFolder
from scipy import stats
from tiny_runs import built_site, tiny_runs

HIB = {"mig": True, "sap": True, "gaussian_total_correlation": False}


def _write_run(root, model, hparams, seed, scores, *, log=None, error=None):
    """A run folder written through RunFolder (config, metrics, training log)."""
    tag = "-".join(f"{k}{v}" for k, v in sorted(hparams.items())) or "base"
    folder = RunFolder(root / "dsprites" / model / f"{tag}-s{seed}")
    folder.path.mkdir(parents=True)
    folder.write_config({
        "model": model, "hparams": {"latent_dim": 4, **hparams}, "dataset": "dsprites",
        "source": "synthetic", "split": "train", "steps": 10, "batch_size": 8, "seed": seed,
        "lr": 1e-3, "log_every": 5, "amp": None, "compile": False, "device": "cpu"})
    if error:
        folder.write_error({"type": "RuntimeError", "message": error})
        return folder
    folder.write_metrics({"records": [
        {"metric": m, "value": v, "higher_is_better": HIB[m], "version": "1", "spec": {}}
        for m, v in scores.items()], "evaluated": {}, "provenance": {}})
    folder.write_log(log or [{"step": 5, "loss": 3.0, "recon": 2.5, "kl": 0.5},
                             {"step": 10, "loss": 2.0, "recon": 1.8, "kl": 0.2}])
    return folder


@pytest.fixture
def synth_root(tmp_path):
    """Eight evaluated runs of three variants with scattered scores, and one failed run."""
    rng = np.random.default_rng(3)
    root = tmp_path / "runs"
    variants = [("vae", {}), ("beta_vae", {"beta": 2}), ("beta_vae", {"beta": 10})]
    for i in range(8):
        model, hp = variants[i % 3]
        _write_run(root, model, hp, i, {"mig": float(rng.uniform(0, 0.5)),
                                        "sap": float(rng.uniform(0, 0.1)),
                                        "gaussian_total_correlation": float(rng.uniform(1, 9))})
    _write_run(root, "vae", {}, 99, {}, error="CUDA out of memory")
    return root


def _svg_texts(path):
    return re.findall(r"<text[^>]*>([^<]*)</text>", Path(path).read_text())


# --------------------------------------------------------------------------- correlation
def test_spearman_matrix_equals_scipy(synth_root):
    runs, hib = leaderboard.collect_runs(synth_root)
    metrics = list(hib)
    matrix = study.spearman_matrix(runs, metrics)
    ok = runs[runs["status"] == "ok"]
    assert len(ok) == 8 and list(matrix.columns) == metrics == list(matrix.index)
    expected = stats.spearmanr(ok[metrics].to_numpy(dtype=float)).statistic
    np.testing.assert_allclose(matrix.to_numpy(), expected, rtol=0, atol=1e-12)
    # the definition by hand: Pearson correlation of the ranks
    a, b = stats.rankdata(ok["mig"]), stats.rankdata(ok["gaussian_total_correlation"])
    assert matrix.loc["mig", "gaussian_total_correlation"] == pytest.approx(
        np.corrcoef(a, b)[0, 1], abs=1e-12)


def test_spearman_matrix_constant_metric_and_two_metrics():
    runs = pd.DataFrame({"status": ["ok"] * 4, "a": [1.0, 2, 3, 4], "b": [4.0, 3, 1, 2],
                         "c": [0.5] * 4})
    m = study.spearman_matrix(runs, ["a", "b", "c"])
    assert m.loc["a", "b"] == pytest.approx(stats.spearmanr([1, 2, 3, 4], [4, 3, 1, 2])[0])
    assert np.isnan(m.loc["a", "c"]) and np.isnan(m.loc["c", "c"])
    two = study.spearman_matrix(runs, ["a", "b"])
    assert two.shape == (2, 2) and two.loc["b", "a"] == pytest.approx(-0.8)
    assert study.spearman_matrix(runs.iloc[:2], ["a", "b"]).empty  # too few runs


def test_correlation_heatmap_writes_every_value(synth_root, tmp_path):
    runs, hib = leaderboard.collect_runs(synth_root)
    matrix = study.spearman_matrix(runs, list(hib))
    path = study.plot_correlation_heatmap(matrix, tmp_path / "rho.svg", title="t")
    texts = _svg_texts(path)
    for v in matrix.to_numpy().ravel():
        assert f"{v:.2f}" in texts
    assert {"mig", "sap", "gaussian_total_correlation"} <= set(texts)


# --------------------------------------------------------------------------- figures
def test_seed_distributions_one_panel_per_metric(synth_root, tmp_path):
    runs, hib = leaderboard.collect_runs(synth_root)
    path = study.plot_seed_distributions(runs, list(hib), tmp_path / "seeds.svg",
                                         higher_is_better=hib)
    texts = _svg_texts(path)
    assert {"mig ↑", "sap ↑", "gaussian_total_correlation ↓"} <= set(texts)
    assert {"vae", "beta_vae (beta=2)", "beta_vae (beta=10)"} <= set(texts)
    assert path.read_text().count('id="axes_') == 3


def test_hyperparameter_scores(synth_root, tmp_path):
    runs, hib = leaderboard.collect_runs(synth_root)
    assert study.swept_settings(runs, ["beta", "latent_dim"]) == {"beta_vae": ["beta"]}
    path = study.plot_hyperparameter_scores(runs, "beta_vae", "beta", list(hib),
                                            tmp_path / "beta.svg", higher_is_better=hib)
    texts = _svg_texts(path)
    assert texts.count("beta") == 3  # the x label of each of the three panels
    assert {"2", "10"} <= set(texts)  # the swept values as ticks
    assert study.plot_hyperparameter_scores(runs, "vae", "beta", ["mig"],
                                            tmp_path / "x.svg") is None


def test_metric_bars_grouped_by_model_in_natural_order(synth_root, tmp_path):
    _runs, board, hib = leaderboard.build(synth_root)
    order = list(style.legible_order(board)["variant"])
    assert order == ["beta_vae (beta=2)", "beta_vae (beta=10)", "vae"]
    paths = plots.plot_metric_bars(board, list(hib), tmp_path / "bars", higher_is_better=hib,
                                   formats=("svg",))
    text = paths[0].read_text()
    assert text.count('id="axes_') == 3
    texts = _svg_texts(paths[0])
    assert "(lower is better)" in texts and "gaussian_total_correlation" in texts
    for _, row in board.iterrows():  # every mean is written at its bar
        assert f"{row['mig_mean']:.3f}" in texts
    # variants are written top to bottom in the legible order (SVG y grows downwards)
    ys = {t: float(y) for y, t in re.findall(r'<text[^>]*\by="([-\d.]+)"[^>]*>([^<]*)</text>',
                                             text) if t in order}
    assert sorted(ys, key=ys.get) == order


def test_loss_curves_one_panel_per_term(tmp_path):
    logs = {0: [{"step": "5", "loss": "3", "kl": "0.5"}, {"step": "10", "loss": "2",
                                                          "kl": "0.4"}],
            1: [{"step": "5", "loss": "2.5", "kl": "0.6"}]}
    path = media.plot_loss_curves(logs, tmp_path / "loss.svg")
    texts = _svg_texts(path)
    assert {"loss", "kl", "seed 0", "seed 1"} <= set(texts)
    assert path.read_text().count('id="axes_') == 2
    assert media.plot_loss_curves({0: []}, tmp_path / "none.svg") is None


def test_roc_curves_of_ood_runs(synth_root, tmp_path):
    run = next((synth_root / "dsprites" / "vae").iterdir())
    np.savez(run / "roc_omniglot.npz", fpr=np.array([0.0, 0.2, 1.0]),
             tpr=np.array([0.0, 0.7, 1.0]), auroc=np.float64(0.75))
    runs, _ = leaderboard.collect_runs(synth_root)
    curves = plots.roc_curves(runs)
    assert list(curves) == ["vae vs omniglot"] and curves["vae vs omniglot"][2] == 0.75
    (svg,) = plots.plot_roc_curves(curves, tmp_path / "roc", formats=("svg",))
    assert "vae vs omniglot (AUROC 0.750)" in _svg_texts(svg)


# --------------------------------------------------------------------------- traversals
def test_cycles_follow_disentanglement_lib():
    # cycle_interval(0.3, 20, -2, 2): start at the code, up to 2, down to -2, back.
    v = traversals.cycle_interval(0.3, 20, -2.0, 2.0)
    np.testing.assert_allclose(v[:6], [0.3, 0.7, 1.1, 1.5, 1.9, 1.7], atol=1e-12)
    np.testing.assert_allclose(v[10:15], [-0.3, -0.7, -1.1, -1.5, -1.9], atol=1e-12)
    assert v.min() >= -2 and v.max() <= 2
    # cycle_gaussian: the same over probabilities, clipped to [0.001, 0.999]
    g = traversals.cycle_gaussian(0.0, 20)
    probs = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.9])
    np.testing.assert_allclose(g[:7], stats.norm.ppf(np.clip(probs, 0.001, 0.999)),
                               atol=1e-9)
    f = traversals.cycle_gaussian(1.0, 20, loc=1.0, scale=2.0)
    np.testing.assert_allclose(f, 1.0 + 2.0 * g, atol=1e-9)


def test_code_stats_modes_and_kl_order():
    means = np.array([[0.0, 2.0, 0.1], [0.0, -2.0, -0.1], [0.0, 1.0, 0.3]])
    variances = np.array([[1.0, 0.1, 0.5], [1.0, 0.1, 0.5], [1.0, 0.1, 0.5]])
    s = traversals.CodeStats(means, variances)
    kl = 0.5 * (means ** 2 + variances - np.log(variances) - 1).mean(axis=0)
    order, values, what = s.order()
    assert what == "KL" and list(order) == list(np.argsort(-kl)) == [1, 2, 0]
    np.testing.assert_allclose(values, kl)
    np.testing.assert_allclose(s.scale, np.sqrt(means.var(0) + variances.mean(0)))
    assert s.interval("minmax_interval", 1) == (-2.0, 2.0)
    lo, hi = s.interval("conf_interval", 1)
    assert lo == pytest.approx(s.loc[1] - 2 * s.scale[1]) and hi == pytest.approx(
        s.loc[1] + 2 * s.scale[1])
    np.testing.assert_allclose(s.sweep("fixed_interval", 0, 5), [-2, -1, 0, 1, 2])
    det = traversals.CodeStats(means)  # no posterior: ordered by the variance of the codes
    assert det.order()[2] == "var" and list(det.order()[0]) == [1, 2, 0]
    with pytest.raises(ValueError, match="traversal mode"):
        traversals.check_mode("wobble")


def _gif_time(path):
    """Frames and total duration (ms) of a GIF (Pillow folds a frame equal to the one before
    it into that one, and a few-step model barely changes between frames: count the time)."""
    from PIL import Image

    with Image.open(path) as gif:
        total = 0
        for f in range(gif.n_frames):
            gif.seek(f)
            total += gif.info["duration"]
        return gif.n_frames, total, gif.size, gif.info["loop"]


def test_traversals_of_a_trained_run_in_every_mode(tmp_path):
    from disbench import datasets
    from disbench.run.folder import load_run
    from PIL import Image

    root, _, _ = tiny_runs()
    run = min((root / "dsprites" / "vae").iterdir())
    model, _, spec = load_run(run)
    obs = traversals.sample_images(datasets.get(spec["name"], source=spec["source"]))
    assert obs.shape == (64, 1, 64, 64)
    written = traversals.write_traversals(model, obs, tmp_path, traversals.MODES,
                                          num_animations=1)
    assert len(written) == 2 * len(traversals.MODES)
    for mode in traversals.MODES:
        frames, total, size, loop = _gif_time(tmp_path / "animated_traversals"
                                              / f"{mode}_cycle0.gif")
        assert frames <= 20 and total == 20 * 100 and loop == 0
        # 4 latents in a 2 x 2 grid of 64 px tiles, 10 px of padding around and between
        assert size == (2 * 64 + 3 * 10, 2 * 64 + 3 * 10)
        with Image.open(tmp_path / "traversal_grids" / f"{mode}_grid0.png") as grid:
            assert grid.size[1] == 4 * 64 + 3 * 2  # one row per latent


def test_plot_cli_writes_five_animations(tmp_path):
    root, _, _ = tiny_runs()
    run = min((root / "dsprites" / "vae").iterdir())
    out = tmp_path / "figs"
    assert main(["plot", str(run), "--out", str(out), "--traversals", "fixed_interval"]) == 0
    gifs = sorted(p.name for p in (out / "animated_traversals").iterdir())
    assert gifs == [f"fixed_interval_cycle{i}.gif" for i in range(5)]
    assert len(list((out / "traversal_grids").iterdir())) == 5
    assert (out / "traversals.png").is_file()  # the figures of 'disbench plot' as before


def test_plot_rejects_an_unknown_mode(capsys):
    with pytest.raises(SystemExit):
        main(["plot", "x", "--traversals", "wobble"])
    assert "wobble" in capsys.readouterr().err


# --------------------------------------------------------------------------- datasets show
def test_datasets_show_png_and_gif(tmp_path):
    from disbench import datasets
    from PIL import Image

    png, gif = tmp_path / "d.png", tmp_path / "d.gif"
    assert main(["datasets", "show", "dsprites", "--source", "synthetic", "--out",
                 str(png)]) == 0
    assert main(["datasets", "show", "dsprites", "--source", "synthetic", "--out",
                 str(gif), "--samples", "8"]) == 0
    data = datasets.get("dsprites", source="synthetic")
    with Image.open(png) as p:
        # title, 2 rows of samples, a note, one row per factor (64 px tiles, 2 px apart)
        assert p.size[1] >= 2 * 64 + len(data.factor_names) * 66
    with Image.open(gif) as g:
        assert g.n_frames == max(min(s, 10) for s in data.factor_sizes)
    assert main(["datasets", "show", "dsprites", "--source", "synthetic", "--out",
                 str(tmp_path / "d.jpg")]) == 1


def test_dataset_sheet_rows_vary_one_factor():
    from disbench import datasets
    from disbench.report import dataset_pictures as dp

    data = datasets.get("dsprites", source="synthetic")
    sheet = dp.make_sheet(data, "ground_truth", "t", n_samples=4, seed=1)
    assert sheet.samples.shape == (4, 64, 64, 3)
    assert [label for label, _ in sheet.rows] == [
        f"{n} ({s})" for n, s in zip(data.factor_names, data.factor_sizes, strict=True)]
    # the scale row holds the six scales of one base combination, in order: bigger shapes
    _, tiles = sheet.rows[data.factor_names.index("scale")]
    area = (tiles[..., 0] > 127).sum(axis=(1, 2))
    assert len(tiles) == 6 and np.all(np.diff(area) > 0)


# --------------------------------------------------------------------------- the site
class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.tables, self.best = [], [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("a", "link") and a.get("href") and not a["href"].startswith("data:"):
            self.refs.append(a["href"])
        if tag in ("img", "script") and a.get("src"):
            self.refs.append(a["src"])
        if tag == "table":
            self.tables.append(a.get("id"))
        if tag == "td" and "best" in (a.get("class") or "").split():
            self.best += 1


def _parse(path):
    p = _Links()
    p.feed(Path(path).read_text())
    return p


def test_site_is_self_contained_and_complete():
    index = built_site()
    site = index.parent
    pages = [index, *sorted(site.glob("variants/*.html")), *sorted(site.glob("study/*.html"))]
    assert len(pages) == 1 + 3 + 1
    for page in pages:
        parsed = _parse(page)
        for ref in parsed.refs:
            assert not re.match(r"[a-z]+://", ref), f"{page.name} refers outside: {ref}"
            assert (page.parent / ref.split("#")[0]).resolve().is_file(), (page.name, ref)
    idx = _parse(index)
    assert idx.tables == ["lb-dsprites-synthetic", "claims"]
    assert idx.best >= 3  # the best mean of each of the three metrics is bold
    text = index.read_text()
    assert "hoyer ↑" in text and "mig ↑" in text
    for name in ("leaderboard.csv", "leaderboard.tex", "leaderboard.md", "runs.csv",
                 "claims.csv"):
        assert f'href="exports/{name}"' in text
    assert (site / ".disbench-site").is_file()


def test_site_claims_verdicts():
    index = built_site()
    claims = pd.read_csv(index.parent / "exports" / "claims.csv")
    assert list(claims["claim"]) == ["beta4_sparser_than_vae", "not_run_claim"]
    assert claims.loc[1, "verdict"] == "not run"
    assert claims.loc[0, "verdict"] in ("holds", "holds (direction only)", "does not hold")
    assert claims.loc[0, "n_better"] == 2 and claims.loc[0, "n_than"] == 2
    html = index.read_text()
    assert "beta_vae (beta=4) has sparser codes than the VAE" in html and "not run" in html


def test_variant_page_has_settings_seeds_and_pictures():
    index = built_site()
    page = next(p for p in (index.parent / "variants").glob("*.html")
                if "beta_4" in p.name)
    html = page.read_text()
    assert "beta_vae (beta=4)" in html and "latent_dim" in html and "batch_size" in html
    seeds = re.search(r'<table id="seeds".*?</table>', html, re.DOTALL).group(0)
    assert seeds.count("<tr>") == 1 + 2  # header and the two seeds
    media_dir = page.with_suffix("")
    for name in ("traversal_conf_interval.gif", "traversal_conf_interval_grid.png",
                 "reconstructions.png", "prior_samples.png", "training.svg"):
        assert (media_dir / name).is_file() and f"{media_dir.name}/{name}" in html


def test_site_refuses_a_folder_that_is_not_a_site(tmp_path):
    root, _, _ = tiny_runs()
    (tmp_path / "mine.txt").write_text("keep me")
    assert main(["report", str(root), "--out", str(tmp_path), "--no-pictures",
                 "--no-progress"]) == 1
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_report_reads_a_claims_table_and_rebuilds_in_place(tmp_path):
    root, _, _ = tiny_runs()
    out = tmp_path / "s"
    bad = tmp_path / "bad.csv"
    bad.write_text("claim,verdict\nx,holds\n")
    assert main(["report", str(root), "--out", str(out), "--claims", str(bad),
                 "--no-pictures", "--no-progress"]) == 1
    good = tmp_path / "claims.csv"
    pd.read_csv(built_site().parent / "exports" / "claims.csv").to_csv(good, index=False)
    assert main(["report", str(root), "--out", str(out), "--claims", str(good),
                 "--no-pictures", "--no-progress"]) == 0
    assert "not_run_claim" in (out / "index.html").read_text()
    stale = out / "variants" / "stale.html"
    stale.write_text("from an older build")
    assert main(["report", str(root), "--out", str(out), "--no-pictures",
                 "--no-progress"]) == 0
    assert not stale.exists() and "not_run_claim" not in (out / "index.html").read_text()
    assert not list(out.glob("variants/*/*.gif"))  # --no-pictures: no model was drawn


def test_report_spec_claims_errors_name_the_key(tmp_path):
    root, spec, _ = tiny_runs()
    broken = tmp_path / "broken.yaml"
    broken.write_text(spec.read_text() + "claims:\n  - {id: a, metric: mig}\n")
    with pytest.raises(DisbenchError, match=r"claims\[0\]\.source"):
        main(["--debug", "report", str(root), "--out", str(tmp_path / "s"), "--spec",
              str(broken)])


def test_leaderboard_settings_for_claims():
    cfg = {"hparams": {"beta": 4, "latent_dim": 4}, "steps": 3, "seed": 1, "device": "cpu"}
    assert leaderboard.variant_settings(cfg) == {"beta": 4, "latent_dim": 4, "steps": 3}
