"""Derived caches: files disbench builds from other files, stamped with a digest, checked on open.

A derived cache is anything that can be rebuilt from the official files or from a twin's
seed: the converted random-access layouts of the grids (``official_images.npy``,
``synthetic_images.npy``), a rendered twin's files, CelebA's decoded 64x64 array,
Omniglot's decoded archive. Each has a JSON *stamp* beside it (``<file>`` with the
suffix ``.json``) holding

``source``
    what it was built from (a file checksum, a twin version); a different source means the
    cache is stale and is rebuilt;
``digest`` and ``digest_mode``
    a SHA-256 of the cache itself, checked every time it is opened.

Digest modes (the one used is stated in the stamp):

``"full"``
    SHA-256 of the whole file; used for caches of at most :data:`FULL_LIMIT` bytes (the
    twin IDX files, Omniglot's decoded archive, small arrays).
``"sampled"``
    SHA-256 of the file size, the ``.npy`` header and :data:`SAMPLE_ROWS` rows spread evenly
    over the array (first and last included); used for the multi-GB layouts, where hashing
    everything on every open would cost seconds per GB. It detects a truncated, emptied or
    partly overwritten file (e.g. half of it zeroed) but not a change confined to rows it
    does not sample.

:func:`open_array` is the one way a derived ``.npy`` is opened: any failure (missing
stamp, other source, digest mismatch, a file that numpy cannot map) returns None, and a
file that exists but fails the check is deleted with a warning naming it, so the caller
rebuilds it (a derived cache loses nothing by being rebuilt).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from disbench.atomic import file_hash, write_json

log = logging.getLogger(__name__)

#: rows hashed by the "sampled" digest
SAMPLE_ROWS = 256
#: caches up to this size are hashed whole
FULL_LIMIT = 64 << 20
MODES = ("full", "sampled")


def stamp_path(path: str | os.PathLike) -> Path:
    """The stamp of the cache ``path``: the same name with the suffix ``.json``."""
    return Path(path).with_suffix(".json")


def default_mode(path: str | os.PathLike) -> str:
    """``"full"`` for files up to :data:`FULL_LIMIT` bytes, ``"sampled"`` for ``.npy`` above."""
    path = Path(path)
    if path.suffix == ".npy" and path.stat().st_size > FULL_LIMIT:
        return "sampled"
    return "full"


def digest(path: str | os.PathLike, mode: str) -> str:
    """The digest of ``path`` in ``mode`` (see the module docstring); raises OSError or
    ValueError when the file cannot be read as it should."""
    if mode == "full":
        return file_hash(path)
    if mode != "sampled":
        raise ValueError(f"digest mode must be one of {', '.join(MODES)}, got {mode!r}")
    arr = np.load(path, mmap_mode="r")
    h = hashlib.sha256()
    h.update(f"{os.path.getsize(path)} {arr.dtype.str} {arr.shape}".encode())
    if arr.shape and arr.shape[0]:
        rows = np.unique(np.linspace(0, arr.shape[0] - 1, SAMPLE_ROWS).round().astype(np.int64))
        h.update(np.ascontiguousarray(arr[rows]).tobytes())
    del arr
    return h.hexdigest()


def write_stamp(path: str | os.PathLike, source: str, *, mode: str | None = None,
                **extra: Any) -> None:
    """Stamp the freshly built cache ``path``: its source and digest (plus ``extra`` keys)."""
    mode = mode or default_mode(path)
    write_json(stamp_path(path), {**extra, "source": source, "digest_mode": mode,
                                  "digest": digest(path, mode)})


def problem(path: str | os.PathLike, source: str) -> str | None:
    """Why the cache ``path`` cannot be used for ``source`` (None when it can).

    ``"missing"`` when the file or its stamp does not exist, ``"stale"`` when it was built
    from another source (both: rebuild silently); anything else describes damage.
    """
    path = Path(path)
    stamp = stamp_path(path)
    if not path.exists() or not stamp.exists():
        return "missing"
    try:
        rec = json.loads(stamp.read_text())
    except (json.JSONDecodeError, OSError, UnicodeDecodeError) as exc:
        return f"its stamp {stamp} is unreadable ({exc})"
    if not isinstance(rec, dict) or rec.get("source") != source:
        return "stale"
    mode, want = rec.get("digest_mode"), rec.get("digest")
    if mode not in MODES or not isinstance(want, str):
        return "stale"  # stamped before digests existed: rebuilt once
    try:
        seen = digest(path, mode)
    except (OSError, ValueError, EOFError) as exc:
        return f"it cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    if seen != want:
        return f"its {mode} SHA-256 {seen[:12]}... differs from the stamped {want[:12]}..."
    return None


def check(path: str | os.PathLike, source: str, what: str = "cache",
          fix: str = "rebuilding it") -> bool:
    """Whether the cache ``path`` is usable for ``source``; a damaged one is deleted (with its
    stamp) and a warning names it and ``fix``, so the caller rebuilds it."""
    why = problem(path, source)
    if why is None:
        return True
    if why not in ("missing", "stale"):
        discard(path, f"{what} {path} is damaged: {why}; {fix}")
    return False


def discard(path: str | os.PathLike, message: str) -> None:
    """Log ``message`` as a warning and delete the cache ``path`` and its stamp."""
    log.warning("%s", message)
    for p in (Path(path), stamp_path(path)):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def open_array(path: str | os.PathLike, source: str, shape: tuple[int, ...] | None = None,
               what: str = "cache", fix: str = "rebuilding it") -> np.ndarray | None:
    """The checked cache ``path`` memory-mapped read-only, or None (see :func:`check`).

    ``shape``: the shape it must have (another shape is treated as damage).
    """
    if not check(path, source, what, fix):
        return None
    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:
        discard(path, f"{what} {path} cannot be opened ({exc}); {fix}")
        return None
    if shape is not None and arr.shape != tuple(shape):
        got = arr.shape
        del arr
        discard(path, f"{what} {path} has shape {got}, expected {tuple(shape)}; {fix}")
        return None
    return arr
