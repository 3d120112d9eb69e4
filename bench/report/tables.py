"""The site's tables as data: pandas frames turned into rows of cells for the Jinja2
templates (``templates/macros.html`` renders them; no HTML is built in Python).

A :class:`Cell` carries its shown text, an optional secondary text (the std after a mean),
the value the browser sorts by (``data-sort``), a link and CSS classes. :func:`leaderboard`
makes the per-dataset leaderboard of the index page, :func:`claims` the claims verdicts,
:func:`frame` any small table (settings, per-seed scores).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from disbench.report.export import best_rows, format_number


@dataclass
class Cell:
    text: str
    sub: str = ""
    sort: str = ""
    href: str | None = None
    classes: str = ""


@dataclass
class Column:
    title: str
    numeric: bool = False
    #: the direction of the first sort when the header is clicked ("asc" or "desc")
    first: str = "asc"
    tooltip: str = ""


@dataclass
class Table:
    id: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    sortable: bool = True
    filterable: bool = True
    caption: str = ""


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def number_cell(value: Any, std: Any = None, *, digits: int = 3, classes: str = "") -> Cell:
    """A numeric cell: ``mean`` (and ``± std`` as secondary text), sorted by the mean."""
    if _is_missing(value):
        return Cell("–", classes=f"num {classes}".strip())
    sub = "" if _is_missing(std) else f"± {format_number(float(std), digits)}"
    return Cell(format_number(float(value), digits), sub=sub, sort=repr(float(value)),
                classes=f"num {classes}".strip())


def text_cell(value: Any, href: str | None = None, classes: str = "text") -> Cell:
    text = "" if _is_missing(value) else str(value)
    return Cell(text, sort=text, href=href, classes=classes)


def leaderboard(board: pd.DataFrame, higher_is_better: dict[str, bool], *, table_id: str,
                links: dict[str, str], digits: int = 3) -> Table:
    """One dataset's leaderboard: variant (linked to its page), ``n``, then per metric
    ``mean ± std`` with the direction arrow in the header and the best mean in bold
    (:func:`disbench.report.export.best_rows`: ties at the shown precision are bold too)."""
    metrics = [m for m in higher_is_better
               if f"{m}_mean" in board and board[f"{m}_mean"].notna().any()]
    columns = [Column("variant"), Column("n", numeric=True, first="desc",
                                         tooltip="evaluated seeds (failed runs in brackets)")]
    for m in metrics:
        up = higher_is_better[m]
        columns.append(Column(f"{m} {'↑' if up else '↓'}", numeric=True,
                              first="desc" if up else "asc",
                              tooltip="higher is better" if up else "lower is better"))
    best = {m: best_rows(board, m, higher_is_better[m], digits) for m in metrics}
    table = Table(table_id, columns)
    for i, row in board.iterrows():
        n_cell = number_cell(int(row["n"]), digits=0)
        failed = int(row.get("n_failed", 0) or 0)
        n_cell.text = f"{int(row['n'])} (+{failed} failed)" if failed else str(int(row["n"]))
        cells = [text_cell(row["variant"], href=links.get(str(row["variant"]))), n_cell]
        for m in metrics:
            cells.append(number_cell(row[f"{m}_mean"], row[f"{m}_std"], digits=digits,
                                     classes="best" if i in best[m] else ""))
        table.rows.append(cells)
    return table


VERDICT_CLASSES = {"holds": "holds", "holds (direction only)": "direction",
                   "does not hold": "fails", "not run": "notrun"}


def claims(results: pd.DataFrame, *, digits: int = 3) -> Table:
    """The claims verdicts (rows of ``ClaimResult.as_row()``, as ``disbench claims``
    reports them): statement, both sides as mean ± std (n), the one-sided Welch p-value,
    the verdict and its note."""
    columns = [Column("claim"), Column("statement"), Column("metric"), Column("better side"),
               Column("mean", numeric=True), Column("n", numeric=True),
               Column("than side"), Column("mean", numeric=True), Column("n", numeric=True),
               Column("p-value", numeric=True), Column("verdict"), Column("note")]
    table = Table("claims", columns)
    for _, r in results.iterrows():
        verdict = str(r["verdict"])
        table.rows.append([
            text_cell(r["claim"]), text_cell(f"{r['statement']} ({r['source']})"),
            text_cell(r["metric"]), text_cell(r["better"]),
            number_cell(r["mean_better"], r["std_better"], digits=digits),
            number_cell(r["n_better"], digits=0), text_cell(r["than"]),
            number_cell(r["mean_than"], r["std_than"], digits=digits),
            number_cell(r["n_than"], digits=0),
            number_cell(r["p_value"], digits=4),
            text_cell(verdict, classes=f"text verdict {VERDICT_CLASSES.get(verdict, '')}"),
            text_cell(r.get("note", "")),
        ])
    return table


def frame(df: pd.DataFrame, *, table_id: str, digits: int = 3,
          links: dict[str, Callable[[Any], str | None]] | None = None,
          classes: dict[str, Callable[[Any], str]] | None = None,
          sortable: bool = True, filterable: bool = False,
          numeric: Sequence[str] | None = None) -> Table:
    """Any small frame as a table: numeric columns right-aligned with ``digits`` decimals,
    the rest as text; ``links``/``classes``: per column, a function of the value."""
    links, classes = links or {}, classes or {}
    num = set(numeric if numeric is not None else
              [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])
               and not pd.api.types.is_bool_dtype(df[c])])
    columns = [Column(str(c), numeric=c in num) for c in df.columns]
    table = Table(table_id, columns, sortable=sortable, filterable=filterable)
    for _, r in df.iterrows():
        cells = []
        for c in df.columns:
            v = r[c]
            if c in num:
                is_int = isinstance(v, int) or (isinstance(v, float) and float(v).is_integer()
                                                and pd.api.types.is_integer_dtype(df[c]))
                cell = number_cell(v, digits=0 if is_int else digits)
            else:
                cell = text_cell(v, href=links[c](v) if c in links else None)
            if c in classes:
                cell.classes = f"{cell.classes} {classes[c](v)}".strip()
            cells.append(cell)
        table.rows.append(cells)
    return table
