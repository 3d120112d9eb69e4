"""``disbench claims SPEC``: each claim of a suite, measured on its runs, with a verdict."""
from __future__ import annotations

import argparse

DESCRIPTION = """\
Check the claims of a suite (its 'claims:' list: a paper's findings as comparisons between
variants on a metric) against the suite's evaluated runs. For each claim it prints the
means and sample standard deviations over seeds of both sides, n, the one-sided Welch
t-test p-value (from 3 seeds per side) and a verdict: holds, holds (direction only), does
not hold, or not run. Train and evaluate the runs first with 'disbench sweep SPEC'.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from disbench.cli.leaderboard import FORMATS

    p = sub.add_parser("claims", help="check a suite's claims on its runs",
                       description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC",
                   help="suite name (bench/sweeps/suites/NAME.yaml) or a spec file")
    p.add_argument("--runs", default=None, metavar="DIR",
                   help="the sweep's output folder (default: runs/<spec name>)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help=f"also write the table as claims.{{csv,tex,md}} into DIR "
                        f"(formats: --format, default {','.join(FORMATS)})")
    p.add_argument("--size", default=None, metavar="SIZE",
                   help="one of the suite's 'sizes:' (e.g. cpu; default: the full protocol)")
    p.add_argument("--format", default=",".join(FORMATS),
                   help="comma-separated list of csv, latex, markdown (with --out)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from disbench.cli.leaderboard import parse_formats
    from disbench.errors import DisbenchError
    from disbench.metrics import HIGHER_IS_BETTER
    from disbench.sweeps import claims as C
    from disbench.sweeps.regress import suite_path
    from disbench.sweeps.spec import load_spec

    spec = load_spec(suite_path(args.spec), size=args.size)
    if not spec.claims:
        raise DisbenchError(f"{spec.path}: the suite has no 'claims:' list")
    runs_dir = Path(args.runs) if args.runs else Path("runs") / spec.name
    if not runs_dir.is_dir():
        raise DisbenchError(f"--runs: {runs_dir} not found; run 'disbench sweep {spec.path} "
                            f"--out {runs_dir}' first")
    results = C.check_claims(spec.claims, C.collect(spec.run_dirs(runs_dir)), HIGHER_IS_BETTER)
    print(f"claims of {spec.name} on {runs_dir}:\n")
    print(C.to_markdown(results))
    if args.out:
        for path in C.export(results, args.out, parse_formats(args.format)):
            print(f"wrote {path}")
    return 0
