"""Run configurations, run folders and loading trained runs.

A run is identified by a short hash of its resolved configuration (model, resolved
hyperparameters, dataset, source, split, steps, batch size, seed, learning rate, amp,
compile); ``device``, ``log_every`` and ``checkpoint_every`` do not change what is
learned and are left out. Its folder is ``runs_root/<dataset>/<model>/<hash>-s<seed>/``
holding ``config.json``, ``model.pt`` and ``train_log.csv`` (see :mod:`disbench.run.trainer`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from disbench.errors import DisbenchError

#: version of the model.pt layout; load_run refuses other versions with a clear message
FORMAT_VERSION = 1
AMP_MODES = (None, "bf16")
DEVICES = ("auto", "cpu", "cuda")
#: hyperparameters filled from the dataset at training time unless the user sets them
DATASET_DERIVED = ("image_shape", "likelihood", "likelihood_scale")
_NOT_HASHED = ("device", "log_every", "checkpoint_every")


@dataclass
class RunConfig:
    """Everything that defines one training run.

    Attributes
    ----------
    model : str
        Registry name (``disbench.baselines.names()``).
    dataset : str
        Dataset name (``disbench.datasets.names()``).
    hparams : dict
        Model hyperparameter overrides (the rest take the paper defaults).
    source : {"auto", "official", "synthetic"}
        Data source; ``auto`` resolves to official when cached, else the twin.
    split : str or None
        Dataset split (None: the dataset's default).
    steps : int
        Optimisation steps (Locatello et al. 2019 train for 300,000).
    batch_size : int
        Batch size (64 as in Locatello et al. 2019).
    seed : int
        Seed of the model initialisation, batch order and sampling noise.
    lr : float or None
        Learning rate of the main optimiser (None: the model's paper default).
    log_every : int
        Write one ``train_log.csv`` row (mean of each term) every this many steps.
    amp : None or "bf16"
        bfloat16 autocast for the forward passes.
    compile : bool
        ``torch.compile`` the encoder/decoder modules.
    device : {"auto", "cpu", "cuda"}
        ``auto``: CUDA when present.
    checkpoint_every : int
        Save ``model.pt`` every this many steps (an interrupted run loses at most this).
    """

    model: str
    dataset: str
    hparams: dict[str, Any] = field(default_factory=dict)
    source: str = "auto"
    split: str | None = None
    steps: int = 300_000
    batch_size: int = 64
    seed: int = 0
    lr: float | None = None
    log_every: int = 100
    amp: str | None = None
    compile: bool = False
    device: str = "auto"
    checkpoint_every: int = 1000

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DisbenchError(f"{name} must be a positive integer, got {value!r}")
        if self.amp not in AMP_MODES:
            raise DisbenchError(f"amp must be 'bf16' or unset, got {self.amp!r}")
        if self.device not in DEVICES:
            raise DisbenchError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.lr is not None and not self.lr > 0:
            raise DisbenchError(f"lr must be > 0, got {self.lr!r}")
        self.hparams = dict(self.hparams)

    # -- (de)serialisation -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hparams"] = _jsonable(d["hparams"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Build from a dict (e.g. a ``config.json``); keys that are not fields are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    # -- resolution ------------------------------------------------------------------
    def resolved(self) -> RunConfig:
        """A copy with ``source``/``split``/``lr`` resolved and model defaults filled.

        Hyperparameters derived from the dataset (image shape, likelihood, data set size)
        are left to :func:`resolve_hparams`, unless set explicitly; they are functions of
        (dataset, source, split), which the hash includes.
        """
        from disbench.baselines.registry import MODELS, names
        from disbench.datasets.registry import SOURCES, spec

        try:
            cls = MODELS[self.model]
        except KeyError:
            raise DisbenchError(
                f"unknown model {self.model!r}; choose one of {', '.join(names())}"
            ) from None
        ds_cls = spec(self.dataset)
        if self.source not in SOURCES:
            raise DisbenchError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        split = self.split or ds_cls.default_split
        source = self.source
        if source == "auto":
            source = "official" if ds_cls.official_available(split) else "synthetic"
        user = dict(self.hparams)
        full = _build(cls, user).to_dict()
        derived = set(DATASET_DERIVED) | set(_dataset_size_keys(cls))
        hparams = {k: v for k, v in full.items() if k in user or k not in derived}
        lr = float(self.lr) if self.lr is not None else float(cls.default_lr)
        return dataclasses.replace(self, source=source, split=split, lr=lr, hparams=hparams)

    def run_id(self) -> str:
        """Short hash of the resolved config (device, log_every, checkpoint_every excluded)."""
        d = self.resolved().to_dict()
        for k in _NOT_HASHED:
            d.pop(k)
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def run_dir(self, runs_root: str | Path) -> Path:
        """``runs_root/<dataset>/<model>/<hash>-s<seed>``."""
        return Path(runs_root) / self.dataset / self.model / f"{self.run_id()}-s{self.seed}"


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _build(cls: type, hparams: dict[str, Any]) -> Any:
    from disbench.baselines.base import build_hparams

    return build_hparams(cls.Hparams, cls.registry_name, hparams)


def _dataset_size_keys(cls: type) -> tuple[str, ...]:
    key = getattr(cls, "dataset_size_hparam", None)
    return (key,) if key else ()


def resolve_hparams(cfg: RunConfig, dataset: Any) -> dict[str, Any]:
    """Every hyperparameter of ``cfg.model`` for training on ``dataset`` (JSON-ready).

    image_shape comes from the dataset (a different explicit value is an error); the
    likelihood is Bernoulli for binary data and Gaussian otherwise unless set; a model's
    data-set-size hyperparameter (beta_tcvae's ``dataset_size``) is ``len(dataset)``
    unless set.
    """
    from disbench.baselines.registry import MODELS

    cls = MODELS[cfg.model]
    hp = dict(cfg.hparams)
    shape = tuple(int(s) for s in dataset.image_shape)
    if "image_shape" in hp and tuple(hp["image_shape"]) != shape:
        raise DisbenchError(
            f"image_shape={list(hp['image_shape'])} does not match dataset {cfg.dataset!r} "
            f"images {list(shape)}; drop the image_shape setting"
        )
    hp["image_shape"] = shape
    hp.setdefault("likelihood", "bernoulli" if getattr(dataset, "binary", False) else "gaussian")
    for key in _dataset_size_keys(cls):
        hp.setdefault(key, len(dataset))
    return _build(cls, hp).to_dict()


# -- reading run folders -----------------------------------------------------------------
def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a run folder as a dict (clear error when missing/corrupt)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise DisbenchError(f"{path} not found: {run_dir} is not a disbench run folder "
                            "(train one with 'disbench train')")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DisbenchError(f"{path} is not valid JSON ({exc}); delete the run folder and "
                            "train it again") from None


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
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


def checkpoint_step(run_dir: str | Path) -> int | None:
    """Steps completed by the checkpoint in ``run_dir`` (None when there is none/unreadable)."""
    path = Path(run_dir) / "model.pt"
    if not path.is_file():
        return None
    try:
        return int(load_checkpoint(path)["step"])
    except DisbenchError:
        return None


def is_trained(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a finished run (checkpoint step == configured steps)."""
    try:
        steps = int(read_config(run_dir)["steps"])
    except (DisbenchError, KeyError, ValueError):
        return False
    step = checkpoint_step(run_dir)
    return step is not None and step >= steps


def load_run(run_dir: str | Path, device: Any = "cpu") -> tuple[Any, RunConfig, dict[str, Any]]:
    """Load a trained (or partially trained) run.

    Returns
    -------
    model : disbench.baselines.base.Model
        In eval mode on ``device``, with the checkpoint's weights.
    cfg : RunConfig
        The run's configuration, ``hparams`` fully resolved.
    dataset_spec : dict
        ``{"name", "source", "split", "fingerprint", "size", "image_shape"}``: pass
        ``disbench.datasets.get(spec["name"], source=spec["source"], split=spec["split"])``
        to get the data it was trained on (compare ``fingerprint``).
    """
    from disbench import baselines

    run_dir = Path(run_dir)
    conf = read_config(run_dir)
    cfg = RunConfig.from_dict(conf)
    state = load_checkpoint(run_dir / "model.pt", map_location="cpu")
    model = baselines.create(cfg.model, **cfg.hparams)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as exc:
        raise DisbenchError(
            f"{run_dir / 'model.pt'} does not match model {cfg.model!r} with the hparams in "
            f"{run_dir / 'config.json'} ({str(exc).splitlines()[0]}); retrain the run"
        ) from None
    model.to(device).eval()
    dataset_spec = {
        "name": cfg.dataset,
        "source": cfg.source,
        "split": cfg.split,
        "fingerprint": conf.get("dataset_fingerprint"),
        "size": conf.get("dataset_size"),
        "image_shape": conf.get("hparams", {}).get("image_shape"),
    }
    return model, cfg, dataset_spec
