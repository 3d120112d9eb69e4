"""The trainer: a run folder per :class:`~disbench.run.config.RunConfig`, alone or in ensembles.

:func:`train` trains one run, :func:`train_ensemble` trains runs that differ only in seed
and float hyperparameters together as one batched ensemble; both set their members up
here (seeding, data, the stored record, resuming) and hand them to the one training loop
(:func:`disbench.run.loop.fit`). The run folder and its files are
:mod:`disbench.run.folder`'s: ``config.json`` is written once, when a run is created (the
resolved config with the data source decided then), and read back afterwards.

Data path: on CUDA the whole uint8 array is copied to the device once and batches are
indexed there with a device ``torch.Generator``; on CPU the (possibly memory-mapped)
numpy array is indexed with the sorted indices of each batch. Batches are drawn
uniformly with replacement; images are converted per batch to float / 255
(:mod:`disbench.run.draws`). Pair and labelled models get their batch kind from
:mod:`disbench.run.batches`.

Resuming restores every state, so training N steps, stopping and resuming for N more
gives the same weights as training 2N steps in one go (on CPU, bit for bit).
"""
from __future__ import annotations

import contextlib
import logging
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from disbench.errors import DisbenchError, resolve_device
from disbench.run import stop
from disbench.run.batches import labelled_subset, sampler_for
from disbench.run.config import RunConfig, resolve_hparams
from disbench.run.cpu_tuning import tune_for
from disbench.run.draws import batch_data, batch_generator, seed_everything
from disbench.run.folder import FORMAT_VERSION, RunFolder
from disbench.run.loop import (
    EnsembleStep,
    LogAccumulator,
    SingleStep,
    Sink,
    StateMismatch,
    TrainingDiverged,
    fit,
)

log = logging.getLogger(__name__)


@dataclass
class _Member:
    """One run of a training job, as found on disk."""

    cfg: RunConfig  # resolved (source as requested)
    folder: RunFolder
    run_id: str
    state: dict[str, Any] | None = None  # the checkpoint to resume from
    record: dict[str, Any] | None = None  # its config.json, once created or read

    @property
    def start(self) -> int:
        return int(self.state["step"]) if self.state is not None else 0


# -- public entry points ------------------------------------------------------------------
def train(cfg: RunConfig, out_root: str | Path, *, resume: bool = False,
          progress: bool = True, stop_after: int | None = None) -> Path:
    """Train ``cfg`` into its run folder under ``out_root`` and return the folder.

    Parameters
    ----------
    cfg : RunConfig
    out_root : path
        Runs root; the folder is ``out_root/<dataset>/<model>/<hash>-s<seed>``.
    resume : bool
        Continue an unfinished run from its last checkpoint. Without it an unfinished
        run folder is an error (nothing is overwritten).
    progress : bool
        Show a tqdm progress bar.
    stop_after : int, optional
        Stop (with a checkpoint) after this many steps in this call, leaving a run that
        ``resume=True`` continues; for time-sliced jobs and tests.

    A finished run folder is left untouched (logged as already complete). On SIGTERM or
    SIGINT (with :func:`disbench.run.stop.handlers` installed, as the CLI does) the run
    checkpoints the step it reached and :class:`~disbench.run.stop.Interrupted` is raised.
    """
    with stop.deferred():
        member = _open(cfg.resolved(), out_root)
        if member is None:
            return cfg.run_dir(out_root)
        if member.state is not None and not resume:
            raise DisbenchError(
                f"{member.folder.path} holds an unfinished run (step {member.start} of "
                f"{member.cfg.steps}); pass --resume to continue it, or delete the folder to "
                "start over"
            )
        _train_single(member, progress=progress, stop_after=stop_after)
    return member.folder.path


def train_ensemble(cfgs: list[RunConfig], out_root: str | Path, *, progress: bool = True,
                   resume: bool = True, cuda_graphs: bool = False,
                   stop_after: int | None = None) -> list[Path]:
    """Train runs that differ only in seed and float hyperparameters as one ensemble.

    Every member gets its own run folder, written as :func:`train` writes it, so
    evaluation, leaderboards and ``--resume`` treat members like single runs. Members
    already complete are skipped; a group whose members cannot be batched (see
    :func:`disbench.run.ensemble.compatible`), stopped at different steps or were created
    on different data sources falls back to single training.

    Each step fills fixed buffers with every member's own batch and noise (the draws of
    its single run) and runs the vmapped update
    (:class:`disbench.run.graph_step.GraphedStep`). With ``cuda_graphs`` on a CUDA device
    that update is replayed as one captured CUDA graph (``disbench sweep --cuda-graphs``);
    off by default until measured on a GPU.
    """
    with stop.deferred():
        return _train_ensemble(cfgs, out_root, progress=progress, resume=resume,
                               cuda_graphs=cuda_graphs, stop_after=stop_after)


def _train_ensemble(cfgs: list[RunConfig], out_root: str | Path, *, progress: bool,
                    resume: bool, cuda_graphs: bool, stop_after: int | None) -> list[Path]:
    members = [m for m in (_open(c.resolved(), out_root) for c in cfgs) if m is not None]
    dirs = [c.run_dir(out_root) for c in cfgs]
    if not members:
        return dirs
    sources = [_source(m) for m in members]
    reason = _why_not_together(members, sources)
    if reason is not None or len(members) == 1:
        if reason:
            log.info("training %d runs one by one: %s", len(members), reason)
        diverged: dict[Path, dict[str, Any]] = {}
        for m in members:  # one diverging run does not stop the others
            try:
                train(m.cfg, out_root, resume=resume, progress=progress)
            except TrainingDiverged as exc:
                diverged.update(exc.diverged)
        if diverged:
            raise TrainingDiverged(diverged)
        return dirs
    _train_group(members, sources[0], progress=progress, cuda_graphs=cuda_graphs,
                 stop_after=stop_after)
    return dirs


# -- setting members up ---------------------------------------------------------------------
def _open(cfg: RunConfig, out_root: str | Path) -> _Member | None:
    """The run of ``cfg`` as found under ``out_root``; None when it is already trained."""
    run_id = cfg.run_id()
    folder = RunFolder.for_config(cfg, out_root, run_id)
    if folder.is_trained():
        log.info("%s is already complete; nothing to do", folder.path)
        return None
    state = folder.load_checkpoint(check_owner=False) if folder.has_checkpoint() else None
    if state is not None and not _extends(state, cfg, run_id):
        folder.check_owner(state, run_id)
    if state is not None and not folder.has_config() and isinstance(state.get("config"), dict):
        log.warning("%s was missing; restored it from %s", folder.config_path,
                    folder.checkpoint_path)
        folder.write_config(state["config"])
    if state is not None and int(state["step"]) >= cfg.steps:
        # Finished, but its status was lost or is stale: record it again.
        folder.write_status(int(state["step"]), cfg.steps, run_id)
        log.info("%s is already complete (%d steps); nothing to do", folder.path,
                 state["step"])
        return None
    return _Member(cfg, folder, run_id, state)


def _extends(state: dict[str, Any], cfg: RunConfig, run_id: str) -> bool:
    """Whether checkpoint ``state`` is of ``cfg``'s configuration with another step count.

    Such a checkpoint may be continued (a run folder copied to train a run for longer); a
    checkpoint of any other configuration is refused. Compared: every hashed setting but
    ``steps`` (the source as requested) and the hyperparameters ``cfg`` resolves.
    """
    from disbench.run.config import HASHED

    stored = state.get("config")
    if not isinstance(stored, dict) or state.get("run_id") == run_id:
        return False
    mine = cfg.to_dict()
    theirs = {**stored, "source": stored.get("requested_source", stored.get("source"))}
    if any(theirs.get(k) != mine[k] for k in HASHED if k not in ("steps", "hparams")):
        return False
    hp = theirs.get("hparams") or {}
    return all(k in hp and hp[k] == v for k, v in mine["hparams"].items())


def _source(member: _Member) -> str:
    """The data source of the run: stored when it was created, else decided now."""
    if member.folder.has_config():
        rec = member.folder.read_config()
        if rec.get("run_id") == member.run_id:
            member.record = rec
            return str(rec["source"])
    return member.cfg.concrete_source()


def _why_not_together(members: list[_Member], sources: list[str]) -> str | None:
    from disbench.baselines.registry import MODELS
    from disbench.run.ensemble import compatible

    reason = compatible(MODELS[members[0].cfg.model], [m.cfg for m in members])
    if reason is None and len({m.start for m in members}) > 1:
        reason = "members stopped at different steps"
    if reason is None and len({int((m.state or {}).get("log_count", 0))
                               for m in members}) > 1:
        reason = "members stopped at different points of a log row"
    if reason is None and len(set(sources)) > 1:
        reason = "members were created on different data sources"
    return reason


def _load_data(cfg: RunConfig, source: str) -> Any:
    from disbench.run.data import open_dataset

    return open_dataset(cfg.dataset, source, cfg.split, cfg.dataset_options or {})


def _record(member: _Member, source: str, dataset: Any, device: torch.device,
            ensemble: dict[str, Any] | None = None) -> dict[str, Any]:
    """The member's stored record: read back, or written now when the run is created."""
    _check_fingerprint(member, dataset)
    if member.record is None:
        cfg = member.cfg
        labels = labelled_subset(cfg, member.folder, dataset)  # drawn once, with the record
        rec = {
            **cfg.to_dict(),
            "source": source,
            "requested_source": cfg.source,
            "hparams": resolve_hparams(cfg, dataset, None if labels is None
                                       else labels["label_sizes"].tolist()),
            "device": device.type,
            "run_id": member.run_id,
            "dataset_fingerprint": getattr(dataset, "fingerprint", None),
            "dataset_size": len(dataset),
            "format_version": FORMAT_VERSION,
            "disbench_version": _version(),
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
        }
        if ensemble is not None:
            rec["ensemble"] = ensemble
        member.folder.write_config(rec)
        member.record = member.folder.read_config()
    return member.record


def _check_fingerprint(member: _Member, dataset: Any) -> None:
    """A run resumed on data other than it was trained on is an error."""
    if member.state is None or not member.folder.has_config():
        return
    old = member.folder.read_config().get("dataset_fingerprint")
    new = getattr(dataset, "fingerprint", None)
    if old != new:
        raise DisbenchError(
            f"{member.folder.path} was trained on data with fingerprint {old!r} but "
            f"{member.cfg.dataset!r} now has {new!r}; delete the folder to train afresh"
        )


def _build_model(cfg: RunConfig, record: dict[str, Any], device: torch.device) -> Any:
    """Seed as a run does, then create its model (the initialisation draws come first)."""
    from disbench import baselines

    seed_everything(cfg.seed)
    model = baselines.create(cfg.model, **record["hparams"]).to(device)
    if cfg.amp == "bf16":
        model.amp_dtype = torch.bfloat16
    return model


def _sink(member: _Member, dataset: Any) -> Sink:
    from disbench.run.curve import make_curve

    return Sink(member.folder, member.run_id, member.cfg.steps,
                member.folder.read_log(member.start) if member.state is not None else [],
                member.record, make_curve(member.folder, member.cfg, dataset, member.start))


def _accumulator(members: list[_Member], device: torch.device) -> LogAccumulator:
    states = [m.state for m in members]
    if states[0] is None:
        return LogAccumulator()
    return LogAccumulator.from_checkpoints(states, device)


def _end(cfg: RunConfig, start: int, stop_after: int | None) -> int:
    return cfg.steps if stop_after is None else min(cfg.steps, start + stop_after)


# -- training -------------------------------------------------------------------------------
def _train_single(member: _Member, *, progress: bool, stop_after: int | None) -> None:
    cfg = member.cfg
    source = _source(member)
    device = resolve_device(cfg.device, "device")
    tune_for(device)  # malloc thresholds on the CPU (numerically neutral)
    dataset = _load_data(cfg, source)
    record = _record(member, source, dataset, device)
    model = _build_model(cfg, record, device)
    step_fn = SingleStep(model, model.make_optimizers(cfg.lr),
                         sampler_for(cfg, member.folder, dataset, device), member.start)
    if member.state is not None:
        with _checkpoint_fits(member):
            step_fn.restore(member.state)
        log.info("resuming %s at step %d", member.folder.path, member.start)
    if cfg.compile:
        # In-place Module.compile keeps state_dict keys unchanged.
        for child in model.children():
            child.compile()
    model.train()
    end = _end(cfg, member.start, stop_after)
    fit(step_fn, [_sink(member, dataset)], _accumulator([member], device), start=member.start,
        end=end, steps=cfg.steps, log_every=cfg.log_every,
        checkpoint_every=cfg.checkpoint_every, progress=progress,
        desc=f"{cfg.model} {member.folder.path.name}")
    if end == cfg.steps:
        log.info("trained %s", member.folder.path)


def _train_group(members: list[_Member], source: str, *, progress: bool, cuda_graphs: bool,
                 stop_after: int | None) -> None:
    from disbench.run.ensemble import Ensemble, differing

    c0 = members[0].cfg
    device = resolve_device(c0.device, "device")
    tune_for(device)
    dataset = _load_data(c0, source)
    vary = differing([m.cfg for m in members])
    info = {"size": len(members), "vary": vary}
    models, noise_gens, batch_gens = [], [], []
    for m in members:
        # The same sequence as a single run, so member k draws what run k alone draws.
        models.append(_build_model(m.cfg, _record(m, source, dataset, device, info), device))
        gen = torch.Generator(device=device)
        gen.set_state(torch.get_rng_state() if device.type == "cpu"
                      else torch.cuda.get_rng_state(device))
        noise_gens.append(gen)
        batch_gens.append(batch_generator(m.cfg.seed, device))
    start = members[0].start
    with _checkpoint_fits(*members):
        step_fn = EnsembleStep(
            Ensemble(models, c0.lr, noise_gens, vary), batch_data(dataset, device),
            c0.batch_size, batch_gens, noise_gens, [m.state for m in members] if start else None,
            start, graph=cuda_graphs and device.type == "cuda")
    fit(step_fn, [_sink(m, dataset) for m in members], _accumulator(members, device),
        start=start,
        end=_end(c0, start, stop_after), steps=c0.steps, log_every=c0.log_every,
        checkpoint_every=c0.checkpoint_every, progress=progress,
        desc=f"{c0.model} ensemble x{len(members)}")


@contextlib.contextmanager
def _checkpoint_fits(*members: _Member) -> Iterator[None]:
    """Loading the members' checkpoints into their models and optimisers: a mismatch (a
    checkpoint of other model code or hyperparameters) is one line naming the file."""
    try:
        yield
    except StateMismatch as exc:
        raise DisbenchError(
            f"{members[exc.member].folder.checkpoint_path} does not match the model and "
            f"optimiser this run builds ({exc}); it was written by other model code or "
            "hyperparameters: delete it (and status.json) to train the run from the start, "
            "or resume with the disbench version that wrote it") from None


def _version() -> str:
    from disbench import __version__

    return __version__
