"""Run a sweep: train and evaluate every run of a spec, resumably, in parallel.

Each run has a content-addressed folder ``OUT/<dataset>/<model>/<run_id>-s<seed>/`` (the
trainer's layout). For each run, :func:`run_one`

1. skips it when its folder's status says it is trained and every requested metric is in
   ``metrics.json`` with the spec's evaluation options (no checkpoint is read for this);
2. takes the run's lock (:mod:`disbench.run.lock`); when another live sweep holds it, waits for
   that sweep to finish the run instead of training it a second time;
3. trains it (resuming from ``model.pt`` when an earlier sweep was interrupted), evaluates
   it, and on any error writes ``error.json`` (type, message, traceback, stage, config) and
   returns, so the sweep goes on.

Backends: ``loky`` (joblib's local processes, the default) and ``ray`` (each run a Ray task
on the cluster at ``$RAY_ADDRESS``, or on a local cluster; one GPU per task when training on
CUDA). ``cuda_graphs`` is an argument passed down to :func:`~disbench.run.trainer.train_ensemble`.
The files of a run folder are read and written through :mod:`disbench.run.folder`.

Stopping (:mod:`disbench.run.stop`): on SIGTERM or SIGINT a loky sweep forwards SIGTERM to
its workers and waits (up to :data:`STOP_GRACE_SECONDS`) while each checkpoints the run it
trains and releases its lock; a worker whose sweep dies (SIGKILL) notices within a second
and stops the same way.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from disbench.errors import DisbenchError, resolve_device
from disbench.run.folder import RunFolder
from disbench.sweeps.spec import Spec

log = logging.getLogger(__name__)

BACKENDS = ("loky", "ray")
#: how long a stopping sweep waits for its workers to checkpoint and unlock their runs
STOP_GRACE_SECONDS = 120.0
#: evaluation options: an EvalOptions, or a dict of its fields (a spec's ``eval:``)
Options = Any


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
    return RunFolder.for_config(cfg, out_root).path


def is_complete(folder: RunFolder, metrics: list[str], eval_options: Options) -> bool:
    """Trained, and every metric evaluated with these options (no checkpoint is read)."""
    from disbench.run.evaluate import missing_metrics

    return folder.is_trained() and not missing_metrics(folder.path, metrics, eval_options)


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def run_one(
    cfg: Any,
    out_root: str | os.PathLike,
    metrics: list[str],
    eval_options: Options = None,
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
    eval_options : EvalOptions or dict, optional
        How to evaluate (:func:`disbench.run.evaluate.evaluate_run`).
    threads : int, optional
        torch intra-op threads for this process (worker processes share the cores).
    wait : bool
        When another sweep holds the run: wait for it (True) or return status ``busy``.
    """
    from disbench.run.lock import try_lock, wait_lock

    _set_threads(threads)
    start = time.perf_counter()
    folder = RunFolder.for_config(cfg, out_root)
    if is_complete(folder, metrics, eval_options):
        return RunResult(str(folder.path), "skipped")
    # Another sweep may hold the run; wait for it rather than train the run twice.
    lock = wait_lock(folder.path) if wait else try_lock(folder.path)
    if lock is None:
        return RunResult(str(folder.path), "busy")
    with lock:
        if is_complete(folder, metrics, eval_options):
            return RunResult(str(folder.path), "skipped", time.perf_counter() - start)
        stage = "train"
        try:
            _train(cfg, out_root, folder)
            stage = "evaluate"
            from disbench.run.evaluate import evaluate_run

            evaluate_run(folder.path, metrics, eval_options, locked=True)
        except Exception as exc:  # noqa: BLE001 -- recorded; the sweep goes on
            return _failed(folder, cfg, stage, exc, start)
        folder.clear_error()
    return RunResult(str(folder.path), "done", time.perf_counter() - start)


def _failed(folder: RunFolder, cfg: Any, stage: str, exc: BaseException,
            start: float) -> RunResult:
    """Record the failure in ``error.json`` and report it.

    When even ``error.json`` cannot be written (a full or read-only disk), the sweep stops
    with one line saying why, rather than going on with runs that cannot be saved either.
    """
    from disbench.errors import describe_os_error

    try:
        _record_error(folder, cfg, stage, exc)
    except OSError as rec:
        cause = describe_os_error(exc) if isinstance(exc, OSError) else f"{exc}"
        raise DisbenchError(
            f"{folder.path}: {stage} failed ({cause}), and the failure could not be recorded "
            f"in {folder.error_path.name} ({describe_os_error(rec)}); the sweep stops"
        ) from None
    return RunResult(str(folder.path), "failed", time.perf_counter() - start,
                     f"{type(exc).__name__}: {exc}", stage)


def run_group(
    cfgs: list[Any],
    out_root: str | os.PathLike,
    metrics: list[str],
    eval_options: Options = None,
    *,
    threads: int | None = None,
    cuda_graphs: bool = False,
) -> list[RunResult]:
    """Train runs together as one batched ensemble (:mod:`disbench.run.ensemble`), then evaluate each.

    Members held by another sweep are left to :func:`run_one` (which waits for them); each
    member still gets its own folder, lock, ``metrics.json`` or ``error.json``.
    ``cuda_graphs``: replay the ensemble's update as a CUDA graph (on CUDA).
    """
    _set_threads(threads)
    results: list[RunResult] = []
    held: list[Any] = []
    try:
        mine, later = _claim(cfgs, out_root, metrics, eval_options, held, results)
        if mine:
            failed = _train_together(mine, out_root, cuda_graphs)
            bad = {r.run_dir for r in failed}
            trained = [c for c in mine if str(RunFolder.for_config(c, out_root).path) not in bad]
            results += failed + _evaluate_each(trained, out_root, metrics, eval_options)
    finally:
        for lk in held:
            lk.release()
    for cfg in later:
        results.append(run_one(cfg, out_root, metrics, eval_options))
    return results


def _claim(cfgs: list[Any], out_root: str | os.PathLike, metrics: list[str],
           eval_options: Options, held: list[Any], results: list[RunResult]
           ) -> tuple[list[Any], list[Any]]:
    """Lock the runs of ``cfgs`` still to do: ``(mine, held by another sweep)``.

    Complete runs go to ``results`` as skipped; the locks taken go to ``held``.
    """
    from disbench.run.lock import try_lock

    mine: list[Any] = []
    later: list[Any] = []
    for cfg in cfgs:
        folder = RunFolder.for_config(cfg, out_root)
        if is_complete(folder, metrics, eval_options):
            results.append(RunResult(str(folder.path), "skipped"))
            continue
        lk = try_lock(folder.path)
        if lk is None:
            later.append(cfg)
        elif is_complete(folder, metrics, eval_options):
            lk.release()
            results.append(RunResult(str(folder.path), "skipped"))
        else:
            held.append(lk)
            mine.append(cfg)
    return mine, later


def _train_together(cfgs: list[Any], out_root: str | os.PathLike,
                    cuda_graphs: bool) -> list[RunResult]:
    """Train ``cfgs`` as one ensemble; the failures: the diverged members, or every member
    when the ensemble itself failed."""
    from disbench.run.loop import TrainingDiverged
    from disbench.run.trainer import train_ensemble

    start = time.perf_counter()
    try:
        train_ensemble(cfgs, out_root, progress=False, resume=True, cuda_graphs=cuda_graphs)
    except TrainingDiverged as exc:  # the other members trained on to the end
        folders = [RunFolder.for_config(c, out_root) for c in cfgs]
        return [_failed(f, c, "train", exc.only(f.path), start)
                for f, c in zip(folders, cfgs, strict=True) if exc.record(f.path)]
    except Exception as exc:  # noqa: BLE001 -- recorded for every member
        return [_failed(RunFolder.for_config(c, out_root), c, "train", exc, start)
                for c in cfgs]
    return []


def _evaluate_each(cfgs: list[Any], out_root: str | os.PathLike, metrics: list[str],
                   eval_options: Options) -> list[RunResult]:
    from disbench.run.evaluate import evaluate_run

    results = []
    for cfg in cfgs:
        folder = RunFolder.for_config(cfg, out_root)
        t0 = time.perf_counter()
        try:
            evaluate_run(folder.path, metrics, eval_options, locked=True)  # run_group holds it
        except Exception as exc:  # noqa: BLE001 -- recorded; the sweep goes on
            results.append(_failed(folder, cfg, "evaluate", exc, t0))
            continue
        folder.clear_error()
        results.append(RunResult(str(folder.path), "done", time.perf_counter() - t0))
    return results


def run_job(
    cfgs: list[Any],
    out_root: str | os.PathLike,
    metrics: list[str],
    eval_options: Options = None,
    *,
    threads: int | None = None,
    wait: bool = True,
    cuda_graphs: bool = False,
) -> list[RunResult]:
    """One unit of work for a backend: a single run, or a group trained as an ensemble."""
    if len(cfgs) == 1:
        return [run_one(cfgs[0], out_root, metrics, eval_options, threads=threads, wait=wait)]
    return run_group(cfgs, out_root, metrics, eval_options, threads=threads,
                     cuda_graphs=cuda_graphs)


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


def _on_cuda(device: str) -> bool:
    """Whether training with ``device`` uses a CUDA GPU here (``cuda`` always does)."""
    return device == "cuda" or resolve_device(device, "device").type == "cuda"


def trains_on_cuda(cfg: Any) -> bool:
    """Whether ``cfg`` trains on a CUDA device here."""
    return _on_cuda(cfg.device)


def _train(cfg: Any, out_root: str | os.PathLike, folder: RunFolder) -> None:
    from disbench.run.trainer import train

    if folder.is_trained():
        return
    got = Path(train(cfg, out_root, resume=folder.has_checkpoint(), progress=False))
    if got.resolve() != folder.path.resolve():
        raise RuntimeError(f"trainer wrote {got}, expected {folder.path}")


def _config_record(folder: RunFolder, cfg: Any) -> dict[str, Any]:
    """The run's stored record when it was created, else the config as the trainer would
    resolve it (so leaderboard labels match), else as given."""
    try:
        if folder.has_config() and folder.read_config().get("run_id") == folder.expected_id:
            return folder.read_config()
        from disbench import datasets
        from disbench.run.config import resolve_hparams

        res = cfg.resolved()
        source = res.concrete_source()
        data = datasets.get(res.dataset, source=source, split=res.split,
                            **(res.dataset_options or {}))
        return {**res.to_dict(), "source": source, "requested_source": res.source,
                "hparams": resolve_hparams(res, data)}
    except Exception:  # noqa: BLE001 -- the config itself may be what failed
        try:
            return dataclasses.asdict(cfg)
        except Exception:  # noqa: BLE001 -- a bad config must not hide the real error
            return {"repr": repr(cfg)}


def _record_error(folder: RunFolder, cfg: Any, stage: str, exc: BaseException) -> None:
    from disbench.run.loop import TrainingDiverged

    info = {
        "type": type(exc).__name__,
        "message": str(exc),
        "stage": stage,
        "traceback": traceback.format_exc(),
        "config": _config_record(folder, cfg),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if isinstance(exc, TrainingDiverged):
        info["divergence"] = exc.record(folder.path)  # {"step", "what"}
    folder.write_error(info)


# --------------------------------------------------------------------------- requirements


def check_requirements(spec: Spec, backend: str = "loky") -> None:
    """Raise a DisbenchError listing everything the spec needs that this machine lacks.

    Official data must already be in the cache (a sweep never starts downloads in its
    workers), ``device: cuda`` needs a CUDA GPU (checked on the Ray cluster for
    ``--backend ray``), and the FID metrics need the Inception extra and weights.
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
    if {"fid", "fid_recon"} & set(spec.metrics):
        from disbench.metrics.inception import missing_requirements

        problems += [f"for FID, {p}" for p in missing_requirements()]
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
    cuda_graphs: bool = False,
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
    cuda_graphs : bool
        On CUDA, replay each ensemble's update as one captured CUDA graph
        (``disbench sweep --cuda-graphs``).

    Complete runs are recognised from their folders' status and ``metrics.json``, without
    reading a checkpoint.
    """
    jobs = _check_args(spec, jobs, backend)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfgs = spec.run_configs()
    summary = SweepSummary(out)
    todo = _pending(cfgs, out, spec, summary)
    if ensembles is None:
        ensembles = any(
            trains_on_cuda(c) if backend == "loky" else c.device == "cuda" for c in todo
        )
    work = plan_jobs(todo, ensembles=ensembles)
    bar = _bar(len(cfgs), progress, spec.name)
    bar.update(len(cfgs) - len(todo))
    try:
        _dispatch(work, todo, out, spec, summary, bar, backend=backend, jobs=jobs,
                  cuda_graphs=cuda_graphs)
    finally:
        bar.close()
    return summary


def _check_args(spec: Spec, jobs: int | None, backend: str) -> int:
    if backend not in BACKENDS:
        raise DisbenchError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if jobs is None:
        jobs = default_jobs(spec)
    if jobs < 1:
        raise DisbenchError(f"--jobs must be at least 1, got {jobs}")
    check_requirements(spec, backend)
    return jobs


def _pending(cfgs: list[Any], out: Path, spec: Spec, summary: SweepSummary) -> list[Any]:
    """The runs still to do; complete ones are recorded as skipped (no worker started)."""
    from disbench.run.lock import clear_stale

    todo = []
    for cfg in cfgs:
        folder = RunFolder.for_config(cfg, out)
        if is_complete(folder, spec.metrics, spec.eval):
            clear_stale(folder.path)  # a sweep killed between finishing and unlocking leaves one
            summary.results.append(RunResult(str(folder.path), "skipped"))
        else:
            todo.append(cfg)
    return todo


def _dispatch(work: list[list[Any]], todo: list[Any], out: Path, spec: Spec,
              summary: SweepSummary, bar: Any, *, backend: str, jobs: int,
              cuda_graphs: bool) -> None:
    """Run the jobs on the backend, collecting results into ``summary``.

    First pass: runs another sweep holds come back "busy" and are left for the second
    pass, which waits for them; so two sweeps on one folder share out the runs.
    """
    by_dir = {str(run_dir_for(c, out).resolve()): c for c in todo}
    run = _run_ray if backend == "ray" else _run_loky
    busy: list[list] = []
    for wait in (False, True):
        for batch in run(busy if wait else work, out, spec, jobs, wait, cuda_graphs):
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


def default_jobs(spec: Spec) -> int:
    """One single-threaded process per CPU core when training on CPU; 1 on CUDA.

    Small conv models use cores better as parallel one-thread runs than as one run with
    several intra-op threads.
    """
    if any(_on_cuda(t.get("device", "auto")) for t in spec.train):
        return 1
    n_runs = len(spec.datasets) * len(spec.models) * len(spec.train) * len(spec.seeds)
    return max(1, min(os.cpu_count() or 1, n_runs))


def _bar(total: int, enabled: bool, name: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=f"sweep {name}", unit="run")


def _threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)


def _run_loky(work: list[list], out: Path, spec: Spec, jobs: int, wait: bool = True,
              cuda_graphs: bool = False):
    if not work:
        return
    if jobs == 1 or len(work) == 1:  # in this process: no worker start-up
        for cfgs in work:
            yield run_job(cfgs, out, spec.metrics, spec.eval, wait=wait, cuda_graphs=cuda_graphs)
        return
    from disbench.run import stop
    from joblib import Parallel, delayed

    par = Parallel(n_jobs=min(jobs, len(work)), backend="loky",
                   return_as="generator_unordered")
    dirs = [RunFolder.for_config(c, out).path for cfgs in work for c in cfgs]
    with stop.on_stop(lambda signum: _stop_workers(signum, dirs)):
        yield from par(
            delayed(_worker_job)(os.getpid(), cfgs, out, spec.metrics, spec.eval,
                                 threads=_threads(jobs), wait=wait, cuda_graphs=cuda_graphs)
            for cfgs in work
        )


def _worker_job(parent: int, *args: Any, **kw: Any) -> list[RunResult]:
    """:func:`run_job` in a loky worker, which stops cleanly on SIGTERM / SIGINT and when
    the sweep process ``parent`` dies (:func:`disbench.run.stop.worker_init`)."""
    from disbench.run import stop
    from disbench.run.cpu_tuning import tune_cpu

    stop.worker_init(parent)
    tune_cpu()  # once per worker, before its first job's allocations (the trainer's is a no-op)
    try:
        with stop.in_job():
            return run_job(*args, **kw)
    except stop.Interrupted as exc:  # its run is checkpointed and unlocked
        stop.park(exc.signum)
        raise


def _stop_workers(signum: int, dirs: list[Path]) -> None:
    """Forward a stop to the loky workers; wait until none holds the lock of a run in
    ``dirs`` (each has checkpointed and unlocked its run); joblib then ends them."""
    from disbench.run import stop
    from disbench.run.lock import lock_owner

    pids = set(_worker_pids())

    def busy() -> list[int]:
        owners = (lock_owner(RunFolder(d).lock_path) or {} for d in dirs)
        return sorted({o.get("pid") for o in owners if o.get("pid") in pids
                       and stop.running(o["pid"])})

    log.warning("stopping (%s): waiting for %d worker(s) to checkpoint their runs",
                signal.Signals(signum).name, len(pids))
    left = stop.signal_and_wait(sorted(pids), signal.SIGTERM, busy, STOP_GRACE_SECONDS)
    if left:
        log.warning("workers %s did not stop within %.0f s; they are killed",
                    ", ".join(map(str, left)), STOP_GRACE_SECONDS)


def _worker_pids() -> list[int]:
    """The pids of joblib's loky workers (its reusable executor's processes)."""
    try:
        from joblib.externals.loky import reusable_executor

        executor = reusable_executor._executor
        return [int(pid) for pid in getattr(executor, "_processes", {})] if executor else []
    except Exception:  # noqa: BLE001 -- a joblib without that layout: the watchdogs stop them
        return []


def _uses_cuda(cfg: Any, cluster_gpus: float) -> bool:
    """Whether ``cfg`` trains on a GPU of the Ray cluster (``auto``: when it has GPUs)."""
    return cfg.device == "cuda" or (cfg.device == "auto" and cluster_gpus > 0)


def _run_ray(work: list[list], out: Path, spec: Spec, jobs: int, wait: bool = True,
             cuda_graphs: bool = False):
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
        if any(c.device == "cuda" for cfgs in work for c in cfgs) and gpus == 0:
            raise DisbenchError(
                "the sweep trains on CUDA but the Ray cluster has no GPUs; "
                "add GPU nodes or set train.device to cpu"
            )
        task = ray.remote(run_job)
        refs = [
            task.options(num_cpus=1, num_gpus=1 if _uses_cuda(cfgs[0], gpus) else 0).remote(
                cfgs, str(out.resolve()), spec.metrics, spec.eval, threads=1, wait=wait,
                cuda_graphs=cuda_graphs,
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
