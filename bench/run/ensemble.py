"""Batched ensembles: K models of one kind trained together in one pass.

A disentanglement study is thousands of small models, and at the protocol's batch size
of 64 a GPU is nearly idle. :class:`Ensemble` stacks the parameters of K models of one
kind (``torch.func.stack_module_state``) and evaluates all K objectives with one
``torch.vmap`` over ``torch.func.functional_call``: the convolutions become batched
(grouped) kernels over K x 64 images. Each member still

- sees its own batches of 64, drawn by its own batch generator exactly as
  :class:`disbench.run.draws.BatchSampler` draws them for a single run,
- draws its own sampling noise from its own generator, in the same order as a single
  run draws it from the global generator (the draws are recorded once and replayed
  inside ``vmap`` by a :class:`~torch.overrides.TorchFunctionMode`; both paths draw with
  :func:`disbench.run.draws.draw_noise`),
- has its own Adam state: Adam is element-wise, so one Adam over the stacked (K, ...)
  parameters is K independent Adams, and the gradient of the summed losses with
  respect to member k's slice is member k's own gradient,
- may differ from the others in scalar hyperparameters (e.g. ``beta``), which are fed
  as a vmapped (K,) tensor.

So on CPU a member and the same model trained alone with the same seed agree to float
tolerance (the batched kernels sum in another order). The training loop
(:func:`disbench.run.trainer.train_ensemble`) gives each member its own run folder in the
single-run layout, which :func:`disbench.run.folder.load_run` and ``--resume`` read like
any other run.

Models qualify when they train with the default single-optimiser step (no adversary or
critic) and every hyperparameter that differs between members is a float; see
:func:`compatible`.
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from typing import Any

import torch
from disbench.baselines.base import at_step
from disbench.baselines.schedules import find as find_schedules
from disbench.errors import DisbenchError
from disbench.run.config import GROUP_FIELDS, RunConfig
from disbench.run.draws import RANDOM_FUNCS, draw_noise
from torch.overrides import TorchFunctionMode


# -- random draws: record once, replay inside vmap -------------------------------------------
class _RecordRandom(TorchFunctionMode):
    """Pass random calls through, recording (function, shape, dtype) of each."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Callable, tuple[int, ...], torch.dtype]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in RANDOM_FUNCS:
            if kwargs and kwargs.get("generator") is not None:
                raise DisbenchError("ensembles cannot replay draws from an explicit generator")
            self.calls.append((func, tuple(out.shape), out.dtype))
        return out


class _ReplayRandom(TorchFunctionMode):
    """Answer each random call with the next pre-drawn tensor (same shape)."""

    def __init__(self, draws: list[torch.Tensor]) -> None:
        super().__init__()
        self.draws = list(draws)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in RANDOM_FUNCS:
            if not self.draws:
                raise RuntimeError("ensemble: more random draws than recorded")
            return self.draws.pop(0)
        return func(*args, **(kwargs or {}))


# -- compatibility ---------------------------------------------------------------------------
def differing(cfgs: list[RunConfig]) -> list[str]:
    keys = sorted(set().union(*(c.hparams for c in cfgs)))
    return [k for k in keys if len({repr(c.hparams.get(k)) for c in cfgs}) > 1]


def group_key(cfg: RunConfig) -> tuple:
    """Runs with equal keys may train together (hyperparameter values may differ).

    The key is every field declared ``group`` (:data:`disbench.run.config.GROUP_FIELDS`)
    and the names of the hyperparameters set.
    """
    return tuple(repr(getattr(cfg, f)) for f in GROUP_FIELDS) + (tuple(sorted(cfg.hparams)),)


def compatible(model_cls: type, cfgs: list[RunConfig]) -> str | None:
    """``None`` when ``cfgs`` can form one ensemble of ``model_cls``, else the reason."""
    from disbench.baselines.base import Model

    if len({group_key(c) for c in cfgs}) > 1:
        return "the runs differ in more than model hyperparameters and seed"
    if model_cls.batch_kind != "images":
        return f"{model_cls.registry_name} trains on {model_cls.batch_kind}, not image batches"
    if model_cls.train_step_tensors is not Model.train_step_tensors:
        return f"{model_cls.registry_name} trains with its own step (adversary or critic)"
    for k in differing(cfgs):
        if not all(isinstance(c.hparams.get(k), (int, float)) and not isinstance(
                c.hparams.get(k), bool) for c in cfgs):
            return f"hyperparameter {k!r} differs between runs and is not a number"
    return None


# -- the ensemble ----------------------------------------------------------------------------
class Ensemble:
    """K models of one class trained as one vmapped model.

    Parameters
    ----------
    models : list of Model
        Initialised members (same class and architecture), on one device.
    lr : float or None
        Learning rate (None: the model's paper default).
    noise_generators : list of torch.Generator
        One per member: the source of its sampling noise (reparameterisation etc.).
    vary : list of str
        Names of float hyperparameters that differ between members.
    """

    def __init__(self, models: list[torch.nn.Module], lr: float | None,
                 noise_generators: list[torch.Generator], vary: list[str]) -> None:
        from torch.func import stack_module_state

        self.k = len(models)
        self.models = models
        self.device = models[0].device
        self.noise_generators = noise_generators
        self.vary = list(vary)
        self.hp_values = {n: torch.tensor([float(getattr(m.hparams, n)) for m in models],
                                          device=self.device) for n in self.vary}
        params, buffers = stack_module_state(models)
        self.params = params
        self.buffers = buffers
        base = copy.deepcopy(models[0]).to("meta")
        base.forward = base.loss  # functional_call calls forward
        base.amp_dtype = models[0].amp_dtype
        self.base = base
        opt0 = models[0].make_optimizers(lr)["model"]
        group = {k: v for k, v in opt0.param_groups[0].items() if k != "params"}
        self.optimizer = type(opt0)(list(self.params.values()), **group)
        self.calls: list | None = None
        #: scheduled hyperparameters (the same schedule for every member)
        self.scheduled = find_schedules(models[0].hparams)
        #: the loss reads the step (GraphedStep then passes it as a device tensor)
        self.step_dependent = bool(models[0].step_dependent)

    # -- one step ------------------------------------------------------------------------
    def _record(self, x: torch.Tensor, step: int) -> None:
        """Record the random draws of one member's loss (shapes only; values discarded)."""
        probe = copy.deepcopy(self.models[0])
        state = torch.get_rng_state()
        cuda_state = torch.cuda.get_rng_state() if x.is_cuda else None
        with _RecordRandom() as rec, torch.no_grad(), probe.hparams_at(step):
            probe.loss(x, step)
        torch.set_rng_state(state)
        if cuda_state is not None:
            torch.cuda.set_rng_state(cuda_state)
        self.calls = rec.calls

    def _autocast(self):
        # The template module lives on "meta": autocast needs the members' device type.
        if self.base.amp_dtype is None:
            return contextlib.nullcontext()
        # No weight-cast cache: each weight is cast once per step anyway, and a cache kept
        # across steps is unsafe under CUDA-graph capture.
        return torch.autocast(device_type=self.device.type, dtype=self.base.amp_dtype,
                              cache_enabled=False)

    def _member_loss(self, params, buffers, x, draws, hp, step):
        hparams = copy.copy(self.base.hparams)
        for name, value in hp.items():
            object.__setattr__(hparams, name, value)
        if self.scheduled:  # each schedule's value at this step (a tensor step in a graph)
            hparams = at_step(hparams, self.scheduled, step)
        saved = self.base.hparams
        self.base.hparams = hparams
        try:
            with _ReplayRandom(draws), self._autocast():
                return torch.func.functional_call(self.base, (params, buffers), (x, step))
        finally:
            self.base.hparams = saved

    def draw_shapes(self, x: torch.Tensor, step: int) -> list[tuple[Callable, tuple, Any]]:
        """(function, shape for all K members, dtype) of each random draw of one step."""
        if self.calls is None:
            self._record(x, step)
        return [(f, (self.k, *shape), dt) for f, shape, dt in self.calls]

    def step(self, xs: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """One optimisation step on member batches ``xs`` (K, B, ...); per-member terms (K,)."""
        if self.calls is None:
            self._record(xs[0], step)
        per_member = [[draw_noise(f, shape, dt, g) for f, shape, dt in self.calls]
                      for g in self.noise_generators]
        draws = [torch.stack([d[i] for d in per_member]) for i in range(len(self.calls))]
        return self.update(xs, draws, step)

    def update(self, xs: torch.Tensor, draws: list[torch.Tensor],
               step: int) -> dict[str, torch.Tensor]:
        """The step given every member's batch (K, B, ...) and random draws (K, ...).

        Only tensor work on fixed shapes (no host sync), so it can be captured as a CUDA
        graph (:class:`disbench.run.graph_step.GraphedStep`).
        """
        def f(params, buffers, x, draws, hp):
            return self._member_loss(params, buffers, x, draws, hp, step)

        terms = torch.vmap(f, randomness="error")(self.params, self.buffers, xs, draws,
                                                  self.hp_values)
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].sum().backward()
        self.optimizer.step()
        return {k: v.detach().float() for k, v in terms.items()}

    # -- members -------------------------------------------------------------------------
    def member_state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """Member ``k``'s model state dict (the single-run layout)."""
        sd = {n: p.detach()[k].clone() for n, p in self.params.items()}
        sd.update({n: b[k].clone() for n, b in self.buffers.items()})
        ref = self.models[k].state_dict()
        return {n: sd[n] for n in ref}

    def member_optimizer_state(self, k: int) -> dict[str, Any]:
        """Member ``k``'s optimiser state dict, as a single run's optimiser would save it."""
        full = self.optimizer.state_dict()
        state = {}
        for idx, s in full["state"].items():
            # Scalars (Adam's step) to the host, where a single run's Adam keeps them (a
            # capturable Adam, as under CUDA graphs, keeps them on the device).
            state[idx] = {n: (v[k].clone() if torch.is_tensor(v) and v.dim() > 0 else
                              (v.detach().cpu().clone() if torch.is_tensor(v) else v))
                          for n, v in s.items()}
        return {"state": state, "param_groups": copy.deepcopy(full["param_groups"])}

    def load_member(self, k: int, model_state: dict, opt_state: dict) -> None:
        """Put a single-run checkpoint into slot ``k`` (for resuming)."""
        with torch.no_grad():
            for n, p in self.params.items():
                p[k].copy_(model_state[n])
            for n, b in self.buffers.items():
                b[k].copy_(model_state[n])
        if opt_state["state"]:
            full = self.optimizer.state_dict()
            names = list(self.params)
            for idx in range(len(names)):
                src = opt_state["state"][idx]
                dst = full["state"].setdefault(idx, {})
                for n, v in src.items():
                    if torch.is_tensor(v) and v.dim() > 0:
                        if n not in dst:
                            dst[n] = torch.zeros((self.k, *v.shape), dtype=v.dtype,
                                                 device=self.device)
                        dst[n][k].copy_(v)
                    else:
                        dst[n] = v
            self.optimizer.load_state_dict(full)


def group_runs(cfgs: list[RunConfig], max_size: int = 32) -> list[list[RunConfig]]:
    """Split ``cfgs`` into groups that may train as ensembles (at most ``max_size`` each)."""
    groups: dict[tuple, list[RunConfig]] = {}
    for c in cfgs:
        groups.setdefault(group_key(c), []).append(c)
    out = []
    for g in groups.values():
        for i in range(0, len(g), max_size):
            out.append(g[i:i + max_size])
    return out


__all__ = ["Ensemble", "compatible", "differing", "group_key", "group_runs"]
