"""Evaluate a trained run folder: load the checkpoint, compute metrics, write ``metrics.json``.

``metrics.json`` holds::

    {"records": [{"metric", "value", "higher_is_better", "version", "spec"}, ...],
     "evaluated": {EVALUATOR: {"options": {...}}, ...},
     "provenance": {"disbench_version", "torch_version", "git_commit", "dataset": {...},
                    "config_hash", "time"}}

``evaluated`` remembers which evaluators ran with which options, so a sweep knows when a
run is complete and a re-evaluation with new options recomputes only what changed.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from disbench.atomic import write_json
from disbench.errors import DisbenchError

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"


def resolve_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """The options of ``options`` that change a score, defaults filled
    (:meth:`disbench.metrics.EvalOptions.score_options`)."""
    from disbench.metrics.evaluators import EvalOptions

    return EvalOptions.build(options).score_options()


def read_metrics(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run's ``metrics.json`` (an empty document when there is none or it is unreadable)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return {"records": [], "evaluated": {}, "provenance": {}}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        log.warning("%s is unreadable; it will be rewritten", path)
        return {"records": [], "evaluated": {}, "provenance": {}}
    data.setdefault("records", [])
    data.setdefault("evaluated", {})
    data.setdefault("provenance", {})
    return data


def missing_metrics(
    run_dir: str | os.PathLike, metrics: list[str], options: dict[str, Any] | None = None
) -> list[str]:
    """The evaluators of ``metrics`` not yet in ``metrics.json`` with these options."""
    opts = resolve_options(options)
    done = read_metrics(run_dir)["evaluated"]
    return [m for m in metrics if (done.get(m) or {}).get("options") != opts]


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the disbench source tree (``+dirty`` when modified), if it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10,
            check=False,
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=10, check=False,
        )
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def evaluate_run(
    run_dir: str | os.PathLike,
    metrics: list[str],
    *,
    num_train: int | None = None,
    num_test: int | None = None,
    codes: str | None = None,
    random_state: int | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Compute ``metrics`` for the trained run in ``run_dir`` and update its ``metrics.json``.

    Parameters
    ----------
    run_dir : path
        A run folder written by :func:`disbench.run.trainer.train`.
    metrics : list of str
        Evaluator names (see ``disbench.metrics.evaluators.EVALUATORS``).
    num_train, num_test, codes, random_state, batch_size, device
        Passed to :func:`disbench.metrics.evaluate` (None: its default).
    force : bool
        Recompute even the metrics already evaluated with the same options.

    Returns
    -------
    list of dict
        All records now in ``metrics.json``.
    """
    import torch
    from disbench import datasets
    from disbench import metrics as metrics_mod
    from disbench.run.config import is_trained, load_run

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise DisbenchError(f"{run_dir} is not a run folder (no config.json); pass a run folder")
    if not is_trained(run_dir):
        raise DisbenchError(
            f"{run_dir} is not fully trained; finish it with 'disbench train ... --resume' first"
        )
    if not metrics:
        raise DisbenchError("--metrics: give at least one metric")
    options = resolve_options(
        {"num_train": num_train, "num_test": num_test, "codes": codes,
         "random_state": random_state}
    )
    todo = list(metrics) if force else missing_metrics(run_dir, metrics, options)
    doc = read_metrics(run_dir)
    if not todo:
        return doc["records"]

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, cfg, data_spec = load_run(run_dir, device=device)
    model.eval()
    data_spec = _as_dict(data_spec)
    name = data_spec.get("name") or _get(cfg, "dataset")
    source = data_spec.get("source") or _get(cfg, "source")
    split = data_spec.get("split", _get(cfg, "split"))
    dataset = datasets.get(name, source=source, split=split)
    trained_fp = data_spec.get("fingerprint")
    if trained_fp and getattr(dataset, "fingerprint", None) not in (None, trained_fp):
        log.warning(
            "%s: dataset fingerprint %s differs from the one trained on (%s)",
            run_dir, dataset.fingerprint, trained_fp,
        )
    kw: dict[str, Any] = {k: options[k] for k in ("num_train", "num_test", "codes", "random_state")}
    if batch_size is not None:
        kw["batch_size"] = batch_size
    # No torch.no_grad() here: encoding already runs without gradients, and some
    # evaluators train a helper network on first use (feature classifier, Sprites judge).
    records = metrics_mod.evaluate(model, dataset, todo, device=device, out_dir=run_dir, **kw)

    new_names = {r["metric"] for r in records}
    kept = [r for r in doc["records"] if r.get("metric") not in new_names]
    evaluated = dict(doc["evaluated"])
    for m in todo:
        evaluated[m] = {"options": options}
    config_hash = cfg.run_id() if hasattr(cfg, "run_id") else _get(cfg, "run_id")
    doc = {
        "records": kept + [_clean_record(r) for r in records],
        "evaluated": evaluated,
        "provenance": {
            "disbench_version": _version(),
            "torch_version": torch.__version__,
            "git_commit": git_commit(),
            "dataset": {
                "name": name,
                "source": getattr(dataset, "source", source),
                "split": getattr(dataset, "split", split),
                "fingerprint": getattr(dataset, "fingerprint", None),
                "trained_fingerprint": trained_fp,
            },
            "config_hash": config_hash,
            "evaluation": options,
            "device": str(device),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    }
    write_json(run_dir / METRICS_FILE, doc)
    return doc["records"]


def _clean_record(rec: dict[str, Any]) -> dict[str, Any]:
    out = dict(rec)
    value = out.get("value")
    out["value"] = None if value is None else float(value)
    out["higher_is_better"] = bool(out.get("higher_is_better", True))
    return out


def _as_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(obj)
    return dict(vars(obj))


def _get(cfg: Any, key: str) -> Any:
    return cfg.get(key) if isinstance(cfg, dict) else getattr(cfg, key, None)


def _version() -> str:
    from disbench import __version__

    return __version__
