"""``disbench plot RUN_DIR... [--traversals MODE]``: figures of trained runs (PNG and PDF;
traversal animations as GIF)."""
from __future__ import annotations

import argparse
from pathlib import Path

from disbench.errors import DEVICES

#: the most images a reconstruction figure shows (one row of data, one of reconstructions)
MAX_IMAGES = 64


def register(sub: argparse._SubParsersAction) -> None:
    from disbench.report.traversals import MODES

    p = sub.add_parser(
        "plot",
        help="latent traversals, reconstructions and prior samples of runs",
        description=(
            "Write latent traversals, reconstructions, prior samples and the metrics curve "
            "of a run trained with eval_every (PNG and PDF) for "
            "each trained run folder, into RUN_DIR/figures (or --out); sprite GIFs for "
            "sequence data. --traversals MODE adds disentanglement_lib's animated "
            "traversals (GIF, 5 codes, 20 frames at 10 fps) and a grid per code with the "
            "latents ordered by KL. Leaderboard figures come from 'disbench leaderboard "
            "--plots'."
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
    p.add_argument("--traversals", default=None, metavar="MODE",
                   choices=(*MODES, "all"),
                   help="also write animated traversals: std_gaussian (quantiles of N(0,1)), "
                        "fitted_gaussian (of a Gaussian fitted to the codes), fixed_interval "
                        "([-2, 2]), conf_interval (±2 std of the fitted Gaussian), "
                        "minmax_interval (min to max of the codes), or all")
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
        if args.traversals:
            written += _traversals(rd, out or RunFolder(rd).figures_path, args)
        print(f"{rd}: wrote {len(written)} files")
        for p in written:
            print(f"  {p}")
    return 0


def _traversals(run_dir: Path, out: Path, args: argparse.Namespace) -> list[Path]:
    from disbench.errors import resolve_device
    from disbench.report import traversals

    modes = traversals.MODES if args.traversals == "all" else (args.traversals,)
    return traversals.write_run_traversals(run_dir, out, modes, seed=args.seed,
                                           device=resolve_device(args.device, "--device"))
