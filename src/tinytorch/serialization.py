"""Checkpoints in the safetensors format: written atomically, never unpickled.

A file is an 8-byte little-endian header length, a JSON header, then raw little-endian
tensor bytes. ``save`` stores every Tensor/ndarray leaf of a nested dict as a tensor
named by its keys joined with ``'.'``, and the structure with every other (JSON-able)
leaf as one JSON string in the header's ``__metadata__``, so the state comes back with
the same nesting, dtypes, shapes and values. Files written by other safetensors tools
load as a flat ``{name: Tensor}`` dict.

>>> import os, tempfile
>>> import numpy as np
>>> import tinytorch as tt
>>> from tinytorch.serialization import load, save
>>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
>>> weight = tt.tensor(np.ones((2, 3)))
>>> save({"model": {"fc.weight": weight}, "epoch": 3, "config": {"lr": 0.1}}, path)
>>> state = load(path)
>>> state["epoch"], state["config"], state["model"]["fc.weight"].shape
(3, {'lr': 0.1}, (2, 3))
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import struct
import sys
from collections.abc import Iterable
from typing import IO, Any

import numpy as np

from tinytorch.tensor import Tensor

__all__ = ["CheckpointError", "load", "save"]

_DTYPES: dict[str, np.dtype[Any]] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"), "U64": np.dtype("<u8"), "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"), "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in _DTYPES.items()}
_MAX_HEADER = 100 * 2**20  # the limit the reference implementation uses
_META_KEY = "tinytorch"  # __metadata__ entry holding the structure as JSON
_TENSOR = "__tensor__"  # marks a tensor leaf in that structure


class CheckpointError(ValueError):
    """The file is not a valid safetensors checkpoint (truncated, corrupt, or another
    format such as a pickle file)."""


# ----------------------------------------------------------------------------- save
def _flatten(state: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """The JSON structure with tensor markers, and the tensors by name."""
    tensors: dict[str, np.ndarray] = {}

    def walk(value: Any, path: list[str]) -> Any:
        where = ".".join(path) or "<root>"
        if isinstance(value, (Tensor, np.ndarray)):
            arr = value.data if isinstance(value, Tensor) else value
            code = _CODES.get(arr.dtype.newbyteorder("="))
            if code is None:
                raise TypeError(f"save: {where} has dtype {arr.dtype}, which safetensors "
                                f"cannot store; expected one of {sorted(_CODES, key=str)}")
            name = ".".join(path)
            if name in tensors or name == "__metadata__":
                raise ValueError(f"save: two tensors would both be named {name!r}; rename "
                                 f"a key (keys are joined with '.')")
            tensors[name] = np.asarray(arr, dtype=_DTYPES[code], order="C")
            return {_TENSOR: name, "kind": "tensor" if isinstance(value, Tensor) else "ndarray"}
        if isinstance(value, dict):
            for k in value:
                if not isinstance(k, str):
                    raise TypeError(f"save: keys must be strings, got {k!r} "
                                    f"({type(k).__name__}) in {where}")
            if _TENSOR in value:
                raise ValueError(f"save: the key {_TENSOR!r} in {where} is reserved")
            return {k: walk(v, [*path, k]) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v, [*path, str(i)]) for i, v in enumerate(value)]
        if isinstance(value, np.generic) and value.dtype.kind in "biuf":
            return value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"save: cannot store {where} of type {type(value).__name__}; "
                        f"expected Tensors, arrays, dicts, lists, numbers, strings or None")

    return walk(state, []), tensors


def _write_chunks(f: IO[bytes], chunks: Iterable[Any]) -> None:
    for chunk in chunks:
        f.write(chunk)


def _fsync_dir(folder: str) -> None:
    with contextlib.suppress(OSError, AttributeError):  # not possible on every platform
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(path: str, chunks: Iterable[Any]) -> None:
    """Write to a new file beside ``path``, fsync it, rename it over ``path``, fsync the
    folder: readers see the old file or the new one, never a partial one."""
    folder, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_chunks(f, chunks)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def save(state: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``state`` (a nested dict of Tensors/arrays and JSON-able values: numbers,
    strings, None, lists, dicts with string keys) to ``path`` in the safetensors format,
    atomically. Tuples come back as lists and NumPy scalars as Python numbers."""
    if not isinstance(state, dict):
        raise TypeError(f"save: state must be a dict, got {type(state).__name__}")
    structure, tensors = _flatten(state)
    header: dict[str, Any] = {"__metadata__": {_META_KEY: json.dumps(structure)}}
    offset = 0
    for name, arr in tensors.items():
        header[name] = {"dtype": _CODES[arr.dtype.newbyteorder("=")], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # keep the data 8-byte aligned, as the reference does
    chunks = [struct.pack("<Q", len(raw)), raw,
              *(arr.reshape(-1).view(np.uint8) for arr in tensors.values())]
    _atomic_write(os.fspath(path), chunks)


# ----------------------------------------------------------------------------- load
def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate keys")
    return out


def _parse_json(raw: bytes | str, what: str, path: str) -> Any:
    try:
        return json.loads(raw, object_pairs_hook=_reject_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"load: {path} is not a safetensors file: its {what} is not "
                              f"valid JSON ({exc})") from None


def _check_entry(name: str, entry: Any, data_len: int, path: str) -> tuple[Any, ...]:
    def bad(msg: str) -> CheckpointError:
        return CheckpointError(f"load: {path}: tensor {name!r} {msg}")

    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise bad("must be described by exactly 'dtype', 'shape' and 'data_offsets'")
    dtype = entry["dtype"]
    if not isinstance(dtype, str) or (dtype != "BF16" and dtype not in _DTYPES):
        raise bad(f"has unsupported dtype {dtype!r}; expected one of {sorted(_DTYPES)}")
    shape, offsets = entry["shape"], entry["data_offsets"]

    def is_index(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    if not isinstance(shape, list) or len(shape) > 64 or not all(map(is_index, shape)):
        raise bad(f"has invalid shape {shape!r}; expected a list of non-negative ints")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(is_index, offsets))):
        raise bad(f"has invalid data_offsets {offsets!r}; expected [begin, end]")
    begin, end = offsets
    if not begin <= end <= data_len:
        raise bad(f"has data_offsets [{begin}, {end}] outside the {data_len} bytes of data")
    itemsize = 2 if dtype == "BF16" else _DTYPES[dtype].itemsize
    if math.prod(shape) * itemsize != end - begin:
        raise bad(f"has shape {shape} of {dtype} ({math.prod(shape) * itemsize} bytes) but "
                  f"data_offsets [{begin}, {end}] span {end - begin} bytes")
    return name, dtype, tuple(shape), begin, end


def _read_tensor(f: IO[bytes], start: int, dtype: str, shape: tuple[int, ...],
                 path: str, name: str) -> np.ndarray:
    on_disk = np.dtype("<u2") if dtype == "BF16" else _DTYPES[dtype]
    arr = np.empty(shape, on_disk)
    f.seek(start)
    view = memoryview(arr.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
    if f.readinto(view) != arr.nbytes:  # type: ignore[attr-defined]
        raise CheckpointError(f"load: {path} is truncated inside tensor {name!r}")
    if dtype == "BF16":  # bfloat16 is the top half of a float32
        return (arr.astype(np.uint32) << 16).view(np.float32)
    if on_disk.byteorder == "<" and sys.byteorder == "big":
        arr = arr.byteswap(inplace=True).view(on_disk.newbyteorder("="))
    return arr


def _rebuild(structure: Any, arrays: dict[str, np.ndarray], path: str) -> Any:
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if _TENSOR in node:
                name, kind = node.get(_TENSOR), node.get("kind")
                if set(node) != {_TENSOR, "kind"} or not isinstance(name, str) or \
                        name not in arrays or kind not in ("tensor", "ndarray"):
                    raise CheckpointError(f"load: {path}: metadata refers to a missing or "
                                          f"malformed tensor entry {node!r:.200}")
                arr = arrays[name]
                return Tensor._from_op(arr, None) if kind == "tensor" else arr
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    try:
        return walk(structure)
    except RecursionError:
        raise CheckpointError(f"load: {path}: metadata is nested too deeply") from None


def load(path: str | os.PathLike[str]) -> Any:
    """Read a checkpoint written by ``save`` (or any safetensors file, returned as a flat
    ``{name: Tensor}`` dict). Everything is validated before any tensor is allocated;
    anything that is not valid safetensors raises ``CheckpointError``. Never unpickles."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise CheckpointError(f"load: {path} is not a safetensors file: it has only "
                                  f"{size} bytes")
        (n,) = struct.unpack("<Q", f.read(8))
        if n > size - 8 or n > _MAX_HEADER or n < 2:
            raise CheckpointError(
                f"load: {path} is not a safetensors file (a pickle or torch.save file, or a "
                f"truncated one?): its first 8 bytes give a header length of {n}, but the "
                f"file has {size} bytes (and headers are limited to {_MAX_HEADER})")
        raw = f.read(n)
        if raw[:1] != b"{":
            raise CheckpointError(f"load: {path} is not a safetensors file: the header does "
                                  f"not start with '{{'")
        header = _parse_json(raw, "header", path)
        if not isinstance(header, dict):
            raise CheckpointError(f"load: {path}: the header must be a JSON object")
        meta = header.pop("__metadata__", None)
        if meta is not None and not (isinstance(meta, dict) and all(
                isinstance(v, str) for v in meta.values())):
            raise CheckpointError(f"load: {path}: __metadata__ must map strings to strings")
        data_start = 8 + n
        entries = [_check_entry(k, v, size - data_start, path) for k, v in header.items()]
        prev_end, prev_name = 0, None
        for name, _, _, begin, end in sorted(entries, key=lambda e: (e[3], e[4])):
            if begin == end:
                continue
            if begin < prev_end:
                raise CheckpointError(f"load: {path}: tensors {prev_name!r} and {name!r} "
                                      f"overlap in the data section")
            prev_end, prev_name = end, name
        arrays = {name: _read_tensor(f, data_start + begin, dtype, shape, path, name)
                  for name, dtype, shape, begin, _ in entries}
    if meta is None or _META_KEY not in meta:
        return {name: Tensor._from_op(arr, None) for name, arr in arrays.items()}
    return _rebuild(_parse_json(meta[_META_KEY], "metadata", path), arrays, path)
