"""Official files: download with a progress bar, verify a checksum, cache atomically.

A file is fetched to a temp file next to its destination, verified, then renamed, so
nothing half-written ever sits in the cache under the real name.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from disbench.atomic import atomic_path
from disbench.errors import DisbenchError

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class OfficialFile:
    """One published file: where it lives and how to check it.

    ``sha256`` is used where the publisher gives one, else ``md5``.
    """

    name: str
    url: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None

    @property
    def algorithm(self) -> str:
        return "sha256" if self.sha256 else "md5"

    @property
    def expected(self) -> str | None:
        return self.sha256 or self.md5


def file_hash(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: str | os.PathLike, spec: OfficialFile) -> None:
    """Raise :class:`DisbenchError` unless ``path`` matches ``spec``'s size and checksum."""
    path = Path(path)
    if spec.size is not None:
        actual_size = path.stat().st_size
        if actual_size != spec.size:
            raise DisbenchError(
                f"{path}: size {actual_size} bytes, expected {spec.size} (truncated or wrong "
                f"file); delete it and download again from {spec.url}"
            )
    if spec.expected is None:
        return
    actual = file_hash(path, spec.algorithm)
    if actual != spec.expected:
        raise DisbenchError(
            f"{path}: {spec.algorithm} {actual} does not match the published {spec.expected} "
            f"(corrupt, truncated or a different file); delete it and download again from "
            f"{spec.url}"
        )


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _marked_ok(path: Path, spec: OfficialFile) -> bool:
    # Hashing a multi-GB file on every load is slow: remember a verified (size, mtime, hash).
    m = _marker(path)
    if not m.exists():
        return False
    st = path.stat()
    return m.read_text().strip() == f"{st.st_size} {st.st_mtime_ns} {spec.expected}"


def _mark(path: Path, spec: OfficialFile) -> None:
    st = path.stat()
    m = _marker(path)
    with atomic_path(m) as tmp:
        tmp.write_text(f"{st.st_size} {st.st_mtime_ns} {spec.expected}\n")


def ensure_file(spec: OfficialFile, folder: str | os.PathLike, *, download: bool = True,
                progress: bool = True, timeout: float = 60.0) -> Path:
    """Return the verified local path of ``spec`` in ``folder``, downloading it if allowed.

    Raises
    ------
    DisbenchError
        If the file is missing and ``download`` is False or the download fails (the
        message names the URL and the exact path to place the file at), or if the
        checksum does not match (the bad file is not kept under its real name).
    """
    folder = Path(folder)
    path = folder / spec.name
    if path.exists():
        if _marked_ok(path, spec):
            return path
        verify(path, spec)
        _mark(path, spec)
        return path
    if not download:
        raise DisbenchError(
            f"missing official file {spec.name}: download it from {spec.url} and place it at "
            f"{path} (or run 'disbench datasets import NAME DIR' on a folder holding it)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        try:
            _download(spec.url, tmp, progress=progress, timeout=timeout, expected_size=spec.size)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise DisbenchError(
                f"could not download {spec.url} ({exc}); if you are offline, fetch the file "
                f"elsewhere and place it at {path}"
            ) from exc
        verify(tmp, spec)
    _mark(path, spec)
    log.info("downloaded and verified %s", path)
    return path


def _download(url: str, dest: Path, *, progress: bool, timeout: float,
              expected_size: int | None) -> None:
    from tqdm.auto import tqdm

    req = urllib.request.Request(url, headers={"User-Agent": "disbench"})
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(dest, "wb") as out:
        total = resp.headers.get("Content-Length")
        total = int(total) if total else expected_size
        with tqdm(total=total, unit="B", unit_scale=True, desc=Path(url).name,
                  disable=not progress, leave=False) as bar:
            received = 0
            for chunk in iter(lambda: resp.read(_CHUNK), b""):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received < total:
            raise OSError(f"connection closed after {received} of {total} bytes")


def import_file(src: str | os.PathLike, spec: OfficialFile, folder: str | os.PathLike) -> Path:
    """Copy a file the user already has into the cache, verifying it first."""
    src = Path(src)
    verify(src, spec)
    dest = Path(folder) / spec.name
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    _mark(dest, spec)
    return dest
