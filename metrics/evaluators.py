"""Sampler layer: evaluate a model on a ground-truth dataset and return score records.

:func:`evaluate` draws ``num_train`` and ``num_test`` factor points from the dataset with an
explicit seed, renders and encodes them once, and runs the requested evaluators, each of which
returns records::

    {"metric": "mig", "value": 0.31, "higher_is_better": True, "version": "1",
     "spec": {"points": 10000, "discretisation": "...", "codes": "mean", "seed": 0, ...}}

Registering an evaluator (other metric modules do this for fid, psnr, ood, judge, ...)::

    from disbench.metrics.evaluators import register_evaluator

    @register_evaluator("psnr")
    def _psnr(model, dataset, ctx):
        value = ...                      # use ctx.train_codes(), ctx.encode(images), ctx.rng("psnr")
        return [ctx.record("psnr", value, version="1", images=1000)]

An evaluator is ``fn(model, dataset, ctx) -> list[record]``; ``ctx`` is an
:class:`EvalContext`, which caches the drawn codes so that they are computed once for all
metrics. Record names must be keys of ``disbench.metrics.HIGHER_IS_BETTER`` (or pass
``higher_is_better=`` to :meth:`EvalContext.record`).

Randomness: every use of the seed gets its own stream (:func:`disbench.metrics._sampling.stream`:
"train", "test", "factor_vae", "beta_vae", or any name an evaluator asks for with
``ctx.rng(name)``), so a metric's number does not depend on which other metrics run.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ._sampling import encode_factors, stream

__all__ = ["EVALUATORS", "EvalContext", "EvalOptions", "evaluate", "register_evaluator"]

Evaluator = Callable[[Any, Any, "EvalContext"], list]

#: name -> evaluator ``fn(model, dataset, ctx) -> list[record]``.
EVALUATORS: dict[str, Evaluator] = {}

DISCRETISATION = "histogram: 20 equal-width bins per code dimension on its min..max (train codes)"
CODE_MODES = ("mean", "sampled")


def register_evaluator(name: str) -> Callable[[Evaluator], Evaluator]:
    """Decorator registering ``fn(model, dataset, ctx) -> list[record]`` under ``name``."""

    def deco(fn: Evaluator) -> Evaluator:
        if name in EVALUATORS and EVALUATORS[name] is not fn:
            raise ValueError(f"evaluator {name!r} is already registered")
        EVALUATORS[name] = fn
        return fn

    return deco


def _model_device(model: Any, device: Any) -> Any:
    import torch

    if device is not None:
        return torch.device(device)
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


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
        """The options that change a score (what ``metrics.json`` records per evaluator)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata["scores"]}


@dataclass
class EvalContext:
    """What evaluators share: the model, dataset, options, cached codes and random streams."""

    model: Any
    dataset: Any
    options: EvalOptions = field(default_factory=EvalOptions)
    #: a folder (the run folder) where evaluators may save artefacts such as ROC curves
    out_dir: Any = None
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
        device = _model_device(model, self.device)
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

    def record(
        self, metric: str, value: float, *, version: str, higher_is_better: bool | None = None,
        **spec: Any,
    ) -> dict:
        """One record; ``higher_is_better`` defaults to ``HIGHER_IS_BETTER[metric]``."""
        if higher_is_better is None:
            from . import HIGHER_IS_BETTER

            if metric not in HIGHER_IS_BETTER:
                raise KeyError(f"{metric!r} is not in disbench.metrics.HIGHER_IS_BETTER")
            higher_is_better = HIGHER_IS_BETTER[metric]
        return {
            "metric": metric,
            "value": float(value),
            "higher_is_better": bool(higher_is_better),
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
    **overrides: Any,
) -> list[dict]:
    """Score ``model`` on a ground-truth ``dataset`` with the named metrics.

    Parameters
    ----------
    model
        Has ``encode(x) -> (N, D)`` for float images x in [0, 1] (posterior means); for
        ``codes="sampled"`` it needs ``sample_codes(x, generator)`` or
        ``posterior(x) -> (mean, logvar)`` (one reparameterised draw per image).
    dataset
        A ground-truth dataset (``factor_sizes``, ``sample_factors``,
        ``sample_observations_from_factors``) for the disentanglement metrics; evaluators that
        need no factors (fid, psnr, ood_auroc, ...) take whatever dataset they document.
    metrics : list of str or comma-separated str
        Names in :data:`EVALUATORS`: "mig", "dci", "dci_hist_gbt", "dci_random_forest",
        "dci_lasso", "sap", "modularity", "unsupervised", "hoyer", "factor_vae", "beta_vae", and
        whatever other modules register.
    options : EvalOptions or dict, optional
        Point counts, representation, seed, batching and device (see :class:`EvalOptions`;
        the reference sizes 10,000 and 5,000, posterior means and seed 0 by default).
    out_dir : path, optional
        Folder for artefacts some evaluators save (e.g. ``roc_*.npz`` of ``ood_auroc``).
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
                      out_dir=out_dir)
    records: list[dict] = []
    for name in names:
        records.extend(EVALUATORS[name](model, dataset, ctx))
    return records


# ---------------------------------------------------------------------- built-in evaluators

@register_evaluator("mig")
def _eval_mig(model: Any, dataset: Any, ctx: EvalContext) -> list[dict]:
    from .mig import mig

    codes, factors = ctx.train_points()
    return [ctx.record("mig", mig(codes, factors), version="1", points=ctx.num_train,
                       discretisation=DISCRETISATION)]


def _dci_evaluator(estimator: str) -> Evaluator:
    prefix = "dci" if estimator == "gbt" else f"dci_{estimator}"
    label = {
        "gbt": "GradientBoostingClassifier() per factor (reference)",
        "hist_gbt": "HistGradientBoostingClassifier() per factor, split-gain importances",
        "random_forest": "RandomForestClassifier() per factor, impurity importances",
        "lasso": "Lasso(alpha=0.02) per factor on standardised codes, |coef| importances",
    }[estimator]

    def run(model: Any, dataset: Any, ctx: EvalContext) -> list[dict]:
        from .dci import dci

        c_tr, f_tr = ctx.train_points()
        c_te, f_te = ctx.test_points()
        out = dci(c_tr, f_tr, c_te, f_te, estimator=estimator, random_state=ctx.random_state)
        spec = {"points": ctx.num_train, "test_points": ctx.num_test, "estimator": label}
        return [ctx.record(f"{prefix}_{key}", out[key], version="1", **spec)
                for key in ("disentanglement", "completeness", "informativeness_train",
                            "informativeness_test")]

    return run


for _est in ("gbt", "hist_gbt", "random_forest", "lasso"):
    register_evaluator("dci" if _est == "gbt" else f"dci_{_est}")(_dci_evaluator(_est))


@register_evaluator("sap")
def _eval_sap(model: Any, dataset: Any, ctx: EvalContext) -> list[dict]:
    from .sap import sap

    c_tr, f_tr = ctx.train_points()
    c_te, f_te = ctx.test_points()
    value = sap(c_tr, f_tr, c_te, f_te)
    return [ctx.record("sap", value, version="1", points=ctx.num_train, test_points=ctx.num_test,
                       estimator='LinearSVC(C=0.01, class_weight="balanced") per (code, factor)')]


@register_evaluator("modularity")
def _eval_modularity(model: Any, dataset: Any, ctx: EvalContext) -> list[dict]:
    from .modularity import modularity_explicitness

    c_tr, f_tr = ctx.train_points()
    c_te, f_te = ctx.test_points()
    out = modularity_explicitness(c_tr, f_tr, c_te, f_te)
    spec = {"points": ctx.num_train, "test_points": ctx.num_test, "discretisation": DISCRETISATION,
            "estimator": "LogisticRegression() per factor on standardised codes, macro ROC-AUC"}
    return [ctx.record(key, out[key], version="1", **spec)
            for key in ("modularity", "explicitness_train", "explicitness_test")]


@register_evaluator("unsupervised")
def _eval_unsupervised(model: Any, dataset: Any, ctx: EvalContext) -> list[dict]:
    from .unsupervised import unsupervised

    codes, _ = ctx.train_points()
    out = unsupervised(codes)
    return [ctx.record(key, value, version="1", points=ctx.num_train,
                       discretisation=DISCRETISATION if key == "mutual_info_score" else None)
            for key, value in out.items()]


@register_evaluator("hoyer")
def _eval_hoyer(model: Any, dataset: Any, ctx: EvalContext) -> list[dict]:
    from .hoyer import hoyer_sparsity

    codes, _ = ctx.train_points()
    return [ctx.record("hoyer", hoyer_sparsity(codes), version="1", points=ctx.num_train)]


@register_evaluator("factor_vae")
def _eval_factor_vae(model: Any, dataset: Any, ctx: EvalContext) -> list[dict]:
    from .factor_vae import factor_vae_score

    out = factor_vae_score(
        dataset, ctx.representation_fn, ctx.rng("factor_vae"), num_train=ctx.num_train,
        num_eval=ctx.num_test, num_variance_estimate=ctx.num_train,
    )
    spec = {"points": ctx.num_train, "test_points": ctx.num_test, "batch_size": 64,
            "prune_factor": 0.05, "num_active_dims": out["num_active_dims"],
            "estimator": "majority vote on argmin of normalised variance"}
    return [ctx.record("factor_vae_score", out["eval_accuracy"], version="1", **spec),
            ctx.record("factor_vae_score_train", out["train_accuracy"], version="1", **spec)]


@register_evaluator("beta_vae")
def _eval_beta_vae(model: Any, dataset: Any, ctx: EvalContext) -> list[dict]:
    from .beta_vae import beta_vae_score

    out = beta_vae_score(
        dataset, ctx.representation_fn, ctx.rng("beta_vae"), num_train=ctx.num_train,
        num_eval=ctx.num_test,
    )
    spec = {"points": ctx.num_train, "test_points": ctx.num_test, "batch_size": 64,
            "estimator": "LogisticRegression() on mean |z1 - z2| of 64 pairs"}
    return [ctx.record("beta_vae_score", out["eval_accuracy"], version="1", **spec),
            ctx.record("beta_vae_score_train", out["train_accuracy"], version="1", **spec)]
