"""The data of a run: :func:`disbench.datasets.get`, with unreadable cache files named.

A truncated download or a damaged cache file surfaces deep inside a loader as an
``EOFError`` (gzip), a ``zipfile.BadZipFile`` (npz, zip) or an ``OSError`` without an errno
(h5py's "truncated file"); :func:`open_dataset` turns each into one line naming the
dataset, its cache folder and the command that rebuilds or re-downloads it. Errors of the
disk itself (an ``OSError`` with an errno: full, read-only) pass through unchanged, for
the command line to name.
"""
from __future__ import annotations

import zipfile
from typing import Any

from disbench.errors import DisbenchError


def open_dataset(name: str, source: str, split: str | None,
                 options: dict[str, Any] | None = None) -> Any:
    """``disbench.datasets.get(name, source=source, split=split, **options)`` (see the module
    docstring)."""
    from disbench import datasets
    from disbench.paths import dataset_dir

    try:
        return datasets.get(name, source=source, split=split, **(options or {}))
    except (EOFError, zipfile.BadZipFile, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        first = (str(exc).splitlines() or [""])[0]
        raise DisbenchError(
            f"dataset {name!r} ({source}, split {split}): a file in its cache "
            f"{dataset_dir(name)} is truncated or corrupt ({type(exc).__name__}: {first}); "
            f"run 'disbench datasets prepare {name} --source {source}' to rebuild or "
            "download it again (or delete the damaged file)"
        ) from None
