"""Export a leaderboard (from :func:`disbench.report.leaderboard.aggregate`) as LaTeX and Markdown.

Cells read ``mean ± std`` (just the mean when there is one seed). In each dataset's table
the best mean of every metric column is bold, where *best* follows the metric's
``higher_is_better``; entries equal to the best at the printed precision are bold too.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

UP, DOWN = r"$\uparrow$", r"$\downarrow$"
LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
    "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def format_number(x: float, digits: int = 3) -> str:
    """``x`` with ``digits`` decimals (one decimal from 1000 up; ``nan`` shown as ``–``)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.1f}" if abs(x) >= 1000 else f"{x:.{digits}f}"


def format_mean_std(mean: float, std: float, digits: int = 3, pm: str = " ± ") -> str:
    """``"mean ± std"``; only the mean when ``std`` is NaN (a single seed)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return format_number(mean, digits)
    return f"{format_number(mean, digits)}{pm}{format_number(std, digits)}"


def best_rows(board: pd.DataFrame, metric: str, higher_is_better: bool, digits: int = 3) -> set:
    """Row indices holding the best mean of ``metric`` (ties at the printed precision)."""
    col = board[f"{metric}_mean"].astype(float)
    col = col[~col.isna()]
    if col.empty:
        return set()
    best = col.max() if higher_is_better else col.min()
    shown = format_number(best, digits)
    return {i for i, v in col.items() if format_number(v, digits) == shown}


def _tables(board: pd.DataFrame):
    for (dataset, source), sub in board.groupby(["dataset", "source"], sort=True, dropna=False):
        yield dataset, source, sub


def _metrics_of(sub: pd.DataFrame, metrics: list[str]) -> list[str]:
    return [m for m in metrics if f"{m}_mean" in sub and sub[f"{m}_mean"].notna().any()]


def _arrow(hib: bool) -> str:
    return "↑" if hib else "↓"


def to_markdown(
    board: pd.DataFrame, higher_is_better: dict[str, bool], *, digits: int = 3
) -> str:
    """One Markdown table per dataset; the best of each column in **bold**."""
    metrics = list(higher_is_better)
    out: list[str] = []
    for dataset, source, sub in _tables(board):
        ms = _metrics_of(sub, metrics)
        out.append(f"### {dataset} ({source})\n")
        header = ["model", *[f"{m} {_arrow(higher_is_better[m])}" for m in ms], "n"]
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join([":---", *["---:"] * (len(header) - 1)]) + "|")
        best = {m: best_rows(sub, m, higher_is_better[m], digits) for m in ms}
        for i, row in sub.iterrows():
            cells = [_md_escape(str(row["variant"]))]
            for m in ms:
                cell = format_mean_std(row[f"{m}_mean"], row[f"{m}_std"], digits)
                cells.append(f"**{cell}**" if i in best[m] else cell)
            cells.append(_n_cell(row))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    out.append(_footnote())
    return "\n".join(out) + "\n"


def _md_escape(s: str) -> str:
    return s.replace("|", r"\|")


def latex_escape(s: str) -> str:
    """Escape LaTeX's special characters in ``s``."""
    return "".join(LATEX_SPECIAL.get(c, c) for c in s)


def to_latex(
    board: pd.DataFrame, higher_is_better: dict[str, bool], *, digits: int = 3
) -> str:
    """One booktabs ``table`` per dataset; the best of each column in bold.

    Needs ``\\usepackage{booktabs}`` in the document preamble.
    """
    metrics = list(higher_is_better)
    out: list[str] = [f"% {_footnote()}", "% requires \\usepackage{booktabs}", ""]
    for dataset, source, sub in _tables(board):
        ms = _metrics_of(sub, metrics)
        out.append("\\begin{table}[t]")
        out.append("\\centering")
        out.append(
            f"\\caption{{{latex_escape(str(dataset))} ({latex_escape(str(source))}): "
            "mean $\\pm$ std over seeds; best in bold.}"
        )
        out.append(f"\\label{{tab:{_label(str(dataset))}-{_label(str(source))}}}")
        out.append("\\begin{tabular}{l" + "c" * len(ms) + "r}")
        out.append("\\toprule")
        head = [
            "Model",
            *[f"{latex_escape(m)} {UP if higher_is_better[m] else DOWN}" for m in ms],
            "$n$",
        ]
        out.append(" & ".join(head) + " \\\\")
        out.append("\\midrule")
        best = {m: best_rows(sub, m, higher_is_better[m], digits) for m in ms}
        for i, row in sub.iterrows():
            cells = [latex_escape(str(row["variant"]))]
            for m in ms:
                cell = format_mean_std(row[f"{m}_mean"], row[f"{m}_std"], digits, " \\pm ")
                if cell == "–":
                    cells.append("--")
                elif i in best[m]:
                    cells.append(f"$\\mathbf{{{cell}}}$")
                else:
                    cells.append(f"${cell}$")
            cells.append(_n_cell(row))
            out.append(" & ".join(cells) + " \\\\")
        out.append("\\bottomrule")
        out.append("\\end{tabular}")
        out.append("\\end{table}")
        out.append("")
    return "\n".join(out)


def _n_cell(row: pd.Series) -> str:
    n = str(int(row["n"]))
    failed = int(row.get("n_failed", 0) or 0)
    return f"{n} (+{failed} failed)" if failed else n


def _label(s: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in s)


def _footnote() -> str:
    return (
        "Cells: mean ± sample std (ddof=1) over seeds; n = evaluated seeds; "
        "↑ higher is better, ↓ lower is better; best per column in bold."
    )


def export(
    board: pd.DataFrame,
    runs: pd.DataFrame,
    higher_is_better: dict[str, bool],
    out_dir: Any,
    formats: list[str],
    *,
    digits: int = 3,
) -> list:
    """Write ``runs.csv`` + ``leaderboard.csv`` / ``leaderboard.tex`` / ``leaderboard.md``.

    Returns the written paths.
    """
    from pathlib import Path

    from disbench.atomic import write_text

    out_dir = Path(out_dir)
    written = []
    if "csv" in formats:
        write_text(out_dir / "runs.csv", runs.to_csv(index=False))
        write_text(out_dir / "leaderboard.csv", board.to_csv(index=False))
        written += [out_dir / "runs.csv", out_dir / "leaderboard.csv"]
    if "latex" in formats:
        write_text(out_dir / "leaderboard.tex", to_latex(board, higher_is_better, digits=digits))
        written.append(out_dir / "leaderboard.tex")
    if "markdown" in formats:
        write_text(out_dir / "leaderboard.md", to_markdown(board, higher_is_better, digits=digits))
        written.append(out_dir / "leaderboard.md")
    return written
