"""A safe reader for IDX files (the MNIST format), plain or gzip-compressed.

Layout: two zero bytes, a dtype code, the number of dimensions ``n``, then ``n``
big-endian uint32 sizes, then the values (big-endian), row-major. The header is checked
against the file's actual length before any array is allocated: a plain file must
hold exactly the bytes its header promises, and a gzip file cannot promise more than
deflate's maximum ratio allows; truncated or padded data is an error.

>>> import gzip, os, tempfile
>>> import numpy as np
>>> from tinytorch.data import read_idx
>>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
>>> with gzip.open(path, "wb") as f:
...     _ = f.write(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 2, 1]))
>>> read_idx(path)
array([7, 2, 1], dtype=uint8)
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import sys
import zlib
from typing import IO, Any

import numpy as np

__all__ = ["DatasetError", "DatasetNotFoundError", "read_idx"]

# IDX dtype codes; multi-byte values are big-endian on disk.
_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
# NOTE: deflate expands at most ~1032:1, so a gzip file of S bytes holds < 1032 * S.
_MAX_DEFLATE_RATIO = 1032
_CHUNK = 1 << 20


class DatasetError(ValueError):
    """A dataset file is missing, malformed or truncated."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset is not on this machine; the message says how to get it."""


def _read_exact(stream: IO[bytes], n: int, path: str, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise DatasetError(f"read_idx: {path} is truncated: it ends inside the {what} "
                           f"(needed {n} bytes, got {len(data)})")
    return data


def _read_body(stream: IO[bytes], path: str, size: int, gz: bool) -> np.ndarray:
    magic = _read_exact(stream, 4, path, "magic number")
    if magic[:2] != b"\0\0":
        raise DatasetError(f"read_idx: {path} is not an IDX file: magic number "
                           f"0x{magic.hex()} should start with 0x0000 (0x00000803 for images, "
                           f"0x00000801 for labels)")
    code, ndim = magic[2], magic[3]
    if code not in _DTYPES:
        raise DatasetError(f"read_idx: {path} has unknown IDX dtype code 0x{code:02x}; "
                           f"expected one of {', '.join(f'0x{c:02x}' for c in _DTYPES)}")
    if ndim == 0:
        raise DatasetError(f"read_idx: {path} declares 0 dimensions; expected at least 1")
    dims = struct.unpack(f">{ndim}I", _read_exact(stream, 4 * ndim, path, "header sizes"))
    dtype = _DTYPES[code]
    nbytes = math.prod(dims) * dtype.itemsize
    header = 4 + 4 * ndim
    if not gz and size - header != nbytes:
        problem = "truncated" if size - header < nbytes else "longer than its header says"
        raise DatasetError(f"read_idx: {path} is {problem}: header says shape {dims} of "
                           f"{dtype.name} ({nbytes} bytes of data), the file holds "
                           f"{size - header} bytes after the {header}-byte header")
    if gz and nbytes > _MAX_DEFLATE_RATIO * size:
        raise DatasetError(f"read_idx: {path} is corrupt: header says shape {dims} "
                           f"({nbytes} bytes), more than a {size}-byte gzip file can hold")
    arr = np.empty(dims, dtype)
    buf = memoryview(arr.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
    pos = 0
    while pos < nbytes:
        got = stream.readinto(buf[pos:pos + _CHUNK])  # type: ignore[attr-defined]
        if not got:
            raise DatasetError(f"read_idx: {path} is truncated: header says shape {dims} "
                               f"({nbytes} bytes of data), the data ends after {pos} bytes")
        pos += got
    if stream.read(1):
        raise DatasetError(f"read_idx: {path} is longer than its header says: data continues "
                           f"past the {nbytes} bytes of shape {dims}")
    if dtype.byteorder == ">" and sys.byteorder == "little":
        arr = arr.byteswap(inplace=True).view(dtype.newbyteorder("<"))
    return arr


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzip-compressed or plain; detected from its first bytes) into a
    native-endian array. Raises ``DatasetError`` for anything malformed or truncated and
    ``DatasetNotFoundError`` when the file does not exist."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        raw = open(path, "rb")  # noqa: SIM115  (closed below)
    except FileNotFoundError:
        raise DatasetNotFoundError(f"read_idx: no such file: {path}") from None
    except OSError as exc:
        raise DatasetError(f"read_idx: cannot open {path}: {exc}") from None
    with raw:
        gz = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        if not gz:
            return _read_body(raw, path, size, gz=False)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return _read_body(stream, path, size, gz=True)  # type: ignore[arg-type]
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"read_idx: {path} is a damaged gzip file: {exc}") from None
