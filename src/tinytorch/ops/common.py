"""Shared plumbing for the op families: the elementwise hot path, operand unwrapping
and argument checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinytorch.autograd import forward_ad, grad_mode
from tinytorch.autograd.node import Node, next_seq, shared_meta
from tinytorch.tensor import Tensor

__all__ = ["Node", "Tensor", "as_tensor", "broadcast_shapes", "check_dim", "data_of",
           "elementwise", "grad_mode", "norm_axis", "number", "reduce_args", "result", "scaled",
           "shape_arg", "tangent_sum", "tracked"]

result = Tensor._from_op
_ndarray = np.ndarray
_new = object.__new__


def data_of(x: Any) -> Any:
    """The array (or Python scalar) behind an operand."""
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, (int, float)):
        return x
    if isinstance(x, (np.ndarray, np.generic)):
        return x
    return Tensor(x).data  # lists and nested sequences follow Tensor's dtype rules


_ONE_INPUT: Any = object()  # ``b`` of elementwise() for an op with one input


def elementwise(fn: Any, node_cls: Any, a: Any, b: Any = _ONE_INPUT, scalar_right: Any = None,
                scalar_left: Any = None) -> Tensor:
    """``fn(a)`` for a one-input op, ``fn(a, b)`` for a two-input one, applied to the
    operands' arrays, recording a ``node_cls`` node when needed: the hot path of every
    elementwise op and arithmetic operator.

    ``scalar_right(tensor, number)`` (and, for commutative ops, ``scalar_left``) is the
    cheaper one-edge node recorded when the other operand is a Python number."""
    saved: tuple[Any, ...]
    c: Any
    ad: Any
    bd: Any
    if b is _ONE_INPUT:
        if not isinstance(a, Tensor):
            return result(fn(data_of(a)), None)
        x = a
        out = fn(x.data)
        if not (x.requires_grad and grad_mode.enabled):
            return result(out, node_cls(x) if grad_mode.extras and _has_tangent(x) else None)
        if not node_cls._plain or grad_mode.extras or type(out) is not _ndarray:
            return result(out, node_cls(x))
        saved = (out,) if node_cls.saves_output else ()
    else:
        if scalar_right is not None and (type(b) is float or type(b) is int) and isinstance(
                a, Tensor):
            x, c, node_cls = a, b, scalar_right
        elif scalar_left is not None and (type(a) is float or type(a) is int) and isinstance(
                b, Tensor):
            x, c, node_cls = b, a, scalar_left  # commutative: fn(b, a) == fn(a, b)
        else:  # two operands of any kind (Tensors, arrays, numbers, lists)
            if isinstance(a, Tensor):
                ad = a.data
                need = a.requires_grad
            else:
                ad = a if type(a) is float or type(a) is int else data_of(a)
                need = False
            if isinstance(b, Tensor):
                bd = b.data
                need = need or b.requires_grad
            else:
                bd = b if type(b) is float or type(b) is int else data_of(b)
            try:
                out = fn(ad, bd)
            except ValueError:
                raise ValueError(
                    f"{fn.__name__}: shapes {np.shape(ad)} and {np.shape(bd)} cannot be "
                    f"broadcast together (trailing dimensions must be equal or 1)"
                ) from None
            if need and grad_mode.enabled:
                return result(out, node_cls(a, b))
            return result(out, node_cls(a, b) if grad_mode.extras and _has_tangent(a, b) else None)
        # a tensor with a Python number: one edge, the number saved
        data = x.data
        numbers = _NUMBERS.get(data.dtype)
        if numbers is None:  # not a float tensor: NumPy's own rules apply
            saved = (c,)
        else:
            saved = numbers.get(c) or _wrap_number(c, data.dtype, numbers)
            c = saved[0]
        out = fn(data, c)
        if not (x.requires_grad and grad_mode.enabled):
            return result(out, node_cls(x, c) if grad_mode.extras and _has_tangent(x) else None)
        if grad_mode.extras or type(out) is not _ndarray:
            return result(out, node_cls(x, c))
    # NOTE: the common case, written out: ``x`` requires grad, grad mode is plain (no
    # anomaly detection, forward AD or saved-tensor hooks), ``out`` has x's shape, and
    # the node saves exactly ``saved``. What Node.__init__ and Tensor._from_op set,
    # without calling them: each Python call here costs a fifth of NumPy's op on a small
    # array, and this runs once per recorded op.
    node = _new(node_cls)
    src = x.grad_fn
    if src is None:
        node._link = x
        node._meta = shared_meta((out.shape, out.dtype))
    else:
        node._link = src
        meta = src._meta  # x's (shape, dtype), the same as out's unless NumPy changed the
        # dtype (a big-endian input gives a native-order output)
        node._meta = meta if meta[1] is out.dtype else shared_meta((meta[0], out.dtype))
    node._seq = next_seq()
    node._vals = saved
    t = _new(Tensor)
    t.data = out
    t.grad = None
    t.requires_grad = True
    t.grad_fn = node
    return t


# Python numbers met in arithmetic with float tensors, as (0-d array,) per dtype.
_NUMBERS: dict[Any, dict[Any, tuple[Any]]] = {
    np.dtype(d): {} for d in (np.float16, np.float32, np.float64)
}


def number(c: float | int, like: Any) -> Any:
    """The Python number ``c`` as a read-only 0-d array of ``like``'s float dtype
    (cached), for constants in backward rules: ``1 - y * y`` costs NumPy a conversion of
    the Python 1 on every call, ``number(1, y) - y * y`` does not (same bits). For any
    other ``like`` (other dtypes, a Python number) ``c`` comes back as it is."""
    try:
        dtype = like.dtype
    except AttributeError:
        return c
    numbers = _NUMBERS.get(dtype)
    if numbers is None:
        return c
    return (numbers.get(c) or _wrap_number(c, dtype, numbers))[0]


def _wrap_number(c: float | int, dtype: Any, cache: dict[Any, tuple[Any]]) -> tuple[Any]:
    """``c`` as a read-only 0-d array of ``dtype``, in a 1-tuple ready to be saved.

    NumPy rounds a Python number to a float array's dtype before the arithmetic, so
    wrapping it first gives the same bits; a 0-d array of the same dtype then takes
    NumPy's cheapest path, in forward and again in backward. Recent numbers are kept
    (zeros are not: 0.0 and -0.0 are equal keys)."""
    arr = np.asarray(c, dtype)  # a number too large for floats raises here, as in NumPy
    arr.flags.writeable = False  # shared by every node that saved it
    saved = (arr,)
    if c:
        if len(cache) >= 256:
            cache.clear()
        cache[c] = saved
    return saved


def tangent_sum(*terms: Any) -> Any:
    """Sum the terms of a JVP that are present (None stands for a zero tangent)."""
    total = None
    for t in terms:
        if t is not None:
            total = t if total is None else total + t
    return total


def scaled(tangent: Any, factor: Any) -> Any:
    """``tangent * factor``, or None for a missing tangent."""
    return None if tangent is None else tangent * factor


def broadcast_shapes(op: str, *arrays: Any) -> tuple[int, ...]:
    """The common shape of the operands, or a ValueError naming the op and the shapes."""
    shapes = [np.shape(a) for a in arrays]
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        given = " and ".join(str(s) for s in shapes)
        raise ValueError(
            f"{op}: shapes {given} cannot be broadcast together (trailing dimensions must be "
            f"equal or 1)"
        ) from None


def check_dim(op: str, dim: Any, ndim: int) -> int:
    """``dim`` as a non-negative index into ``ndim`` dimensions, or a clear error."""
    n = max(ndim, 1)
    if not isinstance(dim, (int, np.integer)) or not -n <= dim < n:
        raise ValueError(f"{op}: dim {dim!r} is out of range for a tensor with {ndim} "
                         f"dimensions (expected -{n} <= dim < {n})")
    return int(dim) % n


def as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor._from_op(np.asarray(data_of(x)), None)


def tracked(*xs: Any) -> bool:
    """Whether an op on ``xs`` must be recorded (for reverse or forward mode)."""
    if grad_mode.enabled:
        for x in xs:
            if isinstance(x, Tensor) and x.requires_grad:
                return True
    return bool(grad_mode.extras) and _has_tangent(*xs)


def _has_tangent(*xs: Any) -> bool:
    """Whether forward-mode AD is on and some input carries a tangent."""
    if not forward_ad.level:
        return False
    for x in xs:
        if isinstance(x, (list, tuple)):
            if _has_tangent(*x):
                return True
        elif forward_ad.tangent_of(x) is not None:
            return True
    return False


def norm_axis(op: str, axis: Any, ndim: int) -> tuple[int, ...] | None:
    """Normalise ``axis`` (int, tuple, None, negatives) to a sorted tuple, or None."""
    if axis is None:
        return None
    if isinstance(axis, (int, np.integer)):
        axes: tuple[Any, ...] = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    if ndim == 0:
        return None
    return tuple(sorted(out))


def reduce_args(
    op: str, ndim: int, axis: Any, keepdims: bool, dim: Any, keepdim: bool | None
) -> tuple[tuple[int, ...] | None, bool]:
    """Accept NumPy (axis/keepdims) and PyTorch (dim/keepdim) spellings."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{op}: give either axis or dim, not both")
        axis = dim
    if keepdim is not None:
        keepdims = keepdim
    return norm_axis(op, axis, ndim), bool(keepdims)


def kept_shape(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    """``shape`` with the reduced axes set to 1 (the keepdims shape)."""
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def shape_arg(shape: Sequence[Any]) -> tuple[int, ...]:
    """Accept ``f(2, 3)`` and ``f((2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)
