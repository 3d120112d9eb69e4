import os
import tempfile
from pathlib import Path

import pytest
import torch

# Two cores shared by everything: keep each test process to one intra-op thread.
torch.set_num_threads(1)

REALDATA = Path(
    os.environ.get("DISBENCH_REALDATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata")
).resolve()

# One dataset cache for the whole test session (twins render once), never ~/.cache.
_SESSION_CACHE = tempfile.mkdtemp(prefix="disbench-test-cache-")
os.environ["DISBENCH_DATA"] = _SESSION_CACHE


@pytest.fixture
def realdata() -> Path:
    """The folder of small real data files (``$DISBENCH_REALDATA``, default ../shared/realdata)."""
    if not REALDATA.is_dir():
        pytest.skip(f"real data folder {REALDATA} not found (set DISBENCH_REALDATA)")
    return REALDATA


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    """A fresh, empty ``$DISBENCH_DATA`` for tests of caching and downloads."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("DISBENCH_DATA", str(cache))
    return cache
