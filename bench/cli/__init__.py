"""The ``disbench`` command line.

Each subcommand lives in its own module ``disbench.cli.<name>`` exposing
``register(subparsers)``, which adds a parser whose ``func`` default takes the parsed
arguments. Heavy imports (torch, sklearn) happen inside ``func`` so ``--help`` is fast.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from disbench import __version__
from disbench.errors import DisbenchError

COMMANDS = ("datasets", "train", "evaluate", "sweep", "leaderboard", "claims", "plot", "regress",
            "judge", "udr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disbench",
        description=(
            "Benchmark disentangled representation learning: datasets with known factors, "
            "baseline models, metrics, sweeps and leaderboards. "
            "Run 'disbench COMMAND --help' for each command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"disbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"disbench.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DisbenchError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
