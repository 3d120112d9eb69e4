"""The CI regression gate: run a small deterministic suite and compare with a baseline file.

The baseline (``results/baseline/<suite>.csv``) has the columns
``dataset, model, metric, value, tolerance``: ``model`` is the leaderboard's variant label,
``value`` the mean over the suite's seeds and ``tolerance`` the allowed absolute change of
that metric. The gate fails when a score moves outside ``[value - tolerance, value +
tolerance]`` (in either direction: on CPU the suite is deterministic, so any larger change
means the code computes something different), when a baseline entry is missing from the
new results, or when a new score has no baseline row (a truncated baseline, or a metric
added to the suite; ``accept_new`` / ``--accept-new`` lets those pass as notes). The gate
reports how many baseline rows it compared against. ``--update`` rewrites the baseline on
purpose, keeping the stated tolerances.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from disbench.errors import DisbenchError

COLUMNS = ["dataset", "model", "metric", "value", "tolerance"]


def default_tolerance(metric: str) -> float:
    """The allowed absolute change of ``metric`` when a baseline is first written: the
    tolerance its evaluator declares in the metric registry (``disbench.metrics.registry``;
    the registry's default for a name no evaluator declares)."""
    from disbench.metrics import tolerance

    return tolerance(metric)


HEADER = (
    "# disbench regression baseline: mean score over the suite's seeds per dataset, model\n"
    "# variant and metric. tolerance = allowed absolute change (either direction).\n"
    "# Regenerate on purpose with: disbench regress --suite {suite} --update\n"
)


@dataclass
class Failure:
    """One score outside its tolerance (or missing)."""

    dataset: str
    model: str
    metric: str
    baseline: float
    new: float
    tolerance: float

    def __str__(self) -> str:
        if math.isnan(self.baseline):
            return (
                f"{self.dataset} / {self.model} / {self.metric}: new score {self.new:.4f} has "
                "no baseline row (a truncated baseline or a new metric: --update to record "
                "it, or --accept-new)"
            )
        if math.isnan(self.new):
            return (
                f"{self.dataset} / {self.model} / {self.metric}: baseline {self.baseline:.4f}, "
                "new value missing (run failed or metric not computed)"
            )
        return (
            f"{self.dataset} / {self.model} / {self.metric}: baseline {self.baseline:.4f}, "
            f"new {self.new:.4f} (change {self.new - self.baseline:+.4f}, "
            f"tolerance {self.tolerance:g})"
        )


def suite_path(suite: str) -> Path:
    """The spec of ``suite``: a name in ``bench/sweeps/suites`` or a path to a YAML file."""
    p = Path(suite)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise DisbenchError(f"--suite: spec file {p} not found")
        return p
    here = Path(__file__).resolve().parent / "suites" / f"{suite}.yaml"
    if not here.is_file():
        names = sorted(q.stem for q in here.parent.glob("*.yaml"))
        raise DisbenchError(f"--suite: unknown suite {suite!r}; choose one of {', '.join(names)}")
    return here


def default_baseline(suite: str) -> Path:
    """``results/baseline/<suite>.csv`` of the source checkout (else of the current folder)."""
    name = Path(suite).stem
    repo = Path(__file__).resolve().parents[2]
    root = repo if (repo / "results").is_dir() else Path.cwd()
    return root / "results" / "baseline" / f"{name}.csv"


def scores(runs_dir: str | os.PathLike) -> pd.DataFrame:
    """Long table ``dataset, model, metric, value``: each variant's mean over seeds.

    Failed and unevaluated runs contribute no score (so a baseline entry goes missing).
    """
    from disbench.report import leaderboard

    _runs, board, hib = leaderboard.build(runs_dir)
    rows = []
    for _, r in board.iterrows():
        for m in hib:
            v = r.get(f"{m}_mean")
            if v is not None and not pd.isna(v):
                rows.append({"dataset": r["dataset"], "model": r["variant"], "metric": m,
                             "value": float(v)})
    return pd.DataFrame(rows, columns=COLUMNS[:4])


def read_baseline(path: str | os.PathLike) -> pd.DataFrame:
    """Read and check a baseline CSV (comment lines start with ``#``)."""
    path = Path(path)
    if not path.is_file():
        raise DisbenchError(
            f"baseline {path} not found; create it with 'disbench regress --update'"
        )
    try:
        df = pd.read_csv(path, comment="#", dtype={"dataset": str, "model": str, "metric": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DisbenchError(f"baseline {path} is not a readable CSV: {exc}") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DisbenchError(
            f"baseline {path} lacks the column(s) {', '.join(missing)}; "
            f"expected {', '.join(COLUMNS)}"
        )
    for c in ("value", "tolerance"):
        bad = pd.to_numeric(df[c], errors="coerce").isna()
        if bad.any():
            line = int(bad.idxmax())
            raise DisbenchError(f"baseline {path}: row {line + 1}: {c} is not a number")
        df[c] = df[c].astype(float)
    if (df["tolerance"] < 0).any():
        raise DisbenchError(f"baseline {path}: a tolerance is negative")
    return df[COLUMNS]


def compare(new: pd.DataFrame, baseline: pd.DataFrame, *,
            accept_new: bool = True) -> tuple[list[Failure], list[str]]:
    """Baseline entries that moved outside their tolerance or went missing.

    Returns ``(failures, notes)``. A new score the baseline has no row for is a note with
    ``accept_new`` and a failure without it (the gate, :func:`run_regress`, defaults to
    failing).
    """
    key = ["dataset", "model", "metric"]
    merged = baseline.merge(new, on=key, how="outer", suffixes=("_base", "_new"),
                            indicator=True)
    failures: list[Failure] = []
    notes: list[str] = []
    for _, r in merged.iterrows():
        if r["_merge"] == "right_only":
            if not accept_new:
                failures.append(Failure(r["dataset"], r["model"], r["metric"], math.nan,
                                        float(r["value_new"]), math.nan))
                continue
            notes.append(f"{r['dataset']} / {r['model']} / {r['metric']}: new score "
                         f"{r['value_new']:.4f} has no baseline entry (use --update)")
            continue
        new_v = float(r["value_new"]) if r["_merge"] == "both" else math.nan
        base_v, tol = float(r["value_base"]), float(r["tolerance"])
        # A tiny float slack so that a score exactly at the tolerance edge passes.
        if math.isnan(new_v) or abs(new_v - base_v) > tol + 1e-12:
            failures.append(Failure(r["dataset"], r["model"], r["metric"], base_v, new_v, tol))
    return failures, notes


def write_baseline(
    path: str | os.PathLike, new: pd.DataFrame, suite: str, old: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Write ``new`` as the baseline; tolerances from ``old`` where it states one per metric."""
    from disbench.atomic import write_text

    stated: dict[str, float] = {}
    if old is not None:
        for m, t in zip(old["metric"], old["tolerance"], strict=True):
            stated.setdefault(m, float(t))
    df = new.copy()
    df["tolerance"] = [
        stated.get(m, default_tolerance(m)) for m in df["metric"]
    ]
    df = df.sort_values(["dataset", "model", "metric"], kind="stable")[COLUMNS]
    text = HEADER.format(suite=Path(suite).stem) + df.to_csv(index=False, float_format="%.6f")
    write_text(path, text)
    return df


@dataclass
class RegressResult:
    failures: list[Failure]
    notes: list[str]
    scores: pd.DataFrame
    runs_dir: Path
    failed_runs: list[str]
    updated: bool = False
    #: rows of the baseline the scores were compared against
    baseline_rows: int = 0
    #: new scores without a baseline row that passed as notes (``accept_new``)
    accepted_new: int = 0


def run_regress(
    suite: str = "ci",
    *,
    baseline: str | os.PathLike | None = None,
    update: bool = False,
    out: str | os.PathLike | None = None,
    jobs: int | None = None,
    progress: bool = True,
    accept_new: bool = False,
) -> RegressResult:
    """Run ``suite`` on CPU into ``out`` (default: a fresh temporary folder) and compare.

    A fresh folder is the default because a kept folder skips complete runs, whose scores
    would not reflect code changes. ``accept_new``: a score without a baseline row is a
    note, not a failure.
    """
    from disbench.sweeps.spec import load_spec
    from disbench.sweeps.sweep import run_sweep

    spec_file = suite_path(suite)
    spec = load_spec(spec_file)
    for t in spec.train:
        if t.get("device", "cpu") != "cpu":
            raise DisbenchError(
                f"{spec_file}: the regression suite must train on CPU (train.device: cpu) "
                "to be deterministic"
            )
    baseline = Path(baseline) if baseline else default_baseline(str(spec_file))
    # Read (and check) the baseline before the suite runs, so a bad file fails fast.
    old = read_baseline(baseline) if baseline.is_file() or not update else None
    tmp = None
    if out is None:
        tmp = tempfile.TemporaryDirectory(prefix="disbench-regress-")
        runs_dir = Path(tmp.name)
    else:
        runs_dir = Path(out)
    try:
        summary = run_sweep(spec, runs_dir, jobs=jobs, progress=progress)
        new = scores(runs_dir)
    finally:
        if tmp is not None:
            tmp.cleanup()
    failed_runs = [f"{r.run_dir}: {r.error}" for r in summary.failed]
    if update:
        if failed_runs:
            raise DisbenchError(
                "not updating the baseline: runs failed: " + "; ".join(failed_runs)
            )
        write_baseline(baseline, new, str(spec_file), old)
        return RegressResult([], [], new, runs_dir, failed_runs, updated=True)
    failures, notes = compare(new, old, accept_new=accept_new)
    # compare's notes are exactly the new scores accepted without a baseline row
    return RegressResult(failures, notes, new, runs_dir, failed_runs, baseline_rows=len(old),
                         accepted_new=len(notes))
