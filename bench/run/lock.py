"""A per-run lock file, so two sweeps on one folder never train the same run twice.

The lock is ``RUN_DIR/.lock``, created with ``O_CREAT | O_EXCL`` (atomic on local file
systems and NFSv3+) and holding ``{"pid", "host", "time"}``. A lock is *stale* when its
owner is gone: on this host, no process with that pid exists; on another host (a shared
folder on a cluster), its heartbeat (the holder touches the file every
``HEARTBEAT_SECONDS``) is older than ``REMOTE_STALE_SECONDS``. Removing a stale lock is
serialised by an ``flock`` on a guard file, so two processes cannot both break one lock and
then both believe they hold the new one.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

from disbench.atomic import process_alive
from disbench.run.folder import LOCK_FILE, LOCK_GUARD_FILE

HEARTBEAT_SECONDS = 30.0
REMOTE_STALE_SECONDS = 600.0
# A lock file still empty this long after creation belongs to a writer that died mid-write.
EMPTY_STALE_SECONDS = 30.0


class RunLock:
    """An acquired lock on one run folder; :meth:`release` (or the context manager) frees it."""

    def __init__(self, path: Path):
        self.path = path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._heartbeat, daemon=True)
        self._thread.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        """Stop the heartbeat and remove the lock file."""
        self._stop.set()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_owner(path: Path) -> dict | None:
    """The owner recorded in lock file ``path`` (None if it does not exist)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {}


def is_stale(path: Path) -> bool:
    """Whether the lock at ``path`` belongs to an owner that is gone."""
    owner = lock_owner(path)
    if owner is None:
        return False
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if not owner:  # created but not written yet, or its writer died mid-write
        return age > EMPTY_STALE_SECONDS
    if owner.get("host") == socket.gethostname():
        return not process_alive(int(owner.get("pid", -1)))
    return age > REMOTE_STALE_SECONDS


def try_lock(run_dir: str | os.PathLike) -> RunLock | None:
    """Take the lock of ``run_dir``; None when another live process holds it.

    A stale lock is removed (under the guard's ``flock``) and taken.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            with _guard(run_dir):
                if not is_stale(path):
                    if path.exists():
                        return None
                    continue  # released meanwhile: try again
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            continue
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}, f)
        return RunLock(path)
    return None


def clear_stale(run_dir: str | os.PathLike) -> bool:
    """Remove the lock of ``run_dir`` if it is stale (e.g. left by a killed sweep)."""
    run_dir = Path(run_dir)
    path = run_dir / LOCK_FILE
    if not path.exists():
        return False
    with _guard(run_dir):
        if is_stale(path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return True
    return False


@contextlib.contextmanager
def _guard(run_dir: Path) -> Iterator[None]:
    fd = os.open(run_dir / LOCK_GUARD_FILE, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def wait_lock(
    run_dir: str | os.PathLike, *, poll: float = 1.0, timeout: float | None = None
) -> RunLock | None:
    """Block until the lock of ``run_dir`` is ours (None on ``timeout``)."""
    start = time.monotonic()
    while True:
        lock = try_lock(run_dir)
        if lock is not None:
            return lock
        if timeout is not None and time.monotonic() - start > timeout:
            return None
        time.sleep(poll)
