"""Unary elementwise ops: one input, one output of the same shape."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinytorch.ops.common import Node, data_of, elementwise, number, result, scaled, tracked

# ----------------------------------------------------------------- sign and size


class NegBackward(Node):
    def backward(self, g: Any) -> Any:
        return -g

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return -tangents[0]


def neg(x: Any) -> Any:
    """``-x``."""
    return elementwise(np.negative, NegBackward, x)


class AbsBackward(Node):
    def __init__(self, x: Any) -> None:
        Node.__init__(self, x)
        self.save_for_backward(np.sign(data_of(x)))

    def backward(self, g: Any, sign: Any) -> Any:
        return g * sign

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return tangents[0] * self.saved_tensors[0]  # the saved sign


def abs(x: Any) -> Any:  # noqa: A001
    """``|x|``; the gradient at 0 is 0."""
    return elementwise(np.abs, AbsBackward, x)


# ----------------------------------------------------------------- exp / log / sqrt


class ExpBackward(Node):
    saves_output = True

    def backward(self, g: Any, y: Any) -> Any:
        return g * y

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return tangents[0] * out


def exp(x: Any) -> Any:
    """``e**x``."""
    return elementwise(np.exp, ExpBackward, x)


class LogBackward(Node):
    def __init__(self, x: Any) -> None:
        Node.__init__(self, x)
        self.save_for_backward(x)

    def backward(self, g: Any, x: Any) -> Any:
        return g / x

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return tangents[0] / primals[0]


def log(x: Any) -> Any:
    """Natural logarithm."""
    return elementwise(np.log, LogBackward, x)


class SqrtBackward(Node):
    saves_output = True

    def backward(self, g: Any, y: Any) -> Any:
        return g / (y * 2)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return tangents[0] / (out * 2)


def sqrt(x: Any) -> Any:
    """Square root."""
    return elementwise(np.sqrt, SqrtBackward, x)


# ----------------------------------------------------------------- trigonometric


class SinBackward(Node):
    def __init__(self, x: Any) -> None:
        Node.__init__(self, x)
        self.save_for_backward(x)

    def backward(self, g: Any, x: Any) -> Any:
        return g * np.cos(x)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return tangents[0] * cos(primals[0])


def sin(x: Any) -> Any:
    """Sine."""
    return elementwise(np.sin, SinBackward, x)


class CosBackward(Node):
    def __init__(self, x: Any) -> None:
        Node.__init__(self, x)
        self.save_for_backward(x)

    def backward(self, g: Any, x: Any) -> Any:
        return -(g * np.sin(x))

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return -(tangents[0] * sin(primals[0]))


def cos(x: Any) -> Any:
    """Cosine."""
    return elementwise(np.cos, CosBackward, x)


class TanhBackward(Node):
    saves_output = True

    def backward(self, g: Any, y: Any) -> Any:
        return g * (number(1, y) - y * y)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return tangents[0] * (1 - out * out)


def tanh(x: Any) -> Any:
    """Hyperbolic tangent."""
    return elementwise(np.tanh, TanhBackward, x)


class SigmoidBackward(Node):
    saves_output = True

    def __init__(self, x: Any, output: Any = None) -> None:
        Node.__init__(self, x)
        if output is not None:  # TinyTorch-style SigmoidBackward(input, output)
            self.save_for_backward(data_of(output))
            self.saves_output = False  # type: ignore[misc]

    def backward(self, g: Any, y: Any) -> Any:
        return g * y * (number(1, y) - y)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return tangents[0] * out * (1 - out)


def _sigmoid_array(x: Any) -> Any:
    # NOTE: the tanh form never overflows, unlike 1 / (1 + exp(-x)).
    return 0.5 * np.tanh(0.5 * x) + 0.5


def sigmoid(x: Any) -> Any:
    """Logistic function ``1 / (1 + e**-x)``, computed without overflow."""
    return elementwise(_sigmoid_array, SigmoidBackward, x)


# ----------------------------------------------------------------- erf


def _erf_array(x: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import erf as scipy_erf
    except ImportError:  # pragma: no cover - scipy comes with the train/dev extras
        return np.asarray(np.frompyfunc(math.erf, 1, 1)(x), dtype=x.dtype)
    return scipy_erf(x)


class ErfBackward(Node):
    def __init__(self, x: Any) -> None:
        Node.__init__(self, x)
        self.save_for_backward(x)

    def backward(self, g: Any, x: Any) -> Any:
        return g * (2 / math.sqrt(math.pi)) * np.exp(-(x * x))

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        x = primals[0]
        return tangents[0] * (2 / math.sqrt(math.pi)) * exp(-(x * x))


def erf(x: Any) -> Any:
    """The error function (exact: SciPy's when installed, else ``math.erf``)."""
    xd = np.asarray(data_of(x))
    return result(_erf_array(xd), ErfBackward(x) if tracked(x) else None)


# ----------------------------------------------------------------- clip, copy, cast


class ClipBackward(Node):
    def __init__(self, x: Any, inside: Any) -> None:
        Node.__init__(self, x)
        self.save_for_backward(inside)

    def backward(self, g: Any, inside: Any) -> Any:
        return g * inside

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return scaled(tangents[0], self.saved_tensors[0])  # the saved mask ``inside``


def clip(x: Any, min: Any = None, max: Any = None) -> Any:  # noqa: A002
    """Limit values to ``[min, max]``; the gradient passes where ``min <= x <= max``.

    >>> import tinytorch as tt
    >>> tt.clip(tt.tensor([-2.0, 0.5, 3.0]), -1, 1)
    tensor([-1. ,  0.5,  1. ])
    """
    xd = data_of(x)
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max")
    if tracked(min, max):  # bounds that need gradients: compose from where
        from tinytorch.ops.binary import where

        out = x
        if min is not None:
            out = where(data_of(out) < data_of(min), min, out)
        if max is not None:
            out = where(data_of(out) > data_of(max), max, out)
        return out
    lo, hi = data_of(min) if min is not None else None, data_of(max) if max is not None else None
    out = np.clip(xd, lo, hi)
    if not tracked(x):
        return result(out, None)
    inside = np.ones(np.shape(xd), dtype=bool)
    if lo is not None:
        inside &= xd >= lo
    if hi is not None:
        inside &= xd <= hi
    return result(out, ClipBackward(x, inside))


clamp = clip


class CloneBackward(Node):
    def backward(self, g: Any) -> Any:
        return g

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return clone(tangents[0])  # a tangent of its own, like the copy


def clone(x: Any) -> Any:
    """A copy with its own memory; gradients pass straight through."""
    return result(np.array(data_of(x), copy=True), CloneBackward(x) if tracked(x) else None)


class CastBackward(Node):
    def backward(self, g: Any) -> Any:
        return g  # the engine casts the gradient back to the input's dtype

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return tangents[0]  # fit_tangent casts it to the output's dtype


def cast(x: Any, dtype: Any) -> Any:
    """Convert to ``dtype``; differentiable between float types."""
    xd = data_of(x)
    out = np.asarray(xd).astype(dtype)
    float_out = out.dtype.kind == "f"
    return result(out, CastBackward(x) if float_out and tracked(x) else None)
