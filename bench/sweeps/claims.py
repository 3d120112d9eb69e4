"""A paper's findings as checkable claims, and their verdicts on measured runs.

A suite file may carry a ``claims:`` list. Each claim names the paper's statement and a
comparison that the runs of the suite can check::

    claims:
      - id: tcvae_beats_vae_on_mig
        source: "Chen et al. 2018, Table 1"
        statement: "beta-TCVAE disentangles better than the VAE (MIG)"
        metric: mig
        better: {model: beta_tcvae, beta: 6}   # a variant: model plus settings it has
        than: {model: vae}
        dataset: dsprites                       # optional when the suite has one dataset
        alpha: 0.05                             # optional significance level (default 0.05)
        matched: {metric: psnr, tolerance: 2.0} # optional: only at matched reconstruction
      - id: sparse_keeps_reconstruction
        source: "Mathieu et al. 2019, Fig. 5"
        statement: "the sparse prior reconstructs as well as the Gaussian one"
        metric: psnr
        within: 1.0                             # a tie claim: |difference| <= 1.0
        better: {model: ab_vae, prior: sparse}
        than: {model: ab_vae, prior: gaussian}

A variant selector matches every run of ``model`` whose resolved hyperparameters and
training settings contain the given values (a float matches within 1e-9 relative). Its
runs are the seeds of the claim's side; every matching run counts, so a selector that
matches two variants pools them (say so in the claim's statement, or add settings).

Verdicts (:func:`verdict`), with ``d`` the difference of means in the metric's better
direction (``higher_is_better`` from the metric registry):

- ``not run``: a side has no evaluated run with the metric (or the matched metric);
- ordering claims: ``holds`` when ``d > 0`` and the one-sided Welch t-test (unequal
  variances; H1: the ``better`` side is better) gives ``p < alpha`` with at least
  :data:`MIN_SEEDS` seeds per side; ``holds (direction only)`` when ``d > 0`` but there
  are fewer seeds, or ``p >= alpha``, or the test is undefined (both sides constant), or
  the reconstruction is not matched; ``does not hold`` when ``d <= 0`` (a tie is not
  "better");
- tie claims (``within: m``): ``holds`` when ``|mean_a - mean_b| <= m``, ``does not hold``
  otherwise (no test: an absence of difference is not shown by a large p-value).
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HOLDS = "holds"
DIRECTION_ONLY = "holds (direction only)"
DOES_NOT_HOLD = "does not hold"
NOT_RUN = "not run"
VERDICTS = (HOLDS, DIRECTION_ONLY, DOES_NOT_HOLD, NOT_RUN)
#: seeds per side below which no p-value is computed
MIN_SEEDS = 3
CLAIM_KEYS = ("id", "source", "statement", "metric", "better", "than", "dataset", "alpha",
              "within", "matched")
REQUIRED_KEYS = ("id", "source", "statement", "metric", "better", "than")
MATCHED_KEYS = ("metric", "tolerance")

Fail = Callable[[tuple, str], None]


@dataclass(frozen=True)
class Claim:
    """One checkable finding of a paper (see the module docstring for the format)."""

    id: str
    source: str
    statement: str
    metric: str
    better: dict[str, Any]
    than: dict[str, Any]
    dataset: str | None = None
    alpha: float = 0.05
    within: float | None = None
    matched: dict[str, Any] | None = None


@dataclass
class RunScores:
    """What a claim needs of one run: where it comes from, its settings and its scores."""

    dataset: str
    model: str
    settings: dict[str, Any]
    scores: dict[str, float]
    seed: int | None = None


@dataclass
class Side:
    """The measured values of one side of a claim."""

    values: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1); NaN below two values."""
        return float(np.std(self.values, ddof=1)) if self.n > 1 else math.nan


@dataclass
class ClaimResult:
    """A claim with its measurements and verdict."""

    claim: Claim
    better: Side
    than: Side
    higher_is_better: bool
    verdict: str
    p_value: float = math.nan
    direction: str = ""
    note: str = ""

    def as_row(self) -> dict[str, Any]:
        """A flat row for the claims table."""
        c = self.claim
        return {
            "claim": c.id, "source": c.source, "statement": c.statement, "metric": c.metric,
            "better": selector_label(c.better), "than": selector_label(c.than),
            "mean_better": self.better.mean, "std_better": self.better.std,
            "n_better": self.better.n, "mean_than": self.than.mean,
            "std_than": self.than.std, "n_than": self.than.n, "direction": self.direction,
            "p_value": self.p_value, "verdict": self.verdict, "note": self.note,
        }


# --------------------------------------------------------------------------- parsing
def parse_claims(value: Any, fail: Fail) -> list[Claim]:
    """Validate a ``claims:`` list; ``fail(key_path, message)`` raises for the first problem.

    ``key_path`` is relative to the list (``(1, "metric")``); the spec validator prefixes it
    and adds the file and line.
    """
    if not isinstance(value, list) or not value:
        fail((), "must be a non-empty list of claims")
    out: list[Claim] = []
    for i, entry in enumerate(value):
        out.append(_parse_claim(entry, (i,), fail))
    ids = [c.id for c in out]
    for i, cid in enumerate(ids):
        if cid in ids[:i]:
            fail((i, "id"), f"duplicate claim id {cid!r}")
    return out


def _parse_claim(entry: Any, key: tuple, fail: Fail) -> Claim:
    if not isinstance(entry, dict):
        fail(key, "a claim must be a mapping with keys " + ", ".join(REQUIRED_KEYS))
    for k in entry:
        if k not in CLAIM_KEYS:
            fail(key + (k,), f"unknown key; valid keys are {', '.join(CLAIM_KEYS)}")
    for k in REQUIRED_KEYS:
        if k not in entry:
            fail(key + (k,), "missing required key")
    for k in ("id", "source", "statement", "metric"):
        if not isinstance(entry[k], str) or not entry[k].strip():
            fail(key + (k,), "must be a non-empty string")
    for k in ("better", "than"):
        _check_selector(entry[k], key + (k,), fail)
    if entry["better"] == entry["than"]:
        fail(key + ("than",), "compares a variant with itself")
    dataset = entry.get("dataset")
    if dataset is not None and not isinstance(dataset, str):
        fail(key + ("dataset",), "must be a dataset name")
    alpha = entry.get("alpha", 0.05)
    if not _is_number(alpha) or not 0 < alpha < 1:
        fail(key + ("alpha",), f"must be a number in (0, 1), got {alpha!r}")
    within = entry.get("within")
    if within is not None and (not _is_number(within) or within < 0):
        fail(key + ("within",), f"must be a non-negative number, got {within!r}")
    matched = entry.get("matched")
    if matched is not None:
        _check_matched(matched, key + ("matched",), fail)
    return Claim(id=entry["id"], source=entry["source"], statement=entry["statement"],
                 metric=entry["metric"], better=dict(entry["better"]), than=dict(entry["than"]),
                 dataset=dataset, alpha=float(alpha),
                 within=None if within is None else float(within),
                 matched=None if matched is None else dict(matched))


def _check_selector(sel: Any, key: tuple, fail: Fail) -> None:
    if not isinstance(sel, dict) or "model" not in sel:
        fail(key, "must be a mapping naming a variant, e.g. {model: beta_vae, beta: 4}")
    if not isinstance(sel["model"], str):
        fail(key + ("model",), "must be a model name")
    for k, v in sel.items():
        if isinstance(v, (dict, list)):
            fail(key + (k,), "a selector value must be a scalar (one variant, not a sweep)")


def _check_matched(matched: Any, key: tuple, fail: Fail) -> None:
    if not isinstance(matched, dict):
        fail(key, "must be a mapping {metric: NAME, tolerance: NUMBER}")
    for k in matched:
        if k not in MATCHED_KEYS:
            fail(key + (k,), f"unknown key; valid keys are {', '.join(MATCHED_KEYS)}")
    if not isinstance(matched.get("metric"), str):
        fail(key + ("metric",), "must be a metric name")
    tol = matched.get("tolerance")
    if not _is_number(tol) or tol < 0:
        fail(key + ("tolerance",), f"must be a non-negative number, got {tol!r}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# --------------------------------------------------------------------------- selection
def selector_label(sel: Mapping[str, Any]) -> str:
    """``model (k=v, ...)`` for a selector, as the leaderboard labels variants."""
    rest = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in sel.items() if k != "model"]
    return f"{sel['model']} ({', '.join(rest)})" if rest else str(sel["model"])


def same_value(a: Any, b: Any) -> bool:
    """Equal, or for two numbers equal within 1e-9 relative (YAML 4 vs 4.0)."""
    if _is_number(a) and _is_number(b):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def matches(sel: Mapping[str, Any], run: RunScores) -> bool:
    """Whether ``run`` is a seed of the variant ``sel`` names."""
    if run.model != sel["model"]:
        return False
    return all(k in run.settings and same_value(run.settings[k], v)
               for k, v in sel.items() if k != "model")


def _side(claim: Claim, sel: Mapping[str, Any], runs: Sequence[RunScores],
          metric: str) -> Side:
    values = [float(r.scores[metric]) for r in runs
              if (claim.dataset is None or r.dataset == claim.dataset) and matches(sel, r)
              and metric in r.scores and r.scores[metric] is not None
              and math.isfinite(float(r.scores[metric]))]
    return Side(values)


# --------------------------------------------------------------------------- verdicts
def welch_p_value(better: Sequence[float], than: Sequence[float], higher_is_better: bool
                  ) -> float:
    """One-sided Welch t-test p-value for "``better`` is better than ``than``".

    NaN when either side has fewer than :data:`MIN_SEEDS` values or the statistic is
    undefined (both sides constant).
    """
    from scipy import stats

    if len(better) < MIN_SEEDS or len(than) < MIN_SEEDS:
        return math.nan
    a, b = np.asarray(better, dtype=float), np.asarray(than, dtype=float)
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return math.nan
    alternative = "greater" if higher_is_better else "less"
    return float(stats.ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue)


def verdict(claim: Claim, runs: Sequence[RunScores], higher_is_better: Mapping[str, bool]
            ) -> ClaimResult:
    """Measure ``claim`` on ``runs`` and decide (see the module docstring)."""
    hib = bool(higher_is_better.get(claim.metric, True))
    a = _side(claim, claim.better, runs, claim.metric)
    b = _side(claim, claim.than, runs, claim.metric)
    res = ClaimResult(claim, a, b, hib, NOT_RUN)
    if a.n == 0 or b.n == 0:
        missing = [selector_label(s) for s, side in ((claim.better, a), (claim.than, b))
                   if side.n == 0]
        res.note = f"no evaluated {claim.metric} for {' and '.join(missing)}"
        return res
    diff = (a.mean - b.mean) * (1 if hib else -1)
    res.direction = "better" if diff > 0 else ("tie" if diff == 0 else "worse")
    if claim.within is not None:
        gap = abs(a.mean - b.mean)
        res.verdict = HOLDS if gap <= claim.within else DOES_NOT_HOLD
        res.note = f"|difference| {gap:.4g} vs margin {claim.within:g}"
        return res
    res.p_value = welch_p_value(a.values, b.values, hib)
    if diff <= 0:
        res.verdict = DOES_NOT_HOLD
        return res
    significant = not math.isnan(res.p_value) and res.p_value < claim.alpha
    res.verdict = HOLDS if significant else DIRECTION_ONLY
    if math.isnan(res.p_value):
        res.note = (f"fewer than {MIN_SEEDS} seeds per side: no test" if min(a.n, b.n) < MIN_SEEDS
                    else "both sides constant: no test")
    return _check_matched_reconstruction(claim, runs, res)


def _check_matched_reconstruction(claim: Claim, runs: Sequence[RunScores],
                                  res: ClaimResult) -> ClaimResult:
    if claim.matched is None:
        return res
    metric, tol = claim.matched["metric"], float(claim.matched["tolerance"])
    ra = _side(claim, claim.better, runs, metric)
    rb = _side(claim, claim.than, runs, metric)
    if ra.n == 0 or rb.n == 0:
        res.verdict, res.note = NOT_RUN, f"no evaluated {metric} to match reconstruction"
        return res
    gap = abs(ra.mean - rb.mean)
    if gap > tol:
        res.verdict = DIRECTION_ONLY
        res.note = (f"reconstruction not matched: {metric} {ra.mean:.4g} vs {rb.mean:.4g} "
                    f"(tolerance {tol:g})")
    else:
        res.note = f"{metric} matched: {ra.mean:.4g} vs {rb.mean:.4g}"
    return res


def check_claims(claims: Sequence[Claim], runs: Sequence[RunScores],
                 higher_is_better: Mapping[str, bool]) -> list[ClaimResult]:
    """The verdict of every claim, in order."""
    return [verdict(c, runs, higher_is_better) for c in claims]


# --------------------------------------------------------------------------- run folders
def collect(run_dirs: Iterable[str | os.PathLike]) -> list[RunScores]:
    """The evaluated runs among ``run_dirs`` (missing or failed folders are left out)."""
    from disbench.run.folder import RunFolder

    out = []
    for path in sorted(Path(p) for p in run_dirs):
        folder = RunFolder(path)
        if not folder.has_config() or folder.has_error():
            continue
        cfg = folder.read_config()
        scores = {r["metric"]: r["value"] for r in folder.metric_records()
                  if r.get("value") is not None}
        if not scores:
            continue
        settings = {k: v for k, v in cfg.items() if k not in ("hparams", "model", "dataset")}
        settings.update(cfg.get("hparams") or {})
        out.append(RunScores(cfg["dataset"], cfg["model"], settings, scores, cfg.get("seed")))
    return out


# --------------------------------------------------------------------------- tables
TABLE_COLUMNS = ("claim", "verdict", "metric", "better", "than", "mean_better", "std_better",
                 "n_better", "mean_than", "std_than", "n_than", "p_value", "source", "note")


def to_frame(results: Sequence[ClaimResult]) -> Any:
    """The claims table as a pandas DataFrame (one row per claim)."""
    import pandas as pd

    return pd.DataFrame([r.as_row() for r in results], columns=list(TABLE_COLUMNS) + [
        "statement", "direction"])


def _num(x: float, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _side_cell(mean: float, std: float, n: int) -> str:
    if n == 0:
        return "–"
    return f"{_num(mean)} ± {_num(std)} (n={n})" if n > 1 else f"{_num(mean)} (n=1)"


def _p_cell(p: float) -> str:
    if p is None or math.isnan(p):
        return "–"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def table_rows(results: Sequence[ClaimResult]) -> list[list[str]]:
    """Header and cells of the printed claims table (the Markdown and text forms)."""
    rows = [["claim", "statement (source)", "metric", "better", "than", "p", "verdict"]]
    for r in results:
        c = r.claim
        arrow = "↑" if r.higher_is_better else "↓"
        rows.append([
            c.id, f"{c.statement} ({c.source})", f"{c.metric} {arrow}",
            f"{selector_label(c.better)}: {_side_cell(r.better.mean, r.better.std, r.better.n)}",
            f"{selector_label(c.than)}: {_side_cell(r.than.mean, r.than.std, r.than.n)}",
            _p_cell(r.p_value), r.verdict + (f" — {r.note}" if r.note else ""),
        ])
    return rows


FOOTNOTE = ("Cells: mean ± sample std (ddof=1) over seeds, n seeds; p: one-sided Welch t-test "
            f"(shown from {MIN_SEEDS} seeds per side); holds = right direction and p < alpha; "
            "holds (direction only) = right direction without significance.")


def to_markdown(results: Sequence[ClaimResult]) -> str:
    """The claims table in Markdown."""
    rows = table_rows(results)
    esc = [[cell.replace("|", r"\|") for cell in row] for row in rows]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join(["---"] * len(esc[0])) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in esc[1:]]
    return "\n".join(lines) + "\n\n" + FOOTNOTE + "\n"


def to_latex(results: Sequence[ClaimResult]) -> str:
    """The claims table as a booktabs ``table`` (needs ``\\usepackage{booktabs}``)."""
    rows = [[_latex_cell(c) for c in row] for row in table_rows(results)]
    out = ["% requires \\usepackage{booktabs}", "\\begin{table}[t]", "\\centering",
           "\\caption{Claims. " + _latex_cell(FOOTNOTE) + "}", "\\label{tab:claims}",
           "\\begin{tabular}{lp{4cm}lllrl}", "\\toprule",
           " & ".join(rows[0]) + " \\\\", "\\midrule"]
    out += [" & ".join(row) + " \\\\" for row in rows[1:]]
    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(out)


_LATEX_SYMBOLS = {"<": "$<$", "±": "$\\pm$", "↑": "$\\uparrow$", "↓": "$\\downarrow$", "–": "--",
                  "—": "---"}


def _latex_cell(cell: str) -> str:
    from disbench.report.export import latex_escape

    text = latex_escape(cell)
    for sym, tex in _LATEX_SYMBOLS.items():
        text = text.replace(sym, tex)
    return text


def export(results: Sequence[ClaimResult], out_dir: str | os.PathLike,
           formats: Sequence[str]) -> list[Path]:
    """Write ``claims.csv`` / ``claims.tex`` / ``claims.md`` (as the leaderboard's formats)."""
    from disbench.atomic import write_text

    out_dir, written = Path(out_dir), []
    makers = {"csv": ("claims.csv", lambda: to_frame(results).to_csv(index=False)),
              "latex": ("claims.tex", lambda: to_latex(results)),
              "markdown": ("claims.md", lambda: to_markdown(results))}
    for fmt in formats:
        name, make = makers[fmt]
        write_text(out_dir / name, make())
        written.append(out_dir / name)
    return written


__all__ = ["VERDICTS", "Claim", "ClaimResult", "RunScores", "check_claims", "collect",
           "export", "matches", "parse_claims", "to_frame", "to_latex", "to_markdown", "verdict",
           "welch_p_value"]
