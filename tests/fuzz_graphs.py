"""Random computation graphs for gradient fuzzing.

Used by ``tests/test_fuzz.py`` (a few hundred derandomized examples in CI) and by
``benchmarks/fuzz.py`` (thousands). A graph is a short program over float64 arrays:

    x0 = input (2, 1, 3)
    v0 = softplus(x0)                                  -> (2, 1, 3)
    x1 = input (4, 1)
    v1 = div(v0, x1)                                   -> (2, 4, 3)
    v2 = sum(v1, axis=-1, keepdims=True, style='method') -> (2, 4, 1)

Each step applies one op from ``OPS`` to earlier values (a value may be used more than
once, so gradients must accumulate) or to a fresh input whose shape broadcasts against
the first operand (``hypothesis.extra.numpy.broadcastable_shapes``). Every op exists
twice: as tinytorch calls and as plain NumPy, so the NumPy program is an independent
oracle for both the forward values and, by float64 central differences, the gradients.

Inputs stay where every op is smooth: ``exp`` only sees inputs <= 3, ``abs`` inputs at
least 0.05 away from 0, divisors and ``log``/``sqrt``/``pow`` bases are kept away from 0,
``maximum``/``minimum`` operands are at least 0.05 apart, and every intermediate value
is finite, at most ``BOUND`` in size and has at most ``MAX_SIZE`` elements. A step that
would break one of these rules becomes ``tanh`` of its first operand instead.

``check_graph`` and ``check_hvp`` return a list of problems (empty when all is well).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch as tt
from tinytorch.autograd import grad as autograd_grad

BOUND = 30.0  # largest |value| of any intermediate
MAX_SIZE = 96  # most elements of any value
MAX_SIDE = 4  # longest side of a drawn shape
MAX_DIMS = 4  # most dimensions of any value
MAX_INPUTS = 4
GAP = 0.05  # distance kept from kinks (abs at 0, maximum/minimum ties)
AWAY = 0.25  # distance from 0 kept by divisors and pow bases

Draw = Callable[[st.SearchStrategy[Any]], Any]
Array = np.ndarray

# ----------------------------------------------------------------- the program


@dataclass
class Step:
    op: str
    args: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self, out: str, shape: tuple[int, ...]) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.params.items())
        call = f"{out} = {self.op}({', '.join(self.args)}{extra})"
        return f"{call:<60} -> {shape}"


@dataclass
class Graph:
    """Inputs (name -> float64 array) and steps; the output is the last step's value.
    ``weight`` is ``w`` in the checked scalar ``sum(out * w)``; ``direction`` holds one
    vector per input for Hessian-vector products."""

    inputs: dict[str, Array]
    steps: list[Step]
    shapes: list[tuple[int, ...]]
    order: list[str]  # value names in creation order (inputs interleaved with steps)
    weight: Array
    direction: dict[str, Array]

    @property
    def ops(self) -> list[str]:
        return [s.op for s in self.steps]

    def run(self, inputs: dict[str, Any], backend: str) -> Any:
        """Evaluate with ``backend`` 'tt' (inputs are Tensors) or 'np' (arrays)."""
        return self.values(inputs, backend)[f"v{len(self.steps) - 1}"]

    def values(self, inputs: dict[str, Any] | None = None, backend: str = "np") -> dict[str, Any]:
        """Every value of the program by name (inputs default to ``self.inputs``)."""
        env = dict(self.inputs if inputs is None else inputs)
        for i, step in enumerate(self.steps):
            env[f"v{i}"] = apply(step, [env[a] for a in step.args], backend)
        return env

    def describe(self, values: bool = False) -> str:
        lines = []
        for name in self.order:
            if name.startswith("x"):
                a = self.inputs[name]
                lines.append(f"{name} = input {a.shape}"
                             + (f": np.array({a.tolist()!r})" if values else ""))
            else:
                i = int(name[1:])
                lines.append(self.steps[i].describe(name, self.shapes[i]))
        lines.append(f"loss = sum(v{len(self.steps) - 1} * w)")
        return "\n".join(lines)

    def __repr__(self) -> str:  # what Hypothesis prints for a falsifying example
        return "Graph:\n" + self.describe(values=True)


def apply(step: Step, operands: list[Any], backend: str) -> Any:
    op = OPS[step.op]
    if backend == "tt":
        return op.tt(step.params, *operands)
    return np.asarray(op.np(step.params, *operands), dtype=np.float64)


# ----------------------------------------------------------------- NumPy references


def _np_sigmoid(x: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-x))


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _np_gelu(x: Array) -> Array:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _np_softplus(x: Array) -> Array:  # linear above PyTorch's threshold of 20
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def _np_logsumexp(x: Array, axis: int, keepdims: bool) -> Array:
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _np_softmax(x: Array, dim: int) -> Array:
    e = np.exp(x - np.max(x, axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


# ----------------------------------------------------------------- the op table


@dataclass(frozen=True)
class Op:
    """One fuzzable op: how to call it in tinytorch and in NumPy (both take
    ``(params, *operands)``), and how to draw a step that uses it."""

    tt: Callable[..., Any]
    np: Callable[..., Any]
    build: Callable[[Builder, str], Step | None]


# Unary elementwise: (tinytorch, NumPy, admissible input or None for always).
UNARY: dict[str, tuple[Callable[..., Any], Callable[..., Any], Any]] = {
    "exp": (tt.exp, np.exp, lambda a: a.max() <= 3.0),
    "tanh": (tt.tanh, np.tanh, None),
    "sigmoid": (tt.sigmoid, _np_sigmoid, None),
    "sin": (tt.sin, np.sin, None),
    "cos": (lambda x: x.cos(), np.cos, None),
    "softplus": (tt.softplus, _np_softplus, None),
    "gelu": (tt.gelu, _np_gelu, None),
    "square": (lambda x: x * x, lambda x: x * x, lambda a: np.abs(a).max() <= 5.0),
    "cube": (lambda x: x ** 3, lambda x: x ** 3, lambda a: np.abs(a).max() <= 3.0),
    "abs": (tt.abs, np.abs, lambda a: np.abs(a).min() >= GAP),
    "neg": (lambda x: -x, np.negative, None),
    "log": (tt.log, np.log, lambda a: a.min() >= 0.1),
    "sqrt": (lambda x: x.sqrt(), np.sqrt, lambda a: a.min() >= 0.1),
}

# Binary with broadcasting: (tinytorch, NumPy, admissible (a, b) or None, values of a
# fresh operand).
_ANY = st.floats(-2.0, 2.0, allow_subnormal=False)
_NONZERO = st.one_of(st.floats(-2.0, -AWAY), st.floats(AWAY, 2.0))
BINARY: dict[str, tuple[Callable[..., Any], Callable[..., Any], Any, Any]] = {
    "add": (operator.add, operator.add, None, _ANY),
    "sub": (operator.sub, operator.sub, None, _ANY),
    "mul": (operator.mul, operator.mul, None, _ANY),
    "div": (operator.truediv, operator.truediv,
            lambda a, b: np.abs(b).min() >= AWAY, _NONZERO),
    "maximum": (tt.maximum, np.maximum, lambda a, b: np.abs(a - b).min() >= GAP, _ANY),
    "minimum": (tt.minimum, np.minimum, lambda a, b: np.abs(a - b).min() >= GAP, _ANY),
    "pow": (operator.pow, operator.pow,
            lambda a, b: a.min() >= AWAY and np.abs(b).max() <= 3.0, st.floats(AWAY, 2.0)),
}

# Tensor-with-Python-scalar forms, including the reflected operators.
SCALAR: dict[str, tuple[Callable[..., Any], Any]] = {
    "x + c": (lambda x, c: x + c, None),
    "c - x": (lambda x, c: c - x, None),
    "x * c": (lambda x, c: x * c, None),
    "c * x": (lambda x, c: c * x, None),
    "x / c": (lambda x, c: x / c, lambda a, c: abs(c) >= AWAY),
    "c / x": (lambda x, c: c / x, lambda a, c: np.abs(a).min() >= AWAY),
}


def _unary_op(name: str) -> Op:
    f_tt, f_np, ok = UNARY[name]

    def build(b: Builder, a: str) -> Step | None:
        if ok is None or ok(b.env[a]):
            return Step(name, (a,))
        fits = [n for n in b.order if ok(b.env[n])]  # another value in the op's domain
        return Step(name, (b.draw(st.sampled_from(fits)),)) if fits else None

    return Op(lambda p, x: f_tt(x), lambda p, x: f_np(x), build)


def _binary_op(name: str) -> Op:
    f_tt, f_np, ok, fresh_values = BINARY[name]

    def build(b: Builder, a: str) -> Step | None:
        # pow needs a positive base: a fresh base is drawn positive, so swap when a is not.
        swap = (name == "pow" and b.env[a].min() < AWAY) or b.draw(st.booleans())

        def usable(other: Array) -> bool:
            return ok is None or bool(ok(other, b.env[a]) if swap else ok(b.env[a], other))

        other = b.operand_like(a, "broadcast", fresh_values, usable)
        args = (other, a) if swap else (a, other)
        if not usable(b.env[other]):
            return None
        return Step(name, args)

    return Op(lambda p, x, y: f_tt(x, y), lambda p, x, y: f_np(x, y), build)


def _build_scalar(b: Builder, a: str) -> Step | None:
    form = b.draw(st.sampled_from(sorted(SCALAR)))
    c = b.draw(st.floats(-2.0, 2.0, allow_subnormal=False))
    ok = SCALAR[form][1]
    if ok is not None and not ok(b.env[a], c):
        return None
    return Step("scalar", (a,), {"form": form, "c": c})


def _scalar_call(p: dict[str, Any], x: Any) -> Any:
    return SCALAR[p["form"]][0](x, p["c"])


# ----------------------------------------------------------------- reductions


def _draw_axis(b: Builder, ndim: int) -> Any:
    kind = b.draw(st.sampled_from(["int", "tuple", "none"]))
    if kind == "none" or ndim == 0:
        return None
    if kind == "int":
        return b.draw(st.integers(-ndim, ndim - 1))
    axes = b.draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(a - ndim if b.draw(st.booleans()) else a for a in axes)


def _build_reduce(name: str) -> Callable[[Builder, str], Step]:
    def build(b: Builder, a: str) -> Step:
        axis = _draw_axis(b, b.env[a].ndim)
        style = b.draw(st.sampled_from(["method", "function"]))
        return Step(name, (a,), {"axis": axis, "keepdims": b.draw(st.booleans()),
                                 "style": style})

    return build


def _reduce_tt(name: str) -> Callable[..., Any]:
    def call(p: dict[str, Any], x: Any) -> Any:
        if p["style"] == "method":
            return getattr(x, name)(axis=p["axis"], keepdims=p["keepdims"])
        return getattr(tt, name)(x, dim=p["axis"], keepdim=p["keepdims"])

    return call


def _build_axis_op(name: str) -> Callable[[Builder, str], Step | None]:
    def build(b: Builder, a: str) -> Step | None:
        nd = b.env[a].ndim
        if nd == 0:
            return None
        params: dict[str, Any] = {"dim": b.draw(st.integers(-nd, nd - 1))}
        if name == "logsumexp":
            params["keepdims"] = b.draw(st.booleans())
        return Step(name, (a,), params)

    return build


# ----------------------------------------------------------------- movement


def _prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


def _build_reshape(b: Builder, a: str) -> Step:
    n = b.env[a].size
    k = b.draw(st.integers(0 if n == 1 else 1, MAX_DIMS))
    dims = [1] * k
    for p in _prime_factors(n):
        dims[b.draw(st.integers(0, k - 1))] *= p
    if k and b.draw(st.booleans()):
        dims[b.draw(st.integers(0, k - 1))] = -1
    return Step("reshape", (a,), {"shape": tuple(dims)})


def _build_transpose(b: Builder, a: str) -> Step:
    nd = b.env[a].ndim
    kinds = ["T", "swap", "permute", "default"] if nd >= 2 else ["T"]
    kind = b.draw(st.sampled_from(kinds))
    params: dict[str, Any] = {"kind": kind}
    if kind == "swap":
        params["dims"] = (b.draw(st.integers(-nd, nd - 1)), b.draw(st.integers(-nd, nd - 1)))
    elif kind == "permute":
        params["dims"] = tuple(b.draw(st.permutations(range(nd))))
    return Step("transpose", (a,), params)


def _transpose_tt(p: dict[str, Any], x: Any) -> Any:
    kind = p["kind"]
    if kind == "T":
        return x.T
    if kind == "default":
        return tt.transpose(x)
    if kind == "swap":
        return x.transpose(*p["dims"])
    return x.permute(*p["dims"])


def _transpose_np(p: dict[str, Any], x: Array) -> Array:
    kind = p["kind"]
    if kind == "T":
        return x.T
    if kind == "default":
        return np.swapaxes(x, -2, -1)
    if kind == "swap":
        return np.swapaxes(x, *p["dims"])
    return np.transpose(x, p["dims"])


def _build_unsqueeze(b: Builder, a: str) -> Step | None:
    nd = b.env[a].ndim
    if nd >= MAX_DIMS:
        return None
    return Step("unsqueeze", (a,), {"dim": b.draw(st.integers(-nd - 1, nd))})


def _build_squeeze(b: Builder, a: str) -> Step | None:
    ones = [i for i, n in enumerate(b.env[a].shape) if n == 1]
    if not ones:
        return None
    dim = b.draw(st.sampled_from([None, *ones]))
    return Step("squeeze", (a,), {"dim": dim})


def _build_expand(b: Builder, a: str) -> Step | None:
    shape = b.env[a].shape
    lead = b.draw(st.integers(0, max(0, min(1, MAX_DIMS - len(shape)))))
    new = tuple(b.draw(st.integers(1, 3)) for _ in range(lead)) + tuple(
        b.draw(st.integers(1, 3)) if n == 1 else n for n in shape)
    style = b.draw(st.sampled_from(["broadcast_to", "expand"]))
    return Step("expand", (a,), {"shape": new, "style": style})


def _expand_tt(p: dict[str, Any], x: Any) -> Any:
    if p["style"] == "expand":
        return x.expand(*p["shape"]) if p["shape"] else x.expand(())
    return tt.broadcast_to(x, p["shape"])


def _build_slice(b: Builder, a: str) -> Step | None:
    shape = b.env[a].shape
    if not shape:
        return None
    parts: list[Any] = []
    for n in shape[:b.draw(st.integers(1, len(shape)))]:
        kind = b.draw(st.sampled_from(["slice", "reverse", "int", "newaxis"]))
        if kind == "int":
            parts.append(b.draw(st.integers(-n, n - 1)))
            continue
        if kind == "newaxis" and len(shape) < MAX_DIMS:
            parts.append(None)
        start = b.draw(st.integers(0, n - 1))
        stop = b.draw(st.integers(start + 1, n))
        if kind == "reverse":
            parts.append(slice(stop - 1, start - 1 if start else None, -1))
        else:
            parts.append(slice(start, stop, b.draw(st.integers(1, 2))))
    index = parts[0] if len(parts) == 1 else tuple(parts)
    return Step("getitem", (a,), {"index": index})


def _build_take(b: Builder, a: str) -> Step | None:
    shape = b.env[a].shape
    if not shape:
        return None
    axis = b.draw(st.integers(0, len(shape) - 1))
    n = shape[axis]
    ishape = b.draw(st.sampled_from([(b.draw(st.integers(1, 5)),), (2, 2)]))
    idx = b.draw(hnp.arrays(np.int64, ishape, elements=st.integers(-n, n - 1)))
    index = idx if axis == 0 and b.draw(st.booleans()) else (slice(None),) * axis + (idx,)
    return Step("take", (a,), {"index": index})


def _build_mask(b: Builder, a: str) -> Step | None:
    shape = b.env[a].shape
    if not shape:
        return None
    mask = b.draw(hnp.arrays(np.bool_, shape))
    if not mask.any():
        mask.flat[b.draw(st.integers(0, mask.size - 1))] = True
    return Step("mask", (a,), {"index": mask})


def _build_cat(b: Builder, a: str) -> Step | None:
    nd = b.env[a].ndim
    if nd == 0:
        return None
    dim = b.draw(st.integers(-nd, nd - 1))
    others = [b.operand_like(a, ("cat", dim % nd), _ANY)
              for _ in range(b.draw(st.integers(1, 2)))]
    args = [a, *others]
    order = b.draw(st.permutations(range(len(args))))
    return Step("cat", tuple(args[i] for i in order), {"dim": dim})


def _build_stack(b: Builder, a: str) -> Step | None:
    nd = b.env[a].ndim
    if nd >= MAX_DIMS:
        return None
    dim = b.draw(st.integers(-nd - 1, nd))
    others = [b.operand_like(a, "same", _ANY) for _ in range(b.draw(st.integers(1, 2)))]
    args = [a, *others]
    order = b.draw(st.permutations(range(len(args))))
    return Step("stack", tuple(args[i] for i in order), {"dim": dim})


def _build_matmul(b: Builder, a: str) -> Step | None:
    if b.env[a].ndim == 0:
        return None
    a_left = b.draw(st.booleans())
    other = b.operand_like(a, "matmul_right" if a_left else "matmul_left", _ANY)
    return Step("matmul", (a, other) if a_left else (other, a))


def _build_tile(b: Builder, a: str) -> Step:
    nd = b.env[a].ndim
    reps = tuple(b.draw(st.lists(st.integers(1, 2), min_size=1, max_size=max(1, nd))))
    return Step("tile", (a,), {"reps": reps})


def _build_pad(b: Builder, a: str) -> Step | None:
    nd = b.env[a].ndim
    if nd == 0:
        return None
    widths = tuple((b.draw(st.integers(0, 1)), b.draw(st.integers(0, 1))) for _ in range(nd))
    return Step("pad", (a,), {"widths": widths})


OPS: dict[str, Op] = {name: _unary_op(name) for name in UNARY}
OPS.update({name: _binary_op(name) for name in BINARY})
OPS.update({
    "scalar": Op(_scalar_call, _scalar_call, _build_scalar),
    "sum": Op(_reduce_tt("sum"), lambda p, x: np.sum(x, p["axis"], keepdims=p["keepdims"]),
              _build_reduce("sum")),
    "mean": Op(_reduce_tt("mean"), lambda p, x: np.mean(x, p["axis"], keepdims=p["keepdims"]),
               _build_reduce("mean")),
    "logsumexp": Op(lambda p, x: tt.logsumexp(x, p["dim"], p["keepdims"]),
                    lambda p, x: _np_logsumexp(x, p["dim"], p["keepdims"]),
                    _build_axis_op("logsumexp")),
    "softmax": Op(lambda p, x: tt.softmax(x, p["dim"]), lambda p, x: _np_softmax(x, p["dim"]),
                  _build_axis_op("softmax")),
    "log_softmax": Op(lambda p, x: x.log_softmax(p["dim"]),
                      lambda p, x: np.log(_np_softmax(x, p["dim"])),
                      _build_axis_op("log_softmax")),
    "reshape": Op(lambda p, x: x.reshape(p["shape"]), lambda p, x: x.reshape(p["shape"]),
                  _build_reshape),
    "transpose": Op(_transpose_tt, _transpose_np, _build_transpose),
    "unsqueeze": Op(lambda p, x: x.unsqueeze(p["dim"]),
                    lambda p, x: np.expand_dims(x, p["dim"]), _build_unsqueeze),
    "squeeze": Op(lambda p, x: x.squeeze(p["dim"]), lambda p, x: np.squeeze(x, p["dim"]),
                  _build_squeeze),
    "expand": Op(_expand_tt, lambda p, x: np.broadcast_to(x, p["shape"]), _build_expand),
    "getitem": Op(lambda p, x: x[p["index"]], lambda p, x: x[p["index"]], _build_slice),
    "take": Op(lambda p, x: x[p["index"]], lambda p, x: x[p["index"]], _build_take),
    "mask": Op(lambda p, x: x[p["index"]], lambda p, x: x[p["index"]], _build_mask),
    "cat": Op(lambda p, *xs: tt.cat(list(xs), dim=p["dim"]),
              lambda p, *xs: np.concatenate(xs, axis=p["dim"]), _build_cat),
    "stack": Op(lambda p, *xs: tt.stack(list(xs), dim=p["dim"]),
                lambda p, *xs: np.stack(xs, axis=p["dim"]), _build_stack),
    "matmul": Op(lambda p, x, y: x @ y, lambda p, x, y: x @ y, _build_matmul),
    "tile": Op(lambda p, x: x.repeat(*p["reps"]), lambda p, x: np.tile(x, p["reps"]),
               _build_tile),
    "pad": Op(lambda p, x: tt.pad(x, p["widths"]), lambda p, x: np.pad(x, p["widths"]),
              _build_pad),
})
OP_NAMES: tuple[str, ...] = tuple(OPS)


# ----------------------------------------------------------------- the builder


def _shape_fits(shape: tuple[int, ...]) -> bool:
    return len(shape) <= MAX_DIMS and math.prod(shape) <= MAX_SIZE


class Builder:
    """Grows a graph step by step, keeping the NumPy value of everything built."""

    def __init__(self, draw: Draw) -> None:
        self.draw = draw
        self.env: dict[str, Array] = {}
        self.inputs: dict[str, Array] = {}
        self.steps: list[Step] = []
        self.shapes: list[tuple[int, ...]] = []
        self.order: list[str] = []

    def new_input(self, shape: tuple[int, ...], values: Any = _ANY) -> str:
        name = f"x{len(self.inputs)}"
        self.inputs[name] = self.draw(hnp.arrays(np.float64, shape, elements=values))
        self.env[name] = self.inputs[name]
        self.order.append(name)
        return name

    def pick(self) -> str:
        """An existing value; shrinks towards the newest one."""
        back = self.draw(st.integers(0, len(self.order) - 1))
        return self.order[-1 - back]

    def operand_like(self, a: str, rule: Any, fresh_values: Any,
                     usable: Callable[[Array], bool] | None = None) -> str:
        """A second operand for ``a``: an existing value that fits ``rule`` (``a`` itself
        included) and is ``usable``, or a fresh input of a fitting shape."""
        fits = [n for n in self.order if _fits(rule, self.env[a].shape, self.env[n].shape)
                and (usable is None or usable(self.env[n]))]
        if len(self.inputs) < MAX_INPUTS and (not fits or self.draw(st.booleans())):
            return self.new_input(self._fresh_shape(self.env[a].shape, rule), fresh_values)
        if not fits:
            return a  # a fits itself for "broadcast" and "same"; the caller re-checks
        return fits[self.draw(st.integers(0, len(fits) - 1))]

    def _fresh_shape(self, shape: tuple[int, ...], rule: Any) -> tuple[int, ...]:
        d = self.draw
        if rule == "broadcast":
            return d(hnp.broadcastable_shapes(shape, min_dims=0, max_dims=MAX_DIMS - 1,
                                              min_side=1, max_side=MAX_SIDE))
        if rule == "same":
            return shape
        if isinstance(rule, tuple):  # ("cat", axis)
            axis = rule[1]
            return shape[:axis] + (d(st.integers(1, 3)),) + shape[axis + 1:]
        m = d(st.integers(1, MAX_SIDE))
        batch = d(st.sampled_from([(), shape[:-2], (d(st.integers(1, 2)),)]))
        if rule == "matmul_right":  # a @ new
            k = shape[-1]
            return d(st.sampled_from([(k,), (k, m), (*batch, k, m)]))
        k = shape[0] if len(shape) == 1 else shape[-2]  # new @ a
        return d(st.sampled_from([(k,), (m, k), (*batch, m, k)]))

    def grow(self, op: str, a: str) -> None:
        """Append one ``op`` step on ``a`` (or ``tanh(a)`` if it does not fit)."""
        mark = len(self.order)
        step = OPS[op].build(self, a)
        value = self._value(step)
        if step is None or value is None:  # roll back fresh inputs, fall back to tanh
            for name in self.order[mark:]:
                del self.inputs[name], self.env[name]
            del self.order[mark:]
            step = Step("tanh", (a,))
            value = np.tanh(self.env[a])
        name = f"v{len(self.steps)}"
        self.steps.append(step)
        self.shapes.append(value.shape)
        self.env[name] = value
        self.order.append(name)

    def _value(self, step: Step | None) -> Array | None:
        if step is None:
            return None
        try:
            with np.errstate(all="ignore"):
                value = apply(step, [self.env[n] for n in step.args], "np")
        except (ValueError, IndexError):
            return None
        ok = (value.size > 0 and _shape_fits(value.shape) and np.isfinite(value).all()
              and np.abs(value).max() <= BOUND)
        return value if ok else None


def _fits(rule: Any, a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    if rule == "same":
        return a == b
    if isinstance(rule, tuple):
        axis = rule[1]
        return len(a) == len(b) and a[:axis] == b[:axis] and a[axis + 1:] == b[axis + 1:]
    try:
        if rule == "broadcast":
            return _shape_fits(np.broadcast_shapes(a, b))
        left, right = (a, b) if rule == "matmul_right" else (b, a)
        if not left or not right:
            return False
        return _shape_fits(np.matmul(np.zeros(left), np.zeros(right)).shape)
    except ValueError:
        return False


@st.composite
def graphs(draw: Draw, max_steps: int = 8) -> Graph:
    """A Hypothesis strategy for graphs of 1 to ``max_steps`` steps."""
    b = Builder(draw)
    b.new_input(draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=MAX_SIDE)))
    # NOTE: Hypothesis favours the simplest choice (index 0) and short lists; rotating
    # the op list by a per-graph offset spreads that favour over all ops, and the second
    # range makes long graphs as common as short ones. Shrinking still removes steps.
    n_ops = len(OP_NAMES)
    offset = draw(st.integers(0, n_ops - 1))
    steps = draw(st.integers(1, max_steps) | st.integers(max(1, max_steps // 2), max_steps))
    for _ in range(steps):
        a = b.pick()
        b.grow(OP_NAMES[(draw(st.integers(0, n_ops - 1)) + offset) % n_ops], a)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    return Graph(
        inputs=b.inputs, steps=b.steps, shapes=b.shapes, order=b.order,
        weight=rng.uniform(-1.0, 1.0, b.shapes[-1]),
        direction={n: rng.standard_normal(x.shape) for n, x in b.inputs.items()},
    )


# ----------------------------------------------------------------- known bugs
# Graphs that hit a known tinytorch bug, by check ('grad' or 'hvp'). Each bug has a strict
# xfail test in test_fuzz.py; when it is fixed, that test fails and its entry goes.

KNOWN_BUGS: dict[str, list[tuple[Callable[[Graph], bool], str]]] = {"grad": [], "hvp": []}


def known_bug(graph: Graph, check: str) -> str | None:
    """Why ``graph`` is expected to fail ``check`` because of a known bug, or None."""
    return next((why for hits, why in KNOWN_BUGS[check] if hits(graph)), None)


# ----------------------------------------------------------------- the checks

EPS = 1e-6
HVP_EPS = 1e-5
RTOL, ATOL = 1e-4, 1e-5


def _loss_np(graph: Graph, inputs: dict[str, Array]) -> float:
    return float(np.sum(graph.run(inputs, "np") * graph.weight))


def numeric_grad(graph: Graph, name: str, eps: float = EPS) -> Array:
    """Float64 central differences of ``sum(out * w)`` (NumPy program) for one input."""
    base = graph.inputs[name]
    grad = np.zeros_like(base)
    for i in np.ndindex(base.shape):
        shifted = dict(graph.inputs)
        hi, lo = base.copy(), base.copy()
        hi[i] += eps
        lo[i] -= eps
        shifted[name] = hi
        f_hi = _loss_np(graph, shifted)
        shifted[name] = lo
        grad[i] = (f_hi - _loss_np(graph, shifted)) / (2 * eps)
    return grad


def _leaves(arrays: dict[str, Array]) -> dict[str, tt.Tensor]:
    return {n: tt.tensor(a, requires_grad=True) for n, a in arrays.items()}


def _as_array(g: Any, like: Array) -> Array:
    return np.zeros_like(like) if g is None else np.asarray(g.data)


def _mismatch(label: str, got: Array, want: Array) -> str | None:
    if got.shape != want.shape:
        return f"{label}: shape {got.shape}, expected {want.shape}"
    if np.allclose(got, want, rtol=RTOL, atol=ATOL):
        return None
    err = np.abs(got - want)
    i = np.unravel_index(np.argmax(err - RTOL * np.abs(want)), err.shape)
    return (f"{label}: max error {err.max():.3g}; at {tuple(int(j) for j in i)} got "
            f"{got[i]!r}, expected {want[i]!r}")


def check_graph(graph: Graph) -> list[str]:
    """Forward vs the NumPy program, and each input's gradient of ``sum(out * w)`` vs
    central differences (also its dtype and shape). Returns the problems found."""
    problems: list[str] = []
    try:
        xs = _leaves(graph.inputs)
        out = graph.run(xs, "tt")
        want = graph.run(graph.inputs, "np")
        if out.dtype != np.float64:
            problems.append(f"forward: dtype {out.dtype}, expected float64")
        if out.shape != want.shape or not np.allclose(out.data, want, rtol=1e-10, atol=1e-12):
            problems.append(_mismatch("forward", np.asarray(out.data), want)
                            or "forward: values differ")
        if problems:
            return problems
        (out * tt.tensor(graph.weight)).sum().backward()
        for name, x in xs.items():
            g = x.grad
            if g is not None and (g.dtype != np.float64 or g.shape != x.shape):
                problems.append(f"grad {name}: dtype {g.dtype} shape {g.shape}, expected "
                                f"float64 {x.shape}")
                continue
            bad = _mismatch(f"grad {name}", _as_array(g, x.data), numeric_grad(graph, name))
            if bad:
                problems.append(bad)
    except Exception as exc:  # noqa: BLE001 - any crash is a finding
        problems.append(f"raised {type(exc).__name__}: {exc}")
    return problems


def tt_grads(graph: Graph, arrays: dict[str, Array]) -> dict[str, Array]:
    """First-order tinytorch gradients of ``sum(out * w)`` at ``arrays``."""
    xs = _leaves(arrays)
    (graph.run(xs, "tt") * tt.tensor(graph.weight)).sum().backward()
    return {n: _as_array(x.grad, x.data) for n, x in xs.items()}


def check_hvp(graph: Graph) -> list[str]:
    """Hessian-vector product from ``autograd.grad(create_graph=True)`` twice vs central
    differences of first-order gradients along ``graph.direction``."""
    problems: list[str] = []
    try:
        names = list(graph.inputs)
        xs = _leaves(graph.inputs)
        loss = (graph.run(xs, "tt") * tt.tensor(graph.weight)).sum()
        grads = autograd_grad(loss, [xs[n] for n in names], create_graph=True,
                              allow_unused=True)
        terms = [(g * tt.tensor(graph.direction[n])).sum()
                 for n, g in zip(names, grads) if g is not None and g.requires_grad]
        if terms:
            total = terms[0]
            for t in terms[1:]:
                total = total + t
            hv = autograd_grad(total, [xs[n] for n in names], allow_unused=True)
        else:  # every gradient is constant: the Hessian is zero
            hv = (None,) * len(names)
        plus = tt_grads(graph, {n: graph.inputs[n] + HVP_EPS * graph.direction[n]
                                for n in names})
        minus = tt_grads(graph, {n: graph.inputs[n] - HVP_EPS * graph.direction[n]
                                 for n in names})
        for n, h in zip(names, hv):
            want = (plus[n] - minus[n]) / (2 * HVP_EPS)
            bad = _mismatch(f"hvp {n}", _as_array(h, graph.inputs[n]), want)
            if bad:
                problems.append(bad)
    except Exception as exc:  # noqa: BLE001 - any crash is a finding
        problems.append(f"raised {type(exc).__name__}: {exc}")
    return problems
