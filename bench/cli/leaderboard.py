"""``disbench leaderboard RUNS_DIR``: tables (and figures) from a folder of runs."""
from __future__ import annotations

import argparse

FORMATS = ("csv", "latex", "markdown")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "leaderboard",
        help="aggregate run folders into leaderboard tables",
        description=(
            "Collect every run folder under RUNS_DIR (config.json + metrics.json) into a "
            "per-run table (runs.csv) and a leaderboard (per dataset one row per model "
            "variant, each metric as mean ± std over seeds with the count n), exported as "
            "CSV, LaTeX (booktabs, best in bold) and Markdown."
        ),
    )
    p.add_argument("runs_dir", metavar="RUNS_DIR", help="folder written by 'disbench sweep'")
    p.add_argument(
        "--format", default="csv,latex,markdown",
        help="comma-separated list of csv, latex, markdown (default: all)",
    )
    p.add_argument("--out", default="results", help="folder for the tables (default: results)")
    p.add_argument("--digits", type=int, default=3, help="decimals shown (default 3)")
    p.add_argument(
        "--plots", action="store_true",
        help="also write figures (metric bars with error bars, ROC curves) under OUT/figures",
    )
    p.add_argument(
        "--spec", default=None, metavar="SPEC.yaml",
        help="tabulate only the runs of this sweep spec (runs of other or older specs in "
             "RUNS_DIR are left out); a spec with claims also gets claims.{csv,tex,md}",
    )
    p.add_argument("--size", default=None, metavar="SIZE",
                   help="with --spec: one of the spec's 'sizes:' (e.g. cpu)")
    p.set_defaults(func=run)


def parse_formats(text: str) -> list[str]:
    from disbench.errors import DisbenchError

    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    aliases = {"md": "markdown", "tex": "latex"}
    formats = [aliases.get(f, f) for f in formats]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise DisbenchError(
            f"--format: unknown format {', '.join(bad) or repr(text)}; "
            f"use a comma-separated list of {', '.join(FORMATS)}"
        )
    return formats


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from disbench.cli import optional_spec, out_folder
    from disbench.report import export, leaderboard

    out_folder(args.out)
    formats = parse_formats(args.format)
    spec = optional_spec(args)
    only = spec.run_dirs(args.runs_dir) if spec else None
    runs, board, hib = leaderboard.build(args.runs_dir, only)
    written = export.export(board, runs, hib, args.out, formats, digits=args.digits)
    if spec is not None and spec.claims:  # the suite's verdicts as their own table
        from disbench.metrics import HIGHER_IS_BETTER
        from disbench.sweeps import claims as C

        results = C.check_claims(spec.claims, C.collect(only), HIGHER_IS_BETTER)
        written += C.export(results, args.out, formats)
    if args.plots:
        from disbench.report import plots

        written += plots.leaderboard_figures(runs, board, hib, Path(args.out) / "figures")
    n_ok = int((runs["status"] == "ok").sum())
    n_failed = int((runs["status"] == "failed").sum())
    print(
        f"{len(runs)} runs ({n_ok} evaluated, {n_failed} failed), {len(board)} variants; "
        f"wrote {len(written)} files to {args.out}"
    )
    for path in written:
        print(f"  {path}")
    return 0
