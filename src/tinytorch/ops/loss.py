"""Losses with PyTorch's ``reduction='mean' | 'sum' | 'none'`` (the TinyTorch node names
live here).

Fused where it keeps gradients exact, stable and cheap: cross-entropy's gradient is
``(rowsum(a) * softmax(z) - a) / d`` for the per-class coefficients ``a`` that the
targets, class weights and label smoothing define, and never forms ``log(softmax)``
twice; BCE-with-logits uses ``softplus`` so logits of size 1e4 stay finite. L1 and
NLL are composed from primitives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch.ops.common import (
    Node,
    Tensor,
    as_tensor,
    data_of,
    result,
    scaled,
    tangent_sum,
    tracked,
)
from tinytorch.ops.nn import _softmax_array, log_softmax, softmax, softplus
from tinytorch.ops.reduce import _log_softmax_array
from tinytorch.ops.reduce import sum as _sum
from tinytorch.ops.unary import clip, log, sigmoid

EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1 - EPSILON] in BCE

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _same_shape(op: str, p: np.ndarray, t: np.ndarray) -> None:
    if np.shape(p) != np.shape(t):
        raise ValueError(
            f"{op}: predictions have shape {np.shape(p)} but targets have shape {np.shape(t)}; "
            f"they must match (reshape one of them; broadcasting here is usually a bug)"
        )


def _reduce_array(loss: np.ndarray, reduction: str, dtype: Any) -> np.ndarray:
    if reduction == "none":
        out = loss
    elif reduction == "sum":
        out = np.sum(loss)
    else:
        out = np.mean(loss) if loss.size else np.zeros((), dtype)
    return np.asarray(out, dtype=dtype)


def _count(reduction: str, x: np.ndarray) -> int:
    """The divisor a gradient carries: the element count for a mean, else 1."""
    return max(np.size(x), 1) if reduction == "mean" else 1


def _float_array(x: Any) -> np.ndarray:
    arr = np.asarray(data_of(x))
    return arr if arr.dtype.kind == "f" else arr.astype(np.float32)


def _weight_array(op: str, weight: Any, shape: tuple[int, ...], name: str = "weight") -> Any:
    if weight is None:
        return None
    w = np.asarray(data_of(weight))
    try:
        ok = np.broadcast_shapes(w.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{op}: {name} of shape {w.shape} does not broadcast to the input's "
                         f"shape {shape}")
    return w


def _reduce_tangent(elementwise: Any, out: Any, n: int) -> Any:
    """The tangent of an elementwise loss reduced like ``out`` ('none' keeps the shape;
    'sum' and 'mean' sum, and a mean divides by the count ``n``)."""
    if elementwise is None or elementwise.shape == out.shape:
        return elementwise
    return elementwise.sum() * (1.0 / n)


# ----------------------------------------------------------------- regression


class MSEBackward(Node):
    def __init__(self, predictions: Any, targets: Any, reduction: str = "mean") -> None:
        Node.__init__(self, predictions, targets)
        self.save_for_backward(predictions, targets, _count(reduction, data_of(predictions)))

    def backward(self, g: Any, p: Any, t: Any, n: int) -> Any:
        gp = g * (p - t) * (2.0 / n)
        return gp, -gp

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        p, t = primals
        tp, tt = tangents
        dt = tp if tt is None else (tt * -1.0 if tp is None else tp - tt)
        return _reduce_tangent((as_tensor(p) - t) * 2.0 * dt, out, self.saved_tensors[2])


def mse_loss(predictions: Any, targets: Any, reduction: str = "mean") -> Any:
    """Squared error ``(predictions - targets) ** 2``, averaged (or summed, or not).

    >>> import tinytorch as tt
    >>> tt.mse_loss(tt.tensor([1.0, 3.0]), tt.tensor([0.0, 0.0])).item()
    5.0
    """
    _check_reduction("mse_loss", reduction)
    p, t = data_of(predictions), data_of(targets)
    _same_shape("mse_loss", p, t)
    diff = np.asarray(p - t)
    out = _reduce_array(diff * diff, reduction, diff.dtype)
    node = MSEBackward(predictions, targets, reduction) if tracked(predictions, targets) else None
    return result(out, node)


def l1_loss(predictions: Any, targets: Any, reduction: str = "mean") -> Any:
    """Absolute error ``|predictions - targets|``; the gradient at 0 is 0.

    >>> import tinytorch as tt
    >>> tt.ops.loss.l1_loss(tt.tensor([1.0, -3.0]), tt.tensor([0.0, 0.0])).item()
    2.0
    """
    _check_reduction("l1_loss", reduction)
    _same_shape("l1_loss", data_of(predictions), data_of(targets))
    err = abs(as_tensor(predictions) - targets)
    if reduction == "none":
        return err
    if reduction == "sum" or err.size == 0:
        return err.sum()
    return err.mean()


# ----------------------------------------------------------------- binary classification


class BCEBackward(Node):
    def __init__(self, predictions: Any, targets: Any, weight: Any = None,
                 reduction: str = "mean") -> None:
        Node.__init__(self, predictions, targets)
        self.save_for_backward(predictions, targets, _count(reduction, data_of(predictions)),
                               None if weight is None else data_of(weight))

    def backward(self, g: Any, p: Any, y: Any, n: int, weight: Any = None) -> Any:
        if weight is not None:
            g = g * weight
        pc = np.clip(p, EPSILON, 1 - EPSILON)
        gp = g * (pc - y) / (pc * (1 - pc) * n)
        gy = g * (np.log(1 - pc) - np.log(pc)) / n if self.needs_input_grad[1] else None
        return gp, gy

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        # NOTE: the same derivative as backward (no mask where the clip is active)
        p, y = primals
        tp, ty = tangents
        n, weight = self.saved_tensors[2:]
        pc = clip(as_tensor(p), EPSILON, 1 - EPSILON)
        elementwise = tangent_sum(scaled(tp, (pc - y) / (pc * (1 - pc))),
                                  scaled(ty, log(1 - pc) - log(pc)))
        if weight is not None:
            elementwise = elementwise * weight
        return _reduce_tangent(elementwise, out, n)


def binary_cross_entropy(predictions: Any, targets: Any, weight: Any = None,
                         reduction: str = "mean") -> Any:
    """``-(y log p + (1 - y) log(1 - p))`` for probabilities ``p`` (clipped to
    ``[1e-7, 1 - 1e-7]``), optionally times ``weight``.

    >>> import tinytorch as tt
    >>> round(tt.binary_cross_entropy(tt.tensor([0.5]), tt.tensor([1.0])).item(), 4)
    0.6931
    """
    _check_reduction("binary_cross_entropy", reduction)
    p, y = _float_array(predictions), np.asarray(data_of(targets))
    _same_shape("binary_cross_entropy", p, y)
    w = _weight_array("binary_cross_entropy", weight, p.shape)
    pc = np.clip(p, EPSILON, 1 - EPSILON)
    loss = -(y * np.log(pc) + (1 - y) * np.log(1 - pc))
    if w is not None:
        loss = loss * w
    node = (BCEBackward(predictions, targets, w, reduction)
            if tracked(predictions, targets) else None)
    return result(_reduce_array(loss, reduction, p.dtype), node)


class BCEWithLogitsBackward(Node):
    def __init__(self, logits: Any, targets: Any, weight: Any, pos_weight: Any, n: int) -> None:
        Node.__init__(self, logits, targets)
        self.save_for_backward(logits, targets, weight, pos_weight, n)

    def backward(self, g: Any, x: Any, y: Any, w: Any, pw: Any, n: int) -> Any:
        g = g * (1.0 / n) if w is None else g * w * (1.0 / n)
        sig = np.tanh(x * 0.5) * 0.5 + 0.5  # sigmoid without overflow, arrays or Tensors
        if pw is None:
            gx = g * (sig - y)
        else:
            # NOTE: loss = (1 - y) x + (1 + (pw - 1) y) softplus(-x)
            gx = g * (sig * ((pw - 1) * y + 1) - pw * y)
        gy = None
        if self.needs_input_grad[1]:
            gy = -x if pw is None else (pw - 1) * _softplus_any(-x) - x
            gy = g * gy
        return gx, gy

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        x, y = as_tensor(primals[0]), primals[1]
        tx, ty = tangents
        w, pw, n = self.saved_tensors[2:]
        sig = sigmoid(x)
        if pw is None:
            elementwise = tangent_sum(scaled(tx, sig - y), scaled(ty, -x))
        else:
            elementwise = tangent_sum(scaled(tx, sig * ((pw - 1) * y + 1) - pw * y),
                                      scaled(ty, softplus(-x) * (pw - 1) - x))
        if w is not None:
            elementwise = elementwise * w
        return _reduce_tangent(elementwise, out, n)


def _softplus_any(x: Any) -> Any:
    return softplus(x) if isinstance(x, Tensor) else np.logaddexp(0, x)


def binary_cross_entropy_with_logits(logits: Any, targets: Any, weight: Any = None,
                                     reduction: str = "mean", pos_weight: Any = None) -> Any:
    """Sigmoid and binary cross-entropy fused: ``(1 - y) x + softplus(-x)``, finite for
    any logit size; ``pos_weight`` scales the positive term (PyTorch's definition).

    >>> import tinytorch as tt
    >>> tt.ops.loss.binary_cross_entropy_with_logits(tt.tensor([1e4, -1e4]),
    ...                                              tt.tensor([1.0, 0.0])).item()
    0.0
    """
    op = "binary_cross_entropy_with_logits"
    _check_reduction(op, reduction)
    x, y = _float_array(logits), np.asarray(data_of(targets))
    _same_shape(op, x, y)
    w = _weight_array(op, weight, x.shape)
    pw = _weight_array(op, pos_weight, x.shape, "pos_weight")
    sp = np.logaddexp(0, -x)
    loss = (1 - y) * x + (sp if pw is None else ((pw - 1) * y + 1) * sp)
    if w is not None:
        loss = loss * w
    node = None
    if tracked(logits, targets):
        node = BCEWithLogitsBackward(logits, targets, w, pw, _count(reduction, x))
    return result(_reduce_array(loss, reduction, x.dtype), node)


# ----------------------------------------------------------------- multi-class classification


def _class_coefficients(op: str, n_classes: int, t: np.ndarray, weight: Any, ignore_index: int,
                        smoothing: float, dtype: Any) -> tuple[np.ndarray, float]:
    """For class indices ``t`` (M,): coefficients ``a`` (M, C) with loss_i =
    -sum_c a[i, c] log p[i, c], and the divisor of the mean (PyTorch's weighting)."""
    t = t.astype(np.int64, copy=False)
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= n_classes))
    if bad.any():
        raise IndexError(f"{op}: target class {int(t[bad][0])} is out of range for "
                         f"{n_classes} classes (ignore_index={ignore_index})")
    safe = np.where(valid, t, 0)
    w = np.ones(n_classes, dtype=dtype) if weight is None else weight.astype(dtype)
    rows = np.arange(len(t))
    a = np.zeros((len(t), n_classes), dtype=dtype)
    a[rows, safe] = w[safe] * (1.0 - smoothing)
    if smoothing:
        a += w * (smoothing / n_classes)
    a[~valid] = 0
    return a, float(np.sum(w[safe] * valid, dtype=np.float64))


def _targets_2d(op: str, z: np.ndarray, targets: Any) -> tuple[np.ndarray, bool]:
    """Targets as class indices (M,) or probabilities (M, C), for logits (N, C, *d)."""
    t = np.asarray(data_of(targets))
    if t.shape == z.shape and t.dtype.kind == "f" and z.ndim >= 1:
        return np.moveaxis(t, 1, -1).reshape(-1, z.shape[1]) if z.ndim > 1 else t[None], True
    expected = z.shape[:1] + z.shape[2:] if z.ndim > 1 else ()
    if t.shape != expected:
        raise ValueError(
            f"{op}: logits of shape {z.shape} need class-index targets of shape {expected} or "
            f"probability targets of shape {z.shape}, got targets of shape {t.shape}"
        )
    if t.dtype.kind == "f" and np.all(t == np.round(t)):
        t = t.astype(np.int64)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: class-index targets must be integers, got dtype {t.dtype}")
    return t.reshape(-1), False


def _class_weight(op: str, weight: Any, n_classes: int) -> Any:
    if weight is None:
        return None
    w = np.asarray(data_of(weight))
    if w.shape != (n_classes,):
        raise ValueError(f"{op}: weight must have shape ({n_classes},), one per class, got "
                         f"{w.shape}")
    return w


def _rows_first(x: Any, ndim: int) -> Any:
    """Logits (N, C, *d) as a 2-D Tensor (N * prod(d), C) (recorded), or (C,) as (1, C)."""
    x = as_tensor(x)
    if ndim == 1:
        return x.reshape(1, -1)
    if ndim > 2:
        x = x.permute(0, *range(2, ndim), 1)
    return x.reshape(-1, x.shape[-1])


def _unflatten_rows(loss: Any, shape: tuple[int, ...]) -> Any:
    """A per-row loss back to the targets' shape (N, *d), or () when unbatched."""
    return loss.reshape(shape[:1] + shape[2:] if len(shape) > 1 else ())


class CrossEntropyBackward(Node):
    """Gradient of ``-sum_c a[i, c] log_softmax(z)[i, c] / d`` over logits ``z`` (M, C).

    Built by ``cross_entropy``; ``CrossEntropyBackward(logits, targets)`` also works on
    its own (mean over class-index targets, as TinyTorch's).
    """

    def __init__(self, logits: Any, targets: Any, weight: Any = None, ignore_index: int = -100,
                 reduction: str = "mean", label_smoothing: float = 0.0, *,
                 coefficients: Any = None) -> None:
        z = np.asarray(data_of(logits))
        if coefficients is None:
            coefficients = _ce_coefficients("cross_entropy", z, targets, weight, ignore_index,
                                            reduction, label_smoothing)
        a, d, probability_targets = coefficients
        if probability_targets and tracked(targets):
            Node.__init__(self, logits, targets)
        else:
            Node.__init__(self, logits)
        w = None if weight is None else np.asarray(data_of(weight), dtype=z.dtype)
        self.save_for_backward(logits, a, a.sum(axis=1, keepdims=True), d,
                               (1.0 - label_smoothing) * (1.0 if w is None else w))

    def backward(self, g: Any, z: Any, a: Any, s: Any, d: float, tw: Any) -> Any:
        if g.ndim == 1:  # reduction='none': one gradient per row
            g = g.reshape(-1, 1)
        g = g * (1.0 / d) if d else g * np.nan
        is_t = isinstance(z, Tensor)
        probs = softmax(z, 1) if is_t else _softmax_array(z, 1)
        gz = g * (probs * s - a)
        if len(self.needs_input_grad) == 1:
            return gz
        # probability targets that require grad: d loss / d q = -(1 - eps) w log p
        logp = log_softmax(z, 1) if is_t else _log_softmax_array(z, 1)
        return gz, -(g * logp * tw)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        # NOTE: d rows_i = sum_c (s_i p_ic - a_ic) dz_ic - sum_c (1 - eps) w_c log p_ic dq_ic
        z = as_tensor(primals[0])
        _, a, s, d, tw = self.saved_tensors
        if len(primals) > 1 and isinstance(primals[1], Tensor) and primals[1].requires_grad:
            # probability targets q that reverse mode may differentiate: a = tw * q + const
            q = primals[1]
            a = q * tw + (a - q.data * tw)
            s = a.sum(axis=1, keepdims=True)
        rows = None
        if tangents[0] is not None:
            rows = ((softmax(z, 1) * s - a) * tangents[0]).sum(axis=1)
        if len(tangents) > 1 and tangents[1] is not None:
            rows = tangent_sum(rows, -(log_softmax(z, 1) * tw * tangents[1]).sum(axis=1))
        if rows is None or out.ndim == 1:  # reduction='none'
            return rows
        return rows.sum() * (1.0 / d if d else float("nan"))


class ClassIndexCrossEntropyBackward(CrossEntropyBackward):
    """The common case, fused for speed: mean cross-entropy of logits (N, C) against
    in-range class indices, no weights or smoothing. Saves the softmax itself."""

    def __init__(self, logits: Any, t: np.ndarray, probs: np.ndarray) -> None:  # noqa: D107
        Node.__init__(self, logits)  # not CrossEntropyBackward's general set-up
        self.save_for_backward(logits, t, probs)

    def name(self) -> str:
        return "CrossEntropyBackward"

    def backward(self, g: Any, z: Any, t: np.ndarray, probs: np.ndarray) -> Any:  # type: ignore[override]
        rows = np.arange(len(t))
        if isinstance(g, Tensor):  # create_graph: keep softmax(z) in the graph
            onehot = np.zeros(probs.shape, dtype=probs.dtype)
            onehot[rows, t] = 1
            return (softmax(z, 1) - onehot) * (g * (1.0 / len(t)))
        dz = probs.copy()
        dz[rows, t] -= 1
        dz *= g * (1.0 / len(t))
        return dz

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:  # type: ignore[override]
        z = as_tensor(primals[0])
        t = self.saved_tensors[1]
        onehot = np.zeros(z.shape, dtype=z.dtype)
        onehot[np.arange(len(t)), t] = 1
        return ((softmax(z, 1) - onehot) * tangents[0]).sum() * (1.0 / len(t))


def _plain_class_targets(z: np.ndarray, targets: Any) -> np.ndarray | None:
    """Integer targets (N,) all in range for logits (N, C), else None (the general path
    then validates and explains)."""
    t = targets.data if isinstance(targets, Tensor) else targets
    if not isinstance(t, np.ndarray) or t.dtype.kind not in "iu" or t.shape != z.shape[:1]:
        return None
    if len(t) == 0 or t.min() < 0 or t.max() >= z.shape[1]:
        return None
    return t


def _ce_coefficients(op: str, z: np.ndarray, targets: Any, weight: Any, ignore_index: int,
                     reduction: str, smoothing: float) -> tuple[np.ndarray, float, bool]:
    """Coefficients ``a`` (M, C), the gradient's divisor, and whether targets are
    probabilities; ``z`` is already 2-D."""
    n_classes = z.shape[1]
    w = _class_weight(op, weight, n_classes)
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {smoothing}")
    t, probability_targets = _targets_2d(op, z, targets)
    if probability_targets:
        a = (t * (1.0 - smoothing) + smoothing / n_classes).astype(z.dtype)
        if w is not None:
            a = a * w.astype(z.dtype)
        d = float(len(a))
    else:
        a, d = _class_coefficients(op, n_classes, t, w, ignore_index, smoothing, z.dtype)
    return a, (d if reduction == "mean" else 1.0), probability_targets


def cross_entropy(logits: Any, targets: Any, weight: Any = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Any:
    """Softmax cross-entropy of logits ``(N, C)`` (or ``(N, C, *d)``, or ``(C,)``) against
    class indices ``(N,)`` or class probabilities ``(N, C)``, as PyTorch's: class
    ``weight``, ``ignore_index`` (index targets) and ``label_smoothing``.

    >>> import tinytorch as tt
    >>> round(tt.cross_entropy(tt.tensor([[0.0, 0.0]]), tt.tensor([1], dtype="int64")).item(), 4)
    0.6931
    """
    op = "cross_entropy"
    _check_reduction(op, reduction)
    z = _float_array(logits)
    if z.ndim == 0:
        raise ValueError(f"{op}: logits need a class dimension, got a 0-d tensor")
    if z.ndim != 2:  # move the class axis last and flatten the rest (recorded)
        t, probs = _targets_2d(op, z, targets)
        if probs:
            t = _rows_first(targets, z.ndim)
        out = cross_entropy(_rows_first(logits, z.ndim), t, weight, ignore_index, reduction,
                            label_smoothing)
        return _unflatten_rows(out, z.shape) if reduction == "none" else out
    if weight is None and not label_smoothing and reduction == "mean" and not tracked(targets):
        plain = _plain_class_targets(z, targets)
        if plain is not None:
            t = plain
            logp = _log_softmax_array(z, 1)
            out = -np.mean(logp[np.arange(len(t)), t])  # float16 adds up in float32
            node: Node | None = None
            if tracked(logits):
                node = ClassIndexCrossEntropyBackward(logits, t, np.exp(logp))
            return result(np.asarray(out, dtype=z.dtype), node)
    coefficients = _ce_coefficients(op, z, targets, weight, ignore_index, reduction,
                                    label_smoothing)
    a, d, _ = coefficients
    logp = _log_softmax_array(z, 1)
    rows = -np.sum(np.where(a != 0, a * logp, 0), axis=1)
    if reduction == "none":
        out = rows
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.sum(rows) / np.float64(d)  # d == 0 (all ignored) gives NaN, as PyTorch
    node = None  # type: ignore[assignment]
    if tracked(logits, targets):
        node = CrossEntropyBackward(logits, targets, weight, ignore_index, reduction,
                                    label_smoothing, coefficients=coefficients)
    return result(np.asarray(out, dtype=z.dtype), node)


def nll_loss(log_probs: Any, targets: Any, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Any:
    """Negative log-likelihood of class indices under log-probabilities ``(N, C)`` (or
    ``(N, C, *d)``, or ``(C,)``): ``-weight[t] * log_probs[i, t]``, as PyTorch's.

    >>> import tinytorch as tt
    >>> tt.ops.loss.nll_loss(tt.tensor([[-1.0, -2.0]]), tt.tensor([1], dtype="int64")).item()
    2.0
    """
    op = "nll_loss"
    _check_reduction(op, reduction)
    x = _float_array(log_probs)
    if x.ndim == 0:
        raise ValueError(f"{op}: input needs a class dimension, got a 0-d tensor")
    t, probs = _targets_2d(op, x, targets)
    if probs:
        raise ValueError(f"{op}: targets must be class indices of shape "
                         f"{x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()}, got float targets "
                         f"of the input's shape {x.shape}")
    n_classes = x.shape[1] if x.ndim > 1 else x.shape[0]
    a, d = _class_coefficients(op, n_classes, t, _class_weight(op, weight, n_classes),
                               ignore_index, 0.0, x.dtype)
    rows = -_sum(_rows_first(log_probs, x.ndim) * a, 1)
    if reduction == "none":
        return _unflatten_rows(rows, x.shape) if x.ndim != 2 else rows
    total = rows.sum()
    if reduction == "sum":
        return total
    return total * (1.0 / d if d else float("nan"))
