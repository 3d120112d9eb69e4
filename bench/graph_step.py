"""An ensemble step on fixed buffers, replayed as one CUDA graph (issue 8).

At the protocol's batch of 64 a training step is a few hundred small kernels, and an
eager ensemble step (:meth:`disbench.ensemble.Ensemble.step`) spends much of its time
issuing them from Python (``vmap``, ``functional_call``, the optimiser). A CUDA graph
records the kernels of one step once and replays them with one launch. That needs every
tensor of the step at a fixed address and no host synchronisation inside it, so
:class:`GraphedStep` keeps the inputs in fixed buffers and refills them before each
replay:

1. all members' batch indices, (K, B), in one ``randint`` from one generator,
2. the images gathered from the device-resident uint8 dataset into a (K, B, C, H, W)
   buffer (``index_select``, no host round trip),
3. all members' sampling noise in one draw per random call of the loss, from one
   generator (the ``shared_noise`` mode of :class:`~disbench.ensemble.Ensemble`),

then runs :meth:`~disbench.ensemble.Ensemble.update` -- uint8 to float, the vmapped
forward, backward and Adam -- as the graph. Adam runs with ``capturable=True`` so its step
counters live on the device.

Members draw batches and noise from shared generators, so they train on the same
distribution as single runs but not on the same draws; use the exact per-member path
(``Ensemble.step`` with per-member generators) where a member must equal a single run.
Without CUDA (or with ``graph=False``) the same buffers are filled and the same update runs
eagerly: that is what the CPU tests compare against :meth:`Ensemble.step`.
"""
from __future__ import annotations

import torch
from disbench.ensemble import Ensemble
from disbench.errors import DisbenchError

_NORMAL = {torch.randn, torch.randn_like}


class GraphedStep:
    """Call it once per optimisation step of an ensemble; on CUDA a captured graph.

    Parameters
    ----------
    ensemble : Ensemble
        The members (its optimiser is switched to ``capturable`` when graphing).
    data : torch.Tensor
        The dataset as uint8 images (N, C, H, W) on the ensemble's device; pixel values
        map to [0, 1] as ``x / 255``, as :class:`disbench.trainer.BatchSampler` does.
    batch_size : int
        Images per member per step (the protocol's 64).
    batch_generator, noise_generator : torch.Generator
        Sources of all members' batch indices and of all members' sampling noise, on the
        ensemble's device.
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
    The step index is fixed when the graph is captured, so a model whose loss depends on
    it (``loss_depends_on_step``) is refused for graphing. The returned per-member terms
    live in the graph's buffers: they are valid until the next call (clone to keep them).
    """

    def __init__(self, ensemble: Ensemble, data: torch.Tensor, batch_size: int,
                 batch_generator: torch.Generator, noise_generator: torch.Generator, *,
                 start_step: int = 0, graph: bool | None = None, warmup: int = 3) -> None:
        device = ensemble.device
        if graph is None:
            graph = device.type == "cuda"
        if graph and ensemble.models[0].loss_depends_on_step:
            raise DisbenchError(
                f"{type(ensemble.models[0]).__name__}'s loss depends on the step index, which "
                "a CUDA graph fixes at capture; use graph=False (eager ensemble steps)")
        if graph and device.type != "cuda":
            raise DisbenchError(f"CUDA graphs need a CUDA device; the ensemble is on {device}"
                                " (use graph=False)")
        if not isinstance(data, torch.Tensor) or data.dtype != torch.uint8:
            raise DisbenchError("data must be a uint8 tensor of images (N, C, H, W); got "
                                f"{getattr(data, 'dtype', type(data).__name__)}")
        if data.device != device:
            raise DisbenchError(f"data is on {data.device} but the ensemble on {device}; "
                                "move it with data.to(device) once, before training")
        if data.dim() != 4 or len(data) < 1:
            raise DisbenchError(f"data must have shape (N, C, H, W) with N >= 1; got "
                                f"{tuple(data.shape)}")
        if batch_size < 1:
            raise DisbenchError(f"batch_size must be >= 1; got {batch_size}")
        self.ens = ensemble
        self.data = data
        self.batch_size = batch_size
        self.batch_generator = batch_generator
        self.noise_generator = noise_generator
        self.step_index = start_step
        self.use_graph = graph
        self.warmup = warmup
        k = ensemble.k
        self.idx = torch.empty((k, batch_size), dtype=torch.long, device=device)
        self.images = torch.empty((k, batch_size, *data.shape[1:]), dtype=torch.uint8,
                                  device=device)
        probe = data[:batch_size].float().div(255.0)
        if len(probe) < batch_size:  # a tiny dataset: the probe only needs the shape
            probe = probe[:1].expand(batch_size, *probe.shape[1:])
        self.shapes = ensemble.draw_shapes(probe, start_step)
        self.draws = [torch.empty(shape, dtype=dt, device=device)
                      for _, shape, dt in self.shapes]
        self.graph: torch.cuda.CUDAGraph | None = None
        self.out: dict[str, torch.Tensor] | None = None
        self.calls = 0
        if graph:
            _make_capturable(ensemble.optimizer)

    def _fill(self) -> None:
        """Draw the next batch indices, images and noise into the fixed buffers."""
        torch.randint(len(self.data), self.idx.shape, generator=self.batch_generator,
                      out=self.idx)
        flat = self.images.view(-1, *self.data.shape[1:])
        torch.index_select(self.data, 0, self.idx.view(-1), out=flat)
        for buf, (func, shape, dtype) in zip(self.draws, self.shapes):
            draw = torch.randn if func in _NORMAL else torch.rand
            draw(shape, generator=self.noise_generator, dtype=dtype, out=buf)

    def _update(self) -> dict[str, torch.Tensor]:
        return self.ens.update(self.images.float().div(255.0), self.draws, self.step_index)

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
            # Capture records without running: replay once for this step's update.
            self.graph = torch.cuda.CUDAGraph()
            self.ens.optimizer.zero_grad(set_to_none=True)
            with torch.cuda.graph(self.graph):
                self.out = self._update()
            self.graph.replay()
            out = self.out
        self.calls += 1
        self.step_index += 1
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
