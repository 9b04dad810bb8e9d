"""Movement and indexing ops: reshape, transpose, expand, join, split, pad, index.

Outputs that NumPy returns as views share the input's version counter, so an
in-place change through either is seen by saved-tensor checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinytorch.ops.common import Node, Tensor, check_dim, data_of, result, shape_arg, tracked


def _view(out: np.ndarray, x: Any, node: Node | None) -> Tensor:
    t = result(out, node)
    if isinstance(x, Tensor) and np.may_share_memory(out, x.data):
        t._vc = x._counter()
        t._base = x if x._base is None else x._base
    return t


# ----------------------------------------------------------------- reshape family


class ReshapeBackward(Node):
    def __init__(self, x: Any, original_shape: Any = None) -> None:
        Node.__init__(self, x)
        self.save_for_backward(np.shape(data_of(x)) if original_shape is None
                               else tuple(original_shape))

    def backward(self, g: Any, shape: Any) -> Any:
        return g.reshape(shape)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return reshape(tangents[0], out.shape)


def reshape(x: Any, *shape: Any) -> Tensor:
    """Same elements, new shape (one dimension may be -1).

    >>> import tinytorch as tt
    >>> tt.reshape(tt.tensor([1.0, 2.0, 3.0, 4.0]), 2, -1).shape
    (2, 2)
    """
    xd = data_of(x)
    new = shape_arg(shape)
    try:
        out = np.reshape(xd, new)
    except ValueError:
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {np.shape(xd)} ({np.size(xd)} elements) "
            f"into shape {new}"
        ) from None
    return _view(out, x, ReshapeBackward(x) if tracked(x) else None)


view = reshape


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions ``start_dim..end_dim`` into one."""
    shape = np.shape(data_of(x))
    if not shape:
        return reshape(x, 1)
    s, e = check_dim("flatten", start_dim, len(shape)), check_dim("flatten", end_dim, len(shape))
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = int(np.prod(shape[s:e + 1], dtype=np.int64))
    return reshape(x, shape[:s] + (merged,) + shape[e + 1:])


def squeeze(x: Any, dim: Any = None) -> Tensor:
    """Drop size-1 dimensions (all, or the given ones that have size 1)."""
    shape = np.shape(data_of(x))
    if dim is None:
        new = tuple(n for n in shape if n != 1)
    else:
        dims = {check_dim("squeeze", d, len(shape))
                for d in ((dim,) if isinstance(dim, (int, np.integer)) else dim)}
        new = tuple(n for i, n in enumerate(shape) if not (i in dims and n == 1))
    return reshape(x, new)


def unsqueeze(x: Any, dim: int) -> Tensor:
    """Insert a size-1 dimension at ``dim`` (negative counts from the end)."""
    shape = np.shape(data_of(x))
    if not -len(shape) - 1 <= dim <= len(shape):
        raise ValueError(f"unsqueeze: dim {dim} out of range for shape {shape}")
    d = dim % (len(shape) + 1)
    return reshape(x, shape[:d] + (1,) + shape[d:])


# ----------------------------------------------------------------- axis order


class PermuteBackward(Node):
    def __init__(self, x: Any, axes: Any) -> None:
        Node.__init__(self, x)
        self.save_for_backward(tuple(int(i) for i in np.argsort(axes)))

    def backward(self, g: Any, inverse: Any) -> Any:
        return g.transpose(inverse)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        axes = tuple(int(i) for i in np.argsort(self.saved_tensors[0]))  # invert the inverse
        return permute(tangents[0], axes)


class TransposeBackward(Node):
    def __init__(self, x: Any, dim0: int = -2, dim1: int = -1) -> None:
        Node.__init__(self, x)
        self.save_for_backward(dim0, dim1)

    def backward(self, g: Any, dim0: int, dim1: int) -> Any:
        return g.swapaxes(dim0, dim1)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return swapaxes(tangents[0], *self.saved_tensors)


def permute(x: Any, *dims: Any) -> Tensor:
    """Reorder all dimensions: ``permute(x, 2, 0, 1)``."""
    xd = data_of(x)
    axes = shape_arg(dims)
    if sorted(a % max(np.ndim(xd), 1) for a in axes) != list(range(np.ndim(xd))):
        raise ValueError(f"permute: {axes} is not a permutation of the {np.ndim(xd)} "
                         f"dimensions of shape {np.shape(xd)}")
    axes = tuple(a % np.ndim(xd) for a in axes)
    out = np.transpose(xd, axes)
    return _view(out, x, PermuteBackward(x, axes) if tracked(x) else None)


def swapaxes(x: Any, axis1: int, axis2: int) -> Tensor:
    """Exchange two dimensions."""
    xd = data_of(x)
    try:
        out = np.swapaxes(xd, axis1, axis2)
    except np.exceptions.AxisError:
        raise ValueError(f"swapaxes: axes ({axis1}, {axis2}) out of range for shape "
                         f"{np.shape(xd)}") from None
    return _view(out, x, TransposeBackward(x, axis1, axis2) if tracked(x) else None)


def transpose(x: Any, *axes: Any) -> Tensor:
    """``transpose(x)`` swaps the last two dimensions (reverses a 1-D/2-D tensor);
    ``transpose(x, d0, d1)`` swaps two dimensions (PyTorch); a full permutation
    (``transpose(x, (2, 0, 1))`` or three or more ints) reorders all of them (NumPy)."""
    nd = np.ndim(data_of(x))
    if not axes:
        return swapaxes(x, -2, -1) if nd >= 2 else reshape(x, np.shape(data_of(x)))
    if len(axes) == 2 and all(isinstance(a, (int, np.integer)) for a in axes):
        return swapaxes(x, axes[0], axes[1])
    return permute(x, *axes)


# ----------------------------------------------------------------- broadcasting


class ExpandBackward(Node):
    def backward(self, g: Any) -> Any:
        return g  # the engine sums the gradient back to the input's shape

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return broadcast_to(tangents[0], out.shape)


def broadcast_to(x: Any, shape: Sequence[int]) -> Tensor:
    """Read-only broadcast view with ``shape``."""
    xd = data_of(x)
    shape = tuple(int(s) for s in shape)
    try:
        out = np.broadcast_to(xd, shape)
    except ValueError:
        raise ValueError(
            f"broadcast_to: cannot broadcast shape {np.shape(xd)} to {shape}"
        ) from None
    return _view(out, x, ExpandBackward(x) if tracked(x) else None)


def expand(x: Any, *sizes: Any) -> Tensor:
    """PyTorch's ``expand``: like ``broadcast_to``; -1 keeps a dimension's size."""
    shape = np.shape(data_of(x))
    new = shape_arg(sizes)
    lead = len(new) - len(shape)
    if lead < 0:
        raise ValueError(f"expand: shape {new} has fewer dimensions than the tensor's {shape}")
    full = tuple(shape[i - lead] if (n == -1 and i >= lead) else n for i, n in enumerate(new))
    return broadcast_to(x, full)


# ----------------------------------------------------------------- join and split


class CatBackward(Node):
    def __init__(self, tensors: Sequence[Any], axis: int) -> None:
        Node.__init__(self, *tensors)
        sizes = [np.shape(data_of(t))[axis] for t in tensors]
        self.save_for_backward(axis, np.cumsum(sizes)[:-1].tolist())

    def backward(self, g: Any, axis: int, cuts: list[int]) -> Any:
        bounds = [0, *cuts, g.shape[axis]]
        lead = (slice(None),) * axis
        return tuple(g[lead + (slice(lo, hi),)] for lo, hi in zip(bounds[:-1], bounds[1:]))

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return cat(_zeros_for_missing(primals, tangents, out.dtype), self.saved_tensors[0])


def _norm_dim(op: str, dim: int, ndim: int) -> int:
    if not -ndim <= dim < ndim:
        raise ValueError(f"{op}: dim {dim} out of range for {ndim}-dimensional tensors")
    return dim % ndim


def cat(tensors: Sequence[Any], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join tensors along an existing dimension.

    >>> import tinytorch as tt
    >>> tt.cat([tt.tensor([1.0]), tt.tensor([2.0, 3.0])]).shape
    (3,)
    """
    if axis is not None:
        dim = axis
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    datas = [np.asarray(data_of(t)) for t in tensors]
    if any(d.ndim == 0 for d in datas):
        raise ValueError("cat: zero-dimensional tensors cannot be concatenated; use stack")
    d = _norm_dim("cat", dim, datas[0].ndim)
    try:
        out = np.concatenate(datas, axis=d)
    except ValueError:
        raise ValueError(
            f"cat: shapes {[x.shape for x in datas]} differ outside dimension {dim}"
        ) from None
    return result(out, CatBackward(tensors, d) if tracked(*tensors) else None)


concatenate = cat


class StackBackward(Node):
    def __init__(self, tensors: Sequence[Any], axis: int) -> None:
        Node.__init__(self, *tensors)
        self.save_for_backward(axis, len(tensors))

    def backward(self, g: Any, axis: int, n: int) -> Any:
        lead = (slice(None),) * axis
        return tuple(g[lead + (i,)] for i in range(n))

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return stack(_zeros_for_missing(primals, tangents, out.dtype), self.saved_tensors[0])


def _zeros_for_missing(primals: Any, tangents: Any, dtype: Any) -> list[Any]:
    """Tangents of joined inputs, with zeros standing in for the inputs without one."""
    return [Tensor._from_op(np.zeros(np.shape(data_of(p)), dtype=dtype), None) if t is None
            else t for p, t in zip(primals, tangents)]


def stack(tensors: Sequence[Any], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join same-shape tensors along a new dimension."""
    if axis is not None:
        dim = axis
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    datas = [np.asarray(data_of(t)) for t in tensors]
    shapes = {x.shape for x in datas}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors need the same shape, got {[x.shape for x in datas]}")
    d = _norm_dim("stack", dim, datas[0].ndim + 1)
    out = np.stack(datas, axis=d)
    return result(out, StackBackward(tensors, d) if tracked(*tensors) else None)


def split(x: Any, split_size_or_sections: Any, dim: int = 0) -> list[Tensor]:
    """PyTorch's split: pieces of size ``n`` (the last may be smaller), or of the
    listed sizes."""
    shape = np.shape(data_of(x))
    d = _norm_dim("split", dim, len(shape))
    total = shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        n = int(split_size_or_sections)
        if n <= 0:
            raise ValueError(f"split: split size must be positive, got {n}")
        sizes = [min(n, total - i) for i in range(0, total, n)]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != total:
            raise ValueError(f"split: sizes {sizes} do not add up to dimension {dim}'s "
                             f"size {total}")
    lead = (slice(None),) * d
    out, start = [], 0
    for s in sizes:
        out.append(getitem(x, (*lead, slice(start, start + s))))
        start += s
    return out


def chunk(x: Any, chunks: int, dim: int = 0) -> list[Tensor]:
    """Split into ``chunks`` nearly equal pieces (PyTorch's rule: ceil-sized)."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    shape = np.shape(data_of(x))
    total = shape[_norm_dim("chunk", dim, len(shape))]
    size = -(-total // chunks) if total else 1
    return split(x, max(size, 1), dim)



# ----------------------------------------------------------------- pad and tile


class PadBackward(Node):
    def __init__(self, x: Any, widths: Any) -> None:
        Node.__init__(self, x)
        self.save_for_backward(widths)

    def backward(self, g: Any, widths: Any) -> Any:
        index = tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(widths))
        return g[index]

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return pad(tangents[0], self.saved_tensors[0])  # the padding value is a constant: 0


def _pad_widths(op: str, pad: Any, ndim: int) -> list[tuple[int, int]]:
    if isinstance(pad, (int, np.integer)):
        return [(int(pad), int(pad))] * ndim
    pad = list(pad)
    if pad and all(isinstance(p, (tuple, list)) for p in pad):  # NumPy: one pair per axis
        if len(pad) == 1:
            pad = pad * ndim
        if len(pad) != ndim:
            raise ValueError(f"{op}: {len(pad)} (before, after) pairs for {ndim} dimensions")
        widths = [(int(a), int(b)) for a, b in pad]
    else:  # PyTorch: (left, right, top, bottom, ...) starting from the last dimension
        if len(pad) % 2 or len(pad) // 2 > ndim:
            raise ValueError(f"{op}: padding {tuple(pad)} needs an even length of at most "
                             f"{2 * ndim}")
        widths = [(0, 0)] * ndim
        for i in range(len(pad) // 2):
            widths[ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if any(a < 0 or b < 0 for a, b in widths):
        raise ValueError(f"{op}: negative padding {widths}")
    return widths


def pad(x: Any, pad: Any, value: float = 0.0) -> Tensor:
    """Constant padding. ``pad`` is NumPy's ``pad_width`` (pairs per axis, or one int)
    or PyTorch's flat ``(left, right, top, bottom, ...)`` from the last dimension.

    >>> import tinytorch as tt
    >>> tt.pad(tt.tensor([[1.0]]), (1, 1)).tolist()
    [[0.0, 1.0, 0.0]]
    """
    xd = np.asarray(data_of(x))
    widths = _pad_widths("pad", pad, xd.ndim)
    out = np.pad(xd, widths, mode="constant", constant_values=value)
    return result(out, PadBackward(x, widths) if tracked(x) else None)


class TileBackward(Node):
    def __init__(self, x: Any, reps: tuple[int, ...]) -> None:
        Node.__init__(self, x)
        self.save_for_backward(np.shape(data_of(x)), reps)

    def backward(self, g: Any, shape: Any, reps: Any) -> Any:
        # The input shape padded to len(reps); g has shape reps[i] * shape[i] per axis.
        full = (1,) * (len(reps) - len(shape)) + tuple(shape)
        split_shape = [n for pair in zip(reps, full) for n in pair]
        summed = g.reshape(split_shape).sum(axis=tuple(range(0, 2 * len(reps), 2)))
        return summed.reshape(shape)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return tile(tangents[0], self.saved_tensors[1])


def tile(x: Any, *reps: Any) -> Tensor:
    """Repeat the whole tensor ``reps`` times along each dimension (NumPy's ``tile``,
    PyTorch's ``repeat``)."""
    xd = np.asarray(data_of(x))
    r = shape_arg(reps)
    if any(n < 0 for n in r):
        raise ValueError(f"tile: negative repetitions {r}")
    if len(r) < xd.ndim:
        r = (1,) * (xd.ndim - len(r)) + r
    out = np.tile(xd, r)
    return result(out, TileBackward(x, r) if tracked(x) else None)


repeat = tile


# ----------------------------------------------------------------- indexing


def _index_arrays(index: Any) -> Any:
    """Tensors inside an index become arrays; lists become integer/bool arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(_index_arrays(i) for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _is_basic(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice))
               for p in parts)


class GetItemBackward(Node):
    def __init__(self, x: Any, index: Any) -> None:
        Node.__init__(self, x)
        self.save_for_backward(np.shape(data_of(x)), _index_arrays(index))

    def backward(self, g: Any, shape: Any, index: Any) -> Any:
        return scatter_add(g, index, shape)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return getitem(tangents[0], self.saved_tensors[1])


SliceBackward = GetItemBackward


def getitem(x: Any, index: Any) -> Tensor:
    """``x[index]``: ints, slices, ``...``, ``None``, integer arrays, boolean masks.
    Repeated indices add up in the gradient."""
    xd = data_of(x)
    idx = _index_arrays(index)
    try:
        out = np.asarray(xd)[idx]
    except IndexError as exc:
        raise IndexError(f"getitem: index {index!r:.60} is invalid for shape "
                         f"{np.shape(xd)}: {exc}") from None
    node = GetItemBackward(x, idx) if tracked(x) else None
    return _view(out, x, node) if _is_basic(idx) else result(out, node)


class ScatterAddBackward(Node):
    def __init__(self, g: Any, index: Any) -> None:
        Node.__init__(self, g)
        self.save_for_backward(index)

    def backward(self, gg: Any, index: Any) -> Any:
        return gg[index]

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return scatter_add(tangents[0], self.saved_tensors[0], out.shape)


def scatter_add(values: Any, index: Any, shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` with ``values`` added at ``index`` (``np.add.at``).

    Works on arrays and on Tensors (then it is recorded, for higher-order gradients).
    """
    vd = data_of(values)
    out = np.zeros(shape, dtype=np.result_type(vd))
    if _is_basic(index):
        out[index] = vd
    else:
        np.add.at(out, index, vd)
    if isinstance(values, Tensor):
        return result(out, ScatterAddBackward(values, index) if tracked(values) else None)
    return out


class IndexPutBackward(Node):
    def __init__(self, x: Any, index: Any, value: Any) -> None:
        Node.__init__(self, x, value)
        keep = np.ones(np.shape(data_of(x)), dtype=bool)
        keep[index] = False
        self.save_for_backward(keep, index)

    def backward(self, g: Any, keep: Any, index: Any) -> Any:
        need_x, need_v = self.needs_input_grad
        return (g * keep if need_x else None), (g[index] if need_v else None)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        (x, _), (tx, tv) = primals, tangents
        if tx is None:
            tx = Tensor._from_op(np.zeros(np.shape(data_of(x)), dtype=out.dtype), None)
        return index_put(tx, self.saved_tensors[1], 0.0 if tv is None else tv)


def index_put(x: Any, index: Any, value: Any) -> Tensor:
    """Out-of-place ``x[index] = value`` (what ``Tensor.__setitem__`` records)."""
    xd = data_of(x)
    idx = _index_arrays(index)
    out = np.array(xd, copy=True)
    try:
        out[idx] = data_of(value)
    except (ValueError, IndexError) as exc:
        raise type(exc)(f"setitem: cannot assign a value of shape {np.shape(data_of(value))} "
                        f"at index {index!r:.60} of a tensor of shape {np.shape(xd)}: "
                        f"{exc}") from None
    return result(out, IndexPutBackward(x, idx, value) if tracked(x, value) else None)

