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
from pathlib import Path
from typing import Any

from disbench import __version__
from disbench.errors import DisbenchError

COMMANDS = ("datasets", "train", "evaluate", "sweep", "leaderboard", "claims", "report", "plot",
            "regress", "judge", "udr")


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
    from disbench.run.cpu_tuning import set_openmp_env

    set_openmp_env()  # before torch is imported: its OpenMP runtime reads it when loaded
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from disbench.run import stop

    try:
        with stop.handlers():
            return int(args.func(args) or 0)
    except DisbenchError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        code = getattr(exc, "exit_code", 130)
        what = getattr(exc, "context", None)  # stop.Interrupted: what was stopped, if known
        print(f"interrupted ({exc or 'SIGINT'}) {what}; run the same command again to continue"
              if what else
              f"interrupted ({exc or 'SIGINT'}): a run in training saved a checkpoint and "
              "released its lock; run the same command again (train: with --resume) to "
              "continue", file=sys.stderr)
        return code
    except (ValueError, OSError, EOFError, MemoryError, RuntimeError) as exc:
        message = _one_line(exc)
        if args.debug or message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 1


# -- checks of values several subcommands share (one line each when wrong) -----------------
def out_folder(value: str | None, flag: str = "--out") -> Path | None:
    """``value`` as a folder to write into: an existing file there is an error (nothing is
    written over it); a missing folder is created later, by the command."""
    if value is None:
        return None
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise DisbenchError(f"{flag} {path} is an existing file, not a folder; pass a folder "
                            "(it is created when missing)")
    return path


def bounded_int(value: int, flag: str, low: int, high: int) -> int:
    """``value`` when ``low <= value <= high``; otherwise an error naming ``flag``."""
    if not low <= value <= high:
        raise DisbenchError(f"{flag} must be an integer from {low} to {high}, got {value}")
    return value


#: what torch's errors say when memory runs out: CUDA ("CUDA out of memory"), the CPU
#: allocator ("DefaultCPUAllocator: can't allocate memory", older "not enough memory")
_OUT_OF_MEMORY = ("out of memory", "defaultcpuallocator: can't allocate memory",
                  "defaultcpuallocator: not enough memory")


def _one_line(exc: BaseException) -> str | None:
    """The one-line message of an exception the CLI reports (None: show the traceback)."""
    import zipfile

    from disbench.errors import describe_os_error

    if isinstance(exc, OSError):
        return describe_os_error(exc)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, MemoryError) or any(k in first.lower() for k in _OUT_OF_MEMORY):
        return (f"out of memory ({first}): lower --batch-size (or the eval batch_size / "
                "num_train), or use a device with more memory")
    if isinstance(exc, (EOFError, zipfile.BadZipFile)):
        return (f"a file ended early or is not a valid archive ({type(exc).__name__}: "
                f"{first}): a download or cache file is truncated; delete it and run again "
                "(--debug shows which file)")
    if isinstance(exc, ValueError):
        return str(exc)
    return None  # any other RuntimeError is a bug: its traceback is shown


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def optional_spec(args: argparse.Namespace) -> Any:
    """The ``--spec`` suite at ``--size`` (None without ``--spec``; ``--size`` alone is an
    error), for the commands that may restrict themselves to a spec's runs."""
    from disbench.sweeps.spec import load_spec

    if args.size and not args.spec:
        raise DisbenchError("--size selects a size of --spec: give --spec SPEC.yaml too")
    return load_spec(args.spec, size=args.size) if args.spec else None
