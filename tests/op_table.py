"""The op table: every differentiable op of tinytorch's public API, one entry each.

An entry (``OpSpec``) names the op, calls it on tinytorch Tensors (``fn``), says what
NumPy computes for the same float64 arrays (``ref``), lists the input shapes to try,
where the inputs may be drawn from (``domain``: positive for log, away from the kink of
abs/relu, distinct values for max...), whether a second derivative is defined there,
and, optionally, the same op written for PyTorch (``torch``: ``(torch_module, *inputs)``;
torch is never imported here). ``tests/test_ops.py`` runs every entry through the same
checks: forward vs ``ref`` in float32/float64, gradients vs central differences,
Hessian-vector products, Hypothesis (``elementwise`` entries) and PyTorch.

Non-differentiable arguments (axes, indices, class targets, masks) are fixed inside
``fn``/``ref``/``torch``; every positional input is a float tensor that gets a gradient.
Known bugs stay in the table with ``xfail={test kind: "BUG: ..."}`` (kinds: ``forward``,
``grad``, ``hvp``, ``torch``, ``hypothesis``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tinytorch as tt

Shape = tuple[int, ...]
Case = tuple[Shape, ...]

# ----------------------------------------------------------------- input domains


@dataclass(frozen=True)
class Domain:
    """Uniform values in ``[lo, hi]``, pushed at least ``gap`` away from each point in
    ``avoid`` (kinks, poles), so central differences never straddle one."""

    lo: float = -2.0
    hi: float = 2.0
    avoid: tuple[float, ...] = ()
    gap: float = 0.05

    def fix(self, a: np.ndarray) -> np.ndarray:
        a = np.array(a, dtype=np.float64)
        for p in self.avoid:
            d = a - p
            near = np.abs(d) < self.gap
            a = np.where(near, p + np.where(d < 0, -self.gap, self.gap), a)
        return a

    def sample(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        return self.fix(rng.uniform(self.lo, self.hi, size=shape))


@dataclass(frozen=True)
class Distinct(Domain):
    """Values at least 0.1 apart (no ties, no near-ties), for max/min/sorting."""

    def sample(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        n = int(np.prod(shape, dtype=np.int64))
        vals = (rng.permutation(n) - n / 2) * 0.17 + rng.uniform(-0.03, 0.03, size=n)
        return vals.reshape(shape)


@dataclass(frozen=True)
class Fixed(Domain):
    """Values from ``values`` (cycled), e.g. to put an input exactly on a special point."""

    values: tuple[float, ...] = (0.0,)

    def sample(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        n = int(np.prod(shape, dtype=np.int64))
        return np.resize(np.array(self.values, dtype=np.float64), n).reshape(shape)


REAL = Domain(-2.0, 2.0)
POSITIVE = Domain(0.5, 2.0)
NONZERO = Domain(-2.0, 2.0, avoid=(0.0,), gap=0.4)  # denominators
AWAY0 = Domain(-2.0, 2.0, avoid=(0.0,), gap=0.05)  # kink at 0 (abs, relu, ...)
UNIT = Domain(0.05, 0.95)  # probabilities
DISTINCT = Distinct()

# ----------------------------------------------------------------- the entry type


@dataclass(frozen=True)
class OpSpec:
    name: str
    fn: Callable[..., Any]  # tinytorch Tensors -> Tensor (or a list of Tensors)
    ref: Callable[..., Any]  # float64 arrays -> array (or a list of arrays)
    shapes: Sequence[Case]  # one tuple of input shapes per case
    domain: Domain | tuple[Domain, ...] = REAL  # one for all inputs, or one per input
    twice: bool = True  # second derivative defined on the domain (and create_graph works)
    torch: Callable[..., Any] | None = None  # (torch, *torch tensors) -> output
    elementwise: bool = False  # unary/binary elementwise: also run under Hypothesis
    xfail: dict[str, str] = field(default_factory=dict)  # test kind -> reason

    @property
    def arity(self) -> int:
        return len(self.shapes[0])

    def domains(self) -> tuple[Domain, ...]:
        if isinstance(self.domain, Domain):
            return (self.domain,) * self.arity
        assert len(self.domain) == self.arity, self.name
        return self.domain


def case_id(case: Case) -> str:
    return "x".join("(" + ",".join(map(str, s)) + ")" for s in case)


# ----------------------------------------------------------------- NumPy references

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _axis(kw: dict[str, Any]) -> tuple[Any, bool]:
    """NumPy (axis, keepdims) from either spelling."""
    axis = kw.get("axis", kw.get("dim"))
    keep = bool(kw.get("keepdims", kw.get("keepdim", False)))
    return axis, keep


def np_logsumexp(a: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def np_softmax(a: np.ndarray, axis: int | None = -1) -> np.ndarray:
    axis = None if a.ndim == 0 else axis
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def np_log_softmax(a: np.ndarray, axis: int | None = -1) -> np.ndarray:
    axis = None if a.ndim == 0 else axis
    return a - np_logsumexp(a, axis=axis, keepdims=True)


def np_sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def np_gelu(a: np.ndarray) -> np.ndarray:
    return a * 0.5 * (1.0 + _erf(a / math.sqrt(2.0)))


def np_gelu_tanh(a: np.ndarray) -> np.ndarray:
    return 0.5 * a * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (a + 0.044715 * a**3)))


def np_softplus(a: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    return np.where(a * beta > threshold, a, np.log1p(np.exp(a * beta)) / beta)


def np_cross_entropy(z: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.mean(np_logsumexp(z, axis=1) - z[np.arange(len(t)), t])


def class_targets(shape: Shape) -> np.ndarray:
    """Fixed integer targets for logits of ``shape`` (N, C)."""
    return (np.arange(shape[0]) * 2 + 1) % shape[1]


def pattern(shape: Shape) -> np.ndarray:
    """A fixed boolean pattern with both values present (for where / masks)."""
    if not shape:
        return np.array(True)
    return (np.indices(shape).sum(axis=0) % 3 != 1)


# ----------------------------------------------------------------- shape cases

UNARY: list[Case] = [((3, 4),), ((),), ((1,),), ((2, 1, 3),), ((2, 0),)]
BINARY: list[Case] = [
    ((3, 4), (3, 4)),
    ((3, 1), (1, 4)),  # both sides broadcast
    ((2, 3), ()),  # 0-d on the right
    ((), (2, 3)),  # 0-d on the left
    ((), ()),
    ((4,), (2, 1, 4)),  # rank promotion
    ((1, 1), (2, 1)),  # size-1 axes
    ((0, 3), (1, 3)),  # empty
]

TABLE: list[OpSpec] = []


def add(spec: OpSpec) -> OpSpec:
    TABLE.append(spec)
    return spec


def unary(name: str, fn: Callable[..., Any], ref: Callable[..., Any],
          torch: Callable[..., Any] | None, domain: Domain = REAL, *, twice: bool = True,
          shapes: Sequence[Case] = UNARY, elementwise: bool = True, **kw: Any) -> None:
    add(OpSpec(name, fn, ref, shapes, domain, twice, torch, elementwise, **kw))


def binary(name: str, fn: Callable[..., Any], ref: Callable[..., Any],
           torch: Callable[..., Any] | None, domain: Domain | tuple[Domain, ...] = REAL, *,
           twice: bool = True, shapes: Sequence[Case] = BINARY, elementwise: bool = True,
           **kw: Any) -> None:
    add(OpSpec(name, fn, ref, shapes, domain, twice, torch, elementwise, **kw))


# ----------------------------------------------------------------- arithmetic (binary)

binary("add", lambda a, b: a + b, np.add, lambda th, a, b: a + b)
binary("add_fn", tt.add, np.add, lambda th, a, b: th.add(a, b))
binary("sub", lambda a, b: a - b, np.subtract, lambda th, a, b: a - b)
binary("sub_fn", tt.sub, np.subtract, lambda th, a, b: th.sub(a, b))
binary("mul", lambda a, b: a * b, np.multiply, lambda th, a, b: a * b)
binary("mul_fn", tt.mul, np.multiply, lambda th, a, b: th.mul(a, b))
binary("div", lambda a, b: a / b, np.divide, lambda th, a, b: a / b, (REAL, NONZERO))
binary("div_fn", tt.div, np.divide, lambda th, a, b: th.div(a, b), (REAL, NONZERO))
binary("pow_tensor_tensor", lambda a, b: a**b, np.power, lambda th, a, b: a**b,
       (POSITIVE, REAL))
binary("pow_fn", tt.pow, np.power, lambda th, a, b: th.pow(a, b), (POSITIVE, REAL))
binary("maximum", tt.maximum, np.maximum, lambda th, a, b: th.maximum(a, b))
binary("minimum", tt.minimum, np.minimum, lambda th, a, b: th.minimum(a, b))

# Python scalars on either side (the scalar gets no gradient).
unary("add_scalar", lambda x: x + 1.5, lambda x: x + 1.5, lambda th, x: x + 1.5)
unary("radd_scalar", lambda x: 2 + x, lambda x: 2 + x, lambda th, x: 2 + x)
unary("rsub_scalar(1-x)", lambda x: 1 - x, lambda x: 1 - x, lambda th, x: 1 - x)
unary("sub_scalar", lambda x: x - 0.5, lambda x: x - 0.5, lambda th, x: x - 0.5)
unary("rmul_scalar(2*x)", lambda x: 2 * x, lambda x: 2 * x, lambda th, x: 2 * x)
unary("div_scalar", lambda x: x / 4, lambda x: x / 4, lambda th, x: x / 4)
unary("rdiv_scalar(1/x)", lambda x: 1 / x, lambda x: 1 / x, lambda th, x: 1 / x, NONZERO)
unary("pow_scalar(x**2)", lambda x: x**2, lambda x: x**2, lambda th, x: x**2)
unary("pow_scalar(x**3)", lambda x: x**3, lambda x: x**3, lambda th, x: x**3)
unary("pow_scalar(x**-1.5)", lambda x: x**-1.5, lambda x: x**-1.5, lambda th, x: x**-1.5,
      POSITIVE)
unary("pow_scalar(x**0.5)", lambda x: x**0.5, np.sqrt, lambda th, x: x**0.5, POSITIVE)
unary("rpow_scalar(2**x)", lambda x: 2**x, lambda x: 2.0**x, lambda th, x: 2**x)
unary("numpy_scalar_left(np.float32(2)*x)", lambda x: np.float32(2.0) * x, lambda x: 2.0 * x,
      lambda th, x: 2.0 * x)
unary("numpy_scalar_rpow(np.float32(2)**x)", lambda x: np.float32(2.0) ** x, lambda x: 2.0**x,
      lambda th, x: 2.0**x, shapes=UNARY[:4])
unary("numpy_scalar_rsub(np.float32(1)-x)", lambda x: np.float32(1.0) - x, lambda x: 1.0 - x,
      lambda th, x: 1.0 - x)
unary("rpow_scalar(0.5**x)", lambda x: 0.5**x, lambda x: 0.5**x, lambda th, x: 0.5**x)
unary("pow_fn_scalar", lambda x: tt.pow(x, 3), lambda x: x**3, lambda th, x: th.pow(x, 3))
unary("pow_fn_rscalar", lambda x: tt.pow(3, x), lambda x: 3.0**x, lambda th, x: th.pow(3, x))

# The power rule at a zero base: the limit 0, not NaN (PyTorch masks these cases too).
unary("pow_zero_base(x**0 at x=0)", lambda x: x**0, lambda x: x**0, lambda th, x: x**0,
      Fixed(values=(0.0, 1.5, -0.5)), shapes=[((3,),)], elementwise=False)
unary("rpow_zero_base(0**x)", lambda x: 0.0**x, lambda x: 0.0**x, lambda th, x: 0.0**x,
      POSITIVE, shapes=[((3,),)], elementwise=False, twice=False)

# ----------------------------------------------------------------- unary math

unary("neg", lambda x: -x, np.negative, lambda th, x: -x)
unary("neg_fn", tt.neg, np.negative, lambda th, x: th.neg(x))
unary("abs", abs, np.abs, lambda th, x: abs(x), AWAY0)
unary("abs_fn", tt.abs, np.abs, lambda th, x: th.abs(x), AWAY0)
unary("exp", tt.exp, np.exp, lambda th, x: th.exp(x))
unary("exp_method", lambda x: x.exp(), np.exp, lambda th, x: x.exp())
unary("log", tt.log, np.log, lambda th, x: th.log(x), POSITIVE)
unary("sqrt", tt.sqrt, np.sqrt, lambda th, x: th.sqrt(x), POSITIVE)
unary("sin", tt.sin, np.sin, lambda th, x: th.sin(x))
unary("cos", tt.cos, np.cos, lambda th, x: th.cos(x))
unary("tanh", tt.tanh, np.tanh, lambda th, x: th.tanh(x))
unary("sigmoid", tt.sigmoid, np_sigmoid, lambda th, x: th.sigmoid(x), Domain(-6.0, 6.0))
unary("erf", tt.erf, _erf, lambda th, x: th.erf(x))
unary("relu", tt.relu, lambda x: np.maximum(x, 0.0), lambda th, x: th.relu(x), AWAY0)
unary("relu_method", lambda x: x.relu(), lambda x: np.maximum(x, 0.0),
      lambda th, x: x.relu(), AWAY0)
unary("leaky_relu", tt.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x),
      lambda th, x: th.nn.functional.leaky_relu(x), AWAY0)
unary("leaky_relu(0.2)", lambda x: tt.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x),
      lambda th, x: th.nn.functional.leaky_relu(x, 0.2), AWAY0)
unary("gelu", tt.gelu, np_gelu, lambda th, x: th.nn.functional.gelu(x), Domain(-3.0, 3.0))
unary("gelu_tanh", lambda x: tt.gelu(x, approximate="tanh"), np_gelu_tanh,
      lambda th, x: th.nn.functional.gelu(x, approximate="tanh"), Domain(-3.0, 3.0))
unary("softplus", tt.softplus, np_softplus, lambda th, x: th.nn.functional.softplus(x),
      Domain(-4.0, 4.0))
unary("softplus(beta=2,threshold=2)", lambda x: tt.softplus(x, beta=2.0, threshold=2.0),
      lambda x: np_softplus(x, 2.0, 2.0),
      lambda th, x: th.nn.functional.softplus(x, beta=2.0, threshold=2.0),
      Domain(-2.0, 2.0, avoid=(1.0,), gap=0.05))
unary("clip", lambda x: tt.clip(x, -1.0, 1.0), lambda x: np.clip(x, -1.0, 1.0),
      lambda th, x: th.clamp(x, -1.0, 1.0), Domain(-2.0, 2.0, avoid=(-1.0, 1.0)))
unary("clamp_min_only", lambda x: tt.clamp(x, min=-0.5), lambda x: np.maximum(x, -0.5),
      lambda th, x: th.clamp(x, min=-0.5), Domain(-2.0, 2.0, avoid=(-0.5,)))
unary("clip_method_max_only", lambda x: x.clip(max=0.5), lambda x: np.minimum(x, 0.5),
      lambda th, x: x.clamp(max=0.5), Domain(-2.0, 2.0, avoid=(0.5,)))
unary("clamp_method", lambda x: x.clamp(-0.3, 0.7), lambda x: np.clip(x, -0.3, 0.7),
      lambda th, x: x.clamp(-0.3, 0.7), Domain(-2.0, 2.0, avoid=(-0.3, 0.7)))
unary("maximum_scalar", lambda x: tt.maximum(x, 0.25), lambda x: np.maximum(x, 0.25),
      lambda th, x: th.clamp(x, min=0.25), Domain(-2.0, 2.0, avoid=(0.25,)))
add(OpSpec("clamp_tensor_bounds", lambda x, lo, hi: tt.clamp(x, lo, hi),
           lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi), [((3, 4), (3, 4), (3, 4))],
           (Domain(-3.0, 3.0), Domain(-2.0, -0.5), Domain(0.5, 2.0)),
           torch=lambda th, x, lo, hi: th.clamp(x, lo, hi)))
unary("clone", tt.clone, lambda x: x.copy(), lambda th, x: x.clone())

# ----------------------------------------------------------------- where


def _where_tt(a: Any, b: Any) -> Any:
    return tt.where(pattern(np.broadcast_shapes(a.shape, b.shape)), a, b)


def _where_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(pattern(np.broadcast_shapes(a.shape, b.shape)), a, b)


def _where_th(th: Any, a: Any, b: Any) -> Any:
    c = th.as_tensor(pattern(np.broadcast_shapes(tuple(a.shape), tuple(b.shape))))
    return th.where(c, a, b)


binary("where", _where_tt, _where_np, _where_th)
unary("where_self_cond", lambda x: tt.where(x > 0, x, x * -3.0),
      lambda x: np.where(x > 0, x, x * -3.0), lambda th, x: th.where(x > 0, x, x * -3.0), AWAY0)
unary("where_scalar_branch", lambda x: tt.where(x > 0.5, 0.0, x),
      lambda x: np.where(x > 0.5, 0.0, x), lambda th, x: th.where(x > 0.5, 0.0, x),
      Domain(-2.0, 2.0, avoid=(0.5,)))

# ----------------------------------------------------------------- linear algebra

MATMUL: list[Case] = [
    ((3,), (3,)),  # 1-D @ 1-D -> 0-d
    ((2, 3), (3,)),  # 2-D @ 1-D
    ((3,), (3, 4)),  # 1-D @ 2-D
    ((2, 3), (3, 4)),
    ((1, 1), (1, 1)),
    ((2, 1, 2, 3), (3, 3, 4)),  # batch dims broadcast
    ((2, 2, 3), (2, 3, 4)),
    ((3,), (2, 3, 4)),  # 1-D @ batched
    ((2, 3, 4), (4,)),  # batched @ 1-D
    ((2, 0), (0, 3)),  # empty inner dimension: zeros
    ((0, 2), (2, 3)),  # empty batch of rows
]
add(OpSpec("matmul", lambda a, b: a @ b, np.matmul, MATMUL, torch=lambda th, a, b: a @ b))
add(OpSpec("matmul_fn", tt.matmul, np.matmul, MATMUL[:6], torch=lambda th, a, b: th.matmul(a, b)))
add(OpSpec("dot", tt.dot, np.dot, [((3,), (3,)), ((2, 3), (3, 4)), ((2, 3), (3,))],
           torch=lambda th, a, b: th.matmul(a, b)))
add(OpSpec("dot_method", lambda a, b: a.dot(b), np.dot, [((4,), (4,))],
           torch=lambda th, a, b: a.dot(b)))

# ----------------------------------------------------------------- reductions

# (label, kwargs, input shapes). NumPy spellings go through tt.<op>(x, ...), PyTorch
# spellings through the x.<op>(...) method, so both entry points are covered.
REDUCE_VARIANTS: list[tuple[str, dict[str, Any], list[Shape]]] = [
    ("all", {}, [(2, 3, 4), (), (1,), (3, 1)]),
    ("axis=0", {"axis": 0}, [(3, 4), (1, 4), (5,)]),
    ("axis=-1,keepdims", {"axis": -1, "keepdims": True}, [(3, 4), (2, 1, 3)]),
    ("axis=(0,2)", {"axis": (0, 2)}, [(2, 3, 4), (2, 1, 3)]),
    ("axis=(-1,-3),keepdims", {"axis": (-1, -3), "keepdims": True}, [(2, 3, 4)]),
    ("axis=None,keepdims", {"axis": None, "keepdims": True}, [(2, 3)]),
    ("empty,axis=-1,keepdims", {"axis": -1, "keepdims": True}, [(0, 3)]),  # nothing to reduce
    ("dim=1,keepdim", {"dim": 1, "keepdim": True}, [(2, 3, 4), (3, 2)]),
    ("dim=(0,-1)", {"dim": (0, -1)}, [(2, 3, 4)]),
    ("dim=-2", {"dim": -2}, [(3, 4), (2, 1, 2)]),
]


def _count(shape: Shape, axis: Any) -> int:
    if axis is None:
        return int(np.prod(shape, dtype=np.int64))
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def _torch_dim(x: Any, axis: Any) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(x.ndim))
    return (axis,) if isinstance(axis, int) else tuple(axis)


def _reduction(op: str, np_ref: Callable[..., Any], th_ref: Callable[..., Any],
               domain: Domain, min_count: int = 1, extra: dict[str, Any] | None = None,
               variants: list[tuple[str, dict[str, Any], list[Shape]]] = REDUCE_VARIANTS,
               xfail: dict[str, dict[str, str]] | None = None) -> None:
    """One entry per variant; ``xfail`` maps a variant label to the entry's xfail."""
    extra = extra or {}
    for label, kw, shapes in variants:
        axis, keep = _axis(kw)
        cases = [(s,) for s in shapes if _count(s, axis if s else None) >= min_count]
        if not cases:
            continue
        full = {**kw, **extra}
        if "dim" in kw:
            def fn(x: Any, full: dict[str, Any] = full) -> Any:
                return getattr(x, op)(**full)
        else:
            def fn(x: Any, full: dict[str, Any] = full) -> Any:
                return getattr(tt, op)(x, **full)

        def ref(a: np.ndarray, axis: Any = axis, keep: bool = keep) -> np.ndarray:
            return np_ref(a, axis=axis if a.ndim else None, keepdims=keep)

        def th(th_mod: Any, x: Any, axis: Any = axis, keep: bool = keep) -> Any:
            return th_ref(th_mod, x, _torch_dim(x, axis), keep)

        xtra = "".join(f",{k}={v}" for k, v in extra.items())
        add(OpSpec(f"{op}[{label}{xtra}]", fn, ref, cases, domain, torch=th,
                   xfail=(xfail or {}).get(label, {})))


_reduction("sum", np.sum, lambda th, x, d, k: th.sum(x, dim=d, keepdim=k), REAL)
_reduction("mean", np.mean, lambda th, x, d, k: th.mean(x, dim=d, keepdim=k), REAL)
_reduction("max", np.max, lambda th, x, d, k: th.amax(x, dim=d, keepdim=k), DISTINCT)
_reduction("min", np.min, lambda th, x, d, k: th.amin(x, dim=d, keepdim=k), DISTINCT)
_reduction("var", np.var, lambda th, x, d, k: th.var(x, dim=d, keepdim=k, correction=0), REAL)
_reduction("std", np.std, lambda th, x, d, k: th.std(x, dim=d, keepdim=k, correction=0), REAL,
           min_count=2)
_reduction("logsumexp", np_logsumexp, lambda th, x, d, k: th.logsumexp(x, dim=d, keepdim=k),
           REAL)
_DDOF = [("axis=1", {"axis": 1}, [(3, 4)]), ("dim=(0,2),keepdim", {"dim": (0, 2),
                                                                  "keepdim": True}, [(2, 3, 2)]),
         ("all", {}, [(2, 3)])]
for _op, _np_op, _th_op in (("var", np.var, "var"), ("std", np.std, "std")):
    _reduction(_op, lambda a, _f=_np_op, **k: _f(a, ddof=1, **k),
               lambda th, x, d, k, _n=_th_op: getattr(th, _n)(x, dim=d, keepdim=k, correction=1),
               REAL, min_count=2, extra={"ddof": 1}, variants=_DDOF)
    _reduction(_op, lambda a, _f=_np_op, **k: _f(a, ddof=1, **k),
               lambda th, x, d, k, _n=_th_op: getattr(th, _n)(x, dim=d, keepdim=k, correction=1),
               REAL, min_count=2, extra={"correction": 1}, variants=_DDOF[1:2])

# ----------------------------------------------------------------- softmax family

SOFTMAX_VARIANTS: list[tuple[str, int, list[Shape]]] = [
    ("dim=-1", -1, [(3, 4), (5,), (), (2, 1), (0, 3)]),
    ("dim=0", 0, [(3, 4), (1, 3)]),
    ("dim=1", 1, [(2, 3, 4)]),
]
for _label, _dim, _shapes in SOFTMAX_VARIANTS:
    add(OpSpec(f"softmax[{_label}]", lambda x, d=_dim: tt.softmax(x, d),
               lambda a, d=_dim: np_softmax(a, d), [(s,) for s in _shapes],
               torch=lambda th, x, d=_dim: th.softmax(x, d)))
    add(OpSpec(f"log_softmax[{_label}]", lambda x, d=_dim: x.log_softmax(dim=d),
               lambda a, d=_dim: np_log_softmax(a, d), [(s,) for s in _shapes],
               torch=lambda th, x, d=_dim: x.log_softmax(dim=d)))
add(OpSpec("softmax[default]", tt.softmax, np_softmax, [((2, 3),)],
           torch=lambda th, x: th.softmax(x, -1)))
add(OpSpec("softmax_wide_logits", lambda x: tt.softmax(x * 30.0), lambda a: np_softmax(a * 30.0),
           [((2, 5),)], torch=lambda th, x: th.softmax(x * 30.0, -1)))

# ----------------------------------------------------------------- losses

LOSS2: list[Case] = [((3, 4), (3, 4)), ((5,), (5,)), ((), ())]
add(OpSpec("mse_loss", tt.mse_loss, lambda p, t: np.mean((p - t) ** 2), LOSS2,
           torch=lambda th, p, t: th.nn.functional.mse_loss(p, t)))


def _bce_np(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def _bce_th(th: Any, p: Any, y: Any) -> Any:
    # PyTorch's fused BCE has no gradient for the target; spell the formula out.
    return -(y * th.log(p) + (1 - y) * th.log1p(-p)).mean()


add(OpSpec("binary_cross_entropy", tt.binary_cross_entropy, _bce_np, LOSS2, (UNIT, UNIT),
           torch=_bce_th))
add(OpSpec("binary_cross_entropy_hard_targets",
           lambda p: tt.binary_cross_entropy(p, tt.tensor(pattern(p.shape).astype(p.dtype))),
           lambda p: _bce_np(p, pattern(p.shape).astype(p.dtype)), [((3, 4),), ((6,),)], UNIT,
           torch=lambda th, p: th.nn.functional.binary_cross_entropy(
               p, th.as_tensor(pattern(tuple(p.shape)), dtype=p.dtype))))


def _ce_tt(z: Any) -> Any:
    return tt.cross_entropy(z, tt.tensor(class_targets(z.shape), dtype="int64"))


add(OpSpec("cross_entropy", _ce_tt, lambda z: np_cross_entropy(z, class_targets(z.shape)),
           [((4, 3),), ((1, 5),), ((3, 1),)], Domain(-3.0, 3.0),
           torch=lambda th, z: th.nn.functional.cross_entropy(
               z, th.as_tensor(class_targets(tuple(z.shape))))))

# ----------------------------------------------------------------- reshape family

add(OpSpec("reshape", lambda x: x.reshape(4, 3), lambda a: a.reshape(4, 3), [((3, 4),), ((12,),)],
           torch=lambda th, x: x.reshape(4, 3)))
add(OpSpec("reshape_fn_tuple_-1", lambda x: tt.reshape(x, (2, -1)), lambda a: a.reshape(2, -1),
           [((3, 4),), ((2, 1, 3),)], torch=lambda th, x: x.reshape(2, -1)))
add(OpSpec("reshape_to_0d", lambda x: x.reshape(()), lambda a: a.reshape(()), [((1,),), ((1, 1),)],
           torch=lambda th, x: x.reshape(())))
add(OpSpec("reshape_from_0d", lambda x: x.reshape(1, 1), lambda a: a.reshape(1, 1), [((),)],
           torch=lambda th, x: x.reshape(1, 1)))
add(OpSpec("view", lambda x: x.view(-1), lambda a: a.reshape(-1), [((3, 4),), ((2, 1, 3),)],
           torch=lambda th, x: x.view(-1)))
add(OpSpec("view_fn", lambda x: tt.view(x, 6, 2), lambda a: a.reshape(6, 2), [((3, 4),)],
           torch=lambda th, x: x.view(6, 2)))
add(OpSpec("flatten", lambda x: x.flatten(), lambda a: a.reshape(-1),
           [((2, 3, 4),), ((),), ((5,),)], torch=lambda th, x: x.flatten()))
add(OpSpec("flatten(1)", lambda x: tt.flatten(x, 1), lambda a: a.reshape(a.shape[0], -1),
           [((2, 3, 4),)], torch=lambda th, x: th.flatten(x, 1)))
add(OpSpec("flatten(0,1)", lambda x: x.flatten(0, 1), lambda a: a.reshape(-1, a.shape[-1]),
           [((2, 3, 4),)], torch=lambda th, x: x.flatten(0, 1)))
add(OpSpec("squeeze", lambda x: x.squeeze(), np.squeeze, [((1, 3, 1),), ((1,),), ((2, 3),)],
           torch=lambda th, x: x.squeeze()))
add(OpSpec("squeeze(dim)", lambda x: tt.squeeze(x, 1), lambda a: np.squeeze(a, 1),
           [((2, 1, 3),)], torch=lambda th, x: x.squeeze(1)))
add(OpSpec("squeeze(-1)", lambda x: x.squeeze(-1), lambda a: np.squeeze(a, -1),
           [((2, 3, 1),)], torch=lambda th, x: x.squeeze(-1)))
add(OpSpec("squeeze((0,2))", lambda x: x.squeeze((0, 2)), lambda a: np.squeeze(a, (0, 2)),
           [((1, 3, 1),)], torch=lambda th, x: x.squeeze((0, 2))))
add(OpSpec("unsqueeze(0)", lambda x: x.unsqueeze(0), lambda a: a[None],
           [((3, 4),), ((),)], torch=lambda th, x: x.unsqueeze(0)))
add(OpSpec("unsqueeze(-1)", lambda x: tt.unsqueeze(x, -1), lambda a: a[..., None],
           [((3, 4),), ((2,),)], torch=lambda th, x: x.unsqueeze(-1)))
add(OpSpec("unsqueeze(1)", lambda x: x.unsqueeze(1), lambda a: np.expand_dims(a, 1),
           [((3, 4),)], torch=lambda th, x: x.unsqueeze(1)))

# ----------------------------------------------------------------- axis order

add(OpSpec("transpose()", tt.transpose, lambda a: np.swapaxes(a, -1, -2),
           [((3, 4),), ((2, 3, 4),)], torch=lambda th, x: x.transpose(-1, -2)))
add(OpSpec("transpose(0,2)", lambda x: x.transpose(0, 2), lambda a: np.swapaxes(a, 0, 2),
           [((2, 3, 4),)], torch=lambda th, x: x.transpose(0, 2)))
add(OpSpec("transpose((2,0,1))", lambda x: x.transpose((2, 0, 1)),
           lambda a: np.transpose(a, (2, 0, 1)), [((2, 3, 4),)],
           torch=lambda th, x: x.permute(2, 0, 1)))
add(OpSpec("transpose_1d", lambda x: x.transpose(), lambda a: a.T, [((4,),)],
           torch=lambda th, x: x.permute(0)))
add(OpSpec("permute", lambda x: x.permute(2, 0, 1), lambda a: np.transpose(a, (2, 0, 1)),
           [((2, 3, 4),)], torch=lambda th, x: x.permute(2, 0, 1)))
add(OpSpec("permute_fn_neg", lambda x: tt.permute(x, (-1, 0, 1)),
           lambda a: np.transpose(a, (2, 0, 1)), [((2, 1, 4),)],
           torch=lambda th, x: x.permute(-1, 0, 1)))
add(OpSpec("swapaxes", lambda x: x.swapaxes(0, -1), lambda a: np.swapaxes(a, 0, -1),
           [((2, 3, 4),), ((3, 4),)], torch=lambda th, x: x.swapaxes(0, -1)))
add(OpSpec("swapaxes_fn", lambda x: tt.swapaxes(x, 1, 2), lambda a: np.swapaxes(a, 1, 2),
           [((2, 3, 4),)], torch=lambda th, x: th.swapaxes(x, 1, 2)))
add(OpSpec(".T", lambda x: x.T, lambda a: a.T, [((3, 4),), ((1, 3),), ((4,),)],
           torch=lambda th, x: x.permute(*reversed(range(x.ndim)))))
add(OpSpec(".T_3d", lambda x: x.T, lambda a: a.T, [((2, 3, 4),)],
           torch=lambda th, x: x.permute(2, 1, 0)))

# ----------------------------------------------------------------- broadcasting

add(OpSpec("expand", lambda x: x.expand(2, 3, 4), lambda a: np.broadcast_to(a, (2, 3, 4)),
           [((3, 1),), ((4,),), ((),), ((1, 3, 4),)], torch=lambda th, x: x.expand(2, 3, 4)))
add(OpSpec("expand_-1", lambda x: tt.expand(x, -1, 5), lambda a: np.broadcast_to(a, (3, 5)),
           [((3, 1),)], torch=lambda th, x: x.expand(-1, 5)))
add(OpSpec("broadcast_to", lambda x: tt.broadcast_to(x, (2, 3, 4)),
           lambda a: np.broadcast_to(a, (2, 3, 4)), [((1, 4),), ((3, 1),)],
           torch=lambda th, x: th.broadcast_to(x, (2, 3, 4))))
add(OpSpec("broadcast_to_method", lambda x: x.broadcast_to((3, 2)),
           lambda a: np.broadcast_to(a, (3, 2)), [((1, 2),), ((),)],
           torch=lambda th, x: x.broadcast_to((3, 2))))

# ----------------------------------------------------------------- join and split

add(OpSpec("cat", lambda a, b: tt.cat([a, b]), lambda a, b: np.concatenate([a, b]),
           [((2, 3), (4, 3)), ((1,), (3,)), ((0, 3), (2, 3))],
           torch=lambda th, a, b: th.cat([a, b])))
add(OpSpec("cat(dim=-1)", lambda a, b: tt.cat([a, b], dim=-1),
           lambda a, b: np.concatenate([a, b], axis=-1), [((2, 3), (2, 1)), ((2, 1, 2), (2, 1, 3))],
           torch=lambda th, a, b: th.cat([a, b], dim=-1)))
add(OpSpec("cat3(axis=1)", lambda a, b, c: tt.concatenate((a, b, c), axis=1),
           lambda a, b, c: np.concatenate([a, b, c], axis=1), [((2, 1), (2, 3), (2, 2))],
           torch=lambda th, a, b, c: th.cat([a, b, c], dim=1)))
add(OpSpec("cat_same_tensor", lambda a: tt.cat([a, a * 2.0, a]),
           lambda a: np.concatenate([a, a * 2.0, a]), [((2, 3),)],
           torch=lambda th, a: th.cat([a, a * 2.0, a])))
add(OpSpec("stack", lambda a, b: tt.stack([a, b]), lambda a, b: np.stack([a, b]),
           [((2, 3), (2, 3)), ((), ())], torch=lambda th, a, b: th.stack([a, b])))
add(OpSpec("stack(dim=-1)", lambda a, b, c: tt.stack([a, b, c], dim=-1),
           lambda a, b, c: np.stack([a, b, c], axis=-1), [((2, 3), (2, 3), (2, 3))],
           torch=lambda th, a, b, c: th.stack([a, b, c], dim=-1)))
add(OpSpec("stack(axis=1)", lambda a, b: tt.stack([a, b], axis=1),
           lambda a, b: np.stack([a, b], axis=1), [((4,), (4,))],
           torch=lambda th, a, b: th.stack([a, b], dim=1)))
add(OpSpec("split(2,dim=1)", lambda x: x.split(2, dim=1),
           lambda a: np.split(a, [2, 4], axis=1), [((3, 5),)],
           torch=lambda th, x: x.split(2, dim=1)))
add(OpSpec("split_sizes", lambda x: tt.split(x, [1, 3, 1], dim=-1),
           lambda a: np.split(a, [1, 4], axis=-1), [((2, 5),)],
           torch=lambda th, x: th.split(x, [1, 3, 1], dim=-1)))
add(OpSpec("split_used_partly", lambda x: x.split(2)[1], lambda a: a[2:4], [((5, 2),)],
           torch=lambda th, x: x.split(2)[1]))
add(OpSpec("chunk", lambda x: x.chunk(3), lambda a: np.split(a, [3, 6]), [((7, 2),)],
           torch=lambda th, x: x.chunk(3)))
add(OpSpec("chunk_fn(dim=1)", lambda x: tt.chunk(x, 2, dim=1),
           lambda a: np.split(a, [2], axis=1), [((3, 4),)], torch=lambda th, x: th.chunk(x, 2, 1)))

# ----------------------------------------------------------------- pad and tile

add(OpSpec("pad_numpy_pairs", lambda x: tt.pad(x, ((1, 2), (0, 1))),
           lambda a: np.pad(a, ((1, 2), (0, 1))), [((2, 3),)],
           torch=lambda th, x: th.nn.functional.pad(x, (0, 1, 1, 2))))
add(OpSpec("pad_numpy_int", lambda x: tt.pad(x, 1), lambda a: np.pad(a, 1), [((2, 3),), ((3,),)],
           torch=lambda th, x: th.nn.functional.pad(x, (1, 1) * x.ndim)))
add(OpSpec("pad_numpy_one_pair", lambda x: tt.pad(x, ((2, 1),)), lambda a: np.pad(a, ((2, 1),)),
           [((2, 3),)], torch=lambda th, x: th.nn.functional.pad(x, (2, 1, 2, 1))))
add(OpSpec("pad_torch_last_dim", lambda x: tt.pad(x, (1, 2)),
           lambda a: np.pad(a, [(0, 0)] * (a.ndim - 1) + [(1, 2)]), [((2, 3),), ((4,),)],
           torch=lambda th, x: th.nn.functional.pad(x, (1, 2))))
add(OpSpec("pad_torch_two_dims_value", lambda x: tt.pad(x, (1, 0, 2, 1), value=0.5),
           lambda a: np.pad(a, ((0, 0), (2, 1), (1, 0)), constant_values=0.5), [((2, 2, 3),)],
           torch=lambda th, x: th.nn.functional.pad(x, (1, 0, 2, 1), value=0.5)))
add(OpSpec("np.pad_routed_pair", lambda x: np.pad(x, (1, 2)), lambda a: np.pad(a, (1, 2)),
           [((2, 3),)], torch=lambda th, x: th.nn.functional.pad(x, (1, 2, 1, 2))))
add(OpSpec("np.pad_routed_pairs", lambda x: np.pad(x, ((1, 0), (2, 1))),
           lambda a: np.pad(a, ((1, 0), (2, 1))), [((2, 3),)],
           torch=lambda th, x: th.nn.functional.pad(x, (2, 1, 1, 0))))
add(OpSpec("repeat", lambda x: x.repeat(2, 3), lambda a: np.tile(a, (2, 3)),
           [((2, 3),), ((3,),), ((1, 1),)], torch=lambda th, x: x.repeat(2, 3)))
add(OpSpec("repeat_fn_more_dims", lambda x: tt.repeat(x, 2, 1, 2), lambda a: np.tile(a, (2, 1, 2)),
           [((2, 3),), ((),)], torch=lambda th, x: x.repeat(2, 1, 2)))
add(OpSpec("tile", lambda x: tt.tile(x, (3,)), lambda a: np.tile(a, 3), [((2, 3),), ((4,),)],
           torch=lambda th, x: x.tile((3,))))
add(OpSpec("tile_method", lambda x: x.tile(2, 2), lambda a: np.tile(a, (2, 2)), [((1, 3),)],
           torch=lambda th, x: x.tile((2, 2))))

# ----------------------------------------------------------------- indexing

MASK34 = np.array([[True, False, True, True], [False, False, True, False],
                   [True, True, False, False]])
GETITEM: list[tuple[str, Shape, Any]] = [
    ("int", (3, 4), 1),
    ("neg_int", (3, 4), -1),
    ("int_pair", (3, 4), (2, -1)),
    ("slices", (4, 5), (slice(1, None), slice(None, None, 2))),
    ("neg_step", (4, 5), (slice(None, None, -1), slice(4, 0, -2))),
    ("ellipsis", (2, 3, 4), (Ellipsis, 1)),
    ("none", (3, 4), (None, slice(None), 1)),
    ("int_ellipsis_none", (2, 3), (-1, Ellipsis, None)),
    ("int_list_repeated", (4, 3), [0, 2, 0, 0, 3]),
    ("int_array_2d_repeated", (4, 3), np.array([[0, 1], [1, 1]])),
    ("int_list_axis1", (3, 4), (slice(None), [3, 0, 3])),
    ("paired_arrays_repeated", (3, 4), ([0, 1, 1, 0], [2, 2, 0, 2])),
    ("ellipsis_array", (2, 3, 4), (Ellipsis, np.array([1, 1, 0]))),
    ("neg_int_array", (5,), np.array([-1, -1, 0])),
    ("bool_mask_full", (3, 4), MASK34),
    ("bool_mask_rows", (4, 3), np.array([True, False, True, True])),
    ("bool_mask_and_slice", (3, 4), (np.array([True, False, True]), slice(1, 3))),
    ("int64_tensor_index", (5,), tt.tensor([4, 1, 1], dtype="int64")),
    ("0d_empty_tuple", (), ()),
    ("0d_ellipsis", (), Ellipsis),
    ("0d_none", (), None),
    ("empty_slice", (4,), slice(2, 2)),
    ("empty_int_array", (4, 2), np.array([], dtype=np.int64)),
    ("all_false_mask", (4,), np.zeros(4, dtype=bool)),
]


def torch_index(th: Any, index: Any) -> Any:
    """The same index for a torch tensor (arrays and tinytorch tensors become tensors)."""
    if isinstance(index, tuple):
        return tuple(torch_index(th, i) for i in index)
    if isinstance(index, np.ndarray):
        return th.as_tensor(index)
    if isinstance(index, tt.Tensor):
        return th.as_tensor(index.numpy())
    return index


def np_index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(np_index(i) for i in index)
    if isinstance(index, tt.Tensor):
        return index.numpy()
    if isinstance(index, list):
        return np.asarray(index)
    return index


for _label, _shape, _idx in GETITEM:
    add(OpSpec(f"getitem[{_label}]", lambda x, i=_idx: x[i], lambda a, i=_idx: a[np_index(i)],
               [(_shape,)], torch=None if _label == "neg_step"  # torch has no negative steps
               else lambda th, x, i=_idx: x[torch_index(th, i)]))
add(OpSpec("getitem_self_mask", lambda x: x[x > 0], lambda a: a[a > 0], [((3, 4),), ((5,),)],
           AWAY0, torch=lambda th, x: x[x > 0]))
add(OpSpec("getitem_bool_tensor_mask", lambda x: x[tt.tensor(MASK34)], lambda a: a[MASK34],
           [((3, 4),)], torch=lambda th, x: x[th.as_tensor(MASK34)]))
add(OpSpec("getitem_fn", lambda x: tt.getitem(x, (slice(None), [0, 0])),
           lambda a: a[:, [0, 0]], [((2, 3),)], torch=lambda th, x: x[:, [0, 0]]))


def _scatter_np(v: np.ndarray) -> np.ndarray:
    out = np.zeros((4, 2))
    np.add.at(out, np.array([0, 3, 0]), v)
    return out


add(OpSpec("scatter_add", lambda v: tt.scatter_add(v, np.array([0, 3, 0]), (4, 2)), _scatter_np,
           [((3, 2),)], torch=lambda th, v: th.zeros(4, 2, dtype=v.dtype).index_add(
               0, th.tensor([0, 3, 0]), v)))

# __setitem__ on a non-leaf (x * 1.0) and on a constant; the value gets its gradient too.
SETITEM: list[tuple[str, Shape, Any, Shape]] = [
    ("slice", (3, 4), slice(0, 2), (2, 4)),
    ("int_scalar_value", (3, 4), (1, 2), ()),
    ("column_broadcast", (3, 4), (slice(None), 1), ()),
    ("rows_broadcast", (3, 4), slice(1, None), (4,)),
    ("int_list", (4, 3), [3, 0], (2, 3)),
    ("bool_mask", (3, 4), MASK34, (int(MASK34.sum()),)),
    ("ellipsis", (2, 3), Ellipsis, (3,)),
]


def _set_np(a: np.ndarray, v: np.ndarray, i: Any) -> np.ndarray:
    out = a.copy()
    out[np_index(i)] = v
    return out


def _set_tt(x: Any, v: Any, i: Any) -> Any:
    z = x * 1.0  # a non-leaf
    z[i] = v
    return z


def _set_th(th: Any, x: Any, v: Any, i: Any) -> Any:
    z = x * 1.0
    z[torch_index(th, i)] = v
    return z


for _label, _shape, _idx, _vshape in SETITEM:
    add(OpSpec(f"setitem[{_label}]", lambda x, v, i=_idx: _set_tt(x, v, i),
               lambda a, v, i=_idx: _set_np(a, v, i), [(_shape, _vshape)],
               torch=lambda th, x, v, i=_idx: _set_th(th, x, v, i)))


def _set_python_scalar(x: Any) -> Any:
    z = x * 1.0
    z[0] = 3.0
    z[..., -1] = -1.0
    return z


def _set_python_scalar_np(a: np.ndarray) -> np.ndarray:
    out = a.copy()
    out[0] = 3.0
    out[..., -1] = -1.0
    return out


add(OpSpec("setitem_python_scalar", _set_python_scalar, _set_python_scalar_np,
           [((3, 4),), ((4,),)], torch=lambda th, x: _set_python_scalar(x)))


def _fill_tt(x: Any) -> Any:
    z = x * 2.0
    z.fill_(0.5)
    w = x * 3.0
    w.zero_()
    return z + w * x + x


add(OpSpec("fill_zero_", _fill_tt, lambda a: 0.5 + a, [((3, 4),), ((),)],
           torch=lambda th, x: _fill_tt(x)))


def _set_const_tt(v: Any) -> Any:
    z = tt.tensor(np.zeros((3, 4), dtype=v.dtype))
    z[1:, 2] = v
    return z


def _set_const_th(th: Any, v: Any) -> Any:
    z = th.zeros(3, 4, dtype=v.dtype)
    z[1:, 2] = v
    return z


add(OpSpec("setitem_into_constant", _set_const_tt,
           lambda v: _set_np(np.zeros((3, 4)), v, (slice(1, None), 2)), [((2,),), ((),)],
           torch=_set_const_th))
add(OpSpec("index_put_fn", lambda x, v: tt.index_put(x, (slice(None), [0, 2]), v),
           lambda a, v: _set_np(a, v, (slice(None), [0, 2])), [((2, 3), (2, 2)), ((2, 3), ())],
           torch=lambda th, x, v: x.index_put((th.arange(2)[:, None], th.tensor([0, 2])), v)))

# ----------------------------------------------------------------- NumPy functions on Tensors
# np.<ufunc>(tensor) and np.<function>(tensor) route to the op table (tinytorch.ops.UFUNCS
# and FUNCTIONS); each must give NumPy's value and a gradient.

add(OpSpec("np.exp", lambda x: np.exp(x), np.exp, UNARY, torch=lambda th, x: th.exp(x)))
add(OpSpec("np.log", lambda x: np.log(x), np.log, UNARY[:2], POSITIVE,
           torch=lambda th, x: th.log(x)))
add(OpSpec("np.tanh", lambda x: np.tanh(x), np.tanh, UNARY[:2], torch=lambda th, x: th.tanh(x)))
add(OpSpec("np.absolute", lambda x: np.absolute(x), np.absolute, UNARY[:2], AWAY0,
           torch=lambda th, x: th.abs(x)))
add(OpSpec("np.multiply", lambda a, b: np.multiply(a, b), np.multiply, BINARY[:3],
           torch=lambda th, a, b: a * b))
add(OpSpec("np.power", lambda a, b: np.power(a, b), np.power, BINARY[:3], (POSITIVE, REAL),
           torch=lambda th, a, b: a**b))
add(OpSpec("np.maximum", lambda a, b: np.maximum(a, b), np.maximum, BINARY[:3],
           torch=lambda th, a, b: th.maximum(a, b)))
add(OpSpec("np.matmul", lambda a, b: np.matmul(a, b), np.matmul, MATMUL[3:6],
           torch=lambda th, a, b: a @ b))
add(OpSpec("np.dot", lambda a, b: np.dot(a, b), np.dot, [((3,), (3,)), ((2, 3), (3, 4))],
           torch=lambda th, a, b: a @ b))
add(OpSpec("np.sum(axis=1)", lambda x: np.sum(x, axis=1), lambda a: np.sum(a, axis=1),
           [((3, 4),)], torch=lambda th, x: x.sum(1)))
add(OpSpec("np.mean(axis=0,keepdims)", lambda x: np.mean(x, axis=0, keepdims=True),
           lambda a: np.mean(a, axis=0, keepdims=True), [((3, 4),)],
           torch=lambda th, x: x.mean(0, keepdim=True)))
add(OpSpec("np.max(axis=-1)", lambda x: np.max(x, axis=-1), lambda a: np.max(a, axis=-1),
           [((3, 4),)], DISTINCT, torch=lambda th, x: x.amax(-1)))
add(OpSpec("np.amin", lambda x: np.amin(x), np.amin, [((3, 4),)], DISTINCT,
           torch=lambda th, x: x.amin()))
add(OpSpec("np.var(ddof=1)", lambda x: np.var(x, axis=1, ddof=1),
           lambda a: np.var(a, axis=1, ddof=1), [((3, 4),)],
           torch=lambda th, x: x.var(1, correction=1)))
add(OpSpec("np.std", lambda x: np.std(x), np.std, [((3, 4),)],
           torch=lambda th, x: x.std(correction=0)))
add(OpSpec("np.reshape", lambda x: np.reshape(x, (2, 6)), lambda a: np.reshape(a, (2, 6)),
           [((3, 4),)], torch=lambda th, x: x.reshape(2, 6)))
add(OpSpec("np.transpose(axes)", lambda x: np.transpose(x, (1, 2, 0)),
           lambda a: np.transpose(a, (1, 2, 0)), [((2, 3, 4),)],
           torch=lambda th, x: x.permute(1, 2, 0)))
add(OpSpec("np.swapaxes", lambda x: np.swapaxes(x, 0, 1), lambda a: np.swapaxes(a, 0, 1),
           [((2, 3),)], torch=lambda th, x: x.swapaxes(0, 1)))
add(OpSpec("np.squeeze", lambda x: np.squeeze(x), np.squeeze, [((1, 3, 1),)],
           torch=lambda th, x: x.squeeze()))
add(OpSpec("np.expand_dims", lambda x: np.expand_dims(x, 1), lambda a: np.expand_dims(a, 1),
           [((2, 3),)], torch=lambda th, x: x.unsqueeze(1)))
add(OpSpec("np.broadcast_to", lambda x: np.broadcast_to(x, (2, 3)),
           lambda a: np.broadcast_to(a, (2, 3)), [((3,),)],
           torch=lambda th, x: x.broadcast_to((2, 3))))
add(OpSpec("np.concatenate", lambda a, b: np.concatenate([a, b], axis=1),
           lambda a, b: np.concatenate([a, b], axis=1), [((2, 1), (2, 3))],
           torch=lambda th, a, b: th.cat([a, b], 1)))
add(OpSpec("np.stack", lambda a, b: np.stack([a, b], axis=-1), lambda a, b: np.stack([a, b], -1),
           [((2, 3), (2, 3))], torch=lambda th, a, b: th.stack([a, b], -1)))
add(OpSpec("np.where", lambda a, b: np.where(pattern((3, 4)), a, b),
           lambda a, b: np.where(pattern((3, 4)), a, b), [((3, 4), (4,))],
           torch=lambda th, a, b: th.where(th.as_tensor(pattern((3, 4))), a, b)))
add(OpSpec("np.clip", lambda x: np.clip(x, -1.0, 1.0), lambda a: np.clip(a, -1.0, 1.0),
           [((3, 4),)], Domain(-2.0, 2.0, avoid=(-1.0, 1.0)),
           torch=lambda th, x: x.clamp(-1.0, 1.0)))
add(OpSpec("np.tile", lambda x: np.tile(x, (2, 1)), lambda a: np.tile(a, (2, 1)), [((2, 3),)],
           torch=lambda th, x: x.repeat(2, 1)))

# ----------------------------------------------------------------- in place on a non-leaf

INPLACE: list[Case] = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 4), (3, 1)), ((2, 3), ()),
                       ((), ())]


def _inplace(op: str) -> Callable[..., Any]:
    def run(x: Any, y: Any) -> Any:
        z = x * 1.0  # a non-leaf that does not save its output
        if op == "+=":
            z += y
        elif op == "-=":
            z -= y
        elif op == "*=":
            z *= y
        else:
            z /= y
        return z

    return run


def _inplace_th(op: str) -> Callable[..., Any]:
    f = _inplace(op)
    return lambda th, x, y: f(x, y)


add(OpSpec("iadd", _inplace("+="), np.add, INPLACE, torch=_inplace_th("+=")))
add(OpSpec("isub", _inplace("-="), np.subtract, INPLACE, torch=_inplace_th("-=")))
add(OpSpec("imul", _inplace("*="), np.multiply, INPLACE, torch=_inplace_th("*=")))
add(OpSpec("idiv", _inplace("/="), np.divide, INPLACE, (REAL, NONZERO), torch=_inplace_th("/=")))


def _iadd_const_tt(y: Any) -> Any:
    z = tt.tensor(np.ones((3, 4), dtype=y.dtype))  # a leaf that does not require grad
    z += y
    z *= y
    return z


add(OpSpec("inplace_into_constant", _iadd_const_tt,
           lambda y: np.broadcast_to((1.0 + y) * y, (3, 4)),
           [((3, 4),), ((4,),), ((),)],
           torch=lambda th, y: (th.ones(3, 4, dtype=y.dtype).add_(y)).mul_(y)))


def _chain_tt(x: Any, y: Any) -> Any:
    z = x * 2.0
    z += y
    z *= y
    z -= x
    return z


add(OpSpec("inplace_chain", _chain_tt, lambda x, y: (2 * x + y) * y - x, INPLACE[:3],
           torch=lambda th, x, y: _chain_tt(x, y)))
add(OpSpec("inplace_methods", lambda x, y: (x * 1.0).add_(y).mul_(y).sub_(x).div_(2.0),
           lambda x, y: ((x + y) * y - x) / 2.0, INPLACE[:2],
           torch=lambda th, x, y: (x * 1.0).add_(y).mul_(y).sub_(x).div_(2.0)))

# ----------------------------------------------------------------- composites through many ops

add(OpSpec("mlp_layer", lambda x, w, b: tt.tanh(x @ w + b).sum(axis=1),
           lambda x, w, b: np.tanh(x @ w + b).sum(axis=1), [((4, 3), (3, 5), (5,))],
           torch=lambda th, x, w, b: th.tanh(x @ w + b).sum(dim=1)))
add(OpSpec("normalize", lambda x: (x - x.mean(axis=-1, keepdims=True)) / x.std(dim=-1,
                                                                               keepdim=True),
           lambda a: (a - a.mean(-1, keepdims=True)) / a.std(-1, keepdims=True), [((3, 4),)],
           torch=lambda th, x: (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True,
                                                                       correction=0)))

ELEMENTWISE = [s for s in TABLE if s.elementwise]
NAMES = [s.name for s in TABLE]
assert len(set(NAMES)) == len(NAMES), "duplicate op-table names"
