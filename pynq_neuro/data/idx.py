"""Reader and writer for the IDX binary format used by MNIST.

An IDX file is a 4-byte magic (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the big-endian payload
in C order. Files may be gzip-compressed; compression is detected from the
gzip magic bytes (``1f 8b``), not from the file name.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from ..errors import PynqNeuroError

__all__ = ["DataError", "read_idx", "write_idx", "sha256_of_idx"]

PathLike = Union[str, "os.PathLike[str]"]

GZIP_MAGIC = b"\x1f\x8b"
MAX_NDIM = 4

# Type code -> big-endian dtype as stored in the file.
_CODE_TO_DTYPE: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# (kind, itemsize) -> type code, for writing.
_KIND_TO_CODE: dict[tuple[str, int], int] = {
    (dt.kind, dt.itemsize): code for code, dt in _CODE_TO_DTYPE.items()
}
_SUPPORTED = ", ".join(f"0x{c:02X} ({dt.name})" for c, dt in _CODE_TO_DTYPE.items())


class DataError(PynqNeuroError):
    """Raised for every problem with a data file: missing, corrupt, wrong content."""


def _read_uncompressed(path: Path) -> bytes:
    """Return the file content, gunzipped if it starts with the gzip magic."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DataError(
            f"Cannot read IDX file '{path}': {reason}. "
            "Check that the path is correct and the file is readable."
        ) from exc
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"'{path}' is a corrupt or truncated gzip file "
            f"({type(exc).__name__}: {exc}). Delete it and copy or download it again."
        ) from exc


def _parse_header(data: bytes, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """Validate the IDX header; return (file dtype, dims, header length)."""
    if len(data) < 4:
        raise DataError(
            f"'{path}' is not an IDX file: it has {len(data)} bytes, "
            "fewer than the 4-byte magic. The file is empty or truncated."
        )
    if data[0] != 0 or data[1] != 0:
        raise DataError(
            f"'{path}' is not an IDX file: it starts with bytes {data[:2].hex()}, "
            "expected 0000. Check that this is the right file."
        )
    code, ndim = data[2], data[3]
    if code not in _CODE_TO_DTYPE:
        raise DataError(
            f"'{path}' has unsupported IDX type code 0x{code:02X}; "
            f"supported: {_SUPPORTED}."
        )
    if not 1 <= ndim <= MAX_NDIM:
        raise DataError(
            f"'{path}' declares {ndim} dimensions; supported: 1 to {MAX_NDIM}."
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(
            f"'{path}' is truncated inside its header: {len(data)} bytes, "
            f"the header for {ndim} dimensions needs {header_len}."
        )
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    return _CODE_TO_DTYPE[code], tuple(dims), header_len


def _decode(data: bytes, path: Path) -> np.ndarray:
    """Decode uncompressed IDX bytes into a native-endian, C-contiguous copy."""
    dtype, dims, header_len = _parse_header(data, path)
    count = math.prod(dims)
    expected = count * dtype.itemsize
    actual = len(data) - header_len
    if actual != expected:
        problem = "truncated" if actual < expected else "followed by trailing bytes"
        raise DataError(
            f"'{path}' payload is {problem}: the header declares shape {dims} of "
            f"{dtype.name} ({expected} bytes) but {actual} bytes follow the header. "
            "Replace the file with a complete copy."
        )
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=header_len)
    return flat.reshape(dims).astype(dtype.newbyteorder("="), order="C", copy=True)


def read_idx(
    path: PathLike,
    expected_sha256: str | None = None,
    expected_shape: Sequence[int] | None = None,
) -> np.ndarray:
    """Read a raw or gzip IDX file into a new native-endian C-contiguous array.

    ``expected_sha256`` is compared with the SHA-256 of the *uncompressed*
    content; ``expected_shape`` with the shape in the header. Any problem
    raises :class:`DataError`; a partial array is never returned.
    """
    path = Path(path)
    data = _read_uncompressed(path)
    array = _decode(data, path)
    if expected_sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256.lower():
            raise DataError(
                f"Checksum mismatch for '{path}': SHA-256 of the uncompressed "
                f"content is {actual}, expected {expected_sha256.lower()}. The file "
                "is corrupt or not the expected file; replace it with a fresh copy."
            )
    if expected_shape is not None and array.shape != tuple(expected_shape):
        raise DataError(
            f"Shape mismatch for '{path}': the file holds shape {array.shape}, "
            f"expected {tuple(expected_shape)}. Check that this is the right file."
        )
    return array


def sha256_of_idx(path: PathLike) -> str:
    """SHA-256 hex digest of the uncompressed content of a raw or gzip file."""
    return hashlib.sha256(_read_uncompressed(Path(path))).hexdigest()


def _encode(array: np.ndarray) -> bytes:
    """Serialise an array as uncompressed IDX bytes."""
    code = _KIND_TO_CODE.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise ValueError(
            f"Cannot write dtype {array.dtype} as IDX; supported: {_SUPPORTED}."
        )
    if not 1 <= array.ndim <= MAX_NDIM:
        raise ValueError(
            f"Cannot write a {array.ndim}-D array as IDX; supported: 1 to {MAX_NDIM} dims."
        )
    if any(d > 0xFFFFFFFF for d in array.shape):
        raise ValueError(f"Array shape {array.shape} does not fit IDX uint32 dimensions.")
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, code, array.ndim, *array.shape)
    payload = array.astype(_CODE_TO_DTYPE[code], copy=False).tobytes(order="C")
    return header + payload


def _atomic_write(path: Path, payload: bytes) -> None:
    """Write via a temp file in the same directory, fsync, then rename into place."""
    from ..fileio import atomic_write_bytes

    atomic_write_bytes(path, payload)


def write_idx(path: PathLike, array: np.ndarray, compress: bool = False) -> str:
    """Write ``array`` as an IDX file (gzip if ``compress``), atomically.

    Supported dtypes: uint8, int8, int16, int32, float32, float64; 1 to 4
    dims (else ``ValueError``). Returns the SHA-256 of the uncompressed bytes.
    """
    data = _encode(np.asarray(array))
    payload = gzip.compress(data, mtime=0) if compress else data
    _atomic_write(Path(path), payload)
    return hashlib.sha256(data).hexdigest()
