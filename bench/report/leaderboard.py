"""Leaderboards: collect run folders into pandas tables, per run and aggregated over seeds.

A run folder (read through :class:`disbench.run.folder.RunFolder`) holds its record and,
once evaluated, its metrics; a failed run holds its error. :func:`collect_runs` makes one row
per run folder; :func:`aggregate` makes, per dataset, one row per model variant with each
metric's mean, standard deviation (sample std, ddof=1; NaN for a single seed) and count
over seeds.

A *variant* is a model with one setting of its hyperparameters and training settings;
seeds of one variant are aggregated. Within a dataset and model, the settings whose values
differ between variants become part of the row label, e.g. ``beta_vae (beta=4)``. Which
training settings count is declared on :class:`disbench.run.config.RunConfig` (``variant``);
the likelihood is in the label whenever it is not the model's default
(:data:`disbench.run.config.LABEL_IF_NOT_DEFAULT`), e.g. ``beta_vae (likelihood=gaussian)``.
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
from disbench.run.config import FIELDS, LABEL_IF_NOT_DEFAULT, VARIANT_FIELDS, non_default_hparams
from disbench.run.folder import RunFolder, find_run_folders

log = logging.getLogger(__name__)

#: run settings that never make a variant (the RunConfig fields not declared ``variant``)
NON_VARIANT_KEYS = frozenset(f for f in FIELDS if f not in VARIANT_FIELDS)
#: training settings that make a variant when they differ
TRAIN_VARIANT_KEYS = VARIANT_FIELDS
GROUP_KEYS = ["dataset", "source", "model", "variant"]


def find_run_dirs(root: str | os.PathLike, only: set[Path] | None = None) -> list[Path]:
    """Every run folder under ``root`` (with a record or an error), sorted.

    ``only``: keep just these folders (the runs of one spec), so runs left in the folder by
    an earlier version of the spec do not enter the table.
    """
    return [f.path for f in find_run_folders(root, only)]


def _run_status(folder: RunFolder, records: list[dict]) -> tuple[str, str]:
    info = folder.read_error()
    if info is not None:
        if not info:
            return "failed", f"unreadable {folder.error_path.name}"
        return "failed", f"{info.get('type', 'Error')}: {info.get('message', '')}"
    if records:
        return "ok", ""
    return "incomplete", ""


def _read_record(folder: RunFolder) -> dict[str, Any] | None:
    """The run's record; for a run that failed before it was created, the config its
    error stores (None, with a warning, when there is neither)."""
    if folder.has_config():
        try:
            return folder.read_config()
        except DisbenchError as exc:
            log.warning("skipping %s: %s", folder.path, exc)
            return None
    cfg = (folder.read_error() or {}).get("config")
    if not isinstance(cfg, dict):
        log.warning("skipping %s: no record and no config in its error file", folder.path)
        return None
    return cfg


def _run_row(folder: RunFolder, cfg: dict[str, Any], records: list[dict[str, Any]]
             ) -> dict[str, Any]:
    status, error = _run_status(folder, records)
    row: dict[str, Any] = {
        "dataset": cfg.get("dataset"),
        "source": cfg.get("source"),
        "model": cfg.get("model"),
        "seed": cfg.get("seed"),
        "status": status,
        "error": error,
        "run_dir": str(folder.path),
    }
    for rec in records:
        row[rec["metric"]] = float(rec["value"]) if rec.get("value") is not None else math.nan
    return row


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
    for folder in find_run_folders(root, only):
        cfg = _read_record(folder)
        if cfg is None:
            continue
        records = folder.metric_records()
        for rec in records:
            hib.setdefault(rec["metric"], bool(rec.get("higher_is_better", True)))
        rows.append(_run_row(folder, cfg, records))
        settings.append(variant_settings(cfg))
    metric_order = list(hib)
    _declared_directions(hib)
    df = pd.DataFrame(rows)
    if df.empty:
        return df, hib
    return _runs_table(df, settings, metric_order), {m: hib[m] for m in metric_order}


def _declared_directions(hib: dict[str, bool]) -> None:
    """Overwrite the records' own flags with the metrics' declared directions."""
    from disbench.metrics import HIGHER_IS_BETTER

    for name in hib:
        if name in HIGHER_IS_BETTER:
            hib[name] = bool(HIGHER_IS_BETTER[name])


def _runs_table(df: pd.DataFrame, settings: list[dict[str, Any]],
                metric_order: list[str]) -> pd.DataFrame:
    """Label the variants, add the varying settings as columns, order and sort."""
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
    return df


def variant_settings(cfg: dict[str, Any]) -> dict[str, Any]:
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
        # The likelihood is named whenever it is not the model's default, even if shared.
        varying += [k for k in LABEL_IF_NOT_DEFAULT if k not in varying and any(
            k in non_default_hparams(str(model), settings[i]) for i in idx)]
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
        raise DisbenchError(f"no run folders found under {root}; pass the --out folder of a "
                            "sweep")
    board = aggregate(runs, list(hib))
    return runs, board, hib
