"""The training loop: one for single runs and ensembles.

:func:`fit` calls a *step function* once per optimisation step and hands what it returns
to one :class:`Sink` per member run folder. A step function trains K members (K = 1 for a
single run) and returns each loss term as a (K,) tensor:

- :class:`SingleStep`: one model, its optimisers and its
  :class:`~disbench.run.draws.BatchSampler` (any model, adversaries included);
- :class:`EnsembleStep`: K members as one :class:`~disbench.run.ensemble.Ensemble`, each
  step through the fixed buffers of :class:`~disbench.run.graph_step.GraphedStep` (a
  captured CUDA graph when asked for).

Everything else is written once, here: the log accumulation (:class:`LogAccumulator`, which
the checkpoint saves, so a resumed run logs what an uninterrupted one logs), the log rows and
the warning on a non-finite loss (:class:`Sink`), the checkpoint cadence and payload.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Protocol

import torch
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

    def member_state(self, k: int) -> MemberState: ...


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
                 rows: list[dict[str, Any]], record: dict[str, Any] | None = None) -> None:
        self.folder = folder
        self.run_id = run_id
        self.steps = steps
        self.rows = list(rows)
        self.record = record  # config.json, copied into each checkpoint

    def log(self, step: int, means: dict[str, str]) -> None:
        row = {"step": step, **means}
        self.rows.append(row)
        if not all(math.isfinite(float(v)) for v in means.values()):
            log.warning("non-finite loss at step %d of %s: %s", step, self.folder.path, row)

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
                 sampler: BatchSampler, start: int) -> None:
        self.model = model
        self.optimizers = optimizers
        self.sampler = sampler
        self.step = start

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint of this run."""
        self.model.load_state_dict(state["model"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        set_rng_state(state["rng"], self.sampler.generator)

    def __call__(self) -> dict[str, torch.Tensor]:
        terms = self.model.train_step_tensors(self.sampler.next(), self.step, self.optimizers)
        self.step += 1
        return {n: v.reshape(1) for n, v in terms.items()}

    def member_state(self, k: int) -> MemberState:
        if k != 0:
            raise IndexError(f"a single run has member 0 only, not {k}")
        return (self.model.state_dict(),
                {n: o.state_dict() for n, o in self.optimizers.items()},
                rng_state(self.sampler.generator))


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
            ensemble.load_member(k, st["model"], st["optimizers"]["model"])
            set_rng_state(st["rng"], batch_gens[k], noise_gens[k])
        self.graphed = GraphedStep(ensemble, data, batch_size, batch_gens, noise_gens,
                                   start_step=start, graph=graph)

    def __call__(self) -> dict[str, torch.Tensor]:
        return self.graphed()  # every member's own batch and noise, one vmapped update

    def member_state(self, k: int) -> MemberState:
        return (self.ens.member_state_dict(k),
                {"model": self.ens.member_optimizer_state(k)},
                rng_state(self.batch_gens[k], self.noise_gens[k]))


def fit(step_fn: StepFunction, sinks: Sequence[Sink], acc: LogAccumulator, *, start: int,
        end: int, steps: int, log_every: int, checkpoint_every: int, progress: bool,
        desc: str) -> None:
    """Train from step ``start`` to ``end`` (of ``steps``), logging and checkpointing.

    A log row every ``log_every`` steps and at the last step; a checkpoint every
    ``checkpoint_every`` steps and at ``end`` (always, so a stopped run can resume).
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=steps, initial=start, disable=not progress, desc=desc, unit="step",
               dynamic_ncols=True)
    try:
        for step in range(start, end):
            acc.add(step_fn())
            done = step + 1
            if done % log_every == 0 or done == steps:
                rows = acc.flush(step_fn.k)
                for sink, row in zip(sinks, rows, strict=True):
                    sink.log(done, row)
                bar.set_postfix(loss=f"{float(rows[0]['loss']):.4g}")
            if done % checkpoint_every == 0 and done != end:
                _checkpoint(step_fn, sinks, acc, done)
            bar.update(1)
        _checkpoint(step_fn, sinks, acc, end)
    finally:
        bar.close()


def _checkpoint(step_fn: StepFunction, sinks: Sequence[Sink], acc: LogAccumulator,
                step: int) -> None:
    for k, sink in enumerate(sinks):
        log_acc, count = acc.member(k)
        sink.save(step, step_fn.member_state(k), log_acc, count)
