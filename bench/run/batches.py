"""The batch kinds of the one training loop: images, pairs and labelled batches.

A model's ``batch_kind`` (:mod:`disbench.baselines.batches`) picks its sampler;
:func:`make_sampler` builds it for :class:`disbench.run.loop.SingleStep`. Each sampler has
``next()`` (the batch on the training device) and ``generator`` (the torch generator
:func:`disbench.run.draws.rng_state` checkpoints, or None); pair and labelled samplers add
``state()`` / ``load_state(rng)`` for the rest of their state, saved in the checkpoint's
RNG states, so a resumed run draws what an uninterrupted one draws.

``images``
    :class:`disbench.run.draws.BatchSampler` (uniform indices from a generator seeded with
    the run's seed).
``pairs``
    :class:`PairSampler`: ``batch_size`` pairs per step from
    :func:`disbench.datasets.pairs.sample_pair_factors` (the run setting ``pair_k``), every
    draw from a NumPy ``RandomState`` seeded with ``[seed, 1]`` (the run's seed, stream 1).
``labelled``
    :class:`LabelledSampler`: the unlabelled batch of a plain run (the same
    :class:`~disbench.run.draws.BatchSampler` draws) plus ``batch_size`` labelled
    examples taken in order, cycling, from the run's labelled subset, as
    disentanglement_lib's ``semi_supervised_dataset_from_ground_truth_data`` repeats its
    labelled set without shuffling (``methods/semi_supervised/train_semi_supervised_lib.py``,
    read here). The subset (:func:`draw_labelled`) is drawn once, when the run is created:
    ``num_labelled`` factor rows drawn uniformly with a ``RandomState`` seeded with
    ``[seed, 2]``, then labelled by the run's ``labeller`` from the same state (the order of
    disentanglement_lib's ``sample_supervised_data``); it is stored in the run folder
    (``labelled.npz``).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from disbench.baselines.batches import LabelledBatch, PairBatch
from disbench.errors import DisbenchError
from disbench.run.draws import BatchSampler, batch_data

#: the stream of the run's seed each sampler's NumPy state starts from
PAIR_STREAM, LABEL_STREAM = 1, 2


def stream_state(seed: int, stream: int) -> np.random.RandomState:
    """A ``RandomState`` for ``stream`` of the run's ``seed``."""
    return np.random.RandomState([int(seed) % 2**32, stream])


def numpy_state(rs: np.random.RandomState) -> dict[str, Any]:
    """A ``RandomState``'s state in a form ``torch.load(weights_only=True)`` reads."""
    _, keys, pos, has_gauss, cached = rs.get_state()
    return {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def set_numpy_state(rs: np.random.RandomState, state: dict[str, Any]) -> None:
    rs.set_state(("MT19937", state["keys"].numpy().astype(np.uint32), state["pos"],
                  state["has_gauss"], state["cached_gaussian"]))


def gather(data: Any, idx: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 images at flat indices ``idx`` (in that order) from :func:`batch_data`'s data."""
    if isinstance(data, torch.Tensor):
        return data[torch.from_numpy(idx).to(data.device)]
    order = np.argsort(idx, kind="stable")  # sequential reads of a memory map
    out = np.empty((len(idx), *data.shape[1:]), dtype=np.uint8)
    out[order] = np.asarray(data[idx[order]])
    return torch.from_numpy(out).to(device)


class PairSampler:
    """Pairs of observations sharing all factors but ``k`` (see the module docstring)."""

    generator = None  # every draw is NumPy's (saved by state())

    def __init__(self, dataset: Any, batch_size: int, device: torch.device, seed: int,
                 k: Any) -> None:
        from disbench.datasets.pairs import check_k

        if not hasattr(dataset, "factor_sizes") or not hasattr(dataset, "index_of"):
            raise DisbenchError(f"dataset {getattr(dataset, 'name', '?')!r} has no factors: "
                                "pair models train on ground-truth datasets only")
        problem = check_k(k, dataset.factor_sizes)
        if problem:
            raise DisbenchError(f"pair_k {problem}")
        self.dataset, self.batch_size, self.device, self.k = dataset, batch_size, device, k
        self.data = batch_data(dataset, device)
        self.rs = stream_state(seed, PAIR_STREAM)

    def next(self) -> PairBatch:
        from disbench.datasets.pairs import sample_pair_factors

        first, second, changed = sample_pair_factors(self.dataset.factor_sizes,
                                                     self.batch_size, self.k, self.rs)
        idx = np.asarray(self.dataset.index_of(np.concatenate([first, second])), np.int64)
        x = gather(self.data, idx, self.device).float().div(255.0)
        b = self.batch_size
        return PairBatch(x[:b], x[b:], torch.from_numpy(changed).to(self.device))

    def state(self) -> dict[str, Any]:
        return {"pairs": numpy_state(self.rs)}

    def load_state(self, rng: dict[str, Any]) -> None:
        set_numpy_state(self.rs, rng["pairs"])


class LabelledSampler:
    """An unlabelled batch and the next labelled examples, cycling (module docstring)."""

    def __init__(self, dataset: Any, batch_size: int, device: torch.device, seed: int,
                 labelled: dict[str, np.ndarray]) -> None:
        self.unlabelled = BatchSampler(dataset, batch_size, device, seed)
        self.generator = self.unlabelled.generator
        self.batch_size = batch_size
        idx = np.asarray(labelled["indices"], np.int64)
        self.images = gather(batch_data(dataset, device), idx, device)  # uint8, once
        self.labels = torch.from_numpy(np.asarray(labelled["labels"], np.float32)).to(device)
        self.position = 0

    def next(self) -> LabelledBatch:
        n = len(self.labels)
        rows = (self.position + torch.arange(self.batch_size, device=self.labels.device)) % n
        self.position = (self.position + self.batch_size) % n
        return LabelledBatch(self.unlabelled.next(), self.images[rows].float().div(255.0),
                             self.labels[rows])

    def state(self) -> dict[str, Any]:
        return {"labelled_position": int(self.position)}

    def load_state(self, rng: dict[str, Any]) -> None:
        self.position = int(rng["labelled_position"])


def draw_labelled(dataset: Any, num_labelled: int, labeller: str,
                  seed: int) -> dict[str, np.ndarray]:
    """The run's labelled subset: indices, true factors, labels, label sizes, observed."""
    from disbench.datasets.labellers import apply_labeller, canonical_labeller

    if not hasattr(dataset, "sample_factors"):
        raise DisbenchError(f"dataset {getattr(dataset, 'name', '?')!r} has no factors: "
                            "semi-supervised models train on ground-truth datasets only")
    rs = stream_state(seed, LABEL_STREAM)
    factors = np.asarray(dataset.sample_factors(num_labelled, rs), np.int64)
    out = apply_labeller(labeller, factors, dataset.factor_sizes, rs)
    return {"indices": np.asarray(dataset.index_of(factors), np.int64), "factors": factors,
            "labels": out.labels, "label_sizes": out.sizes, "observed": out.observed,
            "labeller": np.array(canonical_labeller(labeller)), "seed": np.array(int(seed))}


#: the run settings only some batch kinds use
KIND_SETTINGS = {"pair_k": "pairs", "num_labelled": "labelled", "labeller": "labelled"}


def batch_kind(cfg: Any) -> str:
    """The batch kind of run ``cfg``'s model; a pair or label setting set (not at its
    default) for a model that does not use it is an error."""
    from disbench.baselines.registry import MODELS
    from disbench.run.config import RunConfig

    kind = MODELS[cfg.model].batch_kind
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    for name, needs in KIND_SETTINGS.items():
        if kind != needs and getattr(cfg, name) != defaults[name]:
            raise DisbenchError(f"{name}={getattr(cfg, name)!r} applies to models trained on "
                                f"{needs}; {cfg.model} trains on {kind}: drop the setting")
    return kind


def labelled_subset(cfg: Any, folder: Any, dataset: Any) -> dict[str, np.ndarray] | None:
    """A new semi-supervised run's labelled subset, written to its folder (else None)."""
    if batch_kind(cfg) != "labelled":
        return None
    labels = draw_labelled(dataset, cfg.num_labelled, cfg.labeller, cfg.seed)
    folder.write_labelled(labels)
    return labels


def sampler_for(cfg: Any, folder: Any, dataset: Any, device: torch.device) -> Any:
    """The sampler of run ``cfg`` (a labelled run reads its subset from ``folder``)."""
    kind = batch_kind(cfg)
    labels = folder.read_labelled() if kind == "labelled" else None
    return make_sampler(kind, dataset, cfg, device, labels)


def make_sampler(kind: str, dataset: Any, cfg: Any, device: torch.device,
                 labelled: dict[str, np.ndarray] | None = None) -> Any:
    """The sampler of batch kind ``kind`` for run ``cfg`` (a RunConfig)."""
    if kind == "images":
        return BatchSampler(dataset, cfg.batch_size, device, cfg.seed)
    if kind == "pairs":
        return PairSampler(dataset, cfg.batch_size, device, cfg.seed, cfg.pair_k)
    if kind == "labelled":
        if labelled is None:
            raise DisbenchError("a labelled run needs its labelled subset")
        return LabelledSampler(dataset, cfg.batch_size, device, cfg.seed, labelled)
    raise DisbenchError(f"unknown batch kind {kind!r}")


__all__ = ["LabelledSampler", "PairSampler", "batch_kind", "draw_labelled", "labelled_subset",
           "make_sampler", "sampler_for"]
