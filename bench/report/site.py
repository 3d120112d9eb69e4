"""The static results site: ``disbench report RUNS_DIR --out DIR``.

Everything the pages use lies inside ``DIR`` (pages, style sheet, script, figures,
pictures, exports), linked by relative paths, so the site opens from the file system
with no server and fetches nothing when viewed::

    DIR/index.html               one leaderboard per dataset, claims, exports
    DIR/study/<dataset>.html     seeds, hyperparameters, metric correlations, ROC, sprites
    DIR/variants/<variant>.html  settings, every seed's scores, curves, pictures
    DIR/figures/<dataset>/       the study figures (SVG)
    DIR/variants/<variant>/      the variant's pictures (PNG, GIF) and curves (SVG)
    DIR/exports/                 leaderboard.csv|.tex|.md, runs.csv, claims.csv, spearman_*.csv
    DIR/static/                  site.css, site.js

Pages are Jinja2 templates (``templates/``) filled with tables made from pandas frames
(:mod:`disbench.report.tables`). Run folders are read through :mod:`disbench.run.folder`
only. A folder holding an earlier site (marked by :data:`MARKER`) is rebuilt in place;
any other non-empty folder is refused, so a wrong ``--out`` never deletes anything.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from disbench.errors import DisbenchError
from disbench.report import export, media, plots, study, style, tables, traversals

log = logging.getLogger(__name__)

MARKER = ".disbench-site"
#: what a build writes (and a rebuild replaces) inside the site folder
OWNED = ("index.html", "static", "exports", "study", "variants", "figures", MARKER)
STATIC_FILES = ("site.css", "site.js")
EXPORT_FORMATS = ("csv", "latex", "markdown")
#: run settings shown in the "Training" list of a variant page, in this order
TRAINING_KEYS = ("dataset", "source", "split", "steps", "batch_size", "lr", "amp", "compile",
                 "log_every", "checkpoint_every", "device")


@dataclass
class SiteOptions:
    """How the site is drawn.

    traversal_mode : one of :data:`disbench.report.traversals.MODES` for the variant pages
    seed : which observations and prior samples the pictures show
    device : where models are loaded to draw pictures
    pictures : False skips loading models (tables and figures only)
    progress : show a progress bar over the variants
    """

    traversal_mode: str = "conf_interval"
    seed: int = 0
    device: str = "cpu"
    pictures: bool = True
    progress: bool = False
    title: str = "disbench results"


def build_site(runs: pd.DataFrame, board: pd.DataFrame, higher_is_better: dict[str, bool],
               out_dir: str | os.PathLike, *, claims: pd.DataFrame | None = None,
               options: SiteOptions | None = None) -> Path:
    """Write the site for the tables of :func:`disbench.report.leaderboard.build`.

    ``claims``: the verdicts as rows of ``ClaimResult.as_row()`` (None: no claims section).
    Returns the path of ``index.html``.
    """
    opts = options or SiteOptions()
    traversals.check_mode(opts.traversal_mode)
    out = _prepare(Path(out_dir))
    env = _environment()
    exports = _write_exports(runs, board, higher_is_better, out, claims)
    ctx = {"site_title": opts.title, "root": "../"}
    cache: dict = {}
    sections = []
    for (dataset, source), sub in board.groupby(["dataset", "source"], sort=True, dropna=False):
        tag = _slug(f"{dataset}-{source}")
        title = f"{dataset} ({source})"
        rsub = runs[(runs["dataset"] == dataset) & (runs["source"] == source)]
        sub = style.legible_order(sub)
        pages = _variant_pages(env, out, tag, title, sub, rsub, higher_is_better, opts,
                               cache, ctx)
        exports += _study_page(env, out, tag, title, sub, rsub, higher_is_better, pages, ctx)
        links = {v: os.path.relpath(p["page"], out) for v, p in pages.items()}
        sections.append({
            "tag": tag, "title": title, "study_href": f"study/{tag}.html",
            "has_roc": bool(plots.roc_curves(rsub)),
            "table": tables.leaderboard(sub, higher_is_better, table_id=f"lb-{tag}",
                                        links=links),
        })
    _render(env, "index.html", out / "index.html", title=opts.title, root="",
            site_title=opts.title, summary=_summary(runs, board), datasets=sections,
            claims=tables.claims(claims) if claims is not None and len(claims) else None,
            exports=exports, footnote=export._footnote())
    return out / "index.html"


# --------------------------------------------------------------------------- plumbing
def _prepare(out: Path) -> Path:
    """Empty what an earlier build wrote; refuse a non-empty folder that is not a site."""
    if out.exists() and not out.is_dir():
        raise DisbenchError(f"--out {out} is a file; pass a folder for the site")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise DisbenchError(f"--out {out} is not empty and holds no disbench site "
                            f"({MARKER}); pass an empty or new folder")
    for name in OWNED:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    from importlib import resources

    from disbench.atomic import write_text

    # marked first, so that a build that fails half-way can be rebuilt over
    write_text(out / MARKER, "written by disbench report; rebuilt in place\n")
    (out / "static").mkdir(parents=True)
    for name in STATIC_FILES:
        write_text(out / "static" / name,
                   (resources.files("disbench.report") / "static" / name).read_text())
    return out


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("disbench.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    # long metric names may wrap after an underscore (a zero-width space, not markup)
    env.filters["breakable"] = lambda text: str(text).replace("_", "_\u200b")
    return env


def _render(env: Any, template: str, path: Path, **ctx: Any) -> None:
    from disbench.atomic import write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, env.get_template(template).render(**ctx))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_") or "x"


def _variant_slug(tag: str, variant: str) -> str:
    digest = hashlib.sha1(f"{tag}/{variant}".encode()).hexdigest()[:6]
    return f"{tag}--{_slug(variant)[:60]}-{digest}"


def _summary(runs: pd.DataFrame, board: pd.DataFrame) -> str:
    from disbench import __version__

    ok = int((runs["status"] == "ok").sum())
    failed = int((runs["status"] == "failed").sum())
    n_ds = board[["dataset", "source"]].drop_duplicates().shape[0]
    return (f"{_count(len(runs), 'run')} ({ok} evaluated, {failed} failed), "
            f"{_count(len(board), 'variant')}, {_count(n_ds, 'dataset')}; written by "
            f"disbench {__version__}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _write_exports(runs: pd.DataFrame, board: pd.DataFrame, hib: dict[str, bool], out: Path,
                   claims: pd.DataFrame | None) -> list[dict[str, str]]:
    from disbench.atomic import write_text

    paths = export.export(board, runs, hib, out / "exports", list(EXPORT_FORMATS))
    if claims is not None and len(claims):
        write_text(out / "exports" / "claims.csv", claims.to_csv(index=False))
        paths.append(out / "exports" / "claims.csv")
    return [{"name": p.name, "href": os.path.relpath(p, out)} for p in paths]


# --------------------------------------------------------------------------- variants
def _variant_pages(env: Any, out: Path, tag: str, title: str, board: pd.DataFrame,
                   runs: pd.DataFrame, hib: dict[str, bool], opts: SiteOptions, cache: dict,
                   ctx: dict) -> dict[str, dict[str, Any]]:
    """Write every variant page of one dataset; ``{variant: {"page", "pictures"}}``."""
    from tqdm.auto import tqdm

    pages: dict[str, dict[str, Any]] = {}
    metrics = [m for m in hib if m in runs]
    for variant in tqdm(list(board["variant"]), desc=f"site {title}", unit="variant",
                        disable=not opts.progress):
        vruns = runs[runs["variant"] == variant].sort_values("seed")
        slug = _variant_slug(tag, str(variant))
        page = out / "variants" / f"{slug}.html"
        pictures, seed, note = _variant_pictures(vruns, out / "variants" / slug, page.parent,
                                                 opts, cache)
        loss = _loss_picture(vruns, out / "variants" / slug / "training.svg", page.parent)
        hparams, training = _settings(vruns)
        _render(env, "variant.html", page, **ctx, title=str(variant),
                summary=f"{title} · {_count(len(vruns), 'run')}", seeds=_seeds_table(vruns, metrics), hparams=hparams,
                training=training, loss=loss, pictures=pictures, media_seed=seed,
                media_note=note)
        pages[str(variant)] = {"page": page, "pictures": pictures}
    return pages


def _variant_pictures(vruns: pd.DataFrame, media_dir: Path, page_dir: Path,
                      opts: SiteOptions, cache: dict
                      ) -> tuple[list[media.Picture], int | None, str]:
    """Pictures of the lowest evaluated seed with a checkpoint (else of the lowest seed that
    finished training, e.g. one whose evaluation failed)."""
    from disbench.run.folder import RunFolder

    if not opts.pictures:
        return [], None, "Pictures were not drawn for this site (--no-pictures)."
    ok = [r for _, r in vruns.iterrows() if RunFolder(r["run_dir"]).has_checkpoint()
          and (r["status"] == "ok" or RunFolder(r["run_dir"]).is_trained())]
    ok.sort(key=lambda r: (r["status"] != "ok", r["seed"]))
    if not ok:
        return [], None, "No trained run with a checkpoint: nothing to draw."
    r = ok[0]
    pics, note = media.safe_model_pictures(
        r["run_dir"], media_dir, page_dir, mode=opts.traversal_mode, seed=opts.seed,
        device=opts.device, data_cache=cache)
    if r["status"] != "ok" and not note:
        note = f"Seed {int(r['seed'])} finished training but was not evaluated ({r['error']})."
    return pics, int(r["seed"]), note


def _loss_picture(vruns: pd.DataFrame, path: Path, page_dir: Path) -> media.Picture | None:
    from disbench.run.folder import RunFolder

    logs = {int(r["seed"]): RunFolder(r["run_dir"]).read_log() for _, r in vruns.iterrows()}
    written = media.plot_loss_curves(logs, path, title="Training terms (train_log.csv)")
    if written is None:
        return None
    return media.Picture(os.path.relpath(written, page_dir),
                         "Mean of each logged loss term over the last log_every steps.",
                         "training curves")


def _settings(vruns: pd.DataFrame) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The resolved hyperparameters and the training settings of the variant's first run."""
    from disbench.run.folder import RunFolder

    for run_dir in vruns["run_dir"]:
        folder = RunFolder(run_dir)
        if not folder.has_config():
            continue
        cfg = folder.read_config()
        hp = sorted((str(k), _show(v)) for k, v in (cfg.get("hparams") or {}).items())
        train = [(k, _show(cfg[k])) for k in TRAINING_KEYS if k in cfg]
        return hp, train
    return [], []


def _show(v: Any) -> str:
    return json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else str(v)


def _seeds_table(vruns: pd.DataFrame, metrics: list[str]) -> tables.Table:
    """Every seed's status and scores (the metrics some seed of the variant has)."""
    cols = ["seed", "status", *study.present_metrics(vruns, metrics)]
    frame = vruns[cols].copy()
    frame["run folder"] = [Path(p).name for p in vruns["run_dir"]]
    frame["error"] = vruns["error"].fillna("")
    return tables.frame(frame.reset_index(drop=True), table_id="seeds",
                        classes={"status": lambda s: f"status-{s}"})


# --------------------------------------------------------------------------- study
def _study_page(env: Any, out: Path, tag: str, title: str, board: pd.DataFrame,
                runs: pd.DataFrame, hib: dict[str, bool], pages: dict[str, dict[str, Any]],
                ctx: dict) -> list[dict[str, str]]:
    """Write ``study/<tag>.html`` and its figures; returns the extra exports it wrote."""
    page_dir, fig_dir = out / "study", out / "figures" / tag
    metrics = [m for m in hib if m in runs]

    def pic(path: Path | None, caption: str, alt: str) -> list[media.Picture]:
        return [] if path is None else [media.Picture(os.path.relpath(path, page_dir),
                                                      caption, alt)]

    bars = plots.plot_metric_bars(board, metrics, fig_dir / "leaderboard", title=title,
                                  higher_is_better=hib, formats=("svg",))
    matrix = study.spearman_matrix(runs, metrics)
    exports: list[dict[str, str]] = []
    if not matrix.empty:
        from disbench.atomic import write_text

        csv = out / "exports" / f"spearman_{tag}.csv"
        write_text(csv, matrix.to_csv())
        exports.append({"name": csv.name, "href": os.path.relpath(csv, out)})
    sections = [
        _section("Leaderboard", pic(bars[0] if bars else None, "Mean over seeds, std as "
                 "error bars; variants grouped by model.", "leaderboard bars")),
        _section("Distribution over seeds", pic(study.plot_seed_distributions(
            runs, metrics, fig_dir / "seeds.svg", higher_is_better=hib),
            "Box: quartiles over seeds; dots: the seeds.", "seed distributions")),
        _section("Scores against swept hyperparameters", _sweep_pictures(
            runs, metrics, hib, fig_dir, pic),
            empty="No model of this dataset has a swept setting."),
        _section("Rank correlation between metrics", pic(study.plot_correlation_heatmap(
            matrix, fig_dir / "spearman.svg", title=f"{title}: Spearman ρ over "
            f"{len(study.evaluated(runs))} runs"), "Spearman rank correlation between the "
            "metrics across every evaluated run of the dataset.", "metric correlations"),
            empty="Too few runs or metrics for a rank correlation."),
    ]
    roc = plots.roc_curves(runs)
    if roc:
        roc_files = plots.plot_roc_curves(roc, fig_dir / "roc", title=f"{title}: OoD "
                                          "detection", formats=("svg",))
        sections.append(_section("OoD detection", pic(roc_files[0], "ROC curve of each "
                                 "variant's lowest seed.", "ROC curves")))
    swaps = [media.Picture(os.path.relpath(pages[v]["page"].parent / p.src, page_dir),
                           f"{v}: {p.caption}", p.alt, p.width, True)
             for v in pages for p in pages[v]["pictures"] if p.alt == "swapped sprites"]
    if swaps:
        sections.append(_section("Sprites: swapped sequences", swaps))
    _render(env, "study.html", page_dir / f"{tag}.html", **ctx, title=f"{title}: study",
            summary=f"{_count(len(study.evaluated(runs)), 'evaluated run')}, "
                    f"{_count(len(board), 'variant')}", sections=sections)
    return exports


def _section(title: str, pictures: list[media.Picture], *, note: str = "",
             empty: str = "No evaluated run has a score.") -> dict[str, Any]:
    return {"title": title, "pictures": pictures, "note": note, "empty": empty}


def _sweep_pictures(runs: pd.DataFrame, metrics: list[str], hib: dict[str, bool],
                    fig_dir: Path, pic: Any) -> list[media.Picture]:
    fixed = {"dataset", "source", "model", "variant", "seed", "status", "error", "run_dir"}
    settings = [c for c in runs.columns if c not in fixed and c not in metrics]
    out: list[media.Picture] = []
    for model, keys in study.swept_settings(runs, settings).items():
        for key in keys:
            others = [k for k in keys if k != key]
            path = study.plot_hyperparameter_scores(
                runs, model, key, metrics, fig_dir / f"sweep_{_slug(model)}_{_slug(key)}.svg",
                others=others, higher_is_better=hib)
            out += pic(path, f"{model}: each metric against {key} (dots: seeds; line: mean ± "
                       "std).", f"{model} against {key}")
    return out
