"""Metrics during training: ``metrics_curve.csv``, evaluated every ``eval_every`` steps.

:class:`MetricsCurve` evaluates the run's ``eval_metrics`` on a fixed draw (the evaluation
seed 0, ``eval_points`` points to fit and half as many to test, the same points at every
step) each time the step is a multiple of ``eval_every`` and at the last step, and writes
the rows (``step`` and one column per metric record) through
:meth:`disbench.run.folder.RunFolder.write_curve` after each evaluation.

Resuming: the rows up to the checkpoint's step are kept and never recomputed; rows past it
(evaluated after the last checkpoint of an interrupted run) are dropped, and recomputed when
training reaches those steps again. An evaluation does not change training: every global
random state (torch, CUDA, NumPy, Python) is restored after it, and the model is put back
in training mode (:meth:`disbench.metrics.evaluators.EvalContext.encode`).
"""
from __future__ import annotations

import logging
from typing import Any

from disbench.errors import DisbenchError
from disbench.metrics.evaluators import EvalOptions
from disbench.run.draws import rng_state, set_rng_state
from disbench.run.folder import RunFolder

log = logging.getLogger(__name__)


def curve_metrics(text: str) -> list[str]:
    """The metric names of an ``eval_metrics`` setting (unknown names are an error)."""
    from disbench.metrics import EVALUATORS

    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in EVALUATORS]
    if unknown:
        raise DisbenchError(f"eval_metrics: unknown metric(s) {', '.join(unknown)}; choose "
                            f"from {', '.join(sorted(EVALUATORS))}")
    return names


class MetricsCurve:
    """The curve of one run (see the module docstring)."""

    def __init__(self, folder: RunFolder, cfg: Any, dataset: Any, start: int) -> None:
        self.folder = folder
        self.dataset = dataset
        self.every = int(cfg.eval_every)
        self.steps = int(cfg.steps)
        self.metrics = curve_metrics(cfg.eval_metrics)
        self.options = EvalOptions(num_train=cfg.eval_points,
                                   num_test=max(cfg.eval_points // 2, 1), random_state=0)
        every_row = folder.read_curve()
        self.rows: list[dict[str, Any]] = [r for r in every_row if int(r["step"]) <= start]
        if len(self.rows) != len(every_row):  # points of steps to be trained again
            if self.rows:
                folder.write_curve(self.rows)
            else:
                folder.curve_path.unlink()
        self.done = {int(r["step"]) for r in self.rows}

    def due(self, step: int) -> bool:
        """Whether ``step`` (steps done) gets a point that is not there yet."""
        return ((step % self.every == 0 or step == self.steps) and step not in self.done)

    def evaluate(self, step: int, model: Any) -> dict[str, Any]:
        """Evaluate ``model`` after ``step`` steps and write the curve; returns the row."""
        from disbench import datasets, metrics

        saved = rng_state(None)
        try:
            records = metrics.evaluate(model, self.dataset, self.metrics, self.options,
                                       load_dataset=datasets.get)
        finally:
            set_rng_state(saved, None)
        row: dict[str, Any] = {"step": step}
        for r in records:
            row[r["metric"]] = "" if r.get("value") is None else repr(float(r["value"]))
        self.rows.append(row)
        self.done.add(step)
        self.folder.write_curve(self.rows)
        return row


def make_curve(folder: RunFolder, cfg: Any, dataset: Any, start: int) -> MetricsCurve | None:
    """The run's curve when ``eval_every`` is set, else None."""
    if not cfg.eval_every:
        return None
    return MetricsCurve(folder, cfg, dataset, start)


__all__ = ["MetricsCurve", "curve_metrics", "make_curve"]
