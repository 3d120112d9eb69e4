"""The trainer: one run folder per :class:`~disbench.run.config.RunConfig`.

Writes, all atomically (temp file + rename):

- ``config.json``: the resolved config (every hyperparameter with its default filled),
  run id, dataset fingerprint and size, disbench/torch/python versions;
- ``model.pt``: ``format_version``, ``disbench_version``, ``step``, the model
  ``state_dict``, every optimiser's state dict and the RNG states (torch CPU, CUDA, the
  batch generator, numpy, python ``random``), saved every ``checkpoint_every`` steps and
  at the end; loaded with ``weights_only=True``;
- ``train_log.csv``: ``step`` and the mean of every loss term over the last
  ``log_every`` steps.

Data path: on CUDA the whole uint8 array is copied to the device once and batches are
indexed there with a device ``torch.Generator``; on CPU the (possibly memory-mapped)
numpy array is indexed with the sorted indices of each batch. Batches are drawn
uniformly with replacement; images are converted per batch to float / 255.

Resuming restores every state, so training N steps, stopping and resuming for N more
gives the same weights as training 2N steps in one go (on CPU, bit for bit).
"""
from __future__ import annotations

import csv
import io
import logging
import platform
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from disbench import __version__
from disbench.atomic import torch_save, write_json, write_text
from disbench.errors import DisbenchError
from disbench.run.config import FORMAT_VERSION, RunConfig, load_checkpoint, resolve_hparams

log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DisbenchError("--device cuda was asked for but no CUDA GPU is available; "
                            "use --device cpu or auto")
    return torch.device(device)


class BatchSampler:
    """Uniform batches (with replacement) of ``images``, as float tensors in [0, 1].

    On CUDA the uint8 array lives on the device and is indexed there; on CPU the numpy
    array (or memmap) is indexed with sorted indices (sequential reads from a memmap).
    The draw order depends only on the generator, whose state is checkpointed.
    """

    def __init__(self, dataset: Any, batch_size: int, device: torch.device, seed: int) -> None:
        self.batch_size = batch_size
        self.device = device
        self.n = len(dataset)
        if self.n < 1:
            raise DisbenchError(f"dataset {getattr(dataset, 'name', '?')!r} is empty")
        if device.type == "cuda":
            self.data = dataset.tensor(device)
            self.generator = torch.Generator(device=device)
        else:
            self.data = dataset.images
            self.generator = torch.Generator()
        self.generator.manual_seed(seed)

    def next(self) -> torch.Tensor:
        idx = torch.randint(self.n, (self.batch_size,), generator=self.generator,
                            device=self.generator.device)
        if self.device.type == "cuda":
            batch = self.data[idx]
        elif isinstance(self.data, torch.Tensor):
            batch = self.data[idx.sort().values]
        else:
            batch = torch.from_numpy(np.ascontiguousarray(self.data[np.sort(idx.numpy())]))
        return batch.float().div(255.0)


# -- RNG state (weights_only-loadable: tensors, ints, floats, lists) ----------------------
def _rng_state(batch_generator: torch.Generator) -> dict[str, Any]:
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        "batch": batch_generator.get_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }


def _set_rng_state(state: dict[str, Any], sampler: BatchSampler) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    sampler.generator.set_state(state["batch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


# -- the log --------------------------------------------------------------------------------
def _read_log(path: Path, upto: int) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [r for r in csv.DictReader(f) if int(r["step"]) <= upto]


def _write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    fieldnames = list(rows[0])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def _fmt(v: float) -> str:
    return repr(float(v))


# -- training -------------------------------------------------------------------------------
def train(
    cfg: RunConfig,
    out_root: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> Path:
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

    A run folder whose checkpoint already reached ``cfg.steps`` is left untouched
    (logged as already complete).
    """
    from disbench import baselines, datasets
    from tqdm.auto import tqdm

    cfg = cfg.resolved()
    run_id = cfg.run_id()
    run_dir = cfg.run_dir(out_root)
    ckpt_path, log_path, conf_path = run_dir / "model.pt", run_dir / "train_log.csv", \
        run_dir / "config.json"

    state = None
    if ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        if state["step"] >= cfg.steps:
            log.info("%s is already complete (%d steps); nothing to do", run_dir, state["step"])
            return run_dir
        if not resume:
            raise DisbenchError(
                f"{run_dir} holds an unfinished run (step {state['step']} of {cfg.steps}); "
                "pass --resume to continue it, or delete the folder to start over"
            )

    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    random.seed(cfg.seed)

    ds = datasets.get(cfg.dataset, source=cfg.source, split=cfg.split)
    hparams = resolve_hparams(cfg, ds)
    model = baselines.create(cfg.model, **hparams).to(device)
    if cfg.amp == "bf16":
        model.amp_dtype = torch.bfloat16
    optimizers = model.make_optimizers(cfg.lr)
    sampler = BatchSampler(ds, cfg.batch_size, device, cfg.seed)

    conf = {
        **cfg.to_dict(),
        "hparams": hparams,
        "device": device.type,
        "run_id": run_id,
        "dataset_fingerprint": getattr(ds, "fingerprint", None),
        "dataset_size": len(ds),
        "format_version": FORMAT_VERSION,
        "disbench_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
    }
    if state is not None:
        old = _read_json(conf_path)
        if old.get("dataset_fingerprint") != conf["dataset_fingerprint"]:
            raise DisbenchError(
                f"{run_dir} was trained on data with fingerprint "
                f"{old.get('dataset_fingerprint')!r} but {cfg.dataset!r} now has "
                f"{conf['dataset_fingerprint']!r}; delete the folder to train afresh"
            )
    write_json(conf_path, conf)

    start = 0
    rows: list[dict[str, Any]] = []
    acc: dict[str, torch.Tensor] = {}
    count = 0
    if state is not None:
        model.load_state_dict(state["model"])
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        _set_rng_state(state["rng"], sampler)
        start = int(state["step"])
        rows = _read_log(log_path, start)
        acc = {k: v.to(device) for k, v in state.get("log_acc", {}).items()}
        count = int(state.get("log_count", 0))
        log.info("resuming %s at step %d", run_dir, start)

    if cfg.compile:
        # In-place Module.compile keeps state_dict keys unchanged.
        for child in model.children():
            child.compile()

    def checkpoint(step: int) -> None:
        _write_log(log_path, rows)
        torch_save(ckpt_path, {
            "format_version": FORMAT_VERSION,
            "disbench_version": __version__,
            "run_id": run_id,
            "step": step,
            "model": model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "rng": _rng_state(sampler.generator),
            "log_acc": {k: v.detach().cpu() for k, v in acc.items()},
            "log_count": count,
        })

    end = cfg.steps if stop_after is None else min(cfg.steps, start + stop_after)
    model.train()
    bar = tqdm(total=cfg.steps, initial=start, disable=not progress,
               desc=f"{cfg.model} {run_id}-s{cfg.seed}", unit="step", dynamic_ncols=True)
    try:
        for step in range(start, end):
            x = sampler.next()
            terms = model.train_step_tensors(x, step, optimizers)
            for k, v in terms.items():
                acc[k] = acc[k] + v if k in acc else v.detach().clone()
            count += 1
            done = step + 1
            if done % cfg.log_every == 0 or done == cfg.steps:
                row = {"step": done, **{k: _fmt(v / count) for k, v in acc.items()}}
                rows.append(row)
                acc, count = {}, 0
                bar.set_postfix(loss=f"{float(row['loss']):.4g}")
                if not all(np.isfinite(float(v)) for k, v in row.items() if k != "step"):
                    log.warning("non-finite loss at step %d: %s", done, row)
            if done % cfg.checkpoint_every == 0 and done != end:
                checkpoint(done)
            bar.update(1)
        checkpoint(end)
    finally:
        bar.close()
    if end == cfg.steps:
        log.info("trained %s", run_dir)
    return run_dir


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
