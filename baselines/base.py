"""The model base class and hyperparameter handling shared by every baseline.

A model is an ``nn.Module`` built from one hyperparameter dataclass (``Model.Hparams``).
``from_hparams(**kw)`` checks the keys (unknown ones are a :class:`DisbenchError` listing
the valid ones), coerces values that arrive as YAML/CLI scalars (``4`` for a float,
``[1, 64, 64]`` for a shape) and fills the paper defaults.

Ranges are declared per field, in its annotation: ``beta: NonNegative = 4.0`` is
``Annotated[float, Range(ge=0)]`` (:data:`Positive`, :data:`NonNegative`,
:data:`PositiveInt`, :data:`NonNegativeInt`, :data:`UnitInterval`, :data:`AdamBeta`, or
any ``Annotated[T, Range(...)]``). Every hyperparameters object checks them when it is
built (:meth:`ModelHparams.__post_init__`): a value outside its range is a
:class:`DisbenchError` naming the field, and a float (or a float in a tuple) must be
finite whatever its declaration (no NaN or infinity reaches training).

Optimiser defaults follow Locatello et al. 2019 ("Challenging common assumptions...",
appendix / disentanglement_lib): Adam with learning rate 1e-4, beta1 = 0.9,
beta2 = 0.999, eps = 1e-8. Models whose paper prescribes another optimiser override
:attr:`Model.default_lr` / :meth:`Model.make_optimizers` and say so.

Forward code is kept ``torch.func``-friendly (no in-place updates of parameters or
buffers inside ``loss``, no ``.item()`` on the hot path) so that
``torch.func.functional_call`` and ``vmap`` can batch many models into one ensemble.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import keyword
import math
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Annotated, Any, ClassVar

import torch
from disbench.errors import DisbenchError
from torch import nn

LIKELIHOODS = ("bernoulli", "gaussian", "laplace")
IMAGE_SIZES = ((64, 64), (28, 28))


@dataclass(frozen=True)
class Range:
    """The values a numeric hyperparameter may take: ``ge <= v``, ``gt < v``, ``v <= le``,
    ``v < lt`` (None: no such bound). Declared in a field's annotation with ``Annotated``."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def __str__(self) -> str:
        parts = [f"{op} {b:g}" for op, b in ((">=", self.ge), (">", self.gt),
                                               ("<=", self.le), ("<", self.lt)) if b is not None]
        return " and ".join(parts)

    def contains(self, v: float) -> bool:
        return ((self.ge is None or v >= self.ge) and (self.gt is None or v > self.gt)
                and (self.le is None or v <= self.le) and (self.lt is None or v < self.lt))


Positive = Annotated[float, Range(gt=0)]
NonNegative = Annotated[float, Range(ge=0)]
UnitInterval = Annotated[float, Range(ge=0, le=1)]
#: Adam's beta1 / beta2 (torch.optim.Adam needs 0 <= beta < 1)
AdamBeta = Annotated[float, Range(ge=0, lt=1)]
PositiveInt = Annotated[int, Range(ge=1)]
NonNegativeInt = Annotated[int, Range(ge=0)]


def _range_problem(value: Any, hint: Any) -> str | None:
    """What is wrong with ``value`` for the annotation ``hint`` (None when nothing is)."""
    if value is None or isinstance(value, (bool, str)):
        return None
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *meta = typing.get_args(hint)
        problem = _range_problem(value, base)
        if problem:
            return problem
        for r in (m for m in meta if isinstance(m, Range)):
            if not r.contains(value):
                return f"must be {r}, got {value!r}"
        return None
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        problems = [_range_problem(value, a) for a in arms]
        return None if any(p is None for p in problems) else problems[0]
    if isinstance(value, tuple):
        args = typing.get_args(hint) if origin is tuple else ()
        items = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        for i, v in enumerate(value):
            problem = _range_problem(v, items[i] if i < len(items) else Any)
            if problem:
                return f"item {i} {problem}"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    return None


@functools.cache
def _hints(hp_cls: type) -> dict[str, Any]:
    return typing.get_type_hints(hp_cls, include_extras=True)


def check_ranges(hp: Any) -> None:
    """Raise a :class:`DisbenchError` naming the first field of ``hp`` outside its range."""
    hints = _hints(type(hp))
    for f in fields(hp):
        problem = _range_problem(getattr(hp, f.name), hints.get(f.name, Any))
        if problem:
            name = f.name[:-1] if keyword.iskeyword(f.name[:-1]) else f.name
            raise DisbenchError(f"hyperparameter {name} {problem}")


def _declares_range(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        return any(isinstance(m, Range) for m in typing.get_args(hint)[1:])
    if origin in (typing.Union, types.UnionType):
        return all(_declares_range(a) for a in typing.get_args(hint) if a is not type(None))
    if origin is tuple:
        return all(_declares_range(a) for a in typing.get_args(hint) if a is not Ellipsis)
    return hint not in (int, float)


def undeclared_ranges(hp_cls: type) -> list[str]:
    """The numeric fields of ``hp_cls`` without a :class:`Range` (``image_shape`` aside,
    which its own check covers)."""
    hints = _hints(hp_cls)
    return [f.name for f in fields(hp_cls)
            if f.name != "image_shape" and not _declares_range(hints.get(f.name, Any))]


@dataclass
class ModelHparams:
    """Hyperparameters every model accepts.

    Attributes
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of the input images; H x W must be 64 x 64 or 28 x 28.
    latent_dim : int
        Number of latent dimensions (10 as in Locatello et al. 2019).
    likelihood : {"bernoulli", "gaussian", "laplace"}
        Decoder likelihood, ``bernoulli`` by default whatever the data: the
        ``bernoulli_loss`` on logits (cross-entropy summed over pixels, also for grey or
        colour pixels) that the Locatello et al. 2019 study uses for every dataset
        (google-research/disentanglement_lib
        ``config/unsupervised_study_v1/model_configs/shared.gin``,
        ``methods/shared/losses.py``). ``gaussian`` (the trainer's choice for non-binary
        data before) and ``laplace`` are options. A model may declare another default
        (the sequence models: ``gaussian``) or keep the data rule (the WAEs'
        ``likelihood_from_data``; :func:`disbench.run.config.resolve_hparams`).
    likelihood_scale : float or None
        Fixed scale of the Gaussian (sigma) or Laplace (b) likelihood. ``None`` resolves
        to the default of :func:`disbench.baselines.likelihoods.default_scale`
        (Gaussian: sqrt(1/2), so the negative log-likelihood is the summed squared
        error plus a constant, the ``l2`` loss of disentanglement_lib; Laplace: 1, the
        summed absolute error plus a constant). Ignored for Bernoulli.
    encoder_arch : {"dlib", "paper"}
        The shared conv encoder (:mod:`disbench.baselines.networks`): ``"dlib"``
        (default), disentanglement_lib's ``conv_encoder`` (4x4 kernels for the first two
        convolutions, 2x2 for the third and fourth), the network of the Locatello et al.
        2019 study; ``"paper"``, 4x4 kernels throughout.
    """

    image_shape: tuple[int, int, int] = (1, 64, 64)
    latent_dim: PositiveInt = 10
    likelihood: str = "bernoulli"
    likelihood_scale: Positive | None = None
    encoder_arch: str = "dlib"

    def image_sizes(self) -> tuple[tuple[int, int], ...]:
        """The (H, W) the model's networks accept (the shared networks: 64x64, 28x28)."""
        return IMAGE_SIZES

    def __post_init__(self) -> None:
        from disbench.baselines.likelihoods import default_scale
        from disbench.baselines.networks import ENCODER_ARCHS, image_shape_error

        check_ranges(self)
        shape = tuple(int(s) for s in self.image_shape)
        sizes = self.image_sizes()
        if len(shape) != 3 or shape[0] < 1 or shape[1:] not in sizes:
            raise DisbenchError(image_shape_error(self.image_shape, sizes))
        self.image_shape = shape
        if self.encoder_arch not in ENCODER_ARCHS:
            raise DisbenchError(
                f"encoder_arch must be one of {', '.join(ENCODER_ARCHS)}, "
                f"got {self.encoder_arch!r}"
            )
        if self.latent_dim < 1:
            raise DisbenchError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if self.likelihood not in LIKELIHOODS:
            raise DisbenchError(
                f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {self.likelihood!r}"
            )
        if self.likelihood_scale is None:
            self.likelihood_scale = default_scale(self.likelihood)
        if self.likelihood_scale is not None and not self.likelihood_scale > 0:
            raise DisbenchError(f"likelihood_scale must be > 0, got {self.likelihood_scale}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists, schedules their canonical text)."""
        from disbench.baselines.schedules import Schedule

        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else str(v) if isinstance(v, Schedule)
                else v for k, v in out.items()}


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Coerce a YAML/CLI scalar ``value`` to the annotated type ``hint`` of field ``name``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(name, value, hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise DisbenchError(f"hyperparameter {name} must be a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(_coerce(name, v, item) for v in value)
    for scalar, coerce in _SCALARS:
        if hint is scalar:
            return coerce(name, value)
    return value


def _coerce_union(name: str, value: Any, hint: Any) -> Any:
    """``value`` as the first member of the union ``hint`` that accepts it (None if optional)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if value is None and len(args) < len(typing.get_args(hint)):
        return None
    errors = []
    for arg in args:
        try:
            return _coerce(name, value, arg)
        except DisbenchError as exc:
            errors.append(str(exc))
    raise DisbenchError(errors[0] if errors else f"bad value for {name}: {value!r}")


def _to_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise DisbenchError(f"hyperparameter {name} must be true or false, got {value!r}")


def _to_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise DisbenchError(f"hyperparameter {name} must be an integer, got {value!r}")
    return int(value)


def _to_float(name: str, value: Any) -> Any:
    """A number as float; a schedule (or its text) as a :class:`~schedules.Schedule`."""
    from disbench.baselines import schedules

    if isinstance(value, schedules.Schedule):
        return value
    if schedules.is_schedule_text(value):  # e.g. "linear(0, 4, 10000)"
        return schedules.parse(value, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DisbenchError(f"hyperparameter {name} must be a number (or a schedule, e.g. "
                            f"{schedules.EXAMPLE}), got {value!r}")
    return float(value)


def _to_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise DisbenchError(f"hyperparameter {name} must be a string, got {value!r}")
    return value


# The scalar annotations _coerce converts, each with its converter (matched with `is`).
_SCALARS = ((bool, _to_bool), (int, _to_int), (float, _to_float), (str, _to_str))


def build_hparams(hp_cls: type, model_name: str, kw: dict[str, Any]) -> Any:
    """Instantiate dataclass ``hp_cls`` from ``kw`` with key checks and coercion."""
    # Python keywords cannot be field names: ``lambda`` is stored as ``lambda_``.
    kw = {(k + "_" if keyword.iskeyword(k) else k): v for k, v in kw.items()}
    valid = [f.name for f in fields(hp_cls)]
    unknown = sorted(set(kw) - set(valid))
    if unknown:
        raise DisbenchError(
            f"unknown hyperparameter(s) {', '.join(unknown)} for model {model_name!r}; "
            f"valid keys: {', '.join(valid)}"
        )
    hints = typing.get_type_hints(hp_cls)
    values = {k: _coerce(k, v, hints.get(k, Any)) for k, v in kw.items()}
    return hp_cls(**values)


class Model(nn.Module):
    """Base class of every baseline.

    Subclasses set ``Hparams`` (a dataclass deriving from :class:`ModelHparams`),
    build their networks in ``__init__(hparams)`` and implement :meth:`loss`,
    :meth:`encode`, :meth:`decode` and :meth:`sample_prior`.
    """

    Hparams: ClassVar[type] = ModelHparams
    registry_name: ClassVar[str] = "model"
    #: Locatello et al. 2019: Adam, lr 1e-4, beta1 0.9, beta2 0.999, eps 1e-8.
    default_lr: ClassVar[float] = 1e-4
    default_betas: ClassVar[tuple[float, float]] = (0.9, 0.999)
    default_eps: ClassVar[float] = 1e-8
    default_amsgrad: ClassVar[bool] = False
    #: True when :meth:`loss` changes with the step index (an annealing). Such a loss reads
    #: the step as a tensor (an ensemble's captured CUDA graph passes a device counter);
    #: a scheduled hyperparameter makes any model step-dependent (:attr:`step_dependent`).
    loss_depends_on_step: ClassVar[bool] = False
    #: what :meth:`loss` takes: "images" (a (B, C, H, W) tensor), "pairs" or "labelled"
    #: (:mod:`disbench.baselines.batches`)
    batch_kind: ClassVar[str] = "images"

    def __init__(self, hparams: ModelHparams | None = None) -> None:
        super().__init__()
        self.hparams = hparams if hparams is not None else self.Hparams()
        #: autocast dtype set by the trainer (``torch.bfloat16``) or None
        self.amp_dtype: torch.dtype | None = None

    # -- construction ------------------------------------------------------------
    @classmethod
    def from_hparams(cls, **kw: Any) -> Model:
        """Build the model from keyword hyperparameters (unknown keys are an error)."""
        return cls(build_hparams(cls.Hparams, cls.registry_name, kw))

    @classmethod
    def hparam_names(cls) -> list[str]:
        """Names of the accepted hyperparameters."""
        return [f.name for f in fields(cls.Hparams)]

    # -- interface ---------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.hparams.latent_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def loss(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """Objective on a batch ``x`` (floats in [0, 1]; a pair or labelled batch for those
        :attr:`batch_kind`); key ``"loss"`` plus all terms. ``step`` is an int, or a float32
        tensor (an ensemble's step counter) for a step-dependent loss."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The representation: posterior means (or deterministic codes), shape (N, D)."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder means, images in [0, 1] of shape (N, C, H, W)."""
        raise NotImplementedError

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws from the prior p(z), shape (n, D)."""
        raise NotImplementedError

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the encoded means of ``x``."""
        return self.decode(self.encode(x))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images decoded from prior samples."""
        return self.decode(self.sample_prior(n, generator=generator))

    # -- training ----------------------------------------------------------------
    def model_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters updated by the main ("model") optimiser (adversaries excluded)."""
        return self.parameters()

    def make_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        """Adam as Locatello et al. 2019 (lr 1e-4, betas (0.9, 0.999), eps 1e-8)."""
        return {
            "model": torch.optim.Adam(
                self.model_parameters(),
                lr=self.default_lr if lr is None else lr,
                betas=self.default_betas,
                eps=self.default_eps,
                amsgrad=self.default_amsgrad,
            )
        }

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for the forward pass (a no-op unless ``amp_dtype`` is set)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def train_step_tensors(
        self, x: torch.Tensor, step: int, optimizers: dict[str, torch.optim.Optimizer]
    ) -> dict[str, torch.Tensor]:
        """One optimisation step; returns the detached loss terms as tensors.

        The trainer uses this form so that no device sync happens except when it logs.
        Default: zero_grad, loss, backward, step the "model" optimiser.
        """
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        with self.autocast():
            terms = self.loss(x, step)
        terms["loss"].backward()
        opt.step()
        return {k: v.detach().float() for k, v in terms.items()}

    def training_step(
        self, x: torch.Tensor, step: int, optimizers: dict[str, torch.optim.Optimizer]
    ) -> dict[str, float]:
        """One optimisation step; returns every loss term as a float."""
        return {k: float(v) for k, v in self.scheduled_step(x, step, optimizers).items()}

    # -- schedules ---------------------------------------------------------------
    @property
    def step_dependent(self) -> bool:
        """Whether the loss changes with the step (an annealing, or a scheduled hparam)."""
        from disbench.baselines.schedules import find

        return self.loss_depends_on_step or bool(find(self.hparams))

    @contextlib.contextmanager
    def hparams_at(self, step: Any) -> Iterator[None]:
        """Scheduled hyperparameters hold their value at ``step`` (float32 0-d tensors)."""
        from disbench.baselines.schedules import find

        scheduled = find(self.hparams)
        if not scheduled:
            yield
            return
        saved = self.hparams
        self.hparams = at_step(saved, scheduled, step)
        try:
            yield
        finally:
            self.hparams = saved

    def scheduled_step(
        self, batch: Any, step: int, optimizers: dict[str, torch.optim.Optimizer]
    ) -> dict[str, torch.Tensor]:
        """:meth:`train_step_tensors` with scheduled hyperparameters at their step values."""
        with self.hparams_at(step):
            return self.train_step_tensors(batch, step, optimizers)

    def extra_repr(self) -> str:
        return f"hparams={self.hparams}"


def at_step(hparams: Any, scheduled: dict[str, Any], step: Any) -> Any:
    """A shallow copy of ``hparams`` with each schedule of ``scheduled`` at ``step`` (no
    ``__post_init__``: the values may be tensors, under ``vmap`` batched ones)."""
    out = copy.copy(hparams)
    for name, schedule in scheduled.items():
        object.__setattr__(out, name, schedule.at(step))
    return out


class LatentDiscriminator:
    """Mixin for models with a latent discriminator ``self.discriminator`` (FactorVAE,
    WAE-GAN): the main optimiser leaves it out, and it gets its own Adam from the hparams
    ``disc_lr``, ``disc_beta1`` and ``disc_beta2``. List it before the model base class."""

    def model_parameters(self) -> Iterator[nn.Parameter]:
        return (p for n, p in self.named_parameters() if not n.startswith("discriminator."))

    def make_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        opts = super().make_optimizers(lr)
        hp = self.hparams
        opts["discriminator"] = torch.optim.Adam(
            self.discriminator.parameters(), lr=hp.disc_lr, betas=(hp.disc_beta1, hp.disc_beta2)
        )
        return opts
