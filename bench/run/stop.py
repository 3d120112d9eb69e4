"""Stopping cleanly on SIGTERM and SIGINT: a run in training checkpoints and unlocks.

``timeout``, SLURM and ``docker stop`` send SIGTERM; Ctrl-C sends SIGINT. The command line
installs :func:`handlers` around every command. A signal then sets a stop request, and

- inside :func:`deferred` (the trainer wraps its work in it), that is all: the training
  loop (:func:`disbench.run.loop.fit`) checks :func:`requested` after every step, writes a
  checkpoint of the step reached and raises :class:`Interrupted`;
- elsewhere :class:`Interrupted` (a ``KeyboardInterrupt``) is raised at once, so the
  ``with`` blocks on the way out release their run locks;
- the hooks registered with :func:`on_stop` run first: a parallel sweep forwards the
  signal to its worker processes and waits for them to finish their checkpoints.

Worker processes call :func:`worker_init` with their parent's pid: the same handlers, and
a watchdog thread that stops the worker the same way when the parent dies (its parent pid
changes; a SIGKILLed sweep leaves no worker training). A stopped worker (its run
checkpointed and unlocked, or idle between jobs) *parks* (:func:`park`): it does not end
itself, because loky kills every other worker of a pool as soon as one ends, which would
cut their checkpoints short; its parent ends the workers once their locks are released,
and a parked worker whose parent is gone exits. A second signal while stopping
interrupts the parent at once (its workers are then killed); workers ignore repeats
(Ctrl-C reaches the whole process group, and the parent forwards the signal again).
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from disbench.atomic import process_alive

SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: how often a worker's watchdog looks at its parent pid
WATCH_SECONDS = 1.0


class Interrupted(KeyboardInterrupt):
    """Raised to stop on a signal; ``except Exception`` blocks let it pass.

    ``context``: what was stopped, when the code it passes through knows better than the
    command line's default ("a run in training saved a checkpoint"), e.g. a run that only
    waited for a lock (:func:`disbench.run.lock.wait_lock`).
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        self.context: str | None = None
        super().__init__(f"stopped by {signal.Signals(self.signum).name}")

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by this signal (128 + signal number)."""
        return 128 + self.signum


class _State:
    def __init__(self) -> None:
        self.signum: int | None = None
        self.deferred = 0
        self.in_job = 0
        self.worker = False
        self.parent: int | None = None
        self.hooks: list[Callable[[int], None]] = []


_STATE = _State()


def requested() -> int | None:
    """The signal that asked to stop (None: none yet)."""
    return _STATE.signum


def _handle(signum: int, frame: Any) -> None:
    del frame
    if _STATE.signum is not None:  # a repeat while stopping
        if _STATE.worker:
            return
        raise Interrupted(_STATE.signum)
    _STATE.signum = signum
    for hook in list(_STATE.hooks):
        hook(signum)
    if _STATE.deferred:
        return  # the training loop checkpoints at the end of its step and raises
    if _STATE.worker and not _STATE.in_job:
        park(signum)  # idle between jobs: nothing to save
    raise Interrupted(signum)


@contextlib.contextmanager
def handlers() -> Iterator[None]:
    """SIGTERM and SIGINT stop cleanly inside this block (previous handlers restored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handle) for s in SIGNALS}
    _STATE.signum = None
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        # The request ends with the block: code run later in this process (a library
        # caller's next train(), a test) must not find it and stop at once.
        _STATE.signum = None


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A signal only sets the request here; the code inside checks :func:`requested`."""
    _STATE.deferred += 1
    try:
        yield
    finally:
        _STATE.deferred -= 1
    if _STATE.signum is not None and not _STATE.deferred:
        raise Interrupted(_STATE.signum)  # asked for after the code's last check


@contextlib.contextmanager
def in_job() -> Iterator[None]:
    """A worker's job: a signal here raises :class:`Interrupted` (outside, it exits)."""
    _STATE.in_job += 1
    try:
        yield
    finally:
        _STATE.in_job -= 1
    if _STATE.signum is not None:
        raise Interrupted(_STATE.signum)


@contextlib.contextmanager
def on_stop(hook: Callable[[int], None]) -> Iterator[None]:
    """Run ``hook(signum)`` first when a stop signal arrives inside this block."""
    _STATE.hooks.append(hook)
    try:
        yield
    finally:
        _STATE.hooks.remove(hook)


def worker_init(parent: int) -> None:
    """Make this process a worker of ``parent``: stop on signals and when ``parent`` dies.

    Idempotent (a worker runs many jobs); needs the main thread (loky workers run their
    jobs there).
    """
    if _STATE.worker or threading.current_thread() is not threading.main_thread():
        return
    _STATE.worker = True
    _STATE.parent = parent
    for s in SIGNALS:
        signal.signal(s, _handle)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                     name="disbench-parent-watch").start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent and running(parent):
        time.sleep(WATCH_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)  # handled in the main thread, as a signal from outside


def park(signum: int) -> None:
    """A stopped worker waits here for its parent to end it; it exits (code 128 +
    ``signum``) once the parent is gone. Never returns."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    parent = _STATE.parent
    while parent is not None and os.getppid() == parent and running(parent):
        time.sleep(0.2)
    os._exit(128 + signum)


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (ended, not yet reaped)."""
    if not process_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (not Linux): existing counts as running


def signal_and_wait(pids: list[int], signum: int, busy: Callable[[], list[int]],
                    grace: float) -> list[int]:
    """Send ``signum`` to ``pids``, then wait up to ``grace`` seconds until ``busy()`` (the
    pids still holding work) is empty; returns what it still holds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
    deadline = time.monotonic() + grace
    left = busy()
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = busy()
    return left
