"""``disbench regress``: the CI gate comparing a small deterministic suite with a baseline."""
from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "regress",
        help="run the CI suite and fail when a score leaves its tolerance",
        description=(
            "Run a small deterministic CPU suite (bench/sweeps/suites/<suite>.yaml) in a fresh "
            "folder and compare each model variant's mean score with "
            "results/baseline/<suite>.csv (columns dataset, model, metric, value, tolerance). "
            "Exits 1 naming dataset, model, metric, baseline and new value when a score "
            "moves outside its tolerance. --update rewrites the baseline on purpose."
        ),
    )
    p.add_argument("--suite", default="ci", help="suite name or spec path (default: ci)")
    p.add_argument("--baseline", default=None,
                   help="baseline CSV (default: results/baseline/<suite>.csv)")
    p.add_argument("--update", action="store_true",
                   help="rewrite the baseline with the new scores (keeps stated tolerances)")
    p.add_argument("--out", default=None,
                   help="keep the runs in this folder (default: a temporary folder; a kept "
                        "folder skips complete runs, so use a fresh one)")
    p.add_argument("--jobs", "-j", type=int, default=None,
                   help="runs in parallel (default: one per CPU core)")
    p.add_argument("--accept-new", action="store_true",
                   help="let scores without a baseline row pass (as notes); by default they "
                        "fail, so a truncated baseline cannot pass")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from disbench.cli import out_folder
    from disbench.sweeps.regress import default_baseline, run_regress, suite_path

    out_folder(args.out)
    start = time.perf_counter()
    res = run_regress(args.suite, baseline=args.baseline, update=args.update, out=args.out,
                      jobs=args.jobs, progress=not args.no_progress,
                      accept_new=args.accept_new)
    took = time.perf_counter() - start
    baseline = args.baseline or default_baseline(str(suite_path(args.suite)))
    if res.updated:
        print(f"regress: wrote {len(res.scores)} scores to {baseline} ({took:.0f} s)")
        return 0
    for note in res.notes:
        print(f"note: {note}")
    for run in res.failed_runs:
        print(f"failed run: {run}", file=sys.stderr)
    rows = f"{res.baseline_rows} baseline row{'s' if res.baseline_rows != 1 else ''}"
    if res.failures:
        print(f"regress: {len(res.failures)} of {len(res.scores)} score(s) fail against "
              f"{rows} of {baseline}:", file=sys.stderr)
        for f in res.failures:
            print(f"  REGRESSION {f}", file=sys.stderr)
        return 1
    accepted = (f", {res.accepted_new} new score(s) accepted without a baseline row"
                if res.accepted_new else "")
    print(f"regress: {len(res.scores) - res.accepted_new} scores within tolerance{accepted}, "
          f"compared against {rows} of {baseline} ({took:.0f} s)")
    return 0
