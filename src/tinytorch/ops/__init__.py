"""The op table. Each family module keeps an op's forward and backward together:

- ``unary``: neg, abs, exp, log, sqrt, sin, cos, tanh, sigmoid, erf, clip, clone, cast
- ``binary``: add, sub, mul, div, pow, maximum, minimum, where, comparisons
- ``linalg``: matmul, dot
- ``reduce``: sum, mean, var, std, max, min, argmax, argmin, logsumexp
- ``movement``: reshape, transpose, expand, cat, stack, split, pad, tile, indexing
- ``nn``: relu, leaky_relu, gelu, softplus, softmax, log_softmax
- ``loss``: mse_loss, l1_loss, binary_cross_entropy(_with_logits), cross_entropy, nll_loss
- ``conv``: conv2d, max_pool2d, avg_pool2d, batch_norm (im2col + one BLAS product)

This module also routes NumPy calls on Tensors (``np.exp(t)``, ``np.sum(t)``) to
these ops, which is what lets backward rules run unchanged on Tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch.ops.binary import (
    add,
    div,
    eq,
    ge,
    gt,
    le,
    lt,
    maximum,
    minimum,
    mul,
    ne,
    pow,
    sub,
    where,
)
from tinytorch.ops.conv import avg_pool2d, batch_norm, conv2d, max_pool2d
from tinytorch.ops.linalg import dot, matmul
from tinytorch.ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_loss,
    mse_loss,
    nll_loss,
)
from tinytorch.ops.movement import (
    broadcast_to,
    cat,
    chunk,
    concatenate,
    expand,
    flatten,
    getitem,
    index_put,
    pad,
    permute,
    repeat,
    reshape,
    scatter_add,
    split,
    squeeze,
    stack,
    swapaxes,
    tile,
    transpose,
    unsqueeze,
    view,
)
from tinytorch.ops.nn import gelu, leaky_relu, log_softmax, relu, softmax, softplus
from tinytorch.ops.reduce import argmax, argmin, logsumexp, max, mean, min, std, sum, var
from tinytorch.ops.unary import (
    abs,
    cast,
    clamp,
    clip,
    clone,
    cos,
    erf,
    exp,
    log,
    neg,
    sigmoid,
    sin,
    sqrt,
    tanh,
)
from tinytorch.tensor import Tensor

__all__ = [
    "avg_pool2d", "batch_norm", "binary_cross_entropy_with_logits", "conv2d", "l1_loss",
    "max_pool2d", "nll_loss",
    "abs", "add", "argmax", "argmin", "binary_cross_entropy", "broadcast_to", "cast", "cat",
    "chunk", "clamp", "clip", "clone", "concatenate", "cos", "cross_entropy", "div", "dot",
    "eq", "erf", "exp", "expand", "flatten", "ge", "gelu", "getitem", "gt", "index_put", "le",
    "leaky_relu", "log", "log_softmax", "logsumexp", "lt", "matmul", "max", "maximum", "mean",
    "min", "minimum", "mse_loss", "mul", "ne", "neg", "pad", "permute", "pow", "relu",
    "repeat", "reshape", "scatter_add", "sigmoid", "sin", "softmax", "softplus", "split",
    "sqrt", "squeeze", "stack", "std", "sub", "sum", "swapaxes", "tanh", "tile", "transpose",
    "unsqueeze", "var", "view", "where",
]

UFUNCS: dict[Any, Any] = {
    np.add: add, np.subtract: sub, np.multiply: mul, np.true_divide: div, np.power: pow,
    np.negative: neg, np.absolute: abs, np.exp: exp, np.log: log, np.sqrt: sqrt,
    np.sin: sin, np.cos: cos, np.tanh: tanh, np.maximum: maximum, np.minimum: minimum,
    np.matmul: matmul, np.equal: eq, np.not_equal: ne, np.less: lt, np.less_equal: le,
    np.greater: gt, np.greater_equal: ge,
}


def _np_reduction(op: Any) -> Any:
    def call(a: Any, axis: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        if kw.get("out") is not None:
            raise TypeError(f"np.{op.__name__}: out= is not supported for Tensors")
        return op(a, axis, keepdims)

    return call


FUNCTIONS: dict[Any, Any] = {
    np.sum: _np_reduction(sum), np.mean: _np_reduction(mean), np.max: _np_reduction(max),
    np.min: _np_reduction(min), np.amax: _np_reduction(max), np.amin: _np_reduction(min),
    np.var: lambda a, axis=None, keepdims=False, ddof=0: var(a, axis, keepdims, ddof=ddof),
    np.std: lambda a, axis=None, keepdims=False, ddof=0: std(a, axis, keepdims, ddof=ddof),
    np.reshape: lambda a, shape, **kw: reshape(a, shape),
    np.transpose: lambda a, axes=None: transpose(a) if axes is None else permute(a, axes),
    np.swapaxes: swapaxes, np.squeeze: lambda a, axis=None: squeeze(a, axis),
    np.expand_dims: lambda a, axis: unsqueeze(a, axis), np.broadcast_to: broadcast_to,
    np.concatenate: lambda arrays, axis=0: cat(arrays, axis),
    np.stack: lambda arrays, axis=0: stack(arrays, axis),
    np.where: where, np.clip: lambda a, a_min=None, a_max=None: clip(a, a_min, a_max),
    np.dot: dot, np.matmul: matmul, np.tile: tile,
    np.pad: lambda a, pad_width, mode="constant", constant_values=0: pad(
        a, _numpy_pad_width(a, pad_width), constant_values) if mode == "constant"
    else _bad_pad(mode),
    np.argmax: lambda a, axis=None: argmax(a, axis),
    np.argmin: lambda a, axis=None: argmin(a, axis),
}


def _numpy_pad_width(a: Any, pad_width: Any) -> list[list[int]]:
    """NumPy's pad_width (an int, one pair for all axes, or a pair per axis) as pairs."""
    return np.broadcast_to(np.asarray(pad_width), (np.ndim(a.data), 2)).tolist()


def _bad_pad(mode: str) -> Any:
    raise NotImplementedError(f"np.pad: only mode='constant' is differentiable, got {mode!r}")


def _unwrap(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(i) for i in x)
    return x


def numpy_fallback(func: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    """Any other NumPy function runs on the arrays and returns NumPy values
    (not Tensors: nothing is recorded, so nothing pretends to be differentiable)."""
    return func(*_unwrap(tuple(args)), **{k: _unwrap(v) for k, v in kwargs.items()})
