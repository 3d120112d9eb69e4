"""Run a sweep: train and evaluate every run of a spec, resumably, in parallel.

Each run has a content-addressed folder ``OUT/<dataset>/<model>/<run_id>-s<seed>/`` (the
trainer's layout). For each run, :func:`run_one`

1. skips it when it is trained and every requested metric is in ``metrics.json`` with the
   spec's evaluation options;
2. takes the run's lock (:mod:`disbench.run.lock`); when another live sweep holds it, waits for
   that sweep to finish the run instead of training it a second time;
3. trains it (resuming from ``model.pt`` when an earlier sweep was interrupted), evaluates
   it, and on any error writes ``error.json`` (type, message, traceback, stage, config) and
   returns, so the sweep goes on.

Backends: ``loky`` (joblib's local processes, the default) and ``ray`` (each run a Ray task
on the cluster at ``$RAY_ADDRESS``, or on a local cluster; one GPU per task when training on
CUDA). Every file is written atomically by the trainer and the evaluator.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from disbench.atomic import write_json
from disbench.errors import DisbenchError
from disbench.sweeps.spec import Spec

log = logging.getLogger(__name__)

BACKENDS = ("loky", "ray")
ERROR_FILE = "error.json"


@dataclass
class RunResult:
    """What happened to one run of a sweep."""

    run_dir: str
    status: str  # "done" | "skipped" | "failed" ("busy": held by another sweep, retried)
    seconds: float = 0.0
    error: str = ""
    stage: str = ""


@dataclass
class SweepSummary:
    """The outcome of :func:`run_sweep`."""

    out: Path
    results: list[RunResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if r.status == "failed"]

    def describe(self) -> str:
        return (
            f"{len(self.results)} runs: {self.count('done')} trained and evaluated, "
            f"{self.count('skipped')} already complete, {self.count('failed')} failed"
        )


def run_dir_for(cfg: Any, out_root: str | os.PathLike) -> Path:
    """The folder of run ``cfg`` under ``out_root`` (``<dataset>/<model>/<run_id>-s<seed>``)."""
    return Path(cfg.run_dir(out_root))


def is_complete(run_dir: Path, metrics: list[str], eval_options: dict[str, Any]) -> bool:
    """Trained, and every metric evaluated with these options."""
    from disbench.run.config import is_trained
    from disbench.run.evaluate import missing_metrics

    return (
        (run_dir / "config.json").is_file()
        and is_trained(run_dir)
        and not missing_metrics(run_dir, metrics, eval_options)
    )


def run_one(
    cfg: Any,
    out_root: str | os.PathLike,
    metrics: list[str],
    eval_options: dict[str, Any] | None = None,
    *,
    threads: int | None = None,
    wait: bool = True,
) -> RunResult:
    """Train (or resume) and evaluate one run; never raises for a failure of the run itself.

    Parameters
    ----------
    cfg : RunConfig
    out_root : path
        The sweep's output folder.
    metrics : list of str
        Evaluator names.
    eval_options : dict, optional
        Keyword options for :func:`disbench.run.evaluate.evaluate_run`.
    threads : int, optional
        torch intra-op threads for this process (worker processes share the cores).
    wait : bool
        When another sweep holds the run: wait for it (True) or return status ``busy``.
    """
    from disbench.run.lock import try_lock, wait_lock

    eval_options = dict(eval_options or {})
    if threads:
        import torch

        torch.set_num_threads(threads)
    start = time.perf_counter()
    run_dir = run_dir_for(cfg, out_root)
    if is_complete(run_dir, metrics, eval_options):
        return RunResult(str(run_dir), "skipped")
    # Another sweep may hold the run; wait for it rather than train the run twice.
    lock = wait_lock(run_dir) if wait else try_lock(run_dir)
    if lock is None:
        return RunResult(str(run_dir), "busy")
    with lock:
        if is_complete(run_dir, metrics, eval_options):
            return RunResult(str(run_dir), "skipped", time.perf_counter() - start)
        stage = "train"
        try:
            _train(cfg, out_root, run_dir)
            stage = "evaluate"
            from disbench.run.evaluate import evaluate_run

            evaluate_run(run_dir, metrics, **eval_options)
        except Exception as exc:  # noqa: BLE001 -- recorded; the sweep goes on
            _record_error(run_dir, cfg, stage, exc)
            return RunResult(
                str(run_dir), "failed", time.perf_counter() - start,
                f"{type(exc).__name__}: {exc}", stage,
            )
        err = run_dir / ERROR_FILE
        if err.exists():
            err.unlink()
    return RunResult(str(run_dir), "done", time.perf_counter() - start)


def run_group(
    cfgs: list[Any],
    out_root: str | os.PathLike,
    metrics: list[str],
    eval_options: dict[str, Any] | None = None,
    *,
    threads: int | None = None,
) -> list[RunResult]:
    """Train runs together as one batched ensemble (:mod:`disbench.run.ensemble`), then evaluate each.

    Members held by another sweep are left to :func:`run_one` (which waits for them); each
    member still gets its own folder, lock, ``metrics.json`` or ``error.json``.
    """
    from disbench.run.evaluate import evaluate_run
    from disbench.run.lock import try_lock

    eval_options = dict(eval_options or {})
    if threads:
        import torch

        torch.set_num_threads(threads)
    results: list[RunResult] = []
    held: dict[Path, Any] = {}
    mine: list[Any] = []
    later: list[Any] = []
    start = time.perf_counter()
    try:
        for cfg in cfgs:
            rd = run_dir_for(cfg, out_root)
            if is_complete(rd, metrics, eval_options):
                results.append(RunResult(str(rd), "skipped"))
                continue
            lk = try_lock(rd)
            if lk is None:
                later.append(cfg)
            elif is_complete(rd, metrics, eval_options):
                lk.release()
                results.append(RunResult(str(rd), "skipped"))
            else:
                held[rd] = lk
                mine.append(cfg)
        trained_ok = True
        if mine:
            try:
                from disbench.run.ensemble import train_ensemble

                train_ensemble(mine, out_root, progress=False, resume=True)
            except Exception as exc:  # noqa: BLE001 -- recorded for every member
                trained_ok = False
                for cfg in mine:
                    rd = run_dir_for(cfg, out_root)
                    _record_error(rd, cfg, "train", exc)
                    results.append(RunResult(str(rd), "failed", time.perf_counter() - start,
                                             f"{type(exc).__name__}: {exc}", "train"))
        if trained_ok:
            for cfg in mine:
                rd = run_dir_for(cfg, out_root)
                t0 = time.perf_counter()
                try:
                    evaluate_run(rd, metrics, **eval_options)
                except Exception as exc:  # noqa: BLE001 -- recorded; the sweep goes on
                    _record_error(rd, cfg, "evaluate", exc)
                    results.append(RunResult(str(rd), "failed", time.perf_counter() - t0,
                                             f"{type(exc).__name__}: {exc}", "evaluate"))
                    continue
                err = rd / ERROR_FILE
                if err.exists():
                    err.unlink()
                results.append(RunResult(str(rd), "done", time.perf_counter() - t0))
    finally:
        for lk in held.values():
            lk.release()
    for cfg in later:
        results.append(run_one(cfg, out_root, metrics, eval_options))
    return results


def run_job(
    cfgs: list[Any],
    out_root: str | os.PathLike,
    metrics: list[str],
    eval_options: dict[str, Any] | None = None,
    *,
    threads: int | None = None,
    wait: bool = True,
) -> list[RunResult]:
    """One unit of work for a backend: a single run, or a group trained as an ensemble."""
    if len(cfgs) == 1:
        return [run_one(cfgs[0], out_root, metrics, eval_options, threads=threads, wait=wait)]
    return run_group(cfgs, out_root, metrics, eval_options, threads=threads)


def plan_jobs(cfgs: list[Any], *, ensembles: bool, max_size: int = 32) -> list[list[Any]]:
    """Split runs into jobs: with ``ensembles``, compatible runs (same model and training
    settings, differing only in seed and numeric hyperparameters) share one job."""
    if not ensembles:
        return [[c] for c in cfgs]
    from disbench.baselines.registry import MODELS
    from disbench.run.ensemble import compatible, group_runs

    jobs: list[list[Any]] = []
    for group in group_runs(cfgs, max_size=max_size):
        if len(group) > 1 and compatible(MODELS[group[0].model], group) is None:
            jobs.append(group)
        else:
            jobs.extend([c] for c in group)
    return jobs


def trains_on_cuda(cfg: Any) -> bool:
    """Whether ``cfg`` trains on a CUDA device here."""
    device = getattr(cfg, "device", "auto")
    if device == "cuda":
        return True
    if device == "auto":
        import torch

        return torch.cuda.is_available()
    return False


def _train(cfg: Any, out_root: str | os.PathLike, run_dir: Path) -> None:
    from disbench.run.config import is_trained
    from disbench.run.trainer import train

    if (run_dir / "config.json").is_file() and is_trained(run_dir):
        return
    resume = (run_dir / "model.pt").is_file()
    got = Path(train(cfg, out_root, resume=resume, progress=False))
    if got.resolve() != run_dir.resolve():
        raise RuntimeError(f"trainer wrote {got}, expected {run_dir}")


def _config_record(cfg: Any) -> dict[str, Any]:
    """The config as the trainer would resolve it (so leaderboard labels match), else as given."""
    try:
        from disbench import datasets
        from disbench.run.config import resolve_hparams

        res = cfg.resolved()
        data = datasets.get(res.dataset, source=res.source, split=res.split)
        out = res.to_dict()
        out["hparams"] = resolve_hparams(res, data)
        return out
    except Exception:  # noqa: BLE001 -- the config itself may be what failed
        try:
            return dataclasses.asdict(cfg)
        except Exception:  # noqa: BLE001 -- a bad config must not hide the real error
            return {"repr": repr(cfg)}


def _record_error(run_dir: Path, cfg: Any, stage: str, exc: BaseException) -> None:
    tb = traceback.format_exc()
    cfg_dict = _config_record(cfg)
    write_json(
        run_dir / ERROR_FILE,
        {
            "type": type(exc).__name__,
            "message": str(exc),
            "stage": stage,
            "traceback": tb,
            "config": cfg_dict,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )


# --------------------------------------------------------------------------- requirements


def check_requirements(spec: Spec, backend: str = "loky") -> None:
    """Raise a DisbenchError listing everything the spec needs that this machine lacks.

    Official data must already be in the cache (a sweep never starts downloads in its
    workers), and ``device: cuda`` needs a CUDA GPU (checked on the Ray cluster for
    ``--backend ray``).
    """
    from disbench import datasets
    from disbench.paths import dataset_dir

    problems: list[str] = []
    seen = set()
    for ds in spec.datasets:
        key = (ds["name"], ds["source"], ds["split"])
        if key in seen or ds["source"] != "official":
            continue
        seen.add(key)
        cls = datasets.spec(ds["name"])
        split = ds["split"] or cls.default_split
        if not cls.official_available(split):
            problems.append(
                f"the official {ds['name']} files (split {split}) in "
                f"{dataset_dir(ds['name'])}, which are missing: run 'disbench datasets prepare "
                f"{ds['name']} --source official' to download them, or 'disbench datasets "
                f"import {ds['name']} DIR' for files you already have"
            )
    if any(t.get("device") == "cuda" for t in spec.train) and backend != "ray":
        import torch

        if not torch.cuda.is_available():
            problems.append(
                "a CUDA GPU (train.device is cuda) but torch.cuda.is_available() is False: "
                "run it on a GPU machine with a CUDA build of torch "
                "(make install TORCH_SPEC='torch>=2.1')"
            )
    if problems:
        name = spec.path or spec.name
        items = " ".join(f"({i}) {p};" for i, p in enumerate(problems, 1))
        raise DisbenchError(f"sweep {name} cannot start; it needs {items.rstrip(';')}")


# --------------------------------------------------------------------------- sweeping


def run_sweep(
    spec: Spec,
    out: str | os.PathLike,
    jobs: int | None = 1,
    backend: str = "loky",
    *,
    progress: bool = True,
    ensembles: bool | None = None,
) -> SweepSummary:
    """Train and evaluate every run of ``spec`` under ``out``.

    Parameters
    ----------
    spec : Spec
        From :func:`disbench.sweeps.spec.load_spec`.
    out : path
        Output folder; runs land in ``out/<dataset>/<model>/<run_id>-s<seed>/``.
    jobs : int or None
        Runs in parallel (loky processes, or concurrent Ray tasks on a local cluster);
        None: :func:`default_jobs`.
    backend : {"loky", "ray"}
    progress : bool
        Show one tqdm progress bar for the sweep.
    ensembles : bool or None
        Train compatible runs together as batched ensembles (:mod:`disbench.run.ensemble`);
        None: when they train on CUDA (on CPU an ensemble is no faster than single runs).
    """
    if backend not in BACKENDS:
        raise DisbenchError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if jobs is None:
        jobs = default_jobs(spec)
    if jobs < 1:
        raise DisbenchError(f"--jobs must be at least 1, got {jobs}")
    from disbench.run.lock import clear_stale

    check_requirements(spec, backend)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfgs = spec.run_configs()
    summary = SweepSummary(out)
    # Complete runs are skipped here, without starting a worker for them.
    todo = []
    for cfg in cfgs:
        rd = run_dir_for(cfg, out)
        if is_complete(rd, spec.metrics, spec.eval):
            clear_stale(rd)  # a sweep killed between finishing and unlocking leaves one
            summary.results.append(RunResult(str(rd), "skipped"))
        else:
            todo.append(cfg)
    if ensembles is None:
        ensembles = any(
            trains_on_cuda(c) if backend == "loky" else getattr(c, "device", None) == "cuda"
            for c in todo
        )
    work = plan_jobs(todo, ensembles=ensembles)
    by_dir = {str(run_dir_for(c, out).resolve()): c for c in todo}
    bar = _bar(len(cfgs), progress, spec.name)
    bar.update(len(cfgs) - len(todo))
    try:
        # First pass: runs another sweep holds come back "busy" and are left for the second
        # pass, which waits for them; so two sweeps on one folder share out the runs.
        busy: list[list] = []
        for wait in (False, True):
            now = busy if wait else work
            if backend == "ray":
                batches = _run_ray(now, out, spec, jobs, wait)
            else:
                batches = _run_loky(now, out, spec, jobs, wait)
            for batch in batches:
                n_busy = 0
                for res in batch:
                    if res.status == "busy":
                        busy.append([by_dir[str(Path(res.run_dir).resolve())]])
                        n_busy += 1
                        continue
                    summary.results.append(res)
                    if res.status == "failed":
                        bar.write(f"failed: {res.run_dir} ({res.stage}): {res.error}")
                bar.update(len(batch) - n_busy)
                bar.set_postfix(failed=summary.count("failed"))
    finally:
        bar.close()
    return summary


def default_jobs(spec: Spec) -> int:
    """One single-threaded process per CPU core when training on CPU; 1 on CUDA.

    Small conv models use cores better as parallel one-thread runs than as one run with
    several intra-op threads.
    """
    import torch

    cuda = torch.cuda.is_available()
    if any(t.get("device") == "cuda" or (t.get("device", "auto") == "auto" and cuda)
           for t in spec.train):
        return 1
    n_runs = len(spec.datasets) * len(spec.models) * len(spec.train) * len(spec.seeds)
    return max(1, min(os.cpu_count() or 1, n_runs))


def _bar(total: int, enabled: bool, name: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=f"sweep {name}", unit="run")


def _threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)


def _run_loky(work: list[list], out: Path, spec: Spec, jobs: int, wait: bool = True):
    if not work:
        return
    if jobs == 1 or len(work) == 1:  # in this process: no worker start-up
        for cfgs in work:
            yield run_job(cfgs, out, spec.metrics, spec.eval, wait=wait)
        return
    from joblib import Parallel, delayed

    par = Parallel(n_jobs=min(jobs, len(work)), backend="loky",
                   return_as="generator_unordered")
    yield from par(
        delayed(run_job)(cfgs, out, spec.metrics, spec.eval, threads=_threads(jobs), wait=wait)
        for cfgs in work
    )


def _uses_cuda(cfg: Any, cluster_gpus: float) -> bool:
    device = getattr(cfg, "device", "auto")
    return device == "cuda" or (device == "auto" and cluster_gpus > 0)


def _run_ray(work: list[list], out: Path, spec: Spec, jobs: int, wait: bool = True):
    if not work:
        return
    try:
        import ray
    except ImportError:
        raise DisbenchError(
            "--backend ray needs Ray: pip install 'disbench[ray]' (or pip install 'ray[default]')"
        ) from None
    started = False
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        gpus = float(ray.cluster_resources().get("GPU", 0))
        if any(getattr(c, "device", None) == "cuda" for cfgs in work for c in cfgs) and gpus == 0:
            raise DisbenchError(
                "the sweep trains on CUDA but the Ray cluster has no GPUs; "
                "add GPU nodes or set train.device to cpu"
            )
        task = ray.remote(run_job)
        refs = [
            task.options(num_cpus=1, num_gpus=1 if _uses_cuda(cfgs[0], gpus) else 0).remote(
                cfgs, str(out.resolve()), spec.metrics, spec.eval, threads=1, wait=wait
            )
            for cfgs in work
        ]
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                yield ray.get(ref)
    finally:
        if started:
            ray.shutdown()
