"""Helper networks trained once and cached under ``$DISBENCH_DATA`` with a checksum.

The Sprites judge (:mod:`.judge_net`) and the feature classifier (:mod:`.feature_classifier`)
store their trained weights through this module, with one policy:

- :func:`save` writes the payload atomically (``torch.save``) and then its sha256 to
  ``<file>.sha256`` beside it;
- :func:`load` returns ``None`` when the file does not exist (the caller trains it); a file
  whose sidecar is missing, whose sha256 does not match, or whose ``format_version`` differs
  is a :class:`~disbench.errors.DisbenchError` naming the file and the command that rebuilds
  it. A cache file is never silently replaced: a mismatch means it was modified or corrupted,
  and the numbers computed with it would not be the stored network's.

Payloads are loaded with ``torch.load(..., weights_only=True)``: they hold tensors, numbers,
strings, lists and dicts only.
"""
from __future__ import annotations

import logging
from pathlib import Path

from disbench.atomic import file_hash, torch_save, write_text
from disbench.errors import DisbenchError

__all__ = ["load", "save", "sidecar"]

log = logging.getLogger(__name__)


def sidecar(path: str | Path) -> Path:
    """The checksum file beside ``path``: ``<name>.sha256``."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def save(path: str | Path, payload: dict) -> Path:
    """Store ``payload`` at ``path`` atomically, then its sha256 in :func:`sidecar`."""
    path = Path(path)
    torch_save(path, payload)
    write_text(sidecar(path), f"{file_hash(path)}  {path.name}\n")
    log.info("stored %s", path)
    return path


def load(path: str | Path, *, rebuild: str, format_version: int) -> dict | None:
    """The verified payload at ``path``, or ``None`` when there is no such file.

    Parameters
    ----------
    path : path
        The cache file.
    rebuild : str
        What rebuilds the file (a command line), quoted in the error messages.
    format_version : int
        The ``format_version`` the payload must carry.

    Raises
    ------
    DisbenchError
        The sidecar is missing, the checksum does not match, or the format differs.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        return None
    sums = sidecar(path)
    if not sums.is_file():
        raise DisbenchError(f"{sums} is missing, so {path} cannot be verified; delete {path} "
                            f"and rebuild it with: {rebuild}")
    expected = (sums.read_text().split() or [""])[0]
    if file_hash(path) != expected:
        raise DisbenchError(f"{path}: sha256 does not match {sums} (corrupt or modified); "
                            f"delete it and rebuild it with: {rebuild}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    found = payload.get("format_version") if isinstance(payload, dict) else None
    if found != format_version:
        raise DisbenchError(f"{path}: format {found} is not {format_version}; delete it and "
                            f"rebuild it with: {rebuild}")
    return payload
