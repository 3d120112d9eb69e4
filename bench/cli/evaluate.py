"""``disbench evaluate RUN_DIR...``: compute metrics of trained runs into metrics.json.

The evaluation flags (``--num-train``, ``--codes``, ...) are derived from the fields of
:class:`disbench.metrics.evaluators.EvalOptions`, whose defaults apply when a flag is left out.
"""
from __future__ import annotations

import argparse

from disbench.run.settings import add_flags, defer_flags


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="compute metrics for trained run folders",
        description=(
            "Load each run's checkpoint, encode with posterior means (or sampled codes with "
            "--codes sampled), compute the metrics through disbench.metrics.evaluate and "
            "write RUN_DIR/metrics.json with each score's spec and provenance (disbench "
            "version, git commit, dataset source and fingerprint, the run id). Metrics "
            "already computed with the same options are kept unless --force."
        ),
    )
    p.add_argument("run_dirs", metavar="RUN_DIR", nargs="+", help="run folders")
    p.add_argument(
        "--metrics", default="mig,dci,sap,modularity",
        help="comma-separated evaluator names (default: mig,dci,sap,modularity)",
    )
    p.add_argument("--force", action="store_true", help="recompute metrics already present")
    p.set_defaults(func=run)
    defer_flags(p, _option_flags)


def _option_flags(p: argparse.ArgumentParser) -> None:
    """One flag per evaluation option (default None: EvalOptions' own default)."""
    from disbench.metrics.evaluators import EvalOptions

    add_flags(p, EvalOptions, defaults_none=True)


def run(args: argparse.Namespace) -> int:
    from disbench.errors import resolve_device
    from disbench.metrics.evaluators import EvalOptions
    from disbench.run.evaluate import evaluate_run
    from tqdm.auto import tqdm

    if args.device is not None:
        resolve_device(args.device, "--device")  # checked before any work, as train does
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    options = EvalOptions.build({name: getattr(args, name) for name in EvalOptions.names()})
    for run_dir in tqdm(args.run_dirs, desc="evaluate", unit="run",
                        disable=len(args.run_dirs) == 1):
        records = evaluate_run(run_dir, metrics, options, force=args.force)
        print(run_dir)
        for rec in records:
            print(f"  {rec['metric']:<36} {rec['value']:.4f}")
    return 0
