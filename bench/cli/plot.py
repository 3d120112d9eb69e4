"""``disbench plot RUN_DIR...``: figures of trained runs (PNG and PDF)."""
from __future__ import annotations

import argparse

from disbench.errors import DEVICES

#: the most images a reconstruction figure shows (one row of data, one of reconstructions)
MAX_IMAGES = 64


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="latent traversals, reconstructions and prior samples of runs",
        description=(
            "Write latent traversals, reconstructions and prior samples (PNG and PDF) for "
            "each trained run folder, into RUN_DIR/figures (or --out); sprite GIFs for "
            "sequence data. Leaderboard figures come from 'disbench leaderboard --plots'."
        ),
    )
    p.add_argument("run_dirs", metavar="RUN_DIR", nargs="+", help="trained run folders")
    p.add_argument("--out", default=None,
                   help="figure folder (default RUN_DIR/figures; with several runs, "
                        "OUT/<run folder name>)")
    p.add_argument("--num-images", type=int, default=8,
                   help=f"images to reconstruct, 1 to {MAX_IMAGES} (8)")
    p.add_argument("--seed", type=int, default=0, help="which images and samples (0)")
    p.add_argument("--device", default="cpu", choices=DEVICES,
                   help="cpu, cuda or auto (default cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from disbench.cli import bounded_int, out_folder
    from disbench.errors import DisbenchError, resolve_device
    from disbench.report.plots import run_figures
    from disbench.run.folder import RunFolder

    out_folder(args.out)
    bounded_int(args.num_images, "--num-images", 1, MAX_IMAGES)
    resolve_device(args.device, "--device")  # checked before any work, as train does
    for rd in args.run_dirs:
        rd = Path(rd)
        if not RunFolder(rd).has_checkpoint():
            raise DisbenchError(f"{rd}: no checkpoint ({RunFolder(rd).checkpoint_path.name}); "
                                "pass a trained run folder")
        out = None
        if args.out:
            out = Path(args.out) / rd.name if len(args.run_dirs) > 1 else Path(args.out)
        written = run_figures(rd, out, num_images=args.num_images, seed=args.seed,
                              device=args.device)
        print(f"{rd}: wrote {len(written)} files")
        for p in written:
            print(f"  {p}")
    return 0
