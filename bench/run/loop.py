"""The training loop: one for single runs and ensembles.

:func:`fit` calls a *step function* once per optimisation step and hands what it returns
to one :class:`Sink` per member run folder. A step function trains K members (K = 1 for a
single run) and returns each loss term as a (K,) tensor:

- :class:`SingleStep`: one model, its optimisers and its batch sampler
  (:class:`~disbench.run.draws.BatchSampler`, or a pair or labelled sampler of
  :mod:`disbench.run.batches` for the model's ``batch_kind``; any model, adversaries
  included);
- :class:`EnsembleStep`: K members as one :class:`~disbench.run.ensemble.Ensemble`, each
  step through the fixed buffers of :class:`~disbench.run.graph_step.GraphedStep` (a
  captured CUDA graph when asked for).

Everything else is written once, here: the log accumulation (:class:`LogAccumulator`, which
the checkpoint saves, so a resumed run logs what an uninterrupted one logs), the log rows and
the warning on a non-finite loss (:class:`Sink`), the checkpoint cadence and payload, and
divergence: a member whose loss becomes non-finite (noticed at the next log row, the step
named exactly, without a device sync per step) or whose parameters are non-finite at a
checkpoint stops there, keeping its last finite checkpoint; the other members of an
ensemble train on, and :func:`fit` then raises :class:`TrainingDiverged` naming each
diverged run and its step.
"""
from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from disbench.errors import DisbenchError
from disbench.run import stop
from disbench.run.draws import BatchSampler, rng_state, set_rng_state
from disbench.run.ensemble import Ensemble
from disbench.run.folder import RunFolder, checkpoint_payload
from disbench.run.graph_step import GraphedStep

log = logging.getLogger(__name__)

#: one member's (model state dict, optimiser state dicts by name, RNG states)
MemberState = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


class StepFunction(Protocol):
    """Trains K members one step per call; returns every loss term as a (K,) tensor."""

    k: int

    def __call__(self) -> dict[str, torch.Tensor]: ...

    def member_model(self, k: int) -> Any: ...

    def member_state(self, k: int) -> MemberState: ...


class TrainingDiverged(DisbenchError):
    """Training produced a non-finite loss or non-finite parameters.

    ``diverged`` maps each diverged run folder to ``{"step", "what"}`` (``what``: ``loss``
    or ``parameters``); the folders keep their last finite checkpoint.
    """

    def __init__(self, diverged: dict[Path, dict[str, Any]]) -> None:
        self.diverged = dict(diverged)
        parts = "; ".join(f"{path}: the {d['what']} became non-finite at step {d['step']}"
                          for path, d in self.diverged.items())
        super().__init__(
            f"training diverged ({parts}); no checkpoint of non-finite weights was written: "
            "lower the learning rate (--lr) or change the hyperparameters (a new run)")

    def only(self, path: str | Path) -> TrainingDiverged:
        """The divergence of the run in ``path`` alone."""
        path = Path(path)
        return TrainingDiverged({p: d for p, d in self.diverged.items() if Path(p) == path})

    def record(self, path: str | Path) -> dict[str, Any] | None:
        """``{"step", "what"}`` of the run in ``path`` (None when it did not diverge)."""
        return next((d for p, d in self.diverged.items() if Path(p) == Path(path)), None)


class StateMismatch(Exception):
    """Member ``member``'s checkpoint does not fit the model or optimisers built for it."""

    def __init__(self, member: int, cause: BaseException) -> None:
        self.member = member
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        super().__init__(f"{type(cause).__name__}: {first}")


_MISMATCH = (RuntimeError, KeyError, ValueError, IndexError, TypeError)


class _FirstNonFinite:
    """The first step at which each member's loss was non-finite (0: none yet), tracked on
    the training device so that no step waits for the host."""

    def __init__(self) -> None:
        self.first: torch.Tensor | None = None

    def update(self, loss: torch.Tensor, step: int) -> None:
        if self.first is None:
            self.first = torch.zeros(loss.shape, dtype=torch.long, device=loss.device)
        bad = ~torch.isfinite(loss.detach()) & (self.first == 0)
        self.first = torch.where(bad, step, self.first)

    def steps(self) -> list[int]:
        return [] if self.first is None else [int(v) for v in self.first.tolist()]


def _finite_state(state: dict[str, Any]) -> bool:
    """Whether every floating tensor of a state dict is finite (one host sync)."""
    flags = [torch.isfinite(t).all() for t in state.values()
             if isinstance(t, torch.Tensor) and t.is_floating_point()]
    return bool(torch.stack(flags).all()) if flags else True


class LogAccumulator:
    """Running sums of every loss term per member, since the last log row.

    ``acc`` holds (K,) tensors on the training device (no host sync between log rows).
    """

    def __init__(self, acc: dict[str, torch.Tensor] | None = None, count: int = 0) -> None:
        self.acc = dict(acc or {})
        self.count = count

    @classmethod
    def from_checkpoints(cls, states: Sequence[dict[str, Any]], device: torch.device
                         ) -> LogAccumulator:
        """Stack the members' saved partial sums (every member saved the same count)."""
        names = list(states[0].get("log_acc", {}))
        acc = {n: torch.stack([s["log_acc"][n].reshape(()) for s in states]).to(device)
               for n in names}
        return cls(acc, int(states[0].get("log_count", 0)))

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for name, v in terms.items():
            self.acc[name] = self.acc[name] + v if name in self.acc else v.detach().clone()
        self.count += 1

    def flush(self, k: int) -> list[dict[str, str]]:
        """Each member's mean of every term (formatted for the log); starts a new row."""
        means = {n: v / self.count for n, v in self.acc.items()}
        rows = [{n: repr(float(m[i])) for n, m in means.items()} for i in range(k)]
        self.acc, self.count = {}, 0
        return rows

    def member(self, k: int) -> tuple[dict[str, torch.Tensor], int]:
        """Member ``k``'s partial sums (CPU, for its checkpoint) and their count."""
        return {n: v[k].detach().cpu().clone() for n, v in self.acc.items()}, self.count


class Sink:
    """One member's run folder: its log rows, checkpoints and status."""

    def __init__(self, folder: RunFolder, run_id: str, steps: int,
                 rows: list[dict[str, Any]], record: dict[str, Any] | None = None,
                 curve: Any = None) -> None:
        self.folder = folder
        self.run_id = run_id
        self.steps = steps
        self.rows = list(rows)
        self.record = record  # config.json, copied into each checkpoint
        self.diverged: dict[str, Any] | None = None  # {"step", "what"} once it diverged
        #: the run's metrics curve (:class:`disbench.run.curve.MetricsCurve`) or None
        self.curve = curve

    def log(self, step: int, means: dict[str, str]) -> None:
        row = {"step": step, **means}
        self.rows.append(row)
        if not all(math.isfinite(float(v)) for v in means.values()):
            log.warning("non-finite loss at step %d of %s: %s", step, self.folder.path, row)

    def diverge(self, step: int, what: str) -> None:
        """Stop this member: its log (with the bad row) is written, no checkpoint is."""
        self.diverged = {"step": int(step), "what": what}
        self.folder.write_log(self.rows)
        log.warning("training of %s diverged: the %s became non-finite at step %d; it stops "
                    "there", self.folder.path, what, step)

    def save(self, step: int, state: MemberState, log_acc: dict[str, torch.Tensor],
             log_count: int) -> None:
        model, optimizers, rng = state
        self.folder.write_log(self.rows)
        self.folder.save_checkpoint(checkpoint_payload(
            run_id=self.run_id, step=step, model=model, optimizers=optimizers, rng=rng,
            log_acc=log_acc, log_count=log_count, config=self.record), self.steps)


class SingleStep:
    """One model with its own optimisers (``model.train_step_tensors``) and batches."""

    k = 1

    def __init__(self, model: Any, optimizers: dict[str, torch.optim.Optimizer],
                 sampler: BatchSampler | Any, start: int) -> None:
        self.model = model
        self.optimizers = optimizers
        self.sampler = sampler
        self.step = start

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint of this run (:class:`StateMismatch` if it does not fit)."""
        try:
            self.model.load_state_dict(state["model"])
            for name, opt in self.optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            set_rng_state(state["rng"], self.sampler.generator)
        except _MISMATCH as exc:
            raise StateMismatch(0, exc) from exc
        if hasattr(self.sampler, "load_state"):  # pairs, labelled batches: their own state
            self.sampler.load_state(state["rng"])

    def __call__(self) -> dict[str, torch.Tensor]:
        terms = self.model.scheduled_step(self.sampler.next(), self.step, self.optimizers)
        self.step += 1
        return {n: v.reshape(1) for n, v in terms.items()}

    def member_model(self, k: int) -> Any:  # noqa: ARG002 (the StepFunction protocol)
        """The model of member ``k`` (for evaluations during training)."""
        return self.model

    def member_state(self, k: int) -> MemberState:
        if k != 0:
            raise IndexError(f"a single run has member 0 only, not {k}")
        rng = rng_state(self.sampler.generator)
        rng.update(self.sampler.state() if hasattr(self.sampler, "state") else {})
        return (self.model.state_dict(),
                {n: o.state_dict() for n, o in self.optimizers.items()}, rng)


class EnsembleStep:
    """K members as one vmapped ensemble, each with its own batch and noise generator."""

    def __init__(self, ensemble: Ensemble, data: Any, batch_size: int,
                 batch_gens: list[torch.Generator], noise_gens: list[torch.Generator],
                 states: Sequence[dict[str, Any]] | None, start: int, graph: bool) -> None:
        self.ens = ensemble
        self.k = ensemble.k
        self.batch_gens = batch_gens
        self.noise_gens = noise_gens
        for k, st in enumerate(states or ()):  # before GraphedStep makes Adam capturable
            try:
                ensemble.load_member(k, st["model"], st["optimizers"]["model"])
                set_rng_state(st["rng"], batch_gens[k], noise_gens[k])
            except _MISMATCH as exc:
                raise StateMismatch(k, exc) from exc
        self.graphed = GraphedStep(ensemble, data, batch_size, batch_gens, noise_gens,
                                   start_step=start, graph=graph)

    def __call__(self) -> dict[str, torch.Tensor]:
        return self.graphed()  # every member's own batch and noise, one vmapped update

    def member_model(self, k: int) -> Any:
        """A copy of member ``k``'s model with its current weights."""
        model = copy.deepcopy(self.ens.models[k])
        model.load_state_dict(self.ens.member_state_dict(k))
        return model

    def member_state(self, k: int) -> MemberState:
        return (self.ens.member_state_dict(k),
                {"model": self.ens.member_optimizer_state(k)},
                rng_state(self.batch_gens[k], self.noise_gens[k]))


def fit(step_fn: StepFunction, sinks: Sequence[Sink], acc: LogAccumulator, *, start: int,
        end: int, steps: int, log_every: int, checkpoint_every: int, progress: bool,
        desc: str) -> None:
    """Train from step ``start`` to ``end`` (of ``steps``), logging and checkpointing.

    A log row every ``log_every`` steps and at the last step; a checkpoint every
    ``checkpoint_every`` steps and at ``end`` (always, so a stopped run can resume). On a
    stop request (:mod:`disbench.run.stop`) it checkpoints the step reached and raises
    :class:`~disbench.run.stop.Interrupted`.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=steps, initial=start, disable=not progress, desc=desc, unit="step",
               dynamic_ncols=True)
    watch = _FirstNonFinite()
    try:
        for step in range(start, end):
            terms = step_fn()
            acc.add(terms)
            done = step + 1
            watch.update(terms["loss"], done)
            if done % log_every == 0 or done == steps:
                _log_rows(sinks, acc.flush(step_fn.k), watch, done, bar)
                if all(sink.diverged for sink in sinks):
                    break
            for k, sink in enumerate(sinks):
                if sink.curve is not None and not sink.diverged and sink.curve.due(done):
                    sink.curve.evaluate(done, step_fn.member_model(k))
            if done % checkpoint_every == 0 and done != end:
                _checkpoint(step_fn, sinks, acc, done)
            bar.update(1)
            if stop.requested() is not None and done != end:  # SIGTERM / SIGINT
                _checkpoint(step_fn, sinks, acc, done)
                raise stop.Interrupted(stop.requested())
        else:
            _checkpoint(step_fn, sinks, acc, end)
    finally:
        bar.close()
    diverged = {sink.folder.path: sink.diverged for sink in sinks if sink.diverged}
    if diverged:
        raise TrainingDiverged(diverged)


def _log_rows(sinks: Sequence[Sink], rows: list[dict[str, str]], watch: _FirstNonFinite,
              done: int, bar: Any) -> None:
    """Hand each live member its row; a member whose loss went non-finite stops."""
    firsts = watch.steps()
    for k, (sink, row) in enumerate(zip(sinks, rows, strict=True)):
        if sink.diverged:
            continue
        sink.log(done, row)
        if firsts[k] or not math.isfinite(float(row["loss"])):
            sink.diverge(firsts[k] or done, "loss")
    live = [row for sink, row in zip(sinks, rows, strict=True) if not sink.diverged]
    if live:
        bar.set_postfix(loss=f"{float(live[0]['loss']):.4g}")


def _checkpoint(step_fn: StepFunction, sinks: Sequence[Sink], acc: LogAccumulator,
                step: int) -> None:
    for k, sink in enumerate(sinks):
        if sink.diverged:
            continue
        state = step_fn.member_state(k)
        if not _finite_state(state[0]):
            sink.diverge(step, "parameters")
            continue
        log_acc, count = acc.member(k)
        sink.save(step, state, log_acc, count)
