"""Evaluate a trained run folder: load the checkpoint, compute metrics, write ``metrics.json``.

``metrics.json`` holds::

    {"records": [{"metric", "value", "higher_is_better", "version", "spec"}, ...],
     "evaluated": {EVALUATOR: {"options": {...}}, ...},
     "provenance": {"disbench_version", "torch_version", "git_commit", "dataset": {...},
                    "config_hash", "evaluation", "device", "time"}}

``config_hash`` is the run id stored in the folder (the hash part of its name).
``evaluated`` remembers which evaluators ran with which options (those of
:class:`disbench.metrics.evaluators.EvalOptions` that change a score), so a sweep knows
when a run is complete and a re-evaluation with new options recomputes only what changed.
The file itself is read and written through :class:`disbench.run.folder.RunFolder`; new
records are merged in by :func:`merge_metrics` (also used by ``disbench udr``).

An evaluation holds the run's lock (:mod:`disbench.run.lock`) from reading
``metrics.json`` to writing it back, so two evaluations of one run (two terminals, a sweep
beside a manual ``disbench evaluate``) take turns and both keep their metrics.

A metric the run's dataset cannot give (:mod:`disbench.run.needs`: ``mig`` on a labelled
set) is refused in one line before the model is loaded.

Evaluators that need ``"runs"`` (``udr``: a score of the seeds of a variant) are not computed
per run: :func:`evaluate_run` and :func:`missing_metrics` leave them to
:func:`disbench.run.udr.compute_udr` (``disbench udr RUNS_DIR``).
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from disbench.errors import DisbenchError, resolve_device
from disbench.metrics.evaluators import EvalOptions
from disbench.run.cpu_tuning import tune_for
from disbench.run.folder import RunFolder, load_run
from disbench.run.needs import check_metrics

log = logging.getLogger(__name__)

Options = EvalOptions | dict[str, Any] | None


def resolve_options(options: Options) -> dict[str, Any]:
    """The options of ``options`` that change a score, defaults filled
    (:meth:`disbench.metrics.evaluators.EvalOptions.score_options`)."""
    return EvalOptions.build(options).score_options()


def read_metrics(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run's ``metrics.json`` (an empty document when there is none or it is unreadable)."""
    return RunFolder(run_dir).read_metrics()


def missing_metrics(run_dir: str | os.PathLike, metrics: list[str],
                    options: Options = None) -> list[str]:
    """The evaluators of ``metrics`` not yet in ``metrics.json`` with these options (those
    computed across runs, such as ``udr``, are never missing here: see :func:`per_run`)."""
    opts = resolve_options(options)
    done = read_metrics(run_dir)["evaluated"]
    return [m for m in per_run(metrics) if (done.get(m) or {}).get("options") != opts]


def per_run(metrics: list[str]) -> list[str]:
    """``metrics`` without the evaluators that need several runs (``needs`` ``"runs"``)."""
    from disbench.metrics.registry import EVALUATORS

    return [m for m in metrics if m not in EVALUATORS or "runs" not in EVALUATORS[m].needs]


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
    options: Options = None,
    *,
    force: bool = False,
    locked: bool = False,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """Compute ``metrics`` for the trained run in ``run_dir`` and update its ``metrics.json``.

    Parameters
    ----------
    run_dir : path
        A run folder written by :func:`disbench.run.trainer.train`.
    metrics : list of str
        Evaluator names (see ``disbench.metrics.evaluators.EVALUATORS``).
    options : EvalOptions or dict, optional
        How to evaluate (point counts, representation, seed, batching, device); the
        defaults of :class:`~disbench.metrics.evaluators.EvalOptions` otherwise.
    force : bool
        Recompute even the metrics already evaluated with the same options.
    locked : bool
        The caller holds the run's lock already (a sweep); otherwise it is taken here,
        waiting for another holder.
    **overrides
        Single ``EvalOptions`` fields (``num_train=1000``; None values are ignored).

    Returns
    -------
    list of dict
        All records now in ``metrics.json``.
    """
    from disbench import datasets
    from disbench import metrics as metrics_mod

    folder = RunFolder(run_dir)
    _check_trained(folder)
    _check_metrics(folder, metrics)
    _hint_cross_seed(folder, metrics)
    opts = EvalOptions.build(options, **overrides)
    device = resolve_device(opts.device, "device")
    tune_for(device)  # malloc thresholds on the CPU: encoding reuses its buffers
    if not _todo(folder, metrics, opts, force):
        return folder.read_metrics()["records"]  # nothing to write: no lock needed
    with _run_lock(folder, locked):
        todo = _todo(folder, metrics, opts, force)
        if not todo:
            return folder.read_metrics()["records"]
        model, _cfg, data_spec = load_run(folder.path, device=device)
        dataset = _dataset(folder, data_spec)
        # No torch.no_grad() here: encoding already runs without gradients, and some
        # evaluators train a helper network on first use (feature classifier, Sprites judge).
        records = metrics_mod.evaluate(model, dataset, todo,
                                       EvalOptions.build(opts, device=str(device)),
                                       out_dir=folder.path, load_dataset=datasets.get)
        return merge_metrics(folder, records, todo, opts.score_options(),
                             _provenance(folder, dataset, data_spec, opts, device))


def _run_lock(folder: RunFolder, locked: bool) -> contextlib.AbstractContextManager:
    """The run's lock for one read-compute-merge-write of ``metrics.json``."""
    from disbench.run.lock import wait_lock

    return contextlib.nullcontext() if locked else wait_lock(folder.path)


def merge_metrics(folder: RunFolder, records: list[dict[str, Any]], evaluators: list[str],
                  options: dict[str, Any], provenance: dict[str, Any]) -> list[dict[str, Any]]:
    """Merge ``records`` into the run's ``metrics.json`` as it is now and write it.

    Same-named records are replaced, ``evaluators`` are marked done with ``options``, and
    ``provenance`` describes this write. Callers that may race another writer hold the run's
    lock (:mod:`disbench.run.lock`) around it. Returns all records now in the file.
    """
    doc = _updated(folder.read_metrics(), records, evaluators, options)
    doc["provenance"] = provenance
    folder.write_metrics(doc)
    return doc["records"]


def _todo(folder: RunFolder, metrics: list[str], opts: EvalOptions, force: bool) -> list[str]:
    """The evaluators to compute now: every per-run one with ``force``, else the missing ones."""
    return per_run(metrics) if force else missing_metrics(folder.path, metrics, opts)


def _hint_cross_seed(folder: RunFolder, metrics: list[str]) -> None:
    """Say once where the metrics that compare seeds (udr) are computed instead."""
    for m in sorted(set(metrics) - set(per_run(metrics))):
        log.info("%s: %s compares the seeds of a variant; compute it with 'disbench udr "
                 "RUNS_DIR'", folder.path, m)


def _check_trained(folder: RunFolder) -> None:
    if not folder.has_config():
        raise DisbenchError(f"{folder.path} is not a run folder (no config.json); pass a run "
                            "folder")
    if folder.status() is None and folder.has_checkpoint():
        folder.refresh_status()  # a folder from before status files: read its checkpoint once
    if not folder.is_trained():
        raise DisbenchError(
            f"{folder.path} is not fully trained; finish it with 'disbench train ... --resume' "
            "first"
        )


def _check_metrics(folder: RunFolder, metrics: list[str]) -> None:
    """At least one metric, and none the run's dataset cannot give (before any loading)."""
    if not metrics:
        raise DisbenchError("--metrics: give at least one metric")
    trained_on = folder.run_config().dataset
    check_metrics(trained_on, metrics, where=str(folder.path),
                  fix=f"drop it from the metrics of this run (trained on {trained_on}), or "
                      "evaluate a run of a dataset that offers it")


def _dataset(folder: RunFolder, data_spec: dict[str, Any]) -> Any:
    """The data the run was trained on (a warning when its fingerprint changed since)."""
    from disbench.run.data import open_dataset

    dataset = open_dataset(data_spec["name"], data_spec["source"], data_spec["split"],
                           data_spec.get("options", {}))
    trained_fp = data_spec.get("fingerprint")
    if trained_fp and getattr(dataset, "fingerprint", None) not in (None, trained_fp):
        log.warning("%s: dataset fingerprint %s differs from the one trained on (%s)",
                    folder.path, dataset.fingerprint, trained_fp)
    return dataset


def _updated(doc: dict[str, Any], records: list[dict[str, Any]], todo: list[str],
             options: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the new records (replacing same-named ones) and ``todo`` marked done."""
    new_names = {r["metric"] for r in records}
    kept = [r for r in doc["records"] if r.get("metric") not in new_names]
    evaluated = dict(doc["evaluated"])
    for m in todo:
        evaluated[m] = {"options": options}
    return {"records": kept + [_clean_record(r) for r in records], "evaluated": evaluated}


def _provenance(folder: RunFolder, dataset: Any, data_spec: dict[str, Any],
                options: EvalOptions | dict[str, Any], device: Any) -> dict[str, Any]:
    import torch
    from disbench import __version__

    return {
        "disbench_version": __version__,
        "torch_version": torch.__version__,
        "git_commit": git_commit(),
        "dataset": {
            "name": data_spec["name"],
            "source": getattr(dataset, "source", data_spec["source"]),
            "split": getattr(dataset, "split", data_spec["split"]),
            "fingerprint": getattr(dataset, "fingerprint", None),
            "trained_fingerprint": data_spec.get("fingerprint"),
        },
        "config_hash": folder.run_id(),
        "evaluation": (options.score_options() if isinstance(options, EvalOptions)
                       else dict(options)),
        "device": str(device),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _clean_record(rec: dict[str, Any]) -> dict[str, Any]:
    out = dict(rec)
    value = out.get("value")
    out["value"] = None if value is None else float(value)
    out["higher_is_better"] = bool(out.get("higher_is_better", True))
    return out
