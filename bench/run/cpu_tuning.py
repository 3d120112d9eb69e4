"""Process-wide settings for training on the CPU, applied once per process.

glibc's malloc returns freed memory to the system eagerly: a chunk above the (dynamic)
mmap threshold is unmapped when freed, and free space above ``M_TRIM_THRESHOLD`` at the
top of the heap is given back with ``sbrk``. A training step frees its activations and
allocates them again at the next step, so with the defaults every step faults the same
pages back in (zero-filled by the kernel). Raising the thresholds (``mallopt(3)``,
called through :mod:`ctypes`) keeps that memory in the process: the step reuses it.
It changes where buffers live, not what is computed: the losses stay bit for bit the same
(``tests/test_cpu_tuning.py``), measured in ``python -m disbench.perf --only train``
(``results/perf.md``, CPU section).

OpenMP (torch's intra-op threads, GNU libgomp in the pip wheels) by default lets an idle
thread spin for a while before it sleeps. With two threads on two cores and another
process running, the spinning thread takes the core the working one needs: a
two-thread training process ran at a fifth of its speed with OMP_WAIT_POLICY=PASSIVE
(same numbers). :func:`set_openmp_env` sets ``OMP_WAIT_POLICY=PASSIVE`` unless the user
set it; the runtime reads it when it is loaded, so the ``disbench`` command calls it before
anything imports torch, and a sweep's worker processes inherit it. Thread counts are not
changed (they change the numbers): a single run keeps torch's default (one thread per
core), a sweep gives each worker ``cores // jobs`` threads (:mod:`disbench.sweeps.sweep`).

:func:`tune_cpu` is called before training or evaluating on the CPU by the trainer
(:mod:`disbench.run.trainer`) and :func:`disbench.run.evaluate.evaluate_run`, in whatever
process does it (``disbench train``, a sweep's worker processes), and by each of a sweep's
worker processes when it starts (host memory only, so harmless there on CUDA too). It is a
no-op where glibc's ``mallopt`` is absent (macOS, Windows, musl) and never raises.
"""
from __future__ import annotations

import ctypes
import logging
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: mallopt(3) parameter numbers (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

#: The settings applied (mallopt(3) of the Linux man-pages). The mmap threshold is the
#: ceiling of glibc's own dynamic threshold on 64-bit systems (``DEFAULT_MMAP_THRESHOLD_MAX``,
#: 32 MiB): a batch's activations (the largest 8 MiB at batch 64 on 64x64 images) come from
#: the heap and are reused, larger arrays (datasets) are still mapped and unmapped on their
#: own. Setting any of these turns glibc's dynamic adjustment off, so all three are set: the
#: trim threshold alone would leave the mmap threshold at 128 KiB (measured: slower). Free
#: memory at the top of the heap is kept up to 512 MiB (a few steps' worth of buffers at
#: batch 64; the peak resident size is unchanged, it just is not given back), and the heap
#: grows 64 MiB at a time.
MALLOPT_SETTINGS: dict[str, int] = {
    "M_MMAP_THRESHOLD": 32 * 2**20,
    "M_TRIM_THRESHOLD": 512 * 2**20,
    "M_TOP_PAD": 64 * 2**20,
}
_PARAMS = {"M_TRIM_THRESHOLD": M_TRIM_THRESHOLD, "M_TOP_PAD": M_TOP_PAD,
           "M_MMAP_THRESHOLD": M_MMAP_THRESHOLD}


#: OpenMP settings put in the environment (unless already there) by :func:`set_openmp_env`
OPENMP_ENV: dict[str, str] = {"OMP_WAIT_POLICY": "PASSIVE"}


@dataclass(frozen=True)
class CpuTuning:
    """What :func:`tune_cpu` did in this process.

    ``applied``: the mallopt settings that glibc accepted, by name; ``reason``: why none
    were applied (empty when some were).
    """

    applied: dict[str, int] = field(default_factory=dict)
    reason: str = ""


_DONE: CpuTuning | None = None


def glibc_mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt`` as a ctypes function, or None where this is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        fn = ctypes.CDLL(None).mallopt  # the process's own libc
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def set_malloc_thresholds(settings: dict[str, int] | None = None) -> CpuTuning:
    """Call ``mallopt`` for each of ``settings`` (default :data:`MALLOPT_SETTINGS`).

    Returns what was applied; never raises (a refused setting is left out and logged).
    """
    settings = MALLOPT_SETTINGS if settings is None else settings
    try:
        fn = glibc_mallopt()
    except Exception as exc:  # noqa: BLE001 -- tuning is optional; training goes on
        return CpuTuning(reason=f"mallopt unavailable ({type(exc).__name__}: {exc})")
    if fn is None:
        return CpuTuning(reason="not glibc: no mallopt")
    applied = {}
    for name, value in settings.items():
        try:
            ok = fn(_PARAMS[name], int(value))
        except Exception as exc:  # noqa: BLE001
            log.debug("mallopt(%s, %d) failed: %s", name, value, exc)
            continue
        if ok == 1:  # mallopt returns 1 on success, 0 on error
            applied[name] = int(value)
        else:
            log.debug("mallopt(%s, %d) was refused", name, value)
    return CpuTuning(applied, "" if applied else "mallopt refused every setting")


def tune_cpu() -> CpuTuning:
    """Apply the CPU training settings once per process; later calls return the same."""
    global _DONE
    if _DONE is None:
        _DONE = set_malloc_thresholds()
        log.debug("CPU tuning: %s", _DONE)
    return _DONE


def tune_for(device: Any) -> CpuTuning | None:
    """:func:`tune_cpu` when ``device`` (a :class:`torch.device`) is the CPU, else None."""
    return tune_cpu() if getattr(device, "type", device) == "cpu" else None


def set_openmp_env(environ: Any = None) -> dict[str, str]:
    """Put :data:`OPENMP_ENV` into ``environ`` (default ``os.environ``) where not set.

    Returns the variables set. It takes effect for OpenMP runtimes loaded afterwards (in
    this process: before ``import torch``) and for processes started afterwards.
    """
    environ = os.environ if environ is None else environ
    added = {k: v for k, v in OPENMP_ENV.items() if k not in environ}
    environ.update(added)
    return added
