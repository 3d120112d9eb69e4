"""A per-run lock file, so two sweeps on one folder never train the same run twice.

The lock is ``RUN_DIR/.lock``, created with ``O_CREAT | O_EXCL`` (atomic on local file
systems and NFSv3+) and holding ``{"pid", "host", "time"}``; the holder touches the file
every :data:`HEARTBEAT_SECONDS` (its *heartbeat*). A lock is *stale* when its owner is
gone: on this host, no process with that pid exists, or its heartbeat is older than
:data:`LOCAL_STALE_SECONDS` (the pid is alive but is another process's: pids repeat after a
reboot or a container restart, where the host name stays); on another host (a shared
folder on a cluster), its heartbeat is older than :data:`REMOTE_STALE_SECONDS`. Removing a
stale lock is serialised by an ``flock`` on a guard file, so two processes cannot both break
one lock and then both believe they hold the new one. :func:`wait_lock` says which run
waits for which pid, held since when, and a stop signal during that wait says so (the
run was not in training: nothing to save).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

from disbench.atomic import process_alive
from disbench.run.folder import LOCK_FILE, LOCK_GUARD_FILE
from disbench.run.stop import Interrupted

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0
#: a lock on this host whose heartbeat is this old is stale even if its pid is alive
LOCAL_STALE_SECONDS = 5 * HEARTBEAT_SECONDS
REMOTE_STALE_SECONDS = 600.0
#: how often a waiting run repeats whom it waits for
WAIT_REPORT_SECONDS = 600.0
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
        return age > LOCAL_STALE_SECONDS or not process_alive(_pid(owner))
    return age > REMOTE_STALE_SECONDS


def _pid(owner: dict) -> int:
    try:
        return int(owner.get("pid", -1))
    except (TypeError, ValueError):
        return -1


def describe_holder(path: Path) -> str:
    """``pid P on host H since TIME (heartbeat N s ago)`` for the lock at ``path``."""
    owner = lock_owner(path) or {}
    try:
        beat = f"{time.time() - path.stat().st_mtime:.0f} s ago"
    except FileNotFoundError:
        beat = "gone"
    since = owner.get("time")
    when = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))
            if isinstance(since, (int, float)) else "an unknown time")
    return (f"pid {owner.get('pid', '?')} on host {owner.get('host', '?')} since {when} "
            f"(heartbeat {beat})")


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
        _write_owner(fd, path)
        return RunLock(path)
    return None


def _write_owner(fd: int, path: Path) -> None:
    """Record this process in the new lock file ``path`` (open as ``fd``). When that write
    fails (a full disk), the file is removed, so no empty lock is left behind, and the
    error names it."""
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}, f)
    except BaseException as exc:  # a signal too: a half-written lock is nobody's
        with contextlib.suppress(OSError):
            path.unlink()
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc
        raise


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
    """Block until the lock of ``run_dir`` is ours (None on ``timeout``).

    While it waits it logs (a warning, so worker processes show it too) which run waits
    for which pid since when, once and then every :data:`WAIT_REPORT_SECONDS`.
    """
    start = time.monotonic()
    reported = None
    path = Path(run_dir) / LOCK_FILE
    while True:
        lock = try_lock(run_dir)
        if lock is not None:
            return lock
        now = time.monotonic()
        if reported is None or now - reported > WAIT_REPORT_SECONDS:
            reported = now
            local = (lock_owner(path) or {}).get("host") == socket.gethostname()
            log.warning("%s waits for %s; it is taken over once its heartbeat is %.0f s old",
                        run_dir, describe_holder(path),
                        LOCAL_STALE_SECONDS if local else REMOTE_STALE_SECONDS)
        if timeout is not None and now - start > timeout:
            return None
        try:
            time.sleep(poll)
        except Interrupted as exc:  # nothing of this run was in training
            exc.context = exc.context or (
                f"while {run_dir} was waiting for its lock, held by {describe_holder(path)}; "
                "nothing was in training, so there was nothing to save")
            raise
