"""``disbench report RUNS_DIR --out DIR [--spec SPEC.yaml]``: the static results site."""
from __future__ import annotations

import argparse
from typing import Any

from disbench.errors import DEVICES


def register(sub: argparse._SubParsersAction) -> None:
    from disbench.report.traversals import MODES

    p = sub.add_parser(
        "report",
        help="a static results site (leaderboards, figures, traversals) from run folders",
        description=(
            "Write a self-contained results site into DIR: an index with one sortable, "
            "filterable leaderboard per dataset (mean ± std over seeds, n, best in bold), the "
            "claims verdicts of a spec that has claims, links to CSV/LaTeX/Markdown exports; "
            "a page per model variant (settings, every seed's scores, training curves, "
            "reconstructions, prior samples, latent traversals); study figures per dataset "
            "(seeds, hyperparameters, metric rank correlations, ROC curves, sprite swaps). "
            "Open DIR/index.html in a browser: no server is needed and nothing is fetched."
        ),
    )
    p.add_argument("runs_dir", metavar="RUNS_DIR", help="folder written by 'disbench sweep'")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="site folder (new, empty, or an earlier site, which is rebuilt)")
    p.add_argument("--spec", default=None, metavar="SPEC.yaml",
                   help="only the runs of this spec; its claims (if any) are checked")
    p.add_argument("--size", default=None, metavar="SIZE",
                   help="one of the --spec suite's 'sizes:' (e.g. cpu; default: its full protocol)")
    p.add_argument("--claims", default=None, metavar="CLAIMS.csv",
                   help="a table of claims verdicts to show instead of checking the spec's "
                        "(the columns of 'disbench claims')")
    p.add_argument("--traversals", default="conf_interval", choices=MODES,
                   help="traversal mode of the variant pages (default conf_interval: "
                        "±2 std of the Gaussian fitted to the codes)")
    p.add_argument("--no-pictures", action="store_true",
                   help="do not load models: tables and figures only")
    p.add_argument("--seed", type=int, default=0, help="which images and samples (0)")
    p.add_argument("--device", default="cpu", choices=DEVICES, help="cpu, cuda or auto")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from disbench.cli import optional_spec
    from disbench.metrics import HIGHER_IS_BETTER
    from disbench.report import leaderboard
    from disbench.report.site import SiteOptions, build_site
    from disbench.sweeps import claims as C

    spec = optional_spec(args)
    only = spec.run_dirs(args.runs_dir) if spec is not None else None
    runs, board, hib = leaderboard.build(args.runs_dir, only)
    table = None
    if spec is not None and spec.claims:
        results = C.check_claims(spec.claims, C.collect(only), HIGHER_IS_BETTER)
        table = C.to_frame(results)
    if args.claims:
        table = _read_claims_csv(args.claims)
    opts = SiteOptions(traversal_mode=args.traversals, seed=args.seed, device=args.device,
                       pictures=not args.no_pictures, progress=not args.no_progress)
    index = build_site(runs, board, hib, args.out, claims=table, options=opts)
    print(f"{len(runs)} runs, {len(board)} variants; site written to {args.out}")
    print(f"open {index.resolve()}")
    return 0


def _read_claims_csv(path: str) -> Any:
    import pandas as pd
    from disbench.errors import DisbenchError

    need = ("claim", "statement", "source", "metric", "better", "than", "mean_better",
            "std_better", "n_better", "mean_than", "std_than", "n_than", "p_value", "verdict")
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DisbenchError(f"--claims {path}: not a readable CSV ({exc})") from None
    missing = [c for c in need if c not in table]
    if missing:
        raise DisbenchError(f"--claims {path}: missing columns {', '.join(missing)}; pass "
                            "a table with the columns 'disbench claims' writes")
    return table.fillna({"note": ""}) if "note" in table else table.assign(note="")
