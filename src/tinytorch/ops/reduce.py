"""Reductions. Each takes ``axis``/``keepdims`` (NumPy) or ``dim``/``keepdim`` (PyTorch),
ints, tuples and negative axes."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch.ops.common import (
    Node,
    Tensor,
    as_tensor,
    data_of,
    kept_shape,
    reduce_args,
    result,
    tracked,
)

# ----------------------------------------------------------------- sum / mean


class SumBackward(Node):
    def __init__(self, x: Any, axis: Any = None, keepdims: bool = False) -> None:
        Node.__init__(self, x)
        shape = np.shape(data_of(x))
        axes, _ = reduce_args("sum", len(shape), axis, keepdims, None, None)
        self.save_for_backward(shape, kept_shape(shape, axes))

    def backward(self, g: Any, shape: Any, kshape: Any) -> Any:
        return np.broadcast_to(g.reshape(kshape), shape)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        shape, kshape = self.saved_tensors
        return _reduce_like(tangents[0], shape, kshape, out.shape)


def _reduce_like(t: Any, shape: Any, kshape: Any, out_shape: Any) -> Any:
    """Sum ``t`` (of the input's ``shape``) over the axes a reduction collapsed to 1 in
    ``kshape``, then give it the reduction's output shape (with or without keepdims)."""
    axes = tuple(i for i, (n, k) in enumerate(zip(shape, kshape)) if k == 1 and n != 1)
    if axes:
        t = sum(t, axes, True)
    return t.reshape(out_shape)


def sum(  # noqa: A001
    x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
    keepdim: bool | None = None,
) -> Any:
    """Sum over ``axis`` (all axes by default).

    >>> import tinytorch as tt
    >>> tt.sum(tt.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=0)
    tensor([4., 6.])
    """
    xd = data_of(x)
    axes, keep = reduce_args("sum", np.ndim(xd), axis, keepdims, dim, keepdim)
    out = np.sum(xd, axis=axes, keepdims=keep)
    return result(out, SumBackward(x, axes, keep) if tracked(x) else None)


def _count(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> int:
    if axes is None:
        return int(np.prod(shape, dtype=np.int64))
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def mean(
    x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
    keepdim: bool | None = None,
) -> Any:
    """Arithmetic mean over ``axis``: ``sum / count``."""
    x = as_tensor(x)
    axes, keep = reduce_args("mean", x.ndim, axis, keepdims, dim, keepdim)
    n = _count(x.shape, axes)
    if n == 0:
        raise ValueError(f"mean: reducing over an empty axis of shape {x.shape}")
    return sum(x, axes, keep) * (1.0 / n)


def var(
    x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
    keepdim: bool | None = None, ddof: int = 0, correction: int | None = None,
) -> Any:
    """Variance; ``ddof``/``correction`` = 1 gives the unbiased estimate."""
    x = as_tensor(x)
    axes, keep = reduce_args("var", x.ndim, axis, keepdims, dim, keepdim)
    ddof = ddof if correction is None else correction
    n = _count(x.shape, axes) - ddof
    if n <= 0:
        raise ValueError(f"var: {n + ddof} elements with ddof={ddof} leaves no degrees of freedom")
    centered = x - mean(x, axes, True)
    return sum(centered * centered, axes, keep) * (1.0 / n)


def std(
    x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
    keepdim: bool | None = None, ddof: int = 0, correction: int | None = None,
) -> Any:
    """Standard deviation, ``sqrt(var)``."""
    from tinytorch.ops.unary import sqrt

    return sqrt(var(x, axis, keepdims, dim=dim, keepdim=keepdim, ddof=ddof,
                    correction=correction))


# ----------------------------------------------------------------- max / min


class MaxBackward(Node):
    """Gradient goes to the extreme elements; ties share it equally."""

    def __init__(self, x: Any, axis: Any = None, keepdims: bool = False,
                 weights: Any = None) -> None:
        Node.__init__(self, x)
        xd = data_of(x)
        axes, _ = reduce_args("max", np.ndim(xd), axis, keepdims, None, None)
        kshape = kept_shape(np.shape(xd), axes)
        if weights is None:
            weights = _tie_weights(xd, np.max(xd, axis=axes, keepdims=True), axes)
        self.save_for_backward(kshape, weights)

    def backward(self, g: Any, kshape: Any, weights: Any) -> Any:
        return g.reshape(kshape) * weights

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        # NOTE: tied extremes move with the mean of their tangents (the adjoint of
        # sharing the gradient equally).
        kshape, weights = self.saved_tensors
        return _reduce_like(tangents[0] * weights, weights.shape, kshape, out.shape)


class MinBackward(MaxBackward):
    pass


def _tie_weights(xd: np.ndarray, extreme: np.ndarray, axes: Any) -> np.ndarray:
    hit = xd == extreme
    return hit / np.sum(hit, axis=axes, keepdims=True, dtype=xd.dtype)


def _extreme(name: str, fn: Any, node_cls: type[MaxBackward], x: Any, axis: Any,
             keepdims: bool, dim: Any, keepdim: bool | None) -> Any:
    xd = data_of(x)
    axes, keep = reduce_args(name, np.ndim(xd), axis, keepdims, dim, keepdim)
    shape = np.shape(xd)
    if 0 in (shape if axes is None else tuple(shape[a] for a in axes)):
        raise ValueError(f"{name}: reduction over an empty axis of a tensor of shape {shape} "
                         f"has no {name}imum")
    out_k = fn(xd, axis=axes, keepdims=True)
    out = out_k if keep else out_k.reshape(
        () if axes is None else tuple(n for i, n in enumerate(np.shape(xd)) if i not in axes))
    if not tracked(x):
        return result(out, None)
    return result(out, node_cls(x, axes, keep, _tie_weights(xd, out_k, axes)))


def max(  # noqa: A001
    x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
    keepdim: bool | None = None,
) -> Any:
    """Largest value over ``axis``; tied maxima share the gradient."""
    return _extreme("max", np.max, MaxBackward, x, axis, keepdims, dim, keepdim)


def min(  # noqa: A001
    x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
    keepdim: bool | None = None,
) -> Any:
    """Smallest value over ``axis``; tied minima share the gradient."""
    return _extreme("min", np.min, MinBackward, x, axis, keepdims, dim, keepdim)


def _arg(name: str, fn: Any, x: Any, axis: Any, keepdims: bool, dim: Any,
         keepdim: bool | None) -> Tensor:
    xd = data_of(x)
    if dim is not None:
        axis = dim
    if keepdim is not None:
        keepdims = keepdim
    if axis is not None and not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: axis must be a single int, got {axis!r}")
    if np.size(xd) == 0:
        raise ValueError(f"{name}: empty tensor of shape {np.shape(xd)}")
    return result(np.asarray(fn(xd, axis=axis, keepdims=keepdims), dtype=np.int64), None)


def argmax(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
           keepdim: bool | None = None) -> Tensor:
    """Index of the largest value (int64, not differentiable)."""
    return _arg("argmax", np.argmax, x, axis, keepdims, dim, keepdim)


def argmin(x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
           keepdim: bool | None = None) -> Tensor:
    """Index of the smallest value (int64, not differentiable)."""
    return _arg("argmin", np.argmin, x, axis, keepdims, dim, keepdim)


# ----------------------------------------------------------------- logsumexp


class LogsumexpBackward(Node):
    saves_output = True

    def __init__(self, x: Any, axis: Any = None, keepdims: bool = False) -> None:
        Node.__init__(self, x)
        shape = np.shape(data_of(x))
        axes, _ = reduce_args("logsumexp", len(shape), axis, keepdims, None, None)
        self.save_for_backward(x, kept_shape(shape, axes))

    def backward(self, g: Any, x: Any, kshape: Any, y: Any) -> Any:
        # d lse / dx = softmax(x) = exp(x - lse)
        return g.reshape(kshape) * np.exp(x - y.reshape(kshape))

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        x, t = primals[0], tangents[0]
        kshape = self.saved_tensors[1]
        from tinytorch.ops.unary import exp

        return _reduce_like(t * exp(x - out.reshape(kshape)), x.shape, kshape, out.shape)


def _log_softmax_array(xd: np.ndarray, axis: Any) -> np.ndarray:
    """``x - logsumexp(x)`` along ``axis``, as ``(x - max) - log(sum(exp(x - max)))``:
    subtracting the rounded logsumexp itself would cost float32 its precision near 1e4."""
    if xd.size == 0:
        return xd.copy()
    m = np.maximum.reduce(xd, axis=axis, keepdims=True)
    shifted = xd - np.where(np.isfinite(m), m, 0)
    return shifted - np.log(np.add.reduce(np.exp(shifted), axis=axis, keepdims=True))


def _logsumexp_array(xd: np.ndarray, axes: Any, keep: bool) -> np.ndarray:
    if xd.size == 0:  # an empty sum is 0, its log -inf (as PyTorch)
        with np.errstate(divide="ignore"):
            out = np.log(np.sum(np.exp(xd), axis=axes, keepdims=True))
    else:
        m = np.max(xd, axis=axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)
        out = np.log(np.sum(np.exp(xd - m), axis=axes, keepdims=True)) + m
    return out if keep else out.reshape(
        () if axes is None else tuple(n for i, n in enumerate(xd.shape) if i not in axes))


def logsumexp(
    x: Any, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
    keepdim: bool | None = None,
) -> Any:
    """``log(sum(exp(x)))`` computed without overflow.

    >>> import tinytorch as tt
    >>> tt.logsumexp(tt.tensor([1e4, 1e4]))
    tensor(10000.693)
    """
    xd = np.asarray(data_of(x))
    axes, keep = reduce_args("logsumexp", xd.ndim, axis, keepdims, dim, keepdim)
    out = _logsumexp_array(xd, axes, keep)
    return result(out, LogsumexpBackward(x, axes, keep) if tracked(x) else None)


