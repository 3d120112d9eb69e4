"""Every random draw of training: seeding, batch indices, sampling noise and RNG state.

One function each, shared by a single run (:class:`BatchSampler` and the global generator),
:meth:`disbench.run.ensemble.Ensemble.step` and the fixed-buffer step
(:class:`disbench.run.graph_step.GraphedStep`), so that an ensemble member draws exactly
what the same run trained alone draws:

- :func:`seed_everything`: torch, numpy and python ``random`` from the run's seed;
- :func:`draw_batch_indices`: uniform batch indices with replacement from a batch
  generator seeded with the run's seed, sorted within each batch on the CPU (sequential
  reads from a memory-mapped array);
- :func:`draw_noise`: one sampling-noise tensor (normal or uniform) from a generator.

RNG states are saved in a form ``torch.load(weights_only=True)`` reads (tensors, ints,
floats, lists): :func:`rng_state` and :func:`set_rng_state`.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from disbench.errors import DisbenchError

#: random functions a loss may call: their draws are recorded and replayed in ensembles
RANDOM_FUNCS = frozenset({torch.randn_like, torch.rand_like, torch.randn, torch.rand})
_NORMAL = frozenset({torch.randn, torch.randn_like})


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and python ``random`` (the global generators) with ``seed``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def batch_generator(seed: int, device: torch.device) -> torch.Generator:
    """The generator of a run's batch indices: on the data's device, seeded with ``seed``."""
    gen = torch.Generator(device=device) if device.type == "cuda" else torch.Generator()
    return gen.manual_seed(seed)


def draw_batch_indices(n: int, shape: tuple[int, ...], generator: torch.Generator, *,
                       out: torch.Tensor | None = None) -> torch.Tensor:
    """Indices in ``[0, n)`` drawn uniformly with replacement, shape ``(..., batch)``.

    Sorted along the last axis on the CPU (the order within a batch does not matter to the
    loss; sorted indices read a memory map sequentially). ``out``: fill this tensor.
    """
    if out is None:
        idx = torch.randint(n, shape, generator=generator, device=generator.device)
    else:
        idx = torch.randint(n, shape, generator=generator, out=out)
    if generator.device.type == "cpu":
        sorted_idx = idx.sort(dim=-1).values
        if out is None:
            return sorted_idx
        out.copy_(sorted_idx)
    return idx


def draw_noise(func: Callable, shape: tuple[int, ...], dtype: torch.dtype,
               generator: torch.Generator, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """What ``func`` (one of :data:`RANDOM_FUNCS`) draws for ``shape``, from ``generator``."""
    draw = torch.randn if func in _NORMAL else torch.rand
    if out is None:
        return draw(tuple(shape), generator=generator, device=generator.device, dtype=dtype)
    return draw(tuple(shape), generator=generator, dtype=dtype, out=out)


def batch_data(dataset: Any, device: torch.device) -> Any:
    """The images batches are gathered from: on CUDA a uint8 tensor on the device (copied
    once), on the CPU the dataset's (possibly memory-mapped) array."""
    if len(dataset) < 1:
        raise DisbenchError(f"dataset {getattr(dataset, 'name', '?')!r} is empty")
    return dataset.tensor(device) if device.type == "cuda" else dataset.images


class BatchSampler:
    """Uniform batches (with replacement) of ``dataset``, as float tensors in [0, 1].

    The draw order depends only on :attr:`generator` (seeded with ``seed``), whose state
    is checkpointed.
    """

    def __init__(self, dataset: Any, batch_size: int, device: torch.device, seed: int) -> None:
        self.batch_size = batch_size
        self.device = device
        self.data = batch_data(dataset, device)
        self.n = len(dataset)
        self.generator = batch_generator(seed, device)

    def next(self) -> torch.Tensor:
        idx = draw_batch_indices(self.n, (self.batch_size,), self.generator)
        if isinstance(self.data, torch.Tensor):
            batch = self.data[idx]
        else:
            batch = torch.from_numpy(np.ascontiguousarray(self.data[idx.numpy()]))
        return batch.float().div(255.0)


def rng_state(batch_gen: torch.Generator | None, noise_gen: torch.Generator | None = None
              ) -> dict[str, Any]:
    """The RNG states of a run: torch (CPU and CUDA), its batch generator, numpy, python.

    ``noise_gen``: an ensemble member's own noise generator, saved where a single run keeps
    its noise stream (the global CPU generator, or the CUDA one on a GPU).
    """
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        "batch": batch_gen.get_state() if batch_gen is not None else None,
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }
    if noise_gen is not None:
        if noise_gen.device.type == "cpu":
            state["torch"] = noise_gen.get_state()
        else:
            state["cuda"] = [noise_gen.get_state()]
    return state


def set_rng_state(state: dict[str, Any], batch_gen: torch.Generator | None,
                  noise_gen: torch.Generator | None = None) -> None:
    """Restore what :func:`rng_state` saved (into ``noise_gen`` for an ensemble member)."""
    if batch_gen is not None:  # None: a sampler without a torch generator (pairs)
        batch_gen.set_state(state["batch"])
    if noise_gen is not None:
        noise_gen.set_state(state["torch"] if noise_gen.device.type == "cpu"
                            else state["cuda"][0])
        return
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
