"""Checks of command-line values that several subcommands share (one line each when wrong)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from disbench.errors import DisbenchError, resolve_device


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


def device(value: Any, flag: str = "--device") -> Any:
    """The torch device of ``--device``, checked as ``disbench train`` checks it."""
    return resolve_device(value, flag)
