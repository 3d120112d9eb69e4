"""Official files: download with a progress bar, verify a checksum, cache atomically.

A file is fetched to a temp file next to its destination, verified, then renamed, so
nothing half-written ever sits in the cache under the real name: a failed, truncated,
interrupted or corrupted download leaves neither the real name nor a temp file behind.

A gzip file may also be accepted by the checksum of its decompressed content
(``OfficialFile.gunzip_sha256``): Debian's ``dataset-fashion-mnist`` ships the official
Fashion-MNIST files recompressed without the gzip name/mtime header, so the bytes differ
from the published ones while the data are identical.

Files without a published checksum (``sha256`` and ``md5`` both None: the Scream image,
MPI3D real after its 2025 re-upload) are pinned on first use: the SHA-256 of the first
copy that passes the size check is written to ``<file>.sha256`` beside it and logged
(the dataset's loader then checks the structure: keys, shapes, dtypes), and every later
copy must match it. A user pins a
file on purpose by writing the hex digest into that file (e.g. copied from another
machine); deleting it accepts a new copy.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.client
import logging
import os
import shutil
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from disbench.atomic import atomic_path, file_hash
from disbench.errors import DisbenchError

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class OfficialFile:
    """One published file: where it lives and how to check it.

    ``sha256`` is used where the publisher gives one, else ``md5``. ``gunzip_sha256`` is
    the sha256 of the decompressed content of a ``.gz`` file; when set, a file whose
    bytes differ but whose content matches is accepted too (same data, other gzip
    header). ``size`` (bytes), when known, is reported on a mismatch. ``mirrors`` are
    tried in order when ``url`` fails. ``checksum_source`` says where the checksums come
    from (shown by ``disbench datasets info``). With neither checksum the file is pinned on
    first use (see the module docstring).
    """

    name: str
    url: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    gunzip_sha256: str | None = None
    mirrors: tuple[str, ...] = ()
    checksum_source: str = ""

    @property
    def algorithm(self) -> str:
        return "sha256" if self.sha256 else "md5"

    @property
    def expected(self) -> str | None:
        return self.sha256 or self.md5


def gunzip_hash(path: str | os.PathLike, algorithm: str = "sha256") -> str | None:
    """Hex digest of the decompressed content of a gzip file; None if it is not valid gzip."""
    h = hashlib.new(algorithm)
    try:
        with gzip.open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
    except (OSError, EOFError, zlib.error):
        return None
    return h.hexdigest()


def verify(path: str | os.PathLike, spec: OfficialFile, *, label: str | None = None,
           fix: str | None = None) -> None:
    """Raise :class:`DisbenchError` unless ``path`` matches ``spec``'s checksum (and size).

    ``label`` names the file in messages when ``path`` is a temp file; ``fix`` replaces
    the default advice.
    """
    path = Path(path)
    label = label or str(path)
    fix = fix or (f"delete it and download it again from {spec.url} (or place the official "
                  f"{spec.name} there)")
    if spec.expected is None:
        if spec.size is not None and path.stat().st_size != spec.size:
            raise DisbenchError(
                f"{label}: size {path.stat().st_size} bytes, expected {spec.size} (truncated "
                f"or wrong file); {fix}"
            )
        return
    actual = file_hash(path, spec.algorithm)
    if actual == spec.expected:
        return
    if spec.gunzip_sha256 is not None:
        content = gunzip_hash(path)
        if content == spec.gunzip_sha256:
            return
        detail = (f"; decompressed content sha256 {content or '(not valid gzip)'}, expected "
                  f"{spec.gunzip_sha256}")
    else:
        detail = ""
    size = path.stat().st_size
    size_note = (f", {size} bytes instead of {spec.size}"
                 if spec.size is not None and size != spec.size else f", {size} bytes")
    what = "published"
    if spec.checksum_source.startswith("pinned in "):
        what = spec.checksum_source.replace("pinned in ", "SHA-256 pinned in ")
        fix += f" (or, if this copy is the one you want, delete {spec.checksum_source[10:]})"
    raise DisbenchError(
        f"{label}: {spec.algorithm} {actual} does not match the {what} {spec.expected}"
        f"{detail}{size_note} (corrupt, truncated or a different file); {fix}"
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


def pin_path(folder: str | os.PathLike, spec: OfficialFile) -> Path:
    """Where the SHA-256 of a file without a published checksum is pinned."""
    return Path(folder) / f"{spec.name}.sha256"


def pinned(spec: OfficialFile, folder: str | os.PathLike) -> OfficialFile:
    """``spec``, or for a file without a published checksum the spec with the SHA-256 pinned
    in ``folder`` (unchanged when nothing is pinned yet)."""
    if spec.expected is not None:
        return spec
    pin = pin_path(folder, spec)
    if not pin.is_file():
        return spec
    text = pin.read_text().split()
    sha = text[0].lower() if text else ""
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise DisbenchError(f"{pin}: expected the 64-digit hex SHA-256 of {spec.name}, got "
                            f"{' '.join(text)[:80]!r}; fix it or delete it to pin a new copy")
    return dataclasses.replace(spec, sha256=sha, checksum_source=f"pinned in {pin}")


def record_pin(path: Path, spec: OfficialFile) -> str:
    """Pin the SHA-256 of ``path`` (a file without a published checksum); returns it."""
    sha = file_hash(path)
    pin = pin_path(path.parent, spec)
    with atomic_path(pin) as tmp:
        tmp.write_text(f"{sha}\n")
    log.warning("%s has no published checksum: pinned its SHA-256 %s in %s (copy that file "
                "to pin the same data elsewhere)", path, sha, pin)
    return sha


def pinned_sha256(spec: OfficialFile, folder: str | os.PathLike) -> str | None:
    """The SHA-256 pinned for ``spec`` in ``folder`` (None: none pinned, or published)."""
    if spec.expected is not None:
        return None
    return pinned(spec, folder).sha256


def ensure_file(spec: OfficialFile, folder: str | os.PathLike, *, download: bool = True,
                progress: bool = True, timeout: float = 60.0) -> Path:
    """Return the verified local path of ``spec`` in ``folder``, downloading it if allowed.

    Raises
    ------
    DisbenchError
        If the file is missing and ``download`` is False or the download fails (the
        message names the URL and the exact path to place the file at), or if the
        checksum does not match (the bad download is not kept, under any name).
    """
    folder = Path(folder)
    path = folder / spec.name
    spec = pinned(spec, folder)
    if path.exists():
        if _marked_ok(path, spec):
            return path
        verify(path, spec)
        if spec.expected is None:
            spec = dataclasses.replace(spec, sha256=record_pin(path, spec))
        _mark(path, spec)
        return path
    if not download:
        raise DisbenchError(
            f"missing official file {spec.name}: download it from {spec.url} and place it at "
            f"{path} (or run 'disbench datasets import NAME DIR' on a folder holding it)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    failures = []
    urls = (spec.url, *spec.mirrors)
    for url in urls:
        try:
            with atomic_path(path) as tmp:
                try:
                    _download(spec, url, tmp, progress=progress, timeout=timeout)
                except (urllib.error.URLError, http.client.HTTPException, OSError,
                        ValueError) as exc:
                    raise _Failed(f"could not download {spec.name} from {url} "
                                  f"({_reason(exc)})") from exc
                try:
                    verify(tmp, spec, label=f"{spec.name} downloaded from {url}",
                           fix="the download was discarded")
                except DisbenchError as exc:
                    raise _Failed(str(exc)) from None
            break
        except _Failed as exc:
            failures.append(str(exc))
            if url != urls[-1]:  # the last failure is reported once, in the error below
                log.warning("%s; trying the next mirror", exc)
    else:
        raise DisbenchError(
            f"{'; '.join(failures)}. Nothing was kept. Retry, or fetch the file elsewhere and "
            f"place it at {path}"
        )
    if spec.expected is None:
        spec = dataclasses.replace(spec, sha256=record_pin(path, spec))
    _mark(path, spec)
    log.info("downloaded and verified %s", path)
    return path


class _Failed(Exception):
    """One source failed; the next mirror is tried."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed after {len(exc.partial)} bytes, more were expected"
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _download(spec: OfficialFile, url: str, dest: Path, *, progress: bool,
              timeout: float) -> None:
    from tqdm.auto import tqdm

    req = urllib.request.Request(url, headers={"User-Agent": "disbench"})
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(dest, "wb") as out:
        ctype = resp.headers.get("Content-Type", "")
        if ctype.startswith("text/html") and not spec.name.endswith((".html", ".htm")):
            # Google Drive answers a quota or virus-scan page instead of the file.
            raise OSError(f"the server sent a web page ({ctype}) instead of the file; "
                          f"download it in a browser")
        total = resp.headers.get("Content-Length")
        total = int(total) if total else spec.size
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=spec.name,
                  disable=not progress, leave=False) as bar:
            received = 0
            for chunk in iter(lambda: resp.read(_CHUNK), b""):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise OSError(f"received {received} bytes, expected {total}")


def import_file(src: str | os.PathLike, spec: OfficialFile, folder: str | os.PathLike) -> Path:
    """Copy a file the user already has into the cache, verifying it first."""
    src = Path(src)
    spec = pinned(spec, folder)
    verify(src, spec)
    dest = Path(folder) / spec.name
    if not (dest.exists() and dest.samefile(src)):
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
    if spec.expected is None:
        spec = dataclasses.replace(spec, sha256=record_pin(dest, spec))
    _mark(dest, spec)
    return dest
