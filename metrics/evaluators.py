"""Sampler layer: evaluate a model on a dataset and return score records.

:func:`evaluate` runs the requested evaluators on one :class:`EvalContext` (the model, the
dataset, the :class:`EvalOptions` and, from the runner, a dataset loader). The context draws
``num_train`` and ``num_test`` factor points from a ground-truth dataset with an explicit
seed, renders and encodes them once, and caches them for all evaluators. Each evaluator
returns records::

    {"metric": "mig", "value": 0.31, "higher_is_better": True, "version": "1",
     "spec": {"points": 10000, "discretisation": "...", "codes": "mean", "seed": 0, ...}}

Evaluators are ``fn(ctx) -> list[record]``, registered with their record names, directions,
tolerances and needs in :mod:`disbench.metrics.registry` (see there for the one registration
style); a record's ``higher_is_better`` comes from that declaration.

Randomness: every use of the seed gets its own stream (:func:`disbench.metrics._sampling.stream`:
"train", "test", "factor_vae", "beta_vae", or any name an evaluator asks for with
``ctx.rng(name)``), so a metric's number does not depend on which other metrics run.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ._device import module_device
from ._sampling import encode_factors, stream
from .registry import EVALUATORS, declared_record, register_evaluator

__all__ = ["EVALUATORS", "EvalContext", "EvalOptions", "evaluate", "register_evaluator"]

CODE_MODES = ("mean", "sampled")


#: Where each evaluation setting is validated, documented and (``scores``) whether changing it
#: changes a score: the spec's ``eval:`` section, ``disbench evaluate``'s flags, the run
#: evaluator and :func:`evaluate` all derive from these fields.
@dataclass(frozen=True)
class EvalOptions:
    """How a model is evaluated: point counts, the representation, the seed and batching.

    Attributes
    ----------
    num_train, num_test : int
        Points drawn for the array-layer metrics (10,000 and 5,000 in disentanglement_lib's
        study configs); the FactorVAE and BetaVAE samplers use them as their training and
        evaluation sizes.
    codes : {"mean", "sampled"}
        The representation: posterior means (the reference) or one posterior sample.
    random_state : int
        The seed; each use of it gets its own stream (:meth:`EvalContext.rng`).
    batch_size : int
        Images per ``model.encode`` call (does not change a score).
    device : str or None
        Where to encode: ``cpu``, ``cuda`` or None for the model's device (does not change a
        score).
    """

    num_train: int = field(default=10000, metadata={
        "scores": True, "help": "points to fit the metrics on (default 10000)"})
    num_test: int = field(default=5000, metadata={
        "scores": True, "help": "points to test the metrics on (default 5000)"})
    codes: str = field(default="mean", metadata={
        "scores": True, "choices": CODE_MODES,
        "help": "representation: posterior means (default) or one posterior sample"})
    random_state: int = field(default=0, metadata={
        "scores": True, "help": "seed of the evaluation draws (default 0)"})
    batch_size: int = field(default=256, metadata={
        "scores": False, "help": "images per encode call (default 256)"})
    device: str | None = field(default=None, metadata={
        "scores": False, "help": "cpu or cuda (default: the model's device)"})
    ood_variant: str | None = field(default=None, metadata={
        "scores": True, "help": "protocol of ood_auroc: official (clu.py: every model scored on "
        "its codes), vaetc_main, means or disbench_v1 (default: official for gwae and for "
        "models not 1x28x28, else disbench_v1; see disbench.metrics.ood)"})

    def __post_init__(self) -> None:
        from disbench.errors import DisbenchError

        for arg in ("num_train", "num_test", "batch_size"):
            v = getattr(self, arg)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise DisbenchError(f"{arg} must be a positive integer, got {v!r}")
            object.__setattr__(self, arg, int(v))
        if self.codes not in CODE_MODES:
            raise DisbenchError(f"codes must be one of {', '.join(CODE_MODES)}, got {self.codes!r}")
        rs = self.random_state
        if isinstance(rs, bool) or not isinstance(rs, (int, np.integer)) or rs < 0:
            raise DisbenchError(f"random_state must be a non-negative int seed, got {rs!r}")
        object.__setattr__(self, "random_state", int(rs))
        if self.ood_variant is not None:
            from .ood import GWAE_OOD_VARIANTS

            if self.ood_variant not in GWAE_OOD_VARIANTS:
                raise DisbenchError(f"ood_variant must be one of {', '.join(GWAE_OOD_VARIANTS)}, "
                                    f"got {self.ood_variant!r}")
        if self.device is not None and not isinstance(self.device, str):
            object.__setattr__(self, "device", str(self.device))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every option name."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def build(cls, options: Any = None, **overrides: Any) -> EvalOptions:
        """From an EvalOptions, a mapping or None, with ``overrides`` (None values ignored)."""
        from disbench.errors import DisbenchError

        base = options.as_dict() if isinstance(options, EvalOptions) else dict(options or {})
        base.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(base) - set(cls.names()))
        if unknown:
            raise DisbenchError(f"unknown evaluation option(s) {', '.join(unknown)}; valid ones "
                                f"are {', '.join(cls.names())}")
        return cls(**{k: v for k, v in base.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def score_options(self) -> dict[str, Any]:
        """The options that change a score (what ``metrics.json`` records per evaluator).

        An option left at None (its evaluator's own default) is omitted, so adding such an
        option does not invalidate scores recorded before it existed.
        """
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.metadata["scores"] and getattr(self, f.name) is not None}


@dataclass
class EvalContext:
    """What an evaluator gets: the model, dataset, options, cached codes and random streams.

    Attributes
    ----------
    model, dataset
        What is evaluated and on what.
    options : EvalOptions
        Point counts, representation, seed, batching and device.
    out_dir : path or None
        A folder (the run folder) where evaluators may save artefacts such as ROC curves.
    load_dataset : callable or None
        ``load_dataset(name, source=..., split=..., **kw) -> dataset``, supplied by the runner
        (``disbench.datasets.get``), for evaluators that need other datasets or splits
        (``needs`` ``"load_dataset"``); metrics never import the dataset package.
    """

    model: Any
    dataset: Any
    options: EvalOptions = field(default_factory=EvalOptions)
    out_dir: Any = None
    load_dataset: Callable[..., Any] | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def num_train(self) -> int:
        return self.options.num_train

    @property
    def num_test(self) -> int:
        return self.options.num_test

    @property
    def codes(self) -> str:
        return self.options.codes

    @property
    def random_state(self) -> int:
        return self.options.random_state

    @property
    def batch_size(self) -> int:
        return self.options.batch_size

    @property
    def device(self) -> Any:
        return self.options.device

    def load(self, name: str, **kwargs: Any) -> Any:
        """``load_dataset(name, **kwargs)``; a clear error when the runner supplied none."""
        from disbench.errors import DisbenchError

        if self.load_dataset is None:
            raise DisbenchError(
                f"this metric needs the dataset {name!r} ({kwargs}): pass load_dataset= "
                "(e.g. disbench.datasets.get) to disbench.metrics.evaluate"
            )
        return self.load_dataset(name, **kwargs)

    # -- randomness ------------------------------------------------------------
    def rng(self, name: str) -> np.random.RandomState:
        """A fresh RandomState for the named use of the seed (same name, same stream)."""
        return stream(self.random_state, name)

    # -- encoding --------------------------------------------------------------
    def encode(self, images: Any) -> np.ndarray:
        """Codes (n, D) float64 of uint8 images (n, C, H, W): float / 255, ``model.encode``
        (posterior means) or, with ``codes="sampled"``, one posterior sample, in batches of
        ``batch_size`` under ``torch.no_grad`` on the model's device (eval mode, restored)."""
        import torch

        model = self.model
        device = module_device(model, self.device)
        x_all = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.asarray(images))
        gen = self._cache.get("torch_generator")
        if self.codes == "sampled" and gen is None:
            gen = torch.Generator(device=device)
            gen.manual_seed(int(self.rng("sampled_codes").randint(0, 2**31 - 1)))
            self._cache["torch_generator"] = gen
        was_training = getattr(model, "training", False)
        if hasattr(model, "eval"):
            model.eval()
        out = []
        try:
            with torch.no_grad():
                for start in range(0, len(x_all), self.batch_size):
                    x = x_all[start : start + self.batch_size].to(device).float() / 255.0
                    out.append(self._encode_batch(x, gen).float().cpu().numpy())
        finally:
            if was_training and hasattr(model, "train"):
                model.train(True)
        return np.concatenate(out, axis=0).astype(np.float64)

    def _encode_batch(self, x: Any, gen: Any) -> Any:
        import torch

        if self.codes == "mean":
            return self.model.encode(x)
        if hasattr(self.model, "sample_codes"):
            return self.model.sample_codes(x, generator=gen)
        if hasattr(self.model, "posterior"):
            mean, logvar = self.model.posterior(x)
            eps = torch.randn(mean.shape, generator=gen, device=mean.device, dtype=mean.dtype)
            return mean + torch.exp(0.5 * logvar) * eps
        from disbench.errors import DisbenchError

        raise DisbenchError(
            f"codes='sampled' needs a stochastic encoder: {type(self.model).__name__} has neither "
            "sample_codes(x, generator) nor posterior(x) -> (mean, logvar); use codes='mean'"
        )

    def representation_fn(self, images: np.ndarray) -> np.ndarray:
        """The representation function handed to the sampler metrics (uint8 in, codes out)."""
        return self.encode(images)

    def _draw(self, split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        key = f"points_{split}"
        if key not in self._cache:
            rng = self.rng(split)
            factors = np.asarray(self.dataset.sample_factors(n, rng), dtype=np.int64)
            codes = encode_factors(self.dataset, self.representation_fn, factors, rng)
            self._cache[key] = (codes, factors)
        return self._cache[key]

    def train_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(codes (num_train, D), factors (num_train, K)), drawn once from stream "train"."""
        return self._draw("train", self.num_train)

    def test_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(codes (num_test, D), factors (num_test, K)), drawn once from stream "test"."""
        return self._draw("test", self.num_test)

    # -- records ---------------------------------------------------------------
    def spec(self, **extra: Any) -> dict:
        """The spec shared by all records plus ``extra`` (None values dropped)."""
        ds = self.dataset
        base = {
            "dataset": getattr(ds, "name", type(ds).__name__),
            "source": getattr(ds, "source", None),
            "fingerprint": getattr(ds, "fingerprint", None),
            "codes": self.codes,
            "seed": self.random_state,
        }
        base.update(extra)
        return {k: v for k, v in base.items() if v is not None}

    def record(self, metric: str, value: float, *, version: str, **spec: Any) -> dict:
        """One record of the declared ``metric`` (its direction from the registry)."""
        return {
            "metric": metric,
            "value": float(value),
            "higher_is_better": declared_record(metric).higher_is_better,
            "version": str(version),
            "spec": self.spec(**spec),
        }


def evaluate(
    model: Any,
    dataset: Any,
    metrics: Any,
    options: EvalOptions | dict | None = None,
    *,
    out_dir: Any = None,
    load_dataset: Callable[..., Any] | None = None,
    **overrides: Any,
) -> list[dict]:
    """Score ``model`` on ``dataset`` with the named metrics.

    Parameters
    ----------
    model
        Has ``encode(x) -> (N, D)`` for float images x in [0, 1] (posterior means); for
        ``codes="sampled"`` it needs ``sample_codes(x, generator)`` or
        ``posterior(x) -> (mean, logvar)`` (one reparameterised draw per image).
    dataset
        A ground-truth dataset (``factor_sizes``, ``sample_factors``,
        ``sample_observations_from_factors``) for the disentanglement metrics; the others
        take what they declare (:func:`disbench.metrics.registry.needs`).
    metrics : list of str or comma-separated str
        Names in :data:`EVALUATORS` ("mig", "dci", "sap", "modularity", "unsupervised",
        "hoyer", "factor_vae", "beta_vae", "fid", "psnr", "judge", ...).
    options : EvalOptions or dict, optional
        Point counts, representation, seed, batching and device (see :class:`EvalOptions`;
        the reference sizes 10,000 and 5,000, posterior means and seed 0 by default).
    out_dir : path, optional
        Folder for artefacts some evaluators save (e.g. ``roc_*.npz`` of ``ood_auroc``).
    load_dataset : callable, optional
        ``load_dataset(name, source=..., split=..., **kw)`` (the runner passes
        ``disbench.datasets.get``), for the evaluators that need other datasets or splits
        (``ood_auroc``; ``judge`` when its judge must be trained and ``dataset`` is not the
        training split).
    **overrides
        Single :class:`EvalOptions` fields, e.g. ``num_train=1000``.

    Returns
    -------
    list of records (dicts with metric, value, higher_is_better, version, spec).
    """
    from disbench.errors import DisbenchError

    names = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else list(metrics)
    names = [m for m in names if m]
    unknown = [m for m in names if m not in EVALUATORS]
    if unknown:
        raise DisbenchError(
            f"unknown metric(s) {', '.join(unknown)}; available: {', '.join(sorted(EVALUATORS))}"
        )
    ctx = EvalContext(model=model, dataset=dataset, options=EvalOptions.build(options, **overrides),
                      out_dir=out_dir, load_dataset=load_dataset)
    return [rec for name in names for rec in _run(name, ctx)]


def _run(name: str, ctx: EvalContext) -> list[dict]:
    """The records of evaluator ``name``, checked against its declaration."""
    evaluator = EVALUATORS[name]
    out = evaluator(ctx)
    stray = sorted({r["metric"] for r in out} - set(evaluator.record_names))
    if stray:
        raise RuntimeError(f"evaluator {name!r} returned record(s) {', '.join(stray)} that it "
                           f"does not declare (declared: {', '.join(evaluator.record_names)})")
    return out
