"""Atomic file writes: write to a temp file in the same folder, then rename; file checksums.

A reader never sees a half-written file, and an interrupted write leaves the old
file (or nothing) in place. :func:`file_hash` is the checksum the dataset cache and the
cached helper networks verify their files with.

Temp files are named ``.<name>.<random>.<host>-<pid>.tmp`` (``host``: a short hash of the
host name). A killed writer leaves its temp file behind (a killed ``datasets prepare``, a
multi-GB one), so the first write of a process to a folder removes the writer's abandoned
temp files there (:func:`clean_stale_temps`): those of this host whose writer process is
gone, and those of other hosts (or of older disbench versions, without the tag) untouched
for :data:`STALE_TEMP_SECONDS`. Nothing else is touched: no file outside that pattern, and
no temp file of a live writer on this host.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20
#: a temp file of another host (or untagged) untouched this long is abandoned
STALE_TEMP_SECONDS = 24 * 3600.0
_HOST_TAG = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}(?:\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+))?\.tmp$")
#: errors of the storage a write goes to (named with the file when the OS does not name it)
_STORAGE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG)
#: folders this process has cleaned already (once per process and folder is enough)
_CLEANED: set[str] = set()


def file_hash(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def process_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _abandoned(match: re.Match, mtime: float, now: float) -> bool:
    if match["host"] == _HOST_TAG:
        return not process_alive(int(match["pid"]))
    return now - mtime > STALE_TEMP_SECONDS


def clean_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the abandoned temp files of :func:`atomic_path` in ``folder`` (see the module
    docstring); returns the paths removed. Errors (a file vanishing meanwhile, no
    permission) leave the file alone."""
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if _abandoned(match, entry.stat(follow_symlinks=False).st_mtime, now):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _clean_once(folder: Path) -> None:
    key = str(folder.resolve())
    if key not in _CLEANED:
        _CLEANED.add(key)
        clean_stale_temps(folder)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    A storage ``OSError`` without a file name (``ENOSPC`` from a write, a read-only or
    failing disk) is raised again naming ``path``, so the message says which file could not
    be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_once(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".{_HOST_TAG}-{os.getpid()}.tmp",
                               dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is None and exc.errno in _STORAGE_ERRORS:
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write ``text`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def torch_save(path: str | os.PathLike, obj: Any) -> None:
    """Atomically ``torch.save`` ``obj`` to ``path``."""
    import torch

    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as exc:
            # torch's zip writer reports a failed write (a full disk) as a RuntimeError
            # ("file write failed", "unexpected pos ..." from inline_container.cc).
            if not any(k in str(exc) for k in ("write failed", "inline_container",
                                               "PytorchStreamWriter")):
                raise
            code = errno.ENOSPC if _nearly_full(tmp.parent) else errno.EIO
            raise OSError(code, os.strerror(code), str(path)) from exc


def _nearly_full(folder: Path) -> bool:
    import shutil

    try:
        return shutil.disk_usage(folder).free < 64 * _CHUNK
    except OSError:
        return False


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
