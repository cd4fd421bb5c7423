"""Safe file helpers shared by every writer and reader of project files (standard library only).

Writing: :func:`atomic_write_bytes` (and the text and JSON forms) puts the complete content into
a temporary file in the target's folder, flushes it to disk, renames it over the target and
flushes the folder, so that the target is at every moment either the old file or the new one,
whole. An interrupted write (exception, ``KeyboardInterrupt``) removes its temporary file.

Reading: :func:`read_regular` opens only regular files (never a FIFO or a device, which could
block or be endless), checks the size before reading and returns exactly those bytes;
:func:`sha256_file` digests a file the same way; :func:`check_zip` accounts for every member of
a zip container (``.npz``, ``.pt``) before a parser sees it.

Errors: :class:`UnsafeFileError` (a ``ValueError``) for a file that is not a regular file, too
large or malformed; ``OSError`` (e.g. ``FileNotFoundError``) passes through unchanged.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import secrets
import stat
import zipfile
from pathlib import Path
from typing import Any

from .errors import PynqNeuroError

CHUNK = 1 << 20
MSDOS_FOLDER = 0x10  # the folder bit of a zip member's external attributes


class UnsafeFileError(PynqNeuroError, ValueError):
    """A file that is not a regular file, is larger than allowed, or is a malformed container."""


def fsync_dir(folder: str | Path) -> None:
    """Flush a folder's entries (new names, renames) to disk, where the file system can."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # a folder that cannot be opened (e.g. on Windows) cannot be synced either
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def write_new_file(path: str | Path, data: bytes) -> None:
    """Create ``path`` (it must not exist; a symbolic link is never followed), write ``data``
    completely and flush it to disk."""
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_BINARY", 0))
    fd = os.open(path, flags, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically (temp file in the same folder, fsync, rename,
    fsync of the folder). The folder must exist; the new file gets the usual permissions."""
    path = Path(path)
    folder = path.parent
    tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        write_new_file(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(folder)


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, **dumps_kwargs: Any) -> None:
    """:func:`atomic_write_bytes` of ``json.dumps(obj, **dumps_kwargs)`` (serialised before the
    file is touched, so an unserialisable object leaves the old file as it was)."""
    atomic_write_text(path, json.dumps(obj, **dumps_kwargs))


def _open_regular(path: str | Path, max_bytes: int) -> tuple[int, int]:
    """An open descriptor of a regular file and its size; refuses anything else or too large."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFileError(f"{path} is not a regular file")
        if st.st_size > max_bytes:
            raise UnsafeFileError(f"{path} has {st.st_size} bytes, more than the {max_bytes} "
                                  "allowed")
        return fd, st.st_size
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path, max_bytes: int) -> bytes:
    """All bytes of the regular file ``path``, at most ``max_bytes`` (checked before reading)."""
    fd, size = _open_regular(path, max_bytes)
    with os.fdopen(fd, "rb") as f:
        data = f.read(size + 1)
    if len(data) != size:
        raise UnsafeFileError(f"{path} changed size while it was read")
    return data


def sha256_bytes(data: bytes) -> str:
    """Lowercase hexadecimal SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, max_bytes: int) -> str:
    """Lowercase hexadecimal SHA-256 of the regular file ``path`` (at most ``max_bytes``)."""
    fd, size = _open_regular(path, max_bytes)
    h = hashlib.sha256()
    seen = 0
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(CHUNK):
            seen += len(chunk)
            if seen > size:
                break
            h.update(chunk)
    if seen != size:
        raise UnsafeFileError(f"{path} changed size while it was read")
    return h.hexdigest()


def check_zip(data: bytes, max_members: int, max_unpacked: int) -> None:
    """Refuse a zip container unless every byte is accounted for: no data before the first
    member or after the end record, at most ``max_members`` uniquely named members holding at
    most ``max_unpacked`` bytes together, none marked as a folder, and every member's CRC-32
    correct."""
    if len(data) < 22 or data[-22:-18] != b"PK\x05\x06" or data[-2:] != b"\0\0":
        raise UnsafeFileError("not a zip container, or data after its end record")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            if not infos or len(infos) > max_members:
                raise UnsafeFileError(f"{len(infos)} members (1..{max_members} allowed)")
            if len({i.filename for i in infos}) != len(infos):
                raise UnsafeFileError("duplicate member names")
            if any(i.is_dir() or i.external_attr & MSDOS_FOLDER for i in infos):
                raise UnsafeFileError("a member is marked as a folder")
            if min(i.header_offset for i in infos) != 0:
                raise UnsafeFileError("data before the first member")
            if sum(i.file_size for i in infos) > max_unpacked:
                raise UnsafeFileError(f"members unpack to more than {max_unpacked} bytes")
            unpacked = 0
            for info in infos:
                with z.open(info) as member:
                    while chunk := member.read(CHUNK):
                        unpacked += len(chunk)
                        if unpacked > max_unpacked:
                            raise UnsafeFileError(f"members unpack to more than {max_unpacked} "
                                                  "bytes")
    except UnsafeFileError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure of the zip reader means a corrupt file
        raise UnsafeFileError(f"corrupt zip container ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
