"""The user-facing error type, and the argument checks every layer shares.

:class:`DisbenchError` is what the command line turns into one line. The checks below are
here (a leaf module that datasets, metrics and baselines may import) so that each
argument kind has one owner: :func:`check_random_state` for seeds and random states,
:func:`random_integers` for drawing from either numpy generator type, and
:func:`resolve_device` for ``--device`` values.
"""
from __future__ import annotations

from typing import Any


class DisbenchError(Exception):
    """A user-facing error: the message names the file or argument and the fix.

    The CLI prints ``error: <message>`` and exits non-zero (no traceback unless
    ``--debug``).
    """


def check_random_state(random_state: Any, name: str = "random_state") -> Any:
    """Turn ``random_state`` into a numpy random state, as scikit-learn's function does.

    Parameters
    ----------
    random_state : int, numpy.random.RandomState or numpy.random.Generator
        An int seeds a new ``RandomState`` (the generator disentanglement_lib's metrics
        draw from, so seeded numbers match it); a ``RandomState`` or ``Generator`` is
        returned as it is, so a caller that passes one keeps drawing from its stream.
    name : str
        The argument's name, for the error message.

    Returns
    -------
    numpy.random.RandomState or numpy.random.Generator

    Raises
    ------
    ValueError
        For anything else, ``None`` included: disbench never draws from the global
        generator, so that every number is reproducible from an explicit seed.
    """
    import numpy as np

    if isinstance(random_state, (np.random.RandomState, np.random.Generator)):
        return random_state
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"{name}: a seed must be >= 0, got {random_state}")
        return np.random.RandomState(int(random_state))
    raise ValueError(
        f"{name}: expected an int seed, numpy.random.RandomState or numpy.random.Generator, "
        f"got {type(random_state).__name__} (an explicit random state is required)"
    )


def random_integers(rng: Any, high: Any, size: Any) -> Any:
    """int64 integers in ``[0, high)`` from a ``RandomState`` or a ``Generator``.

    ``high`` may be an array (one bound per column), as both numpy APIs allow.
    """
    import numpy as np

    if isinstance(rng, np.random.Generator):
        return rng.integers(0, high, size=size, dtype=np.int64)
    return rng.randint(0, high, size=size).astype(np.int64)


DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: Any = "auto", name: str = "--device") -> Any:
    """The ``torch.device`` for a device argument.

    ``None`` or ``"auto"``: CUDA when a GPU is present, else the CPU. ``"cuda"`` (or
    ``"cuda:N"``) without a GPU and any other string are a :class:`DisbenchError` naming
    ``name``. A ``torch.device`` is returned as it is.
    """
    import torch

    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str) or device.split(":")[0] not in ("cpu", "cuda"):
        raise DisbenchError(f"{name} must be one of {', '.join(DEVICES)}, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DisbenchError(f"{name} {device} was asked for but no CUDA GPU is available; "
                            "use cpu or auto")
    try:
        return torch.device(device)
    except RuntimeError:
        raise DisbenchError(f"{name}: {device!r} is not a device (use cpu, cuda or auto)") from None


def describe_os_error(exc: OSError) -> str:
    """One line for an ``OSError``: what happened, to which file, and the fix.

    Used by the command line (every command) and by a sweep that cannot record a failure.
    """
    import errno

    path = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return (f"disk full{' writing ' + path if path else ''} ({exc.strerror}): free space "
                f"{'there' if path else 'on the disk written to'} or write elsewhere (--out, "
                "$DISBENCH_DATA) and run again (interrupted runs resume)")
    if code == errno.EROFS:
        return (f"{path or 'a file'} is on a read-only file system: write elsewhere (--out, "
                "$DISBENCH_DATA)")
    if code == errno.ENOTDIR:
        return (f"{path}: a part of this path is a file, not a folder: rename that file or "
                "choose another path")
    if code == errno.EEXIST:
        return f"{path} already exists: remove it or choose another path"
    if code in (errno.EACCES, errno.EPERM):
        return (f"permission denied: {path}: change its permissions or write elsewhere "
                "(--out, $DISBENCH_DATA)")
    if code == errno.ENOENT:
        return f"{path or 'a file'} not found: check the path"
    if code == errno.EISDIR:
        return f"{path} is a folder, not a file: pass a file"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason}{': ' + path if path else ''}"
