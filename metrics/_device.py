"""Where a metric runs a network: the one device rule of the metrics package.

An explicit device goes through :func:`disbench.errors.resolve_device` (``"auto"``,
``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``; a CUDA request without a GPU is a
:class:`~disbench.errors.DisbenchError`). ``None`` means "where the network already is": the
device of its first parameter, or the CPU for a network without parameters.
"""
from __future__ import annotations

from typing import Any

from disbench.errors import resolve_device


def module_device(module: Any, device: Any = None, name: str = "device") -> Any:
    """The ``torch.device`` to run ``module`` on (see the module docstring)."""
    import torch

    if device is not None:
        return resolve_device(device, name)
    try:
        param = next(iter(module.parameters()), None)
    except (AttributeError, TypeError):  # not a torch module: nothing to follow
        param = None
    return param.device if param is not None else torch.device("cpu")
