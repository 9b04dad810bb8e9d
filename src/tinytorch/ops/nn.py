"""Neural-network ops: activations and the softmax family (fused where stability
or speed asks for it)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinytorch.ops.binary import where
from tinytorch.ops.common import Node, Tensor, as_tensor, data_of, result, tracked
from tinytorch.ops.reduce import _log_softmax_array
from tinytorch.ops.unary import _erf_array, erf, exp, tanh

# ----------------------------------------------------------------- rectifiers


class ReLUBackward(Node):
    def __init__(self, x: Any) -> None:
        Node.__init__(self, x)
        self.save_for_backward(data_of(x) > 0)

    def backward(self, g: Any, positive: Any) -> Any:
        return g * positive

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return tangents[0] * self.saved_tensors[0]  # the saved mask ``x > 0``


def relu(x: Any) -> Any:
    """``max(x, 0)``; the gradient at 0 is 0."""
    xd = data_of(x)
    return result(np.maximum(xd, 0), ReLUBackward(x) if tracked(x) else None)


class LeakyReLUBackward(Node):
    def __init__(self, x: Any, negative_slope: float = 0.01) -> None:
        Node.__init__(self, x)
        xd = data_of(x)
        self.save_for_backward(np.where(xd > 0, 1.0, negative_slope).astype(xd.dtype))

    def backward(self, g: Any, slope: Any) -> Any:
        return g * slope

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return tangents[0] * self.saved_tensors[0]  # the saved slope per element


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    """``x`` for positive inputs, ``negative_slope * x`` otherwise."""
    xd = data_of(x)
    out = np.where(xd > 0, xd, xd * negative_slope)
    return result(out, LeakyReLUBackward(x, negative_slope) if tracked(x) else None)


# ----------------------------------------------------------------- smooth activations

_SQRT_HALF = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


class GELUBackward(Node):
    def __init__(self, x: Any) -> None:
        Node.__init__(self, x)
        self.save_for_backward(x)

    def backward(self, g: Any, x: Any) -> Any:
        # d/dx [x * Phi(x)] = Phi(x) + x * phi(x)
        cdf = (_erf_any(x * _SQRT_HALF) + 1) * 0.5
        pdf = np.exp(x * x * -0.5) * _INV_SQRT_2PI
        return g * (cdf + x * pdf)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        x = primals[0]
        cdf = (erf(x * _SQRT_HALF) + 1) * 0.5
        pdf = exp(x * x * -0.5) * _INV_SQRT_2PI
        return tangents[0] * (cdf + x * pdf)


def _erf_any(x: Any) -> Any:
    return erf(x) if isinstance(x, Tensor) else _erf_array(x)


def gelu(x: Any, approximate: str = "none") -> Any:
    """Gaussian error linear unit ``x * Phi(x)`` with the exact erf form;
    ``approximate='tanh'`` uses the tanh approximation."""
    if approximate == "tanh":
        x = as_tensor(x)
        inner = (x + x * x * x * 0.044715) * math.sqrt(2 / math.pi)
        return x * (tanh(inner) + 1) * 0.5
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    xd = np.asarray(data_of(x))
    out = xd * (_erf_array(xd * _SQRT_HALF) + 1) * 0.5
    return result(out.astype(xd.dtype, copy=False), GELUBackward(x) if tracked(x) else None)


class SoftplusBackward(Node):
    def __init__(self, x: Any, beta: float = 1.0, threshold: float = 20.0) -> None:
        Node.__init__(self, x)
        self.save_for_backward(x, beta, threshold)

    def backward(self, g: Any, x: Any, beta: float, threshold: float) -> Any:
        bx = x * beta
        # sigmoid(beta * x), written with tanh so it works on arrays and Tensors
        sig = np.tanh(bx * 0.5) * 0.5 + 0.5
        return g * np.where(data_of(bx) > threshold, 1.0, sig)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        x = primals[0]
        _, beta, threshold = self.saved_tensors
        bx = x * beta
        sig = tanh(bx * 0.5) * 0.5 + 0.5
        return tangents[0] * where(data_of(bx) > threshold, 1.0, sig)


def softplus(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Any:
    """``log(1 + exp(beta * x)) / beta``, linear above ``threshold`` (as PyTorch)."""
    xd = np.asarray(data_of(x))
    bx = xd * beta
    out = np.where(bx > threshold, xd, np.logaddexp(0, bx) / beta).astype(xd.dtype, copy=False)
    return result(out, SoftplusBackward(x, beta, threshold) if tracked(x) else None)


# ----------------------------------------------------------------- softmax family


def _dim(op: str, dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise ValueError(f"{op}: dim {dim} out of range for a {ndim}-dimensional tensor")
    return dim % n if ndim else None  # type: ignore[return-value]


class SoftmaxBackward(Node):
    saves_output = True

    def __init__(self, x: Any, output: Any = None, dim: int = -1) -> None:
        Node.__init__(self, x)
        self.save_for_backward(dim)
        if output is not None:  # TinyTorch-style SoftmaxBackward(input, output, dim)
            self.save_for_backward(dim, data_of(output))
            self.saves_output = False  # type: ignore[misc]

    def backward(self, g: Any, dim: int, y: Any) -> Any:
        return y * (g - (g * y).sum(axis=dim, keepdims=True))

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        dim, t = self.saved_tensors[0], tangents[0]
        return out * (t - (t * out).sum(axis=dim, keepdims=True))


def _softmax_array(xd: np.ndarray, axis: Any) -> np.ndarray:
    shifted = xd - np.max(xd, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax(x: Any, dim: int = -1) -> Any:
    """``exp(x) / sum(exp(x))`` along ``dim``, shifted by the max for stability."""
    xd = np.asarray(data_of(x))
    d = _dim("softmax", dim, xd.ndim)
    return result(_softmax_array(xd, d), SoftmaxBackward(x, None, d) if tracked(x) else None)


class LogSoftmaxBackward(Node):
    saves_output = True

    def __init__(self, x: Any, dim: int = -1) -> None:
        Node.__init__(self, x)
        self.save_for_backward(dim)

    def backward(self, g: Any, dim: int, y: Any) -> Any:
        return g - np.exp(y) * g.sum(axis=dim, keepdims=True)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        dim, t = self.saved_tensors[0], tangents[0]
        return t - (exp(out) * t).sum(axis=dim, keepdims=True)


def log_softmax(x: Any, dim: int = -1) -> Any:
    """``x - logsumexp(x)`` along ``dim``; finite even for logits of size 1e4.

    >>> import tinytorch as tt
    >>> tt.log_softmax(tt.tensor([1e4, 0.0]))
    tensor([     0., -10000.])
    """
    xd = np.asarray(data_of(x))
    d = _dim("log_softmax", dim, xd.ndim)
    out = _log_softmax_array(xd, d)
    return result(out, LogSoftmaxBackward(x, d) if tracked(x) else None)
