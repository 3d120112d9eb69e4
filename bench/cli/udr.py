"""``disbench udr RUNS_DIR``: UDR of each variant's seeds, written into their metrics.json."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "udr",
        help="score each variant's seeds against each other (UDR) into their metrics",
        description=(
            "Unsupervised Disentanglement Ranking (Duan et al. 2020, disentanglement_lib "
            "udr.py): group the trained runs under RUNS_DIR by variant (the same settings "
            "but the seed), encode one shared draw of observations with every run's "
            "posterior, compare the runs of each variant with Lasso correlations and write "
            "each run's score as the record 'udr' into its metrics.json, so it appears in "
            "leaderboards like any other score. A variant needs two trained seeds and a "
            "model with posterior(x) -> (mean, logvar)."
        ),
    )
    p.add_argument("runs_dir", metavar="RUNS_DIR", help="folder of runs, e.g. a sweep's --out")
    p.add_argument("--spec", default=None, metavar="SPEC.yaml",
                   help="only the runs of this sweep spec")
    p.add_argument("--num-points", type=int, default=1000, metavar="N",
                   help="shared observations (default 1000, the reference's udr.gin)")
    p.add_argument("--random-state", type=int, default=0, metavar="S",
                   help="seed of the shared draw (default 0)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--batch-size", type=int, default=256,
                   help="images per encoder call (default 256; does not change a score)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from disbench.errors import DisbenchError
    from disbench.run.udr import compute_udr
    from disbench.sweeps.spec import load_spec

    only = load_spec(args.spec).run_dirs(args.runs_dir) if args.spec else None
    groups = compute_udr(args.runs_dir, only=only, num_points=args.num_points,
                         random_state=args.random_state, device=args.device,
                         batch_size=args.batch_size)
    if not groups:
        raise DisbenchError(f"{args.runs_dir}: no trained runs found; train them first "
                            "('disbench sweep SPEC.yaml --out RUNS_DIR')")
    for group in groups:
        if group.scores:
            for run_dir, score in zip(group.runs, group.scores, strict=True):
                print(f"  {'udr':<8} {score:.4f}  {run_dir}")
        else:
            print(f"  skipped {len(group.runs)} run(s) ({group.reason}): {', '.join(group.runs)}")
    scored = sum(len(g.runs) for g in groups if g.scores)
    print(f"udr written for {scored} runs in {sum(bool(g.scores) for g in groups)} variants; "
          f"{sum(not g.scores for g in groups)} variants skipped")
    return 0 if scored else 1
