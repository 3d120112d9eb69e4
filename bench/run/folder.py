"""The run folder: the one module that knows its layout, file names and formats.

A run lives in ``runs_root/<dataset>/<model>/<run_id>-s<seed>/``:

``config.json``
    the run's record, written once when the run is created and read back afterwards: the
    resolved configuration (every hyperparameter with its default filled, the data source
    the run was created on), ``run_id``, ``requested_source``, the dataset fingerprint and
    size, disbench/torch/python versions (and ``ensemble`` for a member of one);
``model.pt``
    the checkpoint: ``format_version``, ``disbench_version``, ``run_id``, ``step``, the
    model ``state_dict``, every optimiser's state dict, the RNG states, the partial log
    accumulation and ``config`` (a copy of ``config.json``, from which a corrupt one is
    rebuilt); loaded with ``weights_only=True``. A checkpoint whose ``run_id`` is not the
    folder's (one copied from another run) is refused, except that the trainer continues
    the checkpoint of the same configuration with another step count (a folder copied to
    train a run for longer);
``status.json``
    ``{"run_id", "step", "steps", "checkpoint": {"size", "mtime_ns"}}``, written right after
    each checkpoint. It says how far the run is without loading ``model.pt``; the size and
    modification time pin the checkpoint it describes, so a checkpoint replaced or damaged
    since then makes the status unknown (never wrongly "trained");
``train_log.csv``
    ``step`` and the mean of every loss term over the last ``log_every`` steps;
``metrics.json``
    ``{"records", "evaluated", "provenance"}`` written by :mod:`disbench.run.evaluate`;
``labelled.npz``
    a semi-supervised run's labelled subset, drawn once when the run is created
    (:func:`disbench.run.batches.draw_labelled`): flat ``indices``, true ``factors``,
    ``labels`` (after the labeller), ``label_sizes``, ``observed`` factors, ``labeller``
    and ``seed``;
``metrics_curve.csv``
    ``step`` and one column per metric record, evaluated every ``eval_every`` steps on a
    fixed draw (:mod:`disbench.run.curve`);
``error.json``
    the failure of a sweep's run (type, message, traceback, stage, config);
``.lock``, ``.lock.guard``
    the lock of :mod:`disbench.run.lock`;
``figures/``
    the default folder of ``disbench plot``'s figures.

Every file is written atomically (:mod:`disbench.atomic`).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from disbench.atomic import atomic_path, torch_save, write_json, write_text
from disbench.errors import DisbenchError

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "model.pt"
STATUS_FILE = "status.json"
LOG_FILE = "train_log.csv"
METRICS_FILE = "metrics.json"
ERROR_FILE = "error.json"
LABELLED_FILE = "labelled.npz"
CURVE_FILE = "metrics_curve.csv"
LOCK_FILE = ".lock"
LOCK_GUARD_FILE = ".lock.guard"
FIGURES_DIR = "figures"
#: version of the model.pt layout; load_checkpoint refuses other versions with a clear message
FORMAT_VERSION = 1


def folder_name(run_id: str, seed: int) -> str:
    """``<run_id>-s<seed>``: the last part of a run folder's path."""
    return f"{run_id}-s{seed}"


def run_path(runs_root: str | os.PathLike, dataset: str, model: str, run_id: str,
             seed: int) -> Path:
    """``runs_root/<dataset>/<model>/<run_id>-s<seed>``."""
    return Path(runs_root) / dataset / model / folder_name(run_id, seed)


def id_from_name(name: str) -> str | None:
    """The run id in a folder name ``<run_id>-s<seed>`` (None for another name)."""
    m = re.fullmatch(r"([0-9a-f]{12})-s\d+", name)
    return m.group(1) if m else None


def _empty_metrics() -> dict[str, Any]:
    return {"records": [], "evaluated": {}, "provenance": {}}


class RunFolder:
    """Typed access to the files of one run folder.

    Parameters
    ----------
    path : path
        The folder (it need not exist yet).
    run_id : str, optional
        The id of the run expected here (:meth:`for_config` sets it): a status written for
        another run (a folder copied from one) does not count as this run's.
    """

    def __init__(self, path: str | os.PathLike, run_id: str | None = None) -> None:
        self.path = Path(path)
        self.expected_id = run_id

    @classmethod
    def for_config(cls, cfg: Any, runs_root: str | os.PathLike,
                   run_id: str | None = None) -> RunFolder:
        """The folder of run ``cfg`` (a RunConfig) under ``runs_root``.

        ``run_id``: ``cfg.run_id()`` when the caller has it already.
        """
        run_id = run_id or cfg.run_id()
        return cls(run_path(runs_root, cfg.dataset, cfg.model, run_id, cfg.seed), run_id)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # -- paths ---------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def status_path(self) -> Path:
        return self.path / STATUS_FILE

    @property
    def log_path(self) -> Path:
        return self.path / LOG_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def error_path(self) -> Path:
        return self.path / ERROR_FILE

    @property
    def labelled_path(self) -> Path:
        return self.path / LABELLED_FILE

    @property
    def curve_path(self) -> Path:
        return self.path / CURVE_FILE

    @property
    def figures_path(self) -> Path:
        return self.path / FIGURES_DIR

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_FILE

    @property
    def lock_guard_path(self) -> Path:
        return self.path / LOCK_GUARD_FILE

    # -- the record (config.json) ---------------------------------------------------------
    def has_config(self) -> bool:
        return self.config_path.is_file()

    def read_config(self) -> dict[str, Any]:
        """``config.json`` as a dict (a clear error when it is missing).

        A corrupt file (a torn write, an edit gone wrong) is rebuilt from the copy the
        checkpoint holds, when it holds one for this folder's run; otherwise the error
        names the file.
        """
        path = self.config_path
        if not path.is_file():
            raise DisbenchError(f"{path} not found: {self.path} is not a disbench run folder "
                                "(train one with 'disbench train')")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return self._rebuild_config(f"is not valid JSON ({exc})")
        if not isinstance(data, dict):
            return self._rebuild_config("does not hold a JSON object")
        # An early layout nested the configuration under "config".
        return data["config"] if isinstance(data.get("config"), dict) else data

    def _rebuild_config(self, problem: str) -> dict[str, Any]:
        """Rewrite a corrupt ``config.json`` from the checkpoint's copy of it."""
        stored = None
        if self.has_checkpoint():
            try:
                state = self.load_checkpoint()
            except DisbenchError:
                state = {}
            stored = state.get("config")
            if isinstance(stored, dict) and stored.get("run_id") != state.get("run_id"):
                stored = None
        if not isinstance(stored, dict) or not stored.get("run_id"):
            raise DisbenchError(
                f"{self.config_path} {problem} and {self.checkpoint_path.name} holds no copy "
                "of it: restore the file from a backup, or delete the run folder and train "
                "it again")
        log.warning("%s %s; rebuilt it from %s", self.config_path, problem,
                    self.checkpoint_path)
        self.write_config(stored)
        return stored

    def write_config(self, record: dict[str, Any]) -> None:
        """Write the run's record; called once, when the run is created."""
        write_json(self.config_path, record)

    def run_id(self) -> str:
        """The run id stored in ``config.json`` when the run was created."""
        rec = self.read_config()
        if not rec.get("run_id"):
            raise DisbenchError(f"{self.config_path} has no run_id; it was not written by "
                                "'disbench train': delete the run folder and train it again")
        return str(rec["run_id"])

    def run_config(self) -> Any:
        """The stored record as a :class:`~disbench.run.config.RunConfig` (hparams resolved)."""
        from disbench.run.config import RunConfig

        return RunConfig.from_dict(self.read_config())

    # -- the checkpoint and its status -----------------------------------------------------
    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    def load_checkpoint(self, map_location: Any = "cpu", *,
                        check_owner: bool = True) -> dict[str, Any]:
        """The checkpoint (see :func:`load_checkpoint`); one written for another run than
        this folder's (the expected id, else the id in the folder's name) is an error
        unless ``check_owner`` is False (the caller checks it, see :meth:`check_owner`)."""
        state = load_checkpoint(self.checkpoint_path, map_location)
        if check_owner:
            self.check_owner(state)
        return state

    def check_owner(self, state: dict[str, Any], run_id: str | None = None) -> None:
        """Refuse checkpoint ``state`` unless it was written for ``run_id`` (default: the
        expected id, else the id in the folder's name; no check when neither is known)."""
        expected = run_id or self.expected_id or id_from_name(self.path.name)
        stored = state.get("run_id")
        if expected is None or not stored or stored == expected:
            return
        raise DisbenchError(
            f"{self.checkpoint_path} belongs to run {stored}, not to {expected} (the run of "
            f"this folder): it was copied or moved here from another run's folder; put it "
            f"back in {stored}-s<seed>, or delete it to train this run from the start")

    def save_checkpoint(self, payload: dict[str, Any], steps: int) -> None:
        """Write ``model.pt`` and then ``status.json`` describing it."""
        torch_save(self.checkpoint_path, payload)
        self.write_status(int(payload["step"]), steps, str(payload.get("run_id", "")))

    def write_status(self, step: int, steps: int, run_id: str) -> None:
        """Record that the checkpoint now on disk reached ``step`` of ``steps``."""
        st = self.checkpoint_path.stat()
        write_json(self.status_path, {
            "run_id": run_id, "step": int(step), "steps": int(steps),
            "checkpoint": {"size": st.st_size, "mtime_ns": st.st_mtime_ns},
        })

    def status(self) -> dict[str, Any] | None:
        """``status.json`` when it describes the checkpoint on disk, else None.

        Reads two small things (the status file and the checkpoint's size and time), never
        the checkpoint itself.
        """
        try:
            status = json.loads(self.status_path.read_text())
            st = self.checkpoint_path.stat()
        except (OSError, ValueError):
            return None
        pinned = status.get("checkpoint") if isinstance(status, dict) else None
        if pinned != {"size": st.st_size, "mtime_ns": st.st_mtime_ns}:
            return None
        if self.expected_id is not None and status.get("run_id") != self.expected_id:
            return None
        return status

    def refresh_status(self) -> dict[str, Any] | None:
        """Rewrite the status from the checkpoint itself (one ``torch.load``).

        For a folder whose status is missing or stale: written before status files
        existed, or copied without file times. Status checks never call this.
        """
        state = self.load_checkpoint()
        rec = self.read_config()
        self.write_status(int(state["step"]), int(rec["steps"]), str(rec.get("run_id", "")))
        return self.status()

    def trained_step(self) -> int | None:
        """Steps the checkpoint holds, from the status (None: no checkpoint or unknown)."""
        status = self.status()
        return None if status is None else int(status["step"])

    def is_trained(self) -> bool:
        """Whether the run finished training (from the status; the checkpoint is not read)."""
        status = self.status()
        return status is not None and int(status["step"]) >= int(status["steps"])

    # -- the training log ------------------------------------------------------------------
    def read_log(self, upto: int | None = None) -> list[dict[str, str]]:
        """The rows of ``train_log.csv`` (those with ``step <= upto``)."""
        if not self.log_path.is_file():
            return []
        with self.log_path.open(newline="") as f:
            return [r for r in csv.DictReader(f) if upto is None or int(r["step"]) <= upto]

    def write_log(self, rows: list[dict[str, Any]]) -> None:
        """Write every row of the log (the first row's keys are the columns)."""
        if not rows:
            return
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.log_path, buf.getvalue())

    # -- the labelled subset and the metrics curve ------------------------------------------
    def has_labelled(self) -> bool:
        return self.labelled_path.is_file()

    def write_labelled(self, arrays: dict[str, Any]) -> None:
        """Write the run's labelled subset (once, when the run is created)."""
        import numpy as np

        with atomic_path(self.labelled_path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)

    def read_labelled(self) -> dict[str, Any]:
        """The labelled subset as a dict of arrays (a clear error when it is missing)."""
        import numpy as np

        if not self.has_labelled():
            raise DisbenchError(f"{self.labelled_path} not found: the run's labelled subset "
                                "is missing; delete the run folder and train it again")
        with np.load(self.labelled_path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def read_curve(self, upto: int | None = None) -> list[dict[str, str]]:
        """The rows of ``metrics_curve.csv`` (those with ``step <= upto``)."""
        if not self.curve_path.is_file():
            return []
        with self.curve_path.open(newline="") as f:
            return [r for r in csv.DictReader(f) if upto is None or int(r["step"]) <= upto]

    def write_curve(self, rows: list[dict[str, Any]]) -> None:
        """Write every row of the curve (columns: ``step`` and the union of the rows' keys)."""
        if not rows:
            return
        names = sorted({k for r in rows for k in r} - {"step"})
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["step", *names], lineterminator="\n",
                                restval="")
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.curve_path, buf.getvalue())

    # -- metrics ---------------------------------------------------------------------------
    def read_metrics(self) -> dict[str, Any]:
        """``metrics.json`` (an empty document when there is none or it is unreadable)."""
        path = self.metrics_path
        if not path.is_file():
            return _empty_metrics()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("%s is unreadable (%s); it is ignored and will be rewritten", path, exc)
            return _empty_metrics()
        if not isinstance(data, dict):
            log.warning("%s does not hold a JSON object; it is ignored", path)
            return _empty_metrics()
        for key, value in _empty_metrics().items():
            data.setdefault(key, value)
        return data

    def metric_records(self) -> list[dict[str, Any]]:
        """The well-formed score records of ``metrics.json``."""
        records = self.read_metrics()["records"]
        return [r for r in records if isinstance(r, dict) and "metric" in r]

    def write_metrics(self, doc: dict[str, Any]) -> None:
        write_json(self.metrics_path, doc)

    # -- errors ----------------------------------------------------------------------------
    def has_error(self) -> bool:
        return self.error_path.is_file()

    def read_error(self) -> dict[str, Any] | None:
        """``error.json`` (None when there is none; ``{}`` when it is unreadable)."""
        if not self.error_path.is_file():
            return None
        try:
            data = json.loads(self.error_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_error(self, info: dict[str, Any]) -> None:
        write_json(self.error_path, info)

    def clear_error(self) -> None:
        if self.error_path.exists():
            self.error_path.unlink()


def find_run_folders(root: str | os.PathLike,
                     only: Iterable[str | os.PathLike] | None = None) -> list[RunFolder]:
    """Every folder under ``root`` holding a ``config.json`` or an ``error.json``, sorted.

    ``only``: keep just these folders (e.g. the runs of one spec).
    """
    root = Path(root)
    if not root.is_dir():
        raise DisbenchError(f"runs folder {root} not found; pass the --out folder of a sweep")
    dirs = {p.parent for p in root.rglob(CONFIG_FILE)}
    dirs |= {p.parent for p in root.rglob(ERROR_FILE)}
    if only is not None:
        dirs &= {Path(d) for d in only}
    return [RunFolder(d) for d in sorted(dirs)]


def is_trained(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds a finished run (:meth:`RunFolder.is_trained`)."""
    return RunFolder(run_dir).is_trained()


def checkpoint_payload(*, run_id: str, step: int, model: dict[str, Any],
                       optimizers: dict[str, Any], rng: dict[str, Any],
                       log_acc: dict[str, Any], log_count: int,
                       config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``model.pt`` dict (every value loadable with ``weights_only=True``).

    ``config``: the run's ``config.json`` record, kept so that a corrupt one can be rebuilt.
    """
    from disbench import __version__

    payload = {
        "format_version": FORMAT_VERSION,
        "disbench_version": __version__,
        "run_id": run_id,
        "step": int(step),
        "model": model,
        "optimizers": optimizers,
        "rng": rng,
        "log_acc": log_acc,
        "log_count": int(log_count),
    }
    if config is not None:
        payload["config"] = config
    return payload


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with clear errors for corrupt or foreign files."""
    import torch
    from disbench import __version__

    path = Path(path)
    if not path.is_file():
        raise DisbenchError(f"{path} not found: the run has no checkpoint yet "
                            "(train it with 'disbench train ... --resume')")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for garbled files
        raise DisbenchError(
            f"{path} is not a readable disbench checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); delete it and train the run "
            "again ('disbench train' with the same settings)"
        ) from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise DisbenchError(f"{path} is not a disbench checkpoint (no format_version); "
                            "delete it and train the run again")
    if state["format_version"] != FORMAT_VERSION:
        raise DisbenchError(
            f"{path} has checkpoint format_version {state['format_version']} (written by "
            f"disbench {state.get('disbench_version', '?')}); this disbench {__version__} reads "
            f"format_version {FORMAT_VERSION}: retrain the run (delete the folder and run "
            f"'disbench train' again) or use disbench {state.get('disbench_version', '?')}"
        )
    return state


def load_run(run_dir: str | os.PathLike, device: Any = "cpu") -> tuple[Any, Any, dict[str, Any]]:
    """Load a trained (or partially trained) run.

    Returns
    -------
    model : disbench.baselines.base.Model
        In eval mode on ``device``, with the checkpoint's weights.
    cfg : RunConfig
        The run's stored configuration, ``hparams`` fully resolved and ``source`` the one
        the run was created on. Its identity is :meth:`RunFolder.run_id`.
    dataset_spec : dict
        ``{"name", "source", "split", "fingerprint", "size", "image_shape"}``: pass
        ``disbench.datasets.get(spec["name"], source=spec["source"], split=spec["split"])``
        to get the data it was trained on (compare ``fingerprint``).
    """
    from disbench import baselines

    folder = RunFolder(run_dir)
    conf = folder.read_config()
    cfg = folder.run_config()
    state = folder.load_checkpoint(map_location="cpu")
    folder.check_owner(state, conf.get("run_id"))
    model = baselines.create(cfg.model, **cfg.hparams)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as exc:
        raise DisbenchError(
            f"{folder.checkpoint_path} does not match model {cfg.model!r} with the hparams in "
            f"{folder.config_path} ({str(exc).splitlines()[0]}); retrain the run"
        ) from None
    model.to(device).eval()
    dataset_spec = {
        "name": cfg.dataset,
        "source": cfg.source,
        "split": cfg.split,
        "options": dict(cfg.dataset_options or {}),
        "fingerprint": conf.get("dataset_fingerprint"),
        "size": conf.get("dataset_size"),
        "image_shape": conf.get("hparams", {}).get("image_shape"),
    }
    return model, cfg, dataset_spec
