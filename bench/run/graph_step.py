"""An ensemble step on fixed buffers, replayed as one CUDA graph (issue 8).

At the protocol's batch of 64 a training step is a few hundred small kernels, and an
eager ensemble step (:meth:`disbench.run.ensemble.Ensemble.step`) spends much of its time
issuing them from Python (``vmap``, ``functional_call``, the optimiser). A CUDA graph
records the kernels of one step once and replays them with one launch. That needs every
tensor of the step at a fixed address and no host synchronisation inside it, so
:class:`GraphedStep` keeps the inputs in fixed buffers and refills them before each
replay:

1. every member's batch indices (K, B),
2. the images gathered from the dataset into a uint8 (K, B, C, H, W) buffer (on CUDA by
   ``index_select`` from the device-resident dataset, no host round trip),
3. every member's sampling noise, one buffer per random call of the loss,

then runs :meth:`~disbench.run.ensemble.Ensemble.update` -- uint8 to float, the vmapped
forward, backward and Adam -- as the graph. Adam runs with ``capturable=True`` so its step
counters live on the device.

Draws come either from one generator per member (exact: member k draws what run k alone
draws, as :class:`disbench.run.draws.BatchSampler` and the global generator would) or from
one shared generator (one call per draw for all members: fewer launches; members then
match single runs in distribution only). Without CUDA (or with ``graph=False``) the same
buffers are filled and the same update runs eagerly: that is what the CPU tests compare
with :meth:`Ensemble.step` and with single runs.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from disbench.errors import DisbenchError
from disbench.run.draws import draw_batch_indices, draw_noise
from disbench.run.ensemble import Ensemble

log = logging.getLogger(__name__)
Generators = torch.Generator | Sequence[torch.Generator]


class GraphedStep:
    """Call it once per optimisation step of an ensemble; on CUDA a captured graph.

    Parameters
    ----------
    ensemble : Ensemble
        The members (its optimiser is switched to ``capturable`` when graphing).
    data : torch.Tensor or numpy.ndarray
        The dataset as uint8 images (N, C, H, W); pixel values map to [0, 1] as
        ``x / 255``, as :class:`disbench.run.draws.BatchSampler` does. A tensor on the
        ensemble's device; on CPU also a host array (numpy, memmap, or a dataset's lazily
        rendered images) indexed with numpy index arrays.
    batch_size : int
        Images per member per step (the protocol's 64).
    batch_generator, noise_generator : torch.Generator or list of K torch.Generator
        Sources of the batch indices and of the sampling noise: one shared generator (one
        draw for all members) or one per member (exact). Batch indices are drawn as
        :class:`~disbench.run.draws.BatchSampler` draws them (sorted within each batch on
        CPU, for sequential memmap reads).
    start_step : int
        Step index of the first call (passed to the loss).
    graph : bool or None
        Capture a CUDA graph. ``None``: when the ensemble is on CUDA.
    warmup : int
        Eager steps before capture (run on a side stream, as capture requires; they let
        cuDNN pick its kernels and Adam create its state). Every call, warm-up or not, is
        exactly one optimisation step.

    Notes
    -----
    A captured graph would fix a Python step index at capture, so for a model whose loss
    depends on the step (:attr:`Ensemble.step_dependent`: an annealing or a scheduled
    hyperparameter) the loss reads a float32 step counter on the device instead, refilled
    before each call (graphed or eager alike). The returned per-member terms live in the
    graph's buffers: they are valid until the next call (clone to keep them).
    """

    def __init__(self, ensemble: Ensemble, data: Any, batch_size: int,
                 batch_generator: Generators, noise_generator: Generators, *,
                 start_step: int = 0, graph: bool | None = None, warmup: int = 3) -> None:
        device = ensemble.device
        k = ensemble.k
        if graph is None:
            graph = device.type == "cuda"
        if graph and device.type != "cuda":
            raise DisbenchError(f"CUDA graphs need a CUDA device; the ensemble is on {device}"
                                " (use graph=False)")
        if not isinstance(data, torch.Tensor):
            if not (hasattr(data, "shape") and hasattr(data, "dtype")):
                raise DisbenchError("data must be a uint8 tensor (or, on CPU, an array) of "
                                    f"images (N, C, H, W); got {type(data).__name__}")
            if device.type != "cpu":
                raise DisbenchError(f"data is a host array but the ensemble is on {device}; "
                                    "pass the uint8 tensor on the device (dataset.tensor(device))")
        elif data.device != device:
            raise DisbenchError(f"data is on {data.device} but the ensemble on {device}; "
                                "move it with data.to(device) once, before training")
        if data.dtype not in (torch.uint8, np.uint8):
            raise DisbenchError(f"data must hold uint8 images (N, C, H, W); got {data.dtype}")
        if data.ndim != 4 or len(data) < 1:
            raise DisbenchError(f"data must have shape (N, C, H, W) with N >= 1; got "
                                f"{tuple(data.shape)}")
        if batch_size < 1:
            raise DisbenchError(f"batch_size must be >= 1; got {batch_size}")
        for name, gens in (("batch_generator", batch_generator),
                           ("noise_generator", noise_generator)):
            if not isinstance(gens, torch.Generator) and len(gens) != k:
                raise DisbenchError(f"{name}: one generator, or one per member ({k}); got "
                                    f"{len(gens)}")
        self.ens = ensemble
        self.data = data
        self.batch_size = batch_size
        self.batch_generator = batch_generator
        self.noise_generator = noise_generator
        self.step_index = start_step
        self.use_graph = graph
        self.warmup = warmup
        self.idx = torch.empty((k, batch_size), dtype=torch.long, device=device)
        self.images = torch.empty((k, batch_size, *data.shape[1:]), dtype=torch.uint8,
                                  device=device)
        first = data[:1] if isinstance(data, torch.Tensor) else torch.from_numpy(
            np.ascontiguousarray(data[:1]))
        probe = first.to(device).float().div(255.0)
        probe = probe.expand(batch_size, *probe.shape[1:])  # the draws' shapes only
        self.shapes = ensemble.draw_shapes(probe, start_step)
        self.draws = [torch.empty(shape, dtype=dt, device=device)
                      for _, shape, dt in self.shapes]
        #: the step as the loss reads it: a device counter when the loss depends on it
        self.step_counter = (torch.zeros((), dtype=torch.float32, device=device)
                             if ensemble.step_dependent else None)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.out: dict[str, torch.Tensor] | None = None
        self.calls = 0
        if graph:
            _make_capturable(ensemble.optimizer)

    def _fill(self) -> None:
        """Draw the next batch indices, images and noise into the fixed buffers."""
        if self.step_counter is not None:
            self.step_counter.fill_(float(self.step_index))
        n = len(self.data)
        if isinstance(self.batch_generator, torch.Generator):
            draw_batch_indices(n, tuple(self.idx.shape), self.batch_generator, out=self.idx)
        else:
            for k, gen in enumerate(self.batch_generator):
                self.idx[k] = draw_batch_indices(n, (self.batch_size,), gen)
        flat = self.images.view(-1, *self.data.shape[1:])
        if not isinstance(self.data, torch.Tensor):  # a host array, numpy memmap or lazy
            flat.copy_(torch.from_numpy(np.ascontiguousarray(self.data[self.idx.view(-1)
                                                                       .numpy()])))
        else:
            torch.index_select(self.data, 0, self.idx.view(-1), out=flat)
        if isinstance(self.noise_generator, torch.Generator):
            for buf, (func, shape, dtype) in zip(self.draws, self.shapes, strict=True):
                draw_noise(func, shape, dtype, self.noise_generator, out=buf)
        else:  # member by member, each in the order a single run draws
            for k, gen in enumerate(self.noise_generator):
                for buf, (func, shape, dtype) in zip(self.draws, self.shapes, strict=True):
                    draw_noise(func, shape[1:], dtype, gen, out=buf[k])

    def _update(self) -> dict[str, torch.Tensor]:
        step = self.step_index if self.step_counter is None else self.step_counter
        return self.ens.update(self.images.float().div(255.0), self.draws, step)

    def __call__(self) -> dict[str, torch.Tensor]:
        """One optimisation step of every member; per-member loss terms, shape (K,)."""
        self._fill()
        if not self.use_graph:
            out = self._update()
        elif self.graph is not None:
            self.graph.replay()
            out = self.out
        elif self.calls < self.warmup:
            side = torch.cuda.Stream(device=self.ens.device)
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self._update()
            torch.cuda.current_stream().wait_stream(side)
        else:
            out = self._capture()
        self.calls += 1
        self.step_index += 1
        return out

    def _capture(self) -> dict[str, torch.Tensor]:
        """Capture the update and replay it for this step; eager from here on if it fails."""
        graph = torch.cuda.CUDAGraph()
        self.ens.optimizer.zero_grad(set_to_none=True)
        try:
            with torch.cuda.graph(graph):
                out = self._update()
        except Exception as exc:  # noqa: BLE001 -- capture is an optimisation only
            # Capture records and does not run, so nothing has been updated yet.
            log.warning("CUDA graph capture failed (%s: %s); training on eagerly",
                        type(exc).__name__, exc)
            self.use_graph = False
            torch.cuda.synchronize()
            self.ens.optimizer.zero_grad(set_to_none=True)
            return self._update()
        self.graph, self.out = graph, out
        graph.replay()  # capture records without running: run this step's update
        return out


def _make_capturable(optimizer: torch.optim.Optimizer) -> None:
    """Switch Adam to capturable: step counters on the parameters' device."""
    for group in optimizer.param_groups:
        if "capturable" not in group:
            raise DisbenchError(f"{type(optimizer).__name__} cannot be captured in a CUDA "
                                "graph (no 'capturable' option)")
        group["capturable"] = True
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "step" in state and state["step"].device != p.device:
                state["step"] = state["step"].to(p.device, torch.float32)


__all__ = ["GraphedStep"]
