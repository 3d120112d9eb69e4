"""The per-run lock: exclusive, stale locks of dead owners are broken, racing takers get one win."""
import json
import os
import socket
import subprocess
import sys
import time

from disbench.run import lock


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_exclusive_and_released(tmp_path):
    a = lock.try_lock(tmp_path)
    assert a is not None
    owner = json.loads((tmp_path / ".lock").read_text())
    assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
    assert lock.try_lock(tmp_path) is None  # held by a live process (this one)
    a.release()
    assert not (tmp_path / ".lock").exists()
    b = lock.try_lock(tmp_path)
    assert b is not None
    b.release()


def test_stale_lock_of_dead_process_is_broken(tmp_path):
    (tmp_path / ".lock").write_text(
        json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "time": 0})
    )
    assert lock.is_stale(tmp_path / ".lock")
    got = lock.try_lock(tmp_path)
    assert got is not None
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    got.release()


def test_empty_lock_is_stale_only_when_old(tmp_path):
    path = tmp_path / ".lock"
    path.write_text("")
    assert lock.try_lock(tmp_path) is None  # a writer may be about to fill it in
    old = time.time() - 2 * lock.EMPTY_STALE_SECONDS
    os.utime(path, (old, old))
    got = lock.try_lock(tmp_path)
    assert got is not None
    got.release()


def test_other_host_lock_needs_old_heartbeat(tmp_path):
    path = tmp_path / ".lock"
    path.write_text(json.dumps({"pid": 1, "host": "some-other-node", "time": 0}))
    assert lock.try_lock(tmp_path) is None
    old = time.time() - 2 * lock.REMOTE_STALE_SECONDS
    os.utime(path, (old, old))
    got = lock.try_lock(tmp_path)
    assert got is not None
    got.release()


RACE = """
import sys, time
from disbench.run import lock
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
got = lock.try_lock(sys.argv[1])
print("won" if got is not None else "lost")
time.sleep(1.0)  # hold it while the others try
"""


def test_racing_processes_one_winner_even_over_a_stale_lock(tmp_path):
    (tmp_path / ".lock").write_text(
        json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "time": 0})
    )
    start = time.time() + 2.0
    procs = [
        subprocess.Popen([sys.executable, "-c", RACE, str(tmp_path), str(start)],
                         stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert sorted(outs) == ["lost", "lost", "lost", "won"], outs


def test_clear_stale_removes_only_stale(tmp_path):
    held = lock.try_lock(tmp_path)
    assert not lock.clear_stale(tmp_path) and (tmp_path / ".lock").exists()
    held.release()
    (tmp_path / ".lock").write_text(
        json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "time": 0})
    )
    assert lock.clear_stale(tmp_path) and not (tmp_path / ".lock").exists()
