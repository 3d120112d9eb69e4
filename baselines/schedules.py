"""Hyperparameter schedules: a float hyperparameter that changes with the training step.

A schedule is written as a call, in a spec (``beta: "linear(0, 4, 10000)"``; quote it inside
a YAML flow list, whose commas would split it) or on the command line
(``--set beta=linear(0,4,10000)``):

``linear(start, end, steps, delay=0)``
    ``start`` until step ``delay``, then linearly to ``end`` over ``steps`` steps, then
    ``end``. disentanglement_lib's ``anneal`` annealer of the semi-supervised study
    (``methods/semi_supervised/semi_supervised_vae.py``, ``annealed_annealer``:
    ``min(gamma, gamma * step / iteration_threshold)``) is ``linear(0, gamma, threshold)``;
    its ``fine_tune`` annealer (0 up to ``iteration_threshold``, ``gamma`` after) is
    ``linear(0, gamma, 1, delay=threshold)``.
``cyclic_linear(start, end, period, ratio=0.5, delay=0)``
    The cyclical annealing of Fu et al. 2019 ("Cyclical Annealing Schedule: A Simple
    Approach to Mitigating KL Vanishing", NAACL): training is cut into cycles of
    ``period`` steps; within a cycle, tau = (step mod period) / period, and the value rises
    linearly from ``start`` to ``end`` while tau <= ``ratio`` and stays at ``end`` for the
    rest of the cycle. The authors' ``frange_cycle_linear`` (haofuml/cyclical_annealing,
    ``plot/plot_schedules.ipynb``, read here) takes the total length and the number of
    cycles M instead (period = T / M; their defaults M = 4, ratio = 0.5) and holds 1 after
    the ramp; here the value held is ``end``.
``cyclic_cosine(start, end, period, ratio=0.5, delay=0)``
    The same cycles with the ramp ``0.5 - 0.5 cos(pi r)``, r = tau / ratio (the
    authors' ``frange_cycle_cosine``, same notebook).

``delay`` is the delayed start of every kind: the value is ``start`` for steps before
``delay`` and the schedule runs on ``step - delay`` from there.

Values are computed with float32 tensor operations on a float32 step tensor
(:func:`step_tensor`), so a single run (the step a Python int) and an ensemble or a captured
CUDA graph (the step a tensor on the device, refilled before each step) compute the same
numbers. Until the trainer substitutes the value of the step
(:meth:`disbench.baselines.base.Model.hparams_at`), a scheduled hyperparameter holds a
:class:`Schedule`; using it as a number then (e.g. when a model is built) is an error naming
the hyperparameter. Comparisons with a number hold when they hold for every value the
schedule takes (``schedule > 0`` iff min(start, end) > 0), so range checks keep working.
"""
from __future__ import annotations

import ast
import math
from typing import Any

import torch
from disbench.errors import DisbenchError

#: kind -> (parameter names, defaults of the trailing optional ones)
KINDS: dict[str, tuple[tuple[str, ...], dict[str, float]]] = {
    "linear": (("start", "end", "steps", "delay"), {"delay": 0}),
    "cyclic_linear": (("start", "end", "period", "ratio", "delay"), {"ratio": 0.5, "delay": 0}),
    "cyclic_cosine": (("start", "end", "period", "ratio", "delay"), {"ratio": 0.5, "delay": 0}),
}
_INTEGER = ("steps", "period", "delay")
EXAMPLE = "linear(0, 4, 10000)"


def step_tensor(step: Any) -> torch.Tensor:
    """The step as a float32 tensor (a tensor is converted, an int becomes a CPU scalar)."""
    if torch.is_tensor(step):
        return step.to(torch.float32)
    return torch.tensor(float(step), dtype=torch.float32)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


class Schedule:
    """One parsed schedule (immutable; equal schedules have equal canonical text)."""

    __slots__ = ("kind", "params")

    def __init__(self, kind: str, params: dict[str, float]) -> None:
        names, defaults = KINDS[kind]
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "params", {n: params.get(n, defaults.get(n)) for n in names})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Schedule is immutable")

    # -- text ---------------------------------------------------------------------------
    def __str__(self) -> str:
        names, defaults = KINDS[self.kind]
        parts = []
        for n in names:
            v = self.params[n]
            if n in defaults:
                if v != defaults[n]:
                    parts.append(f"{n}={_num(v)}")
            else:
                parts.append(_num(v))
        return f"{self.kind}({', '.join(parts)})"

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schedule) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __deepcopy__(self, memo: dict) -> Schedule:
        return self

    def __reduce__(self) -> tuple:
        return (parse, (str(self),))

    # -- values -------------------------------------------------------------------------
    def bounds(self) -> tuple[float, float]:
        """The smallest and the largest value the schedule takes."""
        a, b = float(self.params["start"]), float(self.params["end"])
        return min(a, b), max(a, b)

    def at(self, step: Any) -> torch.Tensor:
        """The value at ``step`` (an int or a tensor): a float32 0-d tensor."""
        p = self.params
        t = step_tensor(step) - float(p["delay"])
        start, end = float(p["start"]), float(p["end"])
        if self.kind == "linear":
            r = (t / float(p["steps"])).clamp(0.0, 1.0)
            return start + (end - start) * r
        tau = torch.remainder(t, float(p["period"])) / float(p["period"])
        r = (tau / float(p["ratio"])).clamp(max=1.0)
        if self.kind == "cyclic_cosine":
            r = 0.5 - 0.5 * torch.cos(math.pi * r)
        return torch.where(t < 0, torch.full_like(r, start), start + (end - start) * r)

    def value(self, step: int) -> float:
        """The value at ``step`` as a Python float (what :meth:`at` computes)."""
        return float(self.at(step))

    # -- comparisons hold for every value; arithmetic means it was read outside the loss --
    def __gt__(self, other: Any) -> bool:
        return self.bounds()[0] > other

    def __ge__(self, other: Any) -> bool:
        return self.bounds()[0] >= other

    def __lt__(self, other: Any) -> bool:
        return self.bounds()[1] < other

    def __le__(self, other: Any) -> bool:
        return self.bounds()[1] <= other

    def _not_a_number(self, *_: Any) -> Any:
        raise DisbenchError(
            f"the schedule {self} is used as a number outside the loss (e.g. when the model "
            "is built); this hyperparameter cannot be scheduled, give a number")

    __float__ = __int__ = __index__ = __neg__ = __abs__ = _not_a_number
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _not_a_number
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = _not_a_number


def is_schedule_text(value: Any) -> bool:
    """Whether ``value`` is a string that looks like a schedule call (``name(...)``)."""
    return isinstance(value, str) and value.strip().split("(", 1)[0].strip() in KINDS


def parse(text: str, name: str = "value") -> Schedule:
    """Parse ``text`` (see the module docstring); a DisbenchError naming ``name`` if bad."""
    def bad(why: str) -> DisbenchError:
        return DisbenchError(f"hyperparameter {name}: {text!r} is not a schedule ({why}); "
                             f"write e.g. {EXAMPLE}, cyclic_linear(0, 1, 10000, ratio=0.5) or "
                             "linear(0, 4, 10000, delay=5000)")

    try:
        node = ast.parse(str(text).strip(), mode="eval").body
    except SyntaxError:
        raise bad("not a call") from None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) \
            or node.func.id not in KINDS:
        raise bad(f"the kinds are {', '.join(KINDS)}")
    names, defaults = KINDS[node.func.id]
    values = [_number(a, bad) for a in node.args]
    if len(values) > len(names):
        raise bad(f"{node.func.id} takes at most {len(names)} values")
    # fewer values than names is allowed: the rest come by keyword or from the defaults
    params = dict(zip(names, values, strict=False))
    for kw in node.keywords:
        if kw.arg not in names or kw.arg in params:
            raise bad(f"unknown or repeated parameter {kw.arg!r}")
        params[kw.arg] = _number(kw.value, bad)
    missing = [n for n in names if n not in params and n not in defaults]
    if missing:
        raise bad(f"missing {', '.join(missing)}")
    _check(node.func.id, {**defaults, **params}, bad)
    return Schedule(node.func.id, params)


def _number(node: ast.AST, bad: Any) -> float:
    try:
        v = ast.literal_eval(node)
    except ValueError:
        raise bad("every parameter must be a number") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise bad("every parameter must be a finite number")
    return v


def _check(kind: str, p: dict[str, float], bad: Any) -> None:
    for n in _INTEGER:
        if n in p and float(p[n]) != int(p[n]):
            raise bad(f"{n} must be a whole number of steps")
    if p.get("steps", 1) < 1 or p.get("period", 1) < 1:
        raise bad("steps and period must be >= 1")
    if p["delay"] < 0:
        raise bad("delay must be >= 0")
    if kind != "linear" and not 0 < p["ratio"] <= 1:
        raise bad("ratio must be in (0, 1]")


def find(hparams: Any) -> dict[str, Schedule]:
    """The scheduled fields of a hyperparameter dataclass, by name."""
    return {k: v for k, v in vars(hparams).items() if isinstance(v, Schedule)}


__all__ = ["KINDS", "Schedule", "find", "is_schedule_text", "parse", "step_tensor"]
