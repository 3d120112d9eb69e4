"""The IDX format of MNIST and Fashion-MNIST (LeCun et al.), gzip-compressed or raw.

Header: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions,
then one big-endian int32 per dimension; the data follow in row-major order. The magic
number is the first four bytes read as a big-endian int: 0x00000803 for image files
(N, rows, cols), 0x00000801 for label files (N,).
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
from disbench.atomic import atomic_path
from disbench.errors import DisbenchError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | os.PathLike) -> bytes:
    """The (decompressed) content of a ``.gz`` or raw file; errors name the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DisbenchError(f"missing file {path}") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DisbenchError(
            f"{path}: broken gzip stream ({exc}); the file is truncated or corrupt, delete it "
            f"and download or import it again"
        ) from None


def parse_idx(data: bytes, *, magic: int, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes, checking the magic number and that the length matches the header.

    Parameters
    ----------
    data : bytes
        Decompressed file content.
    magic : int
        Expected magic number, :data:`IMAGES_MAGIC` or :data:`LABELS_MAGIC`.
    source : str
        File name used in error messages.
    """
    if len(data) < 4:
        raise DisbenchError(f"{source}: {len(data)} bytes is too short for an IDX file")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DisbenchError(
            f"{source}: IDX magic number 0x{found:08x}, expected 0x{magic:08x} "
            f"({'images' if magic == IMAGES_MAGIC else 'labels'}); this is not the right "
            f"file (or it is corrupt): replace it with the official one"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DisbenchError(f"{source}: truncated IDX header ({len(data)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise DisbenchError(
            f"{source}: header announces {'x'.join(map(str, dims))} items ({expected} bytes) "
            f"but the content is {len(data)} bytes; the file is truncated or corrupt, replace "
            f"it with the official one"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(path: str | os.PathLike, *, magic: int) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into a read-only uint8 array."""
    return parse_idx(read_bytes(path), magic=magic, source=str(path))


def read_images(path: str | os.PathLike, count: int | None = None) -> np.ndarray:
    """An IDX image file as uint8 (N, 1, rows, cols); ``count`` checks N."""
    arr = read_idx(path, magic=IMAGES_MAGIC)
    _check_count(path, arr.shape[0], count)
    return arr[:, None]


def read_labels(path: str | os.PathLike, count: int | None = None) -> np.ndarray:
    """An IDX label file as int64 (N,); ``count`` checks N."""
    arr = read_idx(path, magic=LABELS_MAGIC)
    _check_count(path, arr.shape[0], count)
    return arr.astype(np.int64)


def _check_count(path: str | os.PathLike, n: int, count: int | None) -> None:
    if count is not None and n != count:
        raise DisbenchError(f"{path}: holds {n} items, expected {count} for this split")


def encode_idx(array: np.ndarray) -> bytes:
    """IDX bytes of a uint8 array (the magic number follows from ``array.ndim``)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    return header + array.tobytes()


def write_idx_gz(path: str | os.PathLike, array: np.ndarray, *, compresslevel: int = 6) -> None:
    """Atomically write ``array`` as a gzip-compressed IDX file."""
    # mtime=0: the same array always gives the same bytes.
    data = gzip.compress(encode_idx(array), compresslevel=compresslevel, mtime=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
