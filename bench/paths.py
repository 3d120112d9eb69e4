"""Where disbench keeps data: ``$DISBENCH_DATA`` (default ``~/.cache/disbench``)."""
from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    """The dataset cache folder, ``$DISBENCH_DATA`` or ``~/.cache/disbench``."""
    root = os.environ.get("DISBENCH_DATA")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "disbench"


def dataset_dir(name: str) -> Path:
    """The cache folder of one dataset: ``data_root()/name``."""
    return data_root() / name
