"""Leaderboards: collect run folders into pandas tables, per run and aggregated over seeds.

A run folder holds ``config.json`` and, once evaluated, ``metrics.json``; a failed run holds
``error.json``. :func:`collect_runs` makes one row per run folder; :func:`aggregate` makes,
per dataset, one row per model variant with each metric's mean, standard deviation (sample
std, ddof=1; NaN for a single seed) and count over seeds.

A *variant* is a model with one setting of its hyperparameters and training settings;
seeds of one variant are aggregated. Within a dataset and model, the settings whose values
differ between variants become part of the row label, e.g. ``beta_vae (beta=4)``.
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd
from disbench.errors import DisbenchError

log = logging.getLogger(__name__)

# Settings that do not change what a run computes: never part of a variant.
NON_VARIANT_KEYS = {"seed", "device", "log_every", "model", "dataset", "source", "split"}
TRAIN_VARIANT_KEYS = ("steps", "batch_size", "lr", "amp", "compile")
GROUP_KEYS = ["dataset", "source", "model", "variant"]


def read_config(run_dir: Path) -> dict[str, Any]:
    """The run's resolved config from ``config.json`` (a nested ``config`` key is unwrapped)."""
    data = json.loads((run_dir / "config.json").read_text())
    if isinstance(data.get("config"), dict):
        data = data["config"]
    return data


def find_run_dirs(root: str | os.PathLike, only: set[Path] | None = None) -> list[Path]:
    """Every folder under ``root`` holding a ``config.json`` or an ``error.json``, sorted.

    ``only``: keep just these folders (the runs of one spec), so runs left in the folder by
    an earlier version of the spec do not enter the table.
    """
    root = Path(root)
    if not root.is_dir():
        raise DisbenchError(f"runs folder {root} not found; pass the --out folder of a sweep")
    dirs = {p.parent for p in root.rglob("config.json")}
    dirs |= {p.parent for p in root.rglob("error.json")}
    if only is not None:
        dirs &= {Path(d) for d in only}
    return sorted(dirs)


def spec_run_dirs(spec_path: str | os.PathLike, root: str | os.PathLike) -> set[Path]:
    """The run folders the sweep spec at ``spec_path`` would write under ``root``."""
    from disbench.sweeps.spec import load_spec

    return {cfg.run_dir(root) for cfg in load_spec(spec_path).run_configs()}


def _run_status(run_dir: Path, records: list[dict]) -> tuple[str, str]:
    err = run_dir / "error.json"
    if err.is_file():
        try:
            info = json.loads(err.read_text())
            return "failed", f"{info.get('type', 'Error')}: {info.get('message', '')}"
        except (OSError, json.JSONDecodeError):
            return "failed", "unreadable error.json"
    if records:
        return "ok", ""
    return "incomplete", ""


def collect_runs(root: str | os.PathLike, only: set[Path] | None = None
                 ) -> tuple[pd.DataFrame, dict[str, bool]]:
    """One row per run folder under ``root``.

    Returns
    -------
    runs : DataFrame
        Columns ``dataset, source, model, variant, seed, status, error, run_dir``, the
        variant settings (hyperparameters by name; training settings ``steps`` etc.), and
        one column per metric.
    higher_is_better : dict
        Per metric: from :data:`disbench.metrics.HIGHER_IS_BETTER`, else the records' own
        ``higher_is_better`` flag.
    """
    rows: list[dict[str, Any]] = []
    settings: list[dict[str, Any]] = []
    hib: dict[str, bool] = {}
    metric_order: list[str] = []
    for run_dir in find_run_dirs(root, only):
        try:
            cfg = read_config(run_dir) if (run_dir / "config.json").is_file() else None
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("skipping %s: unreadable config.json (%s)", run_dir, exc)
            continue
        if cfg is None:
            # Failed before training wrote anything: the sweep stores its config with the error.
            try:
                cfg = json.loads((run_dir / "error.json").read_text()).get("config")
            except (OSError, json.JSONDecodeError):
                cfg = None
            if not isinstance(cfg, dict):
                log.warning("skipping %s: no config.json and no config in error.json", run_dir)
                continue
        records = _read_records(run_dir)
        status, error = _run_status(run_dir, records)
        row: dict[str, Any] = {
            "dataset": cfg.get("dataset"),
            "source": cfg.get("source"),
            "model": cfg.get("model"),
            "seed": cfg.get("seed"),
            "status": status,
            "error": error,
            "run_dir": str(run_dir),
        }
        for rec in records:
            name = rec["metric"]
            row[name] = float(rec["value"]) if rec.get("value") is not None else math.nan
            hib.setdefault(name, bool(rec.get("higher_is_better", True)))
            if name not in metric_order:
                metric_order.append(name)
        rows.append(row)
        settings.append(_variant_settings(cfg))
    try:
        from disbench.metrics import HIGHER_IS_BETTER
    except ImportError:  # the metrics package may not declare it yet
        HIGHER_IS_BETTER = {}
    for name in hib:
        if name in HIGHER_IS_BETTER:
            hib[name] = bool(HIGHER_IS_BETTER[name])
    df = pd.DataFrame(rows)
    if df.empty:
        return df, hib
    labels, varying = _variant_labels(df, settings)
    df.insert(3, "variant", labels)
    setting_cols = [k for k in varying if k not in df.columns]
    for k in setting_cols:
        df[k] = [_scalar(s.get(k)) for s in settings]
    cols = ["dataset", "source", "model", "variant", "seed", *setting_cols]
    cols += [m for m in metric_order] + ["status", "error", "run_dir"]
    df = df.reindex(columns=cols)
    df = df.sort_values(["dataset", "source", "model", "variant", "seed"], kind="stable")
    df = df.reset_index(drop=True)
    df.attrs["metrics"] = list(metric_order)
    return df, {m: hib[m] for m in metric_order}


def _read_records(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.json"
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("ignoring unreadable %s (%s)", path, exc)
        return []
    records = data.get("records", []) if isinstance(data, dict) else []
    return [r for r in records if isinstance(r, dict) and "metric" in r]


def _variant_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """The settings that define a variant: hyperparameters and training settings."""
    out: dict[str, Any] = {}
    hp = cfg.get("hparams") or {}
    for k, v in hp.items():
        out[k] = v
    for k in TRAIN_VARIANT_KEYS:
        if k in cfg and k not in out:
            out[k] = cfg[k]
    return {k: v for k, v in out.items() if k not in NON_VARIANT_KEYS}


def _scalar(v: Any) -> Any:
    """A hashable, printable form of a setting value."""
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, sort_keys=True)
    return v


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _variant_labels(df: pd.DataFrame, settings: list[dict[str, Any]]) -> tuple[list[str], list]:
    """Row labels: the model name plus the settings that differ within (dataset, source, model)."""
    labels = [""] * len(df)
    varying_all: list[str] = []
    groups = df.groupby(["dataset", "source", "model"], sort=False, dropna=False).indices
    for (_, _, model), idx in groups.items():
        keys: list[str] = []
        for i in idx:
            for k in settings[i]:
                if k not in keys:
                    keys.append(k)
        # A key a run lacks (e.g. a failed run's unresolved default) is not a difference.
        varying = [
            k for k in keys
            if len({json.dumps(settings[i][k], sort_keys=True) for i in idx
                    if k in settings[i]}) > 1
        ]
        for i in idx:
            parts = [f"{k}={_fmt_value(_scalar(settings[i][k]))}" for k in varying
                     if k in settings[i]]
            labels[i] = f"{model} ({', '.join(parts)})" if parts else str(model)
        varying_all += [k for k in varying if k not in varying_all]
    return labels, varying_all


def aggregate(runs: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Per dataset, one row per model variant: ``n`` and each metric's mean, std and count.

    Only runs with status ``ok`` enter the statistics; ``n_failed`` counts failed runs.
    The std is the sample standard deviation over seeds (ddof=1; NaN when n is 1).
    """
    if runs.empty:
        return pd.DataFrame(columns=[*GROUP_KEYS, "n", "n_failed"])
    if metrics is None:
        metrics = metric_columns(runs)
    ok = runs[runs["status"] == "ok"]
    keys = GROUP_KEYS
    base = runs[keys].drop_duplicates().reset_index(drop=True)
    n = ok.groupby(keys, dropna=False).size().rename("n")
    failed = runs[runs["status"] == "failed"].groupby(keys, dropna=False).size().rename("n_failed")
    out = base.merge(n.reset_index(), on=keys, how="left").merge(
        failed.reset_index(), on=keys, how="left"
    )
    out["n"] = out["n"].fillna(0).astype(int)
    out["n_failed"] = out["n_failed"].fillna(0).astype(int)
    if metrics:
        g = ok.groupby(keys, dropna=False)[metrics]
        stats = pd.concat(
            {"mean": g.mean(), "std": g.std(ddof=1), "n": g.count()}, axis=1
        )
        stats.columns = [f"{m}_{s}" for s, m in stats.columns]
        out = out.merge(stats.reset_index(), on=keys, how="left")
        ordered = [f"{m}_{s}" for m in metrics for s in ("mean", "std", "n")]
        out = out[[*keys, "n", "n_failed", *ordered]]
        for m in metrics:
            out[f"{m}_n"] = out[f"{m}_n"].fillna(0).astype(int)
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


def metric_columns(runs: pd.DataFrame) -> list[str]:
    """The metric columns of a :func:`collect_runs` table, in their order."""
    return list(runs.attrs.get("metrics", []))


def build(root: str | os.PathLike, only: set[Path] | None = None
          ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, bool]]:
    """Collect and aggregate: ``(runs, leaderboard, higher_is_better)``."""
    runs, hib = collect_runs(root, only)
    if runs.empty:
        raise DisbenchError(f"no run folders (with config.json) found under {root}")
    board = aggregate(runs, list(hib))
    return runs, board, hib
