"""Fused losses with mean reduction (the TinyTorch node names live here).

Fusing keeps the gradients exact and cheap: cross-entropy's is
``(softmax(z) - onehot) / N`` and never forms ``log(softmax)`` twice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch.ops.common import Node, Tensor, data_of, result, tracked
from tinytorch.ops.nn import _softmax_array, softmax
from tinytorch.ops.reduce import _logsumexp_array

EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1 - EPSILON] in BCE


def _same_shape(op: str, p: np.ndarray, t: np.ndarray) -> None:
    if np.shape(p) != np.shape(t):
        raise ValueError(
            f"{op}: predictions have shape {np.shape(p)} but targets have shape {np.shape(t)}; "
            f"they must match (reshape one of them; broadcasting here is usually a bug)"
        )


class MSEBackward(Node):
    def __init__(self, predictions: Any, targets: Any) -> None:
        super().__init__(predictions, targets)
        self.save_for_backward(predictions, targets, max(np.size(data_of(predictions)), 1))

    def backward(self, g: Any, p: Any, t: Any, n: int) -> Any:
        gp = g * (p - t) * (2.0 / n)
        return gp, -gp


def mse_loss(predictions: Any, targets: Any) -> Any:
    """Mean of ``(predictions - targets) ** 2``."""
    p, t = data_of(predictions), data_of(targets)
    _same_shape("mse_loss", p, t)
    diff = np.asarray(p - t)
    out = np.mean(diff * diff) if diff.size else np.zeros((), diff.dtype)
    return result(out, MSEBackward(predictions, targets) if tracked(predictions, targets) else None)


class BCEBackward(Node):
    def __init__(self, predictions: Any, targets: Any) -> None:
        super().__init__(predictions, targets)
        self.save_for_backward(predictions, targets, max(np.size(data_of(predictions)), 1))

    def backward(self, g: Any, p: Any, y: Any, n: int) -> Any:
        pc = np.clip(p, EPSILON, 1 - EPSILON)
        gp = g * (pc - y) / (pc * (1 - pc) * n)
        gy = g * (np.log(1 - pc) - np.log(pc)) / n
        return gp, gy


def binary_cross_entropy(predictions: Any, targets: Any) -> Any:
    """Mean of ``-(y log p + (1 - y) log(1 - p))`` for probabilities ``p``."""
    p, y = np.asarray(data_of(predictions)), np.asarray(data_of(targets))
    _same_shape("binary_cross_entropy", p, y)
    pc = np.clip(p, EPSILON, 1 - EPSILON)
    out = -np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))
    node = BCEBackward(predictions, targets) if tracked(predictions, targets) else None
    return result(np.asarray(out, dtype=p.dtype), node)


def _class_targets(op: str, logits: np.ndarray, targets: Any) -> np.ndarray:
    t = np.asarray(data_of(targets))
    if t.dtype.kind == "f" and np.all(t == np.round(t)):
        t = t.astype(np.int64)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: targets must be integer class indices, got dtype {t.dtype}")
    if logits.ndim != 2 or t.shape != logits.shape[:1]:
        raise ValueError(f"{op}: expected logits (N, C) and targets (N,), got {logits.shape} "
                         f"and {t.shape}")
    c = logits.shape[1]
    if t.size and (t.min() < 0 or t.max() >= c):
        bad = t[(t < 0) | (t >= c)][0]
        raise IndexError(f"{op}: target class {bad} is out of range for {c} classes")
    return t


class CrossEntropyBackward(Node):
    def __init__(self, logits: Any, targets: Any) -> None:
        super().__init__(logits)
        z = np.asarray(data_of(logits))
        t = _class_targets("cross_entropy", z, targets)
        onehot = np.zeros(z.shape, dtype=z.dtype)
        onehot[np.arange(len(t)), t] = 1
        self.save_for_backward(logits, onehot, max(len(t), 1))

    def backward(self, g: Any, z: Any, onehot: Any, n: int) -> Any:
        probs = softmax(z, 1) if isinstance(z, Tensor) else _softmax_array(z, 1)
        return g * (probs - onehot) * (1.0 / n)


def cross_entropy(logits: Any, targets: Any) -> Any:
    """Mean softmax cross-entropy of logits ``(N, C)`` against class indices ``(N,)``.

    >>> import tinytorch as tt
    >>> round(tt.cross_entropy(tt.tensor([[0.0, 0.0]]), tt.tensor([1], dtype="int64")).item(), 4)
    0.6931
    """
    z = np.asarray(data_of(logits))
    t = _class_targets("cross_entropy", z, targets)
    lse = _logsumexp_array(z, (1,), False)
    picked = z[np.arange(len(t)), t]
    out = np.mean(lse - picked) if len(t) else np.zeros((), z.dtype)
    return result(np.asarray(out, dtype=z.dtype),
                  CrossEntropyBackward(logits, t) if tracked(logits) else None)
