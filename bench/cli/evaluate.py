"""``disbench evaluate RUN_DIR...``: compute metrics of trained runs into metrics.json."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="compute metrics for trained run folders",
        description=(
            "Load each run's checkpoint, encode with posterior means (or sampled codes with "
            "--codes sampled), compute the metrics through disbench.metrics.evaluate and "
            "write RUN_DIR/metrics.json with each score's spec and provenance (disbench "
            "version, git commit, dataset source and fingerprint, config hash). Metrics "
            "already computed with the same options are kept unless --force."
        ),
    )
    p.add_argument("run_dirs", metavar="RUN_DIR", nargs="+", help="run folders")
    p.add_argument(
        "--metrics", default="mig,dci,sap,modularity",
        help="comma-separated evaluator names (default: mig,dci,sap,modularity)",
    )
    p.add_argument("--num-train", type=int, default=None, help="points to fit (default 10000)")
    p.add_argument("--num-test", type=int, default=None, help="points to test (default 5000)")
    p.add_argument("--codes", choices=("mean", "sampled"), default=None,
                   help="representation: posterior means (default) or samples")
    p.add_argument("--random-state", type=int, default=None, help="sampling seed (default 0)")
    p.add_argument("--batch-size", type=int, default=None, help="encoding batch size")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--force", action="store_true", help="recompute metrics already present")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from disbench.run.evaluate import evaluate_run
    from tqdm.auto import tqdm

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    for run_dir in tqdm(args.run_dirs, desc="evaluate", unit="run",
                        disable=len(args.run_dirs) == 1):
        records = evaluate_run(
            run_dir, metrics, num_train=args.num_train, num_test=args.num_test,
            codes=args.codes, random_state=args.random_state, batch_size=args.batch_size,
            device=args.device, force=args.force,
        )
        print(run_dir)
        for rec in records:
            print(f"  {rec['metric']:<36} {rec['value']:.4f}")
    return 0
