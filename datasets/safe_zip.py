"""Zip archives that can never write outside their target folder.

Every member name is checked before anything is written: absolute paths, drive letters,
backslashes, ``..`` components and symbolic links are refused with an error naming the
archive and the member. Extraction goes to a temp folder next to the target, renamed
into place only when complete.
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from disbench.errors import DisbenchError


def check_member(info: zipfile.ZipInfo, archive: str | os.PathLike = "<zip>") -> PurePosixPath:
    """The member's relative path, or :class:`DisbenchError` if it could escape the target."""
    name = info.filename
    why = None
    if "\\" in name:
        why = "contains a backslash"
    elif name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        why = "is an absolute path"
    elif any(part == ".." for part in PurePosixPath(name).parts):
        why = "contains '..'"
    elif stat.S_ISLNK(info.external_attr >> 16):
        why = "is a symbolic link"
    elif "\0" in name:
        why = "contains a NUL byte"
    if why:
        raise DisbenchError(
            f"{archive}: refusing unsafe member {name!r} (it {why}); the archive is not the "
            f"official file, delete it and download it again"
        )
    return PurePosixPath(name)


def check_members(zf: zipfile.ZipFile, archive: str | os.PathLike = "<zip>") -> list[str]:
    """Check every member of an open archive; returns the member names."""
    infos = zf.infolist()
    for info in infos:
        check_member(info, archive)
    return [info.filename for info in infos]


def extract(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Safely extract ``archive`` into the folder ``target`` (replacing it atomically)."""
    archive, target = Path(archive), Path(target)
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise DisbenchError(f"{archive}: not a valid zip archive ({exc}); delete it and "
                            f"download it again") from None
    with zf:
        infos = zf.infolist()
        for info in infos:
            check_member(info, archive)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            root = tmp.resolve()
            for info in infos:
                dest = (tmp / info.filename).resolve()
                if root not in dest.parents and dest != root:  # belt and braces
                    raise DisbenchError(f"{archive}: member {info.filename!r} escapes {target}")
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    return target
