"""Binary (and ternary) elementwise ops. Broadcasting is undone by the engine."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinytorch.ops.common import (
    Node,
    Tensor,
    broadcast_shapes,
    data_of,
    elementwise,
    result,
    scaled,
    tangent_sum,
    tracked,
)

# ----------------------------------------------------------------- add / sub


class AddBackward(Node):
    def backward(self, g: Any) -> Any:
        return g, g

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return tangent_sum(*tangents)


class AddScalarBackward(AddBackward):
    """``tensor + number`` (or ``- number``): one edge; the number is kept but unused."""

    def __init__(self, x: Any, c: Any) -> None:
        Node.__init__(self, x)
        self._vals = (c,)

    def name(self) -> str:
        return "AddBackward"

    def backward(self, g: Any, c: Any) -> Any:  # type: ignore[override]
        return g

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return tangents[0]


def add(a: Any, b: Any) -> Any:
    """``a + b`` with broadcasting.

    >>> import tinytorch as tt
    >>> tt.add(tt.tensor([1.0, 2.0]), 1)
    tensor([2., 3.])
    """
    return elementwise(np.add, AddBackward, a, b, AddScalarBackward, AddScalarBackward)


class SubBackward(Node):
    def backward(self, g: Any) -> Any:
        return g, -g

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        ta, tb = tangents
        return tangent_sum(ta, scaled(tb, -1))


def sub(a: Any, b: Any) -> Any:
    """``a - b``."""
    return elementwise(np.subtract, SubBackward, a, b, AddScalarBackward)


# ----------------------------------------------------------------- mul / div


class MulBackward(Node):
    def __init__(self, a: Any, b: Any) -> None:
        Node.__init__(self, a, b)
        need_a, need_b = self.needs_input_grad
        # NOTE: each input's gradient needs only the other operand.
        self.save_for_backward(b if need_a else None, a if need_b else None)

    def backward(self, g: Any, b: Any, a: Any) -> Any:
        return (None if b is None else g * b), (None if a is None else g * a)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        (a, b), (ta, tb) = primals, tangents
        return tangent_sum(scaled(ta, b), scaled(tb, a))


class MulScalarBackward(MulBackward):
    """``tensor * number``: one edge, the number kept as it is."""

    def __init__(self, x: Any, c: Any) -> None:
        Node.__init__(self, x)
        self._vals = (c,)

    def name(self) -> str:
        return "MulBackward"

    def backward(self, g: Any, c: Any) -> Any:  # type: ignore[override]
        return g * c

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        return scaled(tangents[0], self._vals[0])  # type: ignore[index]


def mul(a: Any, b: Any) -> Any:
    """``a * b``."""
    return elementwise(np.multiply, MulBackward, a, b, MulScalarBackward, MulScalarBackward)


class DivBackward(Node):
    def __init__(self, a: Any, b: Any) -> None:
        Node.__init__(self, a, b)
        need_a, need_b = self.needs_input_grad
        self.save_for_backward(a if need_b else None, b)

    def backward(self, g: Any, a: Any, b: Any) -> Any:
        need_a, need_b = self.needs_input_grad
        return (g / b if need_a else None), (-g * a / (b * b) if need_b else None)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        (_, b), (ta, tb) = primals, tangents
        # d(a / b) = (da - db * out) / b
        return tangent_sum(ta, None if tb is None else -(tb * out)) / b


def div(a: Any, b: Any) -> Any:
    """``a / b``."""
    return elementwise(np.true_divide, DivBackward, a, b)


# ----------------------------------------------------------------- pow


class PowBackward(Node):
    def __init__(self, a: Any, b: Any) -> None:
        Node.__init__(self, a, b)
        self.save_for_backward(a, b)

    def backward(self, g: Any, a: Any, b: Any) -> Any:
        need_a, need_b = self.needs_input_grad
        dtype = self._meta[1]  # the output's
        a, b = _in_dtype(a, dtype), _in_dtype(b, dtype)
        ad, bd = data_of(a), data_of(b)
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if need_a:
                ga = g * _dpow_da(a, b, bd)
            if need_b:
                gb = g * _dpow_db(a, b, ad, bd)
        return ga, gb

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        (a, b), (ta, tb) = primals, tangents
        a, b = _in_dtype(a, out.dtype), _in_dtype(b, out.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            da = None if ta is None else ta * _dpow_da(a, b, data_of(b))
            db = None if tb is None else tb * _dpow_db(a, b, data_of(a), data_of(b))
        return tangent_sum(da, db)


def _dpow_da(a: Any, b: Any, bd: Any) -> Any:
    """b * a**(b-1), and 0 (not 0 * inf) where a == b == 0. No inf is formed even in an
    unused branch, whose gradient would turn into NaN at the next order."""
    if isinstance(b, (int, float)):  # a Python exponent keeps the base's dtype
        return b * a ** (1 if b == 0 else b - 1)
    # NOTE: only 0 ** -1 is infinite; the base is swapped for 1 just there, which keeps
    # d/db of this expression (a**(b-1) + ...) right everywhere else.
    return b * np.where((data_of(a) == 0) & (bd == 0), 1.0, a) ** (b - 1)


def _dpow_db(a: Any, b: Any, ad: Any, bd: Any) -> Any:
    """a**b * log(a): NaN for a negative base, as in PyTorch, and 0 (not 0 * -inf) for a
    zero base with a non-negative exponent (log is taken of 1 there instead)."""
    if isinstance(a, (int, float)) and a > 0:  # 2**x: a Python log keeps x's dtype
        return a**b * math.log(a)
    return a**b * _log(np.where((ad == 0) & (bd >= 0), 1.0, a))


def _in_dtype(v: Any, dtype: Any) -> Any:
    """An operand in the output's dtype, so its gradient is computed at full precision."""
    if isinstance(v, (np.ndarray, np.generic)) and v.dtype != dtype:
        return v.astype(dtype)
    if isinstance(v, Tensor) and v.dtype != dtype:
        return v.astype(dtype)
    return v


def _log(x: Any) -> Any:
    """``log`` of a Tensor (recorded) or of a plain number/array."""
    from tinytorch.ops.unary import log

    return log(x) if isinstance(x, Tensor) else np.log(x)


def pow(a: Any, b: Any) -> Any:  # noqa: A001 - the op table's name
    """``a ** b`` (either side may be a Python number).

    >>> import tinytorch as tt
    >>> tt.pow(2, tt.tensor([1.0, 3.0]))
    tensor([2., 8.])
    """
    return elementwise(np.power, PowBackward, a, b)


# ----------------------------------------------------------------- maximum / minimum / where


class MaximumBackward(Node):
    """Also serves ``minimum``: the weights say which side won (ties split evenly)."""

    def __init__(self, a: Any, b: Any, weight_a: Any = None) -> None:
        Node.__init__(self, a, b)
        if weight_a is None:  # TinyTorch-style direct construction
            ad, bd = data_of(a), data_of(b)
            weight_a = (ad > bd) + 0.5 * (ad == bd)
        self.save_for_backward(weight_a)

    def backward(self, g: Any, weight_a: Any) -> Any:
        return g * weight_a, g * (1.0 - weight_a)

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        ta, tb = tangents
        weight_a = self.saved_tensors[0]
        return tangent_sum(scaled(ta, weight_a), scaled(tb, 1.0 - weight_a))


class MinimumBackward(MaximumBackward):
    pass


def _choose(a: Any, b: Any, a_wins: Any, node_cls: type[MaximumBackward]) -> Any:
    ad, bd = data_of(a), data_of(b)
    broadcast_shapes("maximum" if node_cls is MaximumBackward else "minimum", ad, bd)
    out = np.maximum(ad, bd) if node_cls is MaximumBackward else np.minimum(ad, bd)
    if not tracked(a, b):
        return result(out, None)
    dtype = out.dtype if np.issubdtype(out.dtype, np.floating) else np.float32
    weight_a = (a_wins(ad, bd) + 0.5 * (ad == bd)).astype(dtype)
    return result(out, node_cls(a, b, weight_a))


def maximum(a: Any, b: Any) -> Any:
    """Elementwise maximum; at ties each side gets half the gradient."""
    return _choose(a, b, np.greater, MaximumBackward)


def minimum(a: Any, b: Any) -> Any:
    """Elementwise minimum; at ties each side gets half the gradient."""
    return _choose(a, b, np.less, MinimumBackward)


class WhereBackward(Node):
    def __init__(self, cond: Any, a: Any, b: Any) -> None:
        Node.__init__(self, a, b)
        self.save_for_backward(np.asarray(data_of(cond), dtype=bool))

    def backward(self, g: Any, cond: Any) -> Any:
        return g * cond, g * ~cond

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        ta, tb = tangents
        cond = self.saved_tensors[0]
        return tangent_sum(scaled(ta, cond), scaled(tb, ~cond))


def where(cond: Any, a: Any, b: Any) -> Any:
    """Pick ``a`` where ``cond`` holds, else ``b``; ``cond`` gets no gradient.

    >>> import tinytorch as tt
    >>> x = tt.tensor([-1.0, 2.0])
    >>> tt.where(x > 0, x, 0.0)
    tensor([0., 2.])
    """
    c = np.asarray(data_of(cond), dtype=bool)
    broadcast_shapes("where", c, data_of(a), data_of(b))
    out = np.where(c, data_of(a), data_of(b))
    return result(out, WhereBackward(c, a, b) if tracked(a, b) else None)


# ----------------------------------------------------------------- comparisons (no gradient)


def _compare(ufunc: Any) -> Any:
    def compare(a: Any, b: Any) -> Any:
        return result(ufunc(data_of(a), data_of(b)), None)

    compare.__name__ = ufunc.__name__
    compare.__doc__ = f"Elementwise ``np.{ufunc.__name__}``; returns a bool tensor."
    return compare


eq = _compare(np.equal)
ne = _compare(np.not_equal)
lt = _compare(np.less)
le = _compare(np.less_equal)
gt = _compare(np.greater)
ge = _compare(np.greater_equal)
