"""Functional forms of the layers, activations and losses (``import tinytorch.nn.functional
as F``). Each op lives in ``tinytorch.ops``; what is defined here is composed from them.

>>> import tinytorch as tt
>>> import tinytorch.nn.functional as F
>>> F.relu(tt.tensor([-1.0, 2.0]))
tensor([0., 2.])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinytorch.ops.binary import where
from tinytorch.ops.common import as_tensor, data_of
from tinytorch.ops.conv import avg_pool2d, batch_norm, conv2d, max_pool2d
from tinytorch.ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_loss,
    mse_loss,
    nll_loss,
)
from tinytorch.ops.movement import flatten, getitem
from tinytorch.ops.nn import gelu, leaky_relu, log_softmax, relu, softmax, softplus
from tinytorch.ops.unary import sigmoid, tanh
from tinytorch.random import default_generator
from tinytorch.tensor import Tensor

__all__ = [
    "avg_pool2d", "batch_norm", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "conv2d", "cross_entropy", "dropout", "embedding", "flatten", "gelu", "l1_loss",
    "layer_norm", "leaky_relu", "linear", "log_softmax", "max_pool2d", "mse_loss", "nll_loss",
    "one_hot", "relu", "sigmoid", "silu", "softmax", "softplus", "tanh",
]


def silu(x: Any) -> Tensor:
    """``x * sigmoid(x)`` (also called swish)."""
    x = as_tensor(x)
    return x * sigmoid(x)


def linear(x: Any, weight: Any, bias: Any = None) -> Tensor:
    """``x @ weight + bias`` with ``weight`` of shape ``(in, out)`` (tinytorch's layout,
    the transpose of PyTorch's). Leading dimensions of ``x`` are batch dimensions.

    >>> import tinytorch as tt
    >>> import tinytorch.nn.functional as F
    >>> F.linear(tt.tensor([[1.0, 2.0]]), tt.tensor([[1.0], [1.0]]), tt.tensor([0.5]))
    tensor([[3.5]])
    """
    x = as_tensor(x)
    w_shape = np.shape(data_of(weight))
    if len(w_shape) != 2 or x.ndim == 0 or x.shape[-1] != w_shape[0]:
        raise ValueError(f"linear: input of shape {x.shape} does not fit a weight of shape "
                         f"{w_shape} (expected (..., {w_shape[0] if w_shape else '?'}))")
    if x.ndim > 2:  # one 2-D product, so the weight gradient is one BLAS call too
        out = (x.reshape(-1, w_shape[0]) @ weight).reshape(*x.shape[:-1], w_shape[1])
    else:
        out = x @ weight
    return out if bias is None else out + bias


def dropout(x: Any, p: float = 0.5, training: bool = True,
            generator: np.random.Generator | None = None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``;
    the identity when not ``training``. Draws from ``tinytorch.random.default_generator()``
    unless given a ``generator``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    rng = default_generator() if generator is None else generator
    keep = rng.random(x.shape, dtype=np.float32) >= p
    return x * (keep * (1.0 / (1.0 - p))).astype(x.dtype)


def layer_norm(x: Any, normalized_shape: int | Sequence[int], weight: Any = None,
               bias: Any = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dimensions (biased variance),
    then scale by ``weight`` and shift by ``bias`` of that shape."""
    x = as_tensor(x)
    shape = ((int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer))
             else tuple(int(s) for s in normalized_shape))
    k = len(shape)
    if k == 0 or x.shape[x.ndim - k:] != shape:
        raise ValueError(f"layer_norm: input of shape {x.shape} does not end with "
                         f"normalized_shape {shape}")
    axes = tuple(range(x.ndim - k, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=axes, keepdims=True)
    out = centered * (var + eps) ** -0.5
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def embedding(indices: Any, weight: Any, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` ``(num_embeddings, dim)`` picked by integer ``indices`` (any
    shape); the row ``padding_idx`` receives no gradient."""
    idx = np.asarray(data_of(indices))
    w = as_tensor(weight)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    num = w.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= num):
        bad = idx[(idx < 0) | (idx >= num)].flat[0]
        raise IndexError(f"embedding: index {int(bad)} is out of range for {num} embeddings")
    rows = getitem(w, idx)
    if padding_idx is None or not rows.requires_grad:
        return rows
    pad = padding_idx % num
    # NOTE: same values either way; only the padding rows' gradient is cut.
    return where((idx != pad)[..., None], rows, rows.detach())


def one_hot(indices: Any, num_classes: int = -1) -> Tensor:
    """Integer ``indices`` as one-hot rows (int64), PyTorch's ``F.one_hot``."""
    idx = np.asarray(data_of(indices))
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got dtype {idx.dtype}")
    n = int(idx.max()) + 1 if num_classes < 0 and idx.size else max(num_classes, 0)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(f"one_hot: class values must be in [0, {n}), got {idx.min()}..{idx.max()}")
    return Tensor._from_op((idx[..., None] == np.arange(n)).astype(np.int64), None)
