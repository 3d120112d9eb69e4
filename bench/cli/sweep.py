"""``disbench sweep SPEC.yaml``: train and evaluate every run of a sweep spec."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="train and evaluate every run of a YAML sweep spec",
        description=(
            "Expand SPEC.yaml into datasets x model variants x seeds (a list value is swept), "
            "then train and evaluate each run into OUT/<dataset>/<model>/<hash>-s<seed>/. "
            "Complete runs are skipped, interrupted ones resumed, failed ones recorded in "
            "error.json while the sweep goes on. Safe to run twice on one folder at once. "
            "Spec format: see bench/sweeps/suites/*.yaml."
        ),
    )
    p.add_argument("spec", metavar="SPEC.yaml", help="sweep spec file (e.g. bench/sweeps/suites/ci.yaml)")
    p.add_argument("--out", default=None, help="output folder (default: runs/<spec name>)")
    p.add_argument("--size", default=None, metavar="SIZE",
                   help="one of the spec's 'sizes:' (e.g. cpu); default: the full protocol "
                        "(the spec's name becomes <name>-<size>)")
    p.add_argument(
        "--jobs", "-j", type=int, default=None,
        help="runs in parallel (default: one per CPU core when training on CPU, 1 on CUDA)",
    )
    p.add_argument(
        "--backend", choices=("loky", "ray"), default="loky",
        help="loky: local processes (default); ray: Ray tasks on $RAY_ADDRESS or a local cluster",
    )
    p.add_argument(
        "--cuda-graphs", action="store_true",
        help="on CUDA, replay each ensemble's update (forward, backward, Adam) as one captured "
             "CUDA graph (fewer kernel launches; members still draw their own batches and "
             "noise). Off by default: not yet measured on a GPU in this release",
    )
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from disbench.cli import out_folder
    from disbench.run.folder import RunFolder
    from disbench.sweeps.spec import load_spec
    from disbench.sweeps.sweep import run_dir_for, run_sweep

    out_folder(args.out)
    spec = load_spec(args.spec, size=args.size)
    out = Path(args.out) if args.out else Path("runs") / spec.name
    if args.dry_run:
        for cfg in spec.run_configs():
            print(run_dir_for(cfg, out))
        return 0
    summary = run_sweep(spec, out, jobs=args.jobs, backend=args.backend,
                        progress=not args.no_progress, cuda_graphs=args.cuda_graphs)
    print(f"sweep {spec.name}: {summary.describe()}; results in {out}")
    for res in summary.failed:
        print(f"  failed ({res.stage}): {res.run_dir}: {res.error} "
              f"(see {RunFolder(res.run_dir).error_path})")
    return 1 if summary.failed else 0
