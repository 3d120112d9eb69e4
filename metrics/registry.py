"""The evaluator registry: the one place where each metric declares its records.

Registering an evaluator declares, once, everything the rest of disbench derives from it:

- the evaluator's name (what ``disbench evaluate --metrics`` and a spec's ``metrics:`` take);
- its records (the ``"metric"`` names it writes to ``metrics.json``), each with its
  direction (``higher_is_better``) and its default regression tolerance (the allowed
  absolute change of the CI gate, :mod:`disbench.sweeps.regress`);
- what it needs (:data:`NEEDS`): from the dataset (ground-truth factors, labels,
  sequences), from the model (an encoder, a decoder, an OoD score, ...) and from the
  runner (a dataset loader).

:data:`HIGHER_IS_BETTER` and :data:`TOLERANCES` are live read-only views of the registry
(the leaderboard's arrows and ``regress``'s tolerances read them); :func:`needs` gives an
evaluator's requirements (for the spec validator).

One registration style, a decorator on ``fn(ctx) -> list[record]`` in the metric's own
module (``ctx`` is a :class:`disbench.metrics.evaluators.EvalContext`)::

    from .registry import Record, register_evaluator

    @register_evaluator("mig", records=[Record("mig", higher_is_better=True, tolerance=0.02)],
                        needs=("factors", "encoder"))
    def _evaluate(ctx):
        codes, factors = ctx.train_points()
        return [ctx.record("mig", mig(codes, factors), version="1", points=ctx.num_train)]

An evaluator may only return records it declares (:func:`disbench.metrics.evaluate` checks).

Tolerances. On one machine the CI suite is bit-for-bit deterministic (a re-run matches
exactly); a tolerance covers float differences between CPUs/BLAS builds, which training
amplifies, and histogram binning (MIG, modularity) that turns tiny code changes into steps of
about 1/num_points. It is kept below the size of a real change: a model that stops learning
moves hoyer by ~0.2 and explicitness by ~0.05. A record that states none gets
:data:`DEFAULT_TOLERANCE`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_TOLERANCE",
    "EVALUATORS",
    "HIGHER_IS_BETTER",
    "NEEDS",
    "TOLERANCES",
    "Evaluator",
    "Record",
    "declared_record",
    "needs",
    "register_evaluator",
    "tolerance",
]

#: The regression tolerance of a record that states none (and of a name no evaluator declares).
DEFAULT_TOLERANCE = 0.03

#: What an evaluator may need; ``needs=`` takes these names only.
NEEDS: dict[str, str] = {
    # from the dataset
    "factors": "a ground-truth dataset (factor_sizes, sample_factors, "
               "sample_observations_from_factors)",
    "images": "the dataset's uint8 images (N, C, H, W) or sequences (N, T, C, H, W)",
    "labels": "a labelled dataset (labels, num_classes)",
    "sequence": "Sprites sequences (images (N, T, C, H, W), static_labels, action_labels, "
                "static_factor_names)",
    "ood_pair": "a dataset with an out-of-distribution partner (generation.OOD_PAIRS)",
    # from the model
    "encoder": "model.encode(x) (posterior means; codes='sampled' also needs posterior(x) or "
               "sample_codes(x, generator))",
    "decoder": "model.reconstruct(x)",
    "prior_sampler": "model.sample(n, generator=...)",
    "sequence_model": "encode_static, encode_dynamic, decode_parts, sample_static, "
                      "sample_dynamic",
    "ood_score": "an OoD score: model.elbo(x), model.prior.log_prob(z) or model.critic(x, z)",
    # from the runner
    "load_dataset": "ctx.load_dataset(name, source=..., split=..., **kw) to load other "
                    "datasets or splits",
    "runs": "several trained runs of one variant (its seeds) on one shared draw: a score of "
            "the group, computed by 'disbench udr RUNS_DIR', never per run",
}


@dataclass(frozen=True)
class Record:
    """One score an evaluator writes: its name, direction and default regression tolerance."""

    name: str
    higher_is_better: bool
    tolerance: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Record name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.higher_is_better, bool):
            raise TypeError(f"Record {self.name!r}: higher_is_better must be a bool, got "
                            f"{self.higher_is_better!r}")
        tol = self.tolerance
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
            raise ValueError(f"Record {self.name!r}: tolerance must be a number >= 0, got {tol!r}")
        object.__setattr__(self, "tolerance", float(tol))


@dataclass(frozen=True)
class Evaluator:
    """A registered evaluator: ``fn(ctx) -> list[record]`` with its declarations."""

    name: str
    fn: Callable[[Any], list]
    records: tuple[Record, ...]
    needs: frozenset[str]

    def __call__(self, ctx: Any) -> list[dict]:
        return self.fn(ctx)

    @property
    def record_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.records)


#: evaluator name -> :class:`Evaluator`, in registration order.
EVALUATORS: dict[str, Evaluator] = {}


def _records_by_name() -> dict[str, Record]:
    return {r.name: r for e in EVALUATORS.values() for r in e.records}


def _check_declarations(name: str, records: tuple[Record, ...], needs: frozenset[str]) -> None:
    if not records:
        raise ValueError(f"evaluator {name!r} declares no records")
    names = [r.name for r in records]
    if len(set(names)) != len(names):
        raise ValueError(f"evaluator {name!r} declares a record twice: {names}")
    unknown = sorted(needs - set(NEEDS))
    if unknown:
        raise ValueError(f"evaluator {name!r}: unknown needs {unknown}; valid ones are "
                         f"{', '.join(NEEDS)}")
    owners = {r.name: e.name for e in EVALUATORS.values() if e.name != name for r in e.records}
    taken = [n for n in names if n in owners]
    if taken:
        raise ValueError(f"evaluator {name!r}: record {taken[0]!r} is already declared by "
                         f"evaluator {owners[taken[0]]!r}")


def register_evaluator(
    name: str, *, records: Iterable[Record], needs: Iterable[str],
) -> Callable[[Callable], Callable]:
    """Decorator registering ``fn(ctx) -> list[record]`` under ``name``.

    Parameters
    ----------
    name : str
        The evaluator's name.
    records : iterable of Record
        Every record the evaluator returns (names unique in the whole registry).
    needs : iterable of str
        Names in :data:`NEEDS`.

    Returns the function unchanged. Registering another function under a taken name is a
    ``ValueError``.
    """
    recs = tuple(records)
    req = frozenset(needs)
    _check_declarations(name, recs, req)

    def deco(fn: Callable) -> Callable:
        if name in EVALUATORS and EVALUATORS[name].fn is not fn:
            raise ValueError(f"evaluator {name!r} is already registered")
        EVALUATORS[name] = Evaluator(name=name, fn=fn, records=recs, needs=req)
        return fn

    return deco


def declared_record(metric: str) -> Record:
    """The :class:`Record` declared under ``metric`` (``KeyError`` naming it otherwise)."""
    rec = _records_by_name().get(metric)
    if rec is None:
        raise KeyError(f"{metric!r} is not declared by any registered evaluator")
    return rec


def tolerance(metric: str) -> float:
    """The default regression tolerance of ``metric`` (:data:`DEFAULT_TOLERANCE` if undeclared)."""
    rec = _records_by_name().get(metric)
    return rec.tolerance if rec is not None else DEFAULT_TOLERANCE


def needs(evaluator: str) -> frozenset[str]:
    """What the evaluator ``evaluator`` needs (names in :data:`NEEDS`)."""
    if evaluator not in EVALUATORS:
        raise KeyError(f"unknown evaluator {evaluator!r}; available: {', '.join(EVALUATORS)}")
    return EVALUATORS[evaluator].needs


class _RecordField(Mapping):
    """Read-only ``record name -> field`` view of the registry (always current)."""

    def __init__(self, field: str) -> None:
        self._field = field

    def __getitem__(self, metric: str) -> Any:
        rec = _records_by_name().get(metric)
        if rec is None:
            raise KeyError(metric)
        return getattr(rec, self._field)

    def __iter__(self) -> Iterator[str]:
        return iter(_records_by_name())

    def __len__(self) -> int:
        return len(_records_by_name())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self)!r})"


#: record name -> whether higher is better, for every declared record.
HIGHER_IS_BETTER: Mapping[str, bool] = _RecordField("higher_is_better")
#: record name -> default regression tolerance, for every declared record.
TOLERANCES: Mapping[str, float] = _RecordField("tolerance")
