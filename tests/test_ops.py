"""Every op in ``op_table.TABLE`` against its oracles.

For each entry and each input-shape case:

1. forward equals the NumPy reference in float32 and float64, the output dtype follows
   the input dtype, and nothing is recorded without ``requires_grad``;
2. gradients of ``sum(out * w)`` (random ``w``) equal float64 central differences of the
   NumPy reference, for every input; a gradient has its input's shape and dtype; each
   input alone gets the same gradient as when all require grad;
3. for twice-differentiable entries, Hessian-vector products of
   ``sum(out * (w + out / 2))`` from ``tinytorch.autograd.grad(..., create_graph=True)``
   equal central differences of the gradient;
4. Hypothesis draws broadcastable shapes and values for the elementwise entries;
5. PyTorch (when importable) agrees on forward values and gradients.

Then the non-differentiable ops (comparisons, argmax/argmin), max/min ties, and
softmax-family stability for logits of size 1e4.
"""

from __future__ import annotations

import operator
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch as tt
from op_table import (
    ELEMENTWISE,
    TABLE,
    Case,
    Domain,
    OpSpec,
    case_id,
    np_log_softmax,
    np_softmax,
    pattern,
)
from tinytorch.autograd import grad as autograd_grad

FWD_TOL = {np.float32: {"rtol": 1e-5, "atol": 1e-6}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}
GRAD_TOL = {"rtol": 1e-5, "atol": 1e-6}  # float64 gradient vs central differences
GRAD32_TOL = {"rtol": 1e-3, "atol": 1e-4}  # float32 gradient vs float64 central differences
EPS = 1e-6  # central-difference step for gradients
HVP_EPS = 1e-5  # central-difference step for Hessian-vector products

# The xfail'd power-rule bugs divide by zero on the way to their NaNs; values are asserted.
pytestmark = pytest.mark.filterwarnings(
    "ignore:divide by zero encountered:RuntimeWarning",
    "ignore:invalid value encountered:RuntimeWarning",
)

# ----------------------------------------------------------------- helpers


def rng_for(*parts: Any) -> np.random.Generator:
    """A generator seeded by the test's identity: reruns see the same numbers."""
    return np.random.default_rng(zlib.crc32("|".join(map(str, parts)).encode()))


def make_inputs(spec: OpSpec, case: Case, rng: np.random.Generator) -> list[np.ndarray]:
    return [np.array(d.sample(rng, s), dtype=np.float64) for d, s in zip(spec.domains(), case)]


def as_list(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def random_weights(outs: Sequence[Any], rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.uniform(-1.0, 1.0, size=np.shape(o)) for o in outs]


def weighted_np(outs: Sequence[Any], ws: Sequence[np.ndarray]) -> float:
    return float(sum(np.sum(np.asarray(o, dtype=np.float64) * w) for o, w in zip(outs, ws)))


def weighted_tt(outs: Sequence[tt.Tensor], ws: Sequence[np.ndarray], dtype: Any,
                quadratic: bool = False) -> tt.Tensor:
    """``sum(out * w)``; with ``quadratic``, ``sum(out * (w + out / 2))``, whose
    gradient ``(w + out) * d out`` depends on the output, so that a second derivative
    runs every op's backward rule on a gradient that itself requires grad."""
    total = None
    for o, w in zip(outs, ws):
        wt = tt.tensor(w.astype(dtype))
        term = (o * (wt + o * 0.5)).sum() if quadratic else (o * wt).sum()
        total = term if total is None else total + term
    assert total is not None
    return total


def numeric_grads(f: Callable[[list[np.ndarray]], float], arrays: list[np.ndarray],
                  eps: float = EPS) -> list[np.ndarray]:
    """Central differences of the scalar ``f`` with respect to every element of every
    array (the arrays are perturbed in place and restored)."""
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            fp = f(arrays)
            a[idx] = old - eps
            fm = f(arrays)
            a[idx] = old
            g[idx] = (fp - fm) / (2 * eps)
        grads.append(g)
    return grads


def backward_grads(spec: OpSpec, arrays: Sequence[np.ndarray], ws: Sequence[np.ndarray],
                   dtype: Any = np.float64, needs: Sequence[bool] | None = None,
                   quadratic: bool = False) -> list[tt.Tensor]:
    """Leaves after ``weighted_tt(fn(*leaves), w).backward()``."""
    needs = needs or [True] * len(arrays)
    xs = [tt.tensor(a.astype(dtype), requires_grad=n) for a, n in zip(arrays, needs)]
    weighted_tt(as_list(spec.fn(*xs)), ws, dtype, quadratic).backward()
    return xs


def params(kind: str, specs: Sequence[OpSpec] = TABLE,
           keep: Callable[[OpSpec], bool] = lambda s: True) -> list[Any]:
    """One pytest param per (entry, shape case), with the entry's xfail for ``kind``."""
    out = []
    for spec in specs:
        if not keep(spec):
            continue
        marks = ([pytest.mark.xfail(strict=True, reason=spec.xfail[kind])]
                 if kind in spec.xfail else [])
        for case in spec.shapes:
            out.append(pytest.param(spec, case, marks=marks, id=f"{spec.name}-{case_id(case)}"))
    return out


# ----------------------------------------------------------------- 1. forward


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("spec", "case"), params("forward"))
def test_forward(spec: OpSpec, case: Case, dtype: Any) -> None:
    arrays = [a.astype(dtype) for a in make_inputs(spec, case, rng_for(spec.name, case))]
    refs = as_list(spec.ref(*[a.astype(np.float64) for a in arrays]))

    xs = [tt.tensor(a, requires_grad=True) for a in arrays]
    outs = as_list(spec.fn(*xs))
    assert len(outs) == len(refs)
    for o, r in zip(outs, refs):
        assert isinstance(o, tt.Tensor)
        assert o.shape == np.shape(r)
        assert o.dtype == dtype, f"{spec.name}: {dtype.__name__} input gave {o.dtype} output"
        assert o.requires_grad and o.grad_fn is not None
        np.testing.assert_allclose(o.numpy(), r, **FWD_TOL[dtype])

    # Same values with nothing requiring grad, and nothing recorded.
    plain = as_list(spec.fn(*[tt.tensor(a) for a in arrays]))
    for o, r in zip(plain, refs):
        assert o.dtype == dtype
        assert not o.requires_grad and o.grad_fn is None
        np.testing.assert_allclose(o.numpy(), r, **FWD_TOL[dtype])


# ----------------------------------------------------------------- 2. gradients


@pytest.mark.parametrize(("spec", "case"), params("grad"))
def test_grad(spec: OpSpec, case: Case) -> None:
    rng = rng_for(spec.name, case)
    arrays = make_inputs(spec, case, rng)
    ws = random_weights(as_list(spec.ref(*arrays)), rng)

    xs = backward_grads(spec, arrays, ws)
    expected = numeric_grads(lambda arrs: weighted_np(as_list(spec.ref(*arrs)), ws),
                             [a.copy() for a in arrays])
    for i, (x, e) in enumerate(zip(xs, expected)):
        assert isinstance(x.grad, tt.Tensor), f"{spec.name}: input {i} got no gradient"
        assert x.grad.shape == x.shape
        assert x.grad.dtype == np.float64
        np.testing.assert_allclose(x.grad.numpy(), e, **GRAD_TOL,
                                   err_msg=f"{spec.name}: gradient of input {i}")


@pytest.mark.parametrize(("spec", "case"), params("grad"))
def test_grad_float32(spec: OpSpec, case: Case) -> None:
    """A float32 graph gives float32 gradients of the right shape and about the right
    values (float64 central differences at the same, float32-representable, point)."""
    rng = rng_for(spec.name, case)
    arrays = [a.astype(np.float32).astype(np.float64) for a in make_inputs(spec, case, rng)]
    ws = [w.astype(np.float32).astype(np.float64)
          for w in random_weights(as_list(spec.ref(*arrays)), rng)]
    xs = backward_grads(spec, arrays, ws, np.float32)
    expected = numeric_grads(lambda arrs: weighted_np(as_list(spec.ref(*arrs)), ws),
                             [a.copy() for a in arrays])
    for x, e in zip(xs, expected):
        assert x.grad is not None
        assert x.grad.dtype == np.float32 and x.grad.shape == x.shape
        np.testing.assert_allclose(x.grad.numpy(), e, **GRAD32_TOL)


@pytest.mark.parametrize(("spec", "case"), params("grad", keep=lambda s: s.arity > 1))
def test_grad_one_input_at_a_time(spec: OpSpec, case: Case) -> None:
    """Ops that skip work for inputs not needing grad still get the rest right."""
    rng = rng_for(spec.name, case)
    arrays = make_inputs(spec, case, rng)
    ws = random_weights(as_list(spec.ref(*arrays)), rng)
    full = backward_grads(spec, arrays, ws)
    for i in range(len(arrays)):
        needs = [j == i for j in range(len(arrays))]
        xs = backward_grads(spec, arrays, ws, needs=needs)
        for j, x in enumerate(xs):
            if j == i:
                assert x.grad is not None and x.grad.shape == x.shape
                np.testing.assert_allclose(x.grad.numpy(), full[j].grad.numpy(),
                                           rtol=1e-12, atol=1e-14)
            else:
                assert x.grad is None


# ----------------------------------------------------------------- 3. second derivatives


@pytest.mark.parametrize(("spec", "case"), params("hvp", keep=lambda s: s.twice))
def test_hessian_vector_product(spec: OpSpec, case: Case) -> None:
    rng = rng_for(spec.name, case)
    arrays = make_inputs(spec, case, rng)
    ws = random_weights(as_list(spec.ref(*arrays)), rng)
    vs = [rng.uniform(-1.0, 1.0, size=a.shape) for a in arrays]

    xs = [tt.tensor(a, requires_grad=True) for a in arrays]
    loss = weighted_tt(as_list(spec.fn(*xs)), ws, np.float64, quadratic=True)
    gs = autograd_grad(loss, xs, create_graph=True)

    # The differentiable gradient equals the plain one.
    plain = backward_grads(spec, arrays, ws, quadratic=True)
    for g, p in zip(gs, plain):
        assert g is not None and p.grad is not None
        assert g.shape == p.shape and g.dtype == np.float64
        np.testing.assert_allclose(g.numpy(), p.grad.numpy(), rtol=1e-10, atol=1e-12)

    # H v, by differentiating <grad, v>; a gradient that is constant has H = 0.
    terms = [(g * tt.tensor(v)).sum() for g, v in zip(gs, vs) if g.requires_grad]
    if terms:
        s = terms[0]
        for t in terms[1:]:
            s = s + t
        hv = autograd_grad(s, xs, allow_unused=True)
    else:
        hv = (None,) * len(xs)

    def grad_at(step: float) -> list[np.ndarray]:
        moved = [a + step * v for a, v in zip(arrays, vs)]
        return [x.grad.numpy() for x in backward_grads(spec, moved, ws, quadratic=True)]

    plus, minus = grad_at(HVP_EPS), grad_at(-HVP_EPS)
    for i, (h, p, m) in enumerate(zip(hv, plus, minus)):
        expected = (p - m) / (2 * HVP_EPS)
        got = np.zeros_like(arrays[i]) if h is None else h.numpy()
        assert got.shape == arrays[i].shape
        np.testing.assert_allclose(got, expected, **GRAD_TOL,
                                   err_msg=f"{spec.name}: Hessian-vector product, input {i}")


# ----------------------------------------------------------------- 4. Hypothesis


def _elements(d: Domain) -> st.SearchStrategy[float]:
    # On a 1/256 grid: two values are equal or at least 1/256 apart, so ties are
    # exact (central differences then see the shared gradient) and never nearly so.
    return st.floats(d.lo, d.hi).map(lambda v: round(v * 256) / 256)


@pytest.mark.parametrize("spec", [
    pytest.param(s, id=s.name, marks=[pytest.mark.xfail(strict=True, reason=s.xfail["hypothesis"])]
                 if "hypothesis" in s.xfail else [])
    for s in ELEMENTWISE])
def test_hypothesis_elementwise(spec: OpSpec) -> None:
    domains = spec.domains()

    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        if spec.arity == 1:
            shapes: tuple[tuple[int, ...], ...] = (
                data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)),)
        else:
            shapes = data.draw(hnp.mutually_broadcastable_shapes(
                num_shapes=spec.arity, min_dims=0, max_dims=3, max_side=3)).input_shapes
        arrays = [d.fix(data.draw(hnp.arrays(np.float64, s, elements=_elements(d))))
                  for s, d in zip(shapes, domains)]

        xs = [tt.tensor(a, requires_grad=True) for a in arrays]
        out = spec.fn(*xs)
        ref = spec.ref(*arrays)
        assert out.shape == np.shape(ref) and out.dtype == np.float64
        np.testing.assert_allclose(out.numpy(), ref, **FWD_TOL[np.float64])

        w = np.linspace(-1.0, 1.0, num=max(out.data.size, 1)).reshape(out.shape)
        weighted_tt([out], [w], np.float64).backward()
        expected = numeric_grads(lambda arrs: weighted_np([spec.ref(*arrs)], [w]),
                                 [a.copy() for a in arrays])
        for x, e in zip(xs, expected):
            assert x.grad is not None and x.grad.shape == x.shape
            np.testing.assert_allclose(x.grad.numpy(), e, **GRAD_TOL)

    check()


# ----------------------------------------------------------------- 5. PyTorch


@pytest.mark.filterwarnings("ignore:.*degrees of freedom:UserWarning")
@pytest.mark.parametrize(("spec", "case"), params("torch", keep=lambda s: s.torch is not None))
def test_against_torch(spec: OpSpec, case: Case) -> None:
    torch = pytest.importorskip("torch")
    rng = rng_for(spec.name, case)
    arrays = make_inputs(spec, case, rng)
    ws = random_weights(as_list(spec.ref(*arrays)), rng)

    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    touts = as_list(spec.torch(torch, *ts))
    sum((o * torch.as_tensor(w)).sum() for o, w in zip(touts, ws)).backward()

    xs = [tt.tensor(a, requires_grad=True) for a in arrays]
    outs = as_list(spec.fn(*xs))
    weighted_tt(outs, ws, np.float64).backward()

    assert len(outs) == len(touts)
    for o, t in zip(outs, touts):
        assert o.shape == tuple(t.shape)
        np.testing.assert_allclose(o.numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)
    for i, (x, t) in enumerate(zip(xs, ts)):
        assert x.grad is not None and t.grad is not None
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=f"{spec.name}: gradient of input {i}")


# ----------------------------------------------------------------- comparisons

COMPARISONS = [
    ("==", operator.eq, tt.eq, np.equal),
    ("!=", operator.ne, tt.ne, np.not_equal),
    ("<", operator.lt, tt.lt, np.less),
    ("<=", operator.le, tt.le, np.less_equal),
    (">", operator.gt, tt.gt, np.greater),
    (">=", operator.ge, tt.ge, np.greater_equal),
]


@pytest.mark.parametrize(("name", "op", "fn", "np_op"), COMPARISONS,
                         ids=[c[0] for c in COMPARISONS])
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3), ()), ((), ())],
                         ids=case_id)
def test_comparison_returns_bool_without_grad(name: str, op: Any, fn: Any, np_op: Any,
                                              shapes: Case) -> None:
    rng = rng_for("cmp", name, shapes)
    # Small integers, so that equal elements occur.
    a, b = (rng.integers(-2, 3, size=s).astype(np.float32) for s in shapes)
    x, y = tt.tensor(a, requires_grad=True), tt.tensor(b, requires_grad=True)
    for out, expected in ((op(x, y), np_op(a, b)), (fn(x, y), np_op(a, b)),
                          (op(x, 1.0), np_op(a, 1.0)), (op(x, b), np_op(a, b))):
        assert isinstance(out, tt.Tensor)
        assert out.dtype == np.bool_
        assert out.requires_grad is False and out.grad_fn is None
        np.testing.assert_array_equal(out.numpy(), expected)


def test_comparison_cannot_be_backpropagated() -> None:
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        (x > 1.5).backward()


# ----------------------------------------------------------------- argmax / argmin

ARG_KW = [{}, {"axis": 0}, {"axis": -1, "keepdims": True}, {"dim": 1}, {"dim": 0, "keepdim": True}]


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("kw", ARG_KW, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items())
                         or "all")
def test_argmax_argmin_int64_not_differentiable(name: str, kw: dict[str, Any]) -> None:
    # Ties included: the first occurrence wins, as in NumPy and PyTorch.
    a = np.array([[0.5, 2.0, 2.0, -1.0], [3.0, -4.0, 3.0, 0.0], [1.0, 1.0, -4.0, 2.5]])
    axis = kw.get("axis", kw.get("dim"))
    keep = kw.get("keepdims", kw.get("keepdim", False))
    expected = getattr(np, name)(a, axis=axis, keepdims=keep)
    x = tt.tensor(a, requires_grad=True)
    for out in (getattr(x, name)(**kw), getattr(tt, name)(x, **kw)):
        assert out.dtype == np.int64
        assert out.requires_grad is False and out.grad_fn is None
        np.testing.assert_array_equal(out.numpy(), expected)
    with pytest.raises(RuntimeError):
        tt.autograd.grad(getattr(x, name)(**kw), x)


# ----------------------------------------------------------------- max / min ties


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_max_min_ties_share_gradient(dtype: Any) -> None:
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [2.0, 5.0, -1.0]], dtype=dtype)
    third = 1.0 / 3.0
    cases = [
        (lambda x: x.max(axis=1), [[0, 0.5, 0.5], [third] * 3, [0, 1, 0]]),
        (lambda x: tt.max(x, dim=0, keepdim=True), [[0, 0, 1], [0.5, 0, 0], [0.5, 1, 0]]),
        (lambda x: x.min(dim=1), [[1, 0, 0], [third] * 3, [0, 0, 1]]),
        (lambda x: tt.min(x, axis=(0, 1)), [[0, 0, 0], [0, 0, 0], [0, 0, 1]]),
        (lambda x: (x * 0.0 + 1.0).max(), [[0.0] * 3] * 3),  # ties, but a constant
        (lambda x: tt.max(x[1]), [[0, 0, 0], [third] * 3, [0, 0, 0]]),
    ]
    for f, expected in cases:
        x = tt.tensor(a, requires_grad=True)
        f(x).sum().backward()
        assert x.grad is not None and x.grad.dtype == dtype
        np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6, atol=1e-7)


def test_maximum_minimum_ties_split_evenly() -> None:
    a = tt.tensor([1.0, 2.0, 3.0], dtype="float64", requires_grad=True)
    b = tt.tensor([1.0, 5.0, 3.0], dtype="float64", requires_grad=True)
    (tt.maximum(a, b) + 2 * tt.minimum(a, b)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [1.5, 2.0, 1.5])
    np.testing.assert_allclose(b.grad.numpy(), [1.5, 1.0, 1.5])


def test_max_ties_match_torch_amax() -> None:
    torch = pytest.importorskip("torch")
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [2.0, 5.0, -1.0]])
    w = np.array([[0.3], [-1.2], [2.0]])
    for dim in (0, 1):
        x = tt.tensor(a, requires_grad=True)
        t = torch.tensor(a, requires_grad=True)
        (x.max(dim=dim, keepdim=True) * tt.tensor(w.reshape((3, 1) if dim else (1, 3)))
         ).sum().backward()
        (torch.amax(t, dim=dim, keepdim=True) * torch.tensor(w.reshape((3, 1) if dim else (1, 3)))
         ).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)
        x.grad = None
        (x.min(dim=dim) * 2.0).sum().backward()
        t.grad = None
        (torch.amin(t, dim=dim) * 2.0).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)


# ----------------------------------------------------------------- large logits

BIG = np.array([[1e4, 0.0, -1e4, 3.0], [1e4, 1e4 - 1.0, 5e3, 1e4 - 0.5], [-1e4, -1e4, -1e4, -1e4]])
TARGETS = np.array([1, 3, 2])


def _big_case(name: str) -> tuple[Callable[[tt.Tensor], tt.Tensor], np.ndarray, np.ndarray]:
    """(tinytorch fn, expected value, expected gradient of sum(out * W)) in float64."""
    z = BIG
    w = rng_for("big", name).uniform(-1.0, 1.0, size=z.shape)
    s = np_softmax(z, -1)
    if name == "log_softmax":
        return (lambda x: tt.log_softmax(x, dim=-1)), np_log_softmax(z, -1), \
            w - s * w.sum(-1, keepdims=True)
    if name == "softmax":
        return (lambda x: tt.softmax(x, -1)), s, s * (w - (w * s).sum(-1, keepdims=True))
    if name == "logsumexp":
        m = z.max(-1, keepdims=True)
        lse = (m + np.log(np.exp(z - m).sum(-1, keepdims=True)))[:, 0]
        return (lambda x: x.logsumexp(dim=-1)), lse, w[:, :1] * s
    assert name == "cross_entropy"
    m = z.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(-1, keepdims=True)))[:, 0]
    loss = np.mean(lse - z[np.arange(3), TARGETS])
    onehot = np.eye(4)[TARGETS]
    return (lambda x: tt.cross_entropy(x, tt.tensor(TARGETS, dtype="int64"))), \
        np.asarray(loss), (s - onehot) / 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", ["log_softmax", "softmax", "logsumexp", "cross_entropy"])
def test_large_logits_are_finite_with_correct_gradients(name: str, dtype: Any) -> None:
    f, value, grad = _big_case(name)
    w = rng_for("big", name).uniform(-1.0, 1.0, size=BIG.shape)
    x = tt.tensor(BIG.astype(dtype), requires_grad=True)
    out = f(x)
    assert out.dtype == dtype
    assert np.all(np.isfinite(out.numpy()))
    weight = tt.tensor(w.astype(dtype)) if out.ndim == 2 else (
        tt.tensor(w[:, 0].astype(dtype)) if out.ndim == 1 else 1.0)
    (out * weight).sum().backward()
    assert x.grad is not None and x.grad.dtype == dtype
    assert np.all(np.isfinite(x.grad.numpy()))
    if dtype == np.float64:
        np.testing.assert_allclose(out.numpy(), value, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-9, atol=1e-12)
    else:  # float32 spacing near 1e4 is ~1e-3: only coarse agreement is possible
        np.testing.assert_allclose(out.numpy(), value, rtol=1e-6, atol=1e-2)
        np.testing.assert_allclose(x.grad.numpy(), grad, atol=2e-3)


@pytest.mark.parametrize("name", ["log_softmax", "softmax", "logsumexp", "cross_entropy"])
def test_large_logits_match_torch(name: str) -> None:
    torch = pytest.importorskip("torch")
    f, _, _ = _big_case(name)
    x = tt.tensor(BIG, requires_grad=True)
    t = torch.tensor(BIG, requires_grad=True)
    th_fns = {
        "log_softmax": lambda v: torch.log_softmax(v, -1),
        "softmax": lambda v: torch.softmax(v, -1),
        "logsumexp": lambda v: torch.logsumexp(v, -1),
        "cross_entropy": lambda v: torch.nn.functional.cross_entropy(v, torch.as_tensor(TARGETS)),
    }
    out, tout = f(x), th_fns[name](t)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-12, atol=1e-9)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------- mixed dtypes

MIXED = [
    ("add", lambda a, b: a + b),
    ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / (b * b + 1.0)),
    ("pow", lambda a, b: (b * b + 1.0) ** a),
    ("matmul", lambda a, b: a @ b.T),
    ("maximum", tt.maximum),
    ("where", lambda a, b: tt.where(pattern((3, 4)), a, b)),
    ("cat", lambda a, b: tt.cat([a, b])),
    ("stack", lambda a, b: tt.stack([a, b])),
]


@pytest.mark.parametrize(("name", "f"), [pytest.param(n, f, id=n) for n, f in MIXED])
def test_mixed_dtype_gradients_keep_each_inputs_dtype(name: str, f: Any) -> None:
    """float32 with float64 computes in float64 (NumPy's promotion); each gradient still
    has its own input's dtype and the same values as an all-float64 graph."""
    rng = rng_for("mixed", name)
    a, b = rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (3, 4))
    a = a.astype(np.float32).astype(np.float64)
    x32, y64 = tt.tensor(a.astype(np.float32), requires_grad=True), tt.tensor(b, requires_grad=True)
    out = f(x32, y64)
    assert out.dtype == np.float64
    w = rng.uniform(-1, 1, out.shape)
    (out * tt.tensor(w)).sum().backward()
    x64, y64b = tt.tensor(a, requires_grad=True), tt.tensor(b, requires_grad=True)
    (f(x64, y64b) * tt.tensor(w)).sum().backward()
    assert x32.grad.dtype == np.float32 and x32.grad.shape == (3, 4)
    assert y64.grad.dtype == np.float64 and y64.grad.shape == (3, 4)
    np.testing.assert_allclose(x32.grad.numpy(), x64.grad.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(y64.grad.numpy(), y64b.grad.numpy(), rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------- bad arguments


def _ones(*shape: int) -> tt.Tensor:
    return tt.tensor(np.ones(shape), requires_grad=True)


BAD_CALLS: list[tuple[str, Callable[[], Any], str, str | None]] = [
    # (label, call, a word the message must contain, xfail reason)
    ("matmul_align", lambda: tt.matmul(_ones(2, 3), _ones(4, 5)), "matmul", None),
    ("matmul_0d", lambda: tt.matmul(_ones(), _ones(3)), "matmul", None),
    ("matmul_batch", lambda: _ones(2, 2, 3) @ _ones(3, 3, 4), "matmul", None),
    ("dot_3d", lambda: tt.dot(_ones(2, 2, 2), _ones(2, 2)), "dot", None),
    ("add_shapes", lambda: _ones(2, 3) + _ones(4), "add", None),
    ("mul_shapes", lambda: _ones(2, 3) * _ones(4), "mul", None),
    ("maximum_shapes", lambda: tt.maximum(_ones(2, 3), _ones(4)), "maximum", None),
    ("where_shapes", lambda: tt.where(np.ones(4, bool), _ones(2, 3), 0.0), "where", None),
    ("reshape", lambda: _ones(2, 3).reshape(4, -1), "reshape", None),
    ("squeeze_dim_out_of_range", lambda: _ones(2, 1).squeeze(3), "squeeze", None),
    ("squeeze_neg_dim_out_of_range", lambda: _ones(2, 1).squeeze(-3), "squeeze", None),
    ("flatten_start_out_of_range", lambda: _ones(2, 3, 4).flatten(5), "flatten", None),
    ("flatten_end_out_of_range", lambda: _ones(2, 3, 4).flatten(0, 7), "flatten", None),
    ("unsqueeze", lambda: _ones(2, 1).unsqueeze(5), "unsqueeze", None),
    ("permute", lambda: _ones(2, 3, 4).permute(0, 0, 1), "permute", None),
    ("swapaxes", lambda: _ones(2, 3).swapaxes(0, 2), "swapaxes", None),
    ("expand", lambda: _ones(2, 1).expand(3, 3), "broadcast", None),
    ("sum_axis", lambda: _ones(2, 3).sum(axis=2), "sum", None),
    ("sum_axis_and_dim", lambda: tt.sum(_ones(2, 3), axis=0, dim=1), "sum", None),
    ("sum_float_axis", lambda: _ones(2, 3).sum(axis=1.0), "sum", None),
    ("mean_dim", lambda: _ones(2, 3).mean(dim=-3), "mean", None),
    ("max_repeated_axis", lambda: tt.max(_ones(2, 3), axis=(1, -1)), "max", None),
    ("var_ddof", lambda: tt.var(_ones(1), ddof=1), "var", None),
    ("argmax_tuple_axis", lambda: _ones(2, 3).argmax(axis=(0, 1)), "argmax", None),
    ("softmax_dim", lambda: tt.softmax(_ones(2, 3), dim=2), "softmax", None),
    ("log_softmax_dim", lambda: tt.log_softmax(_ones(2, 3), dim=-3), "log_softmax", None),
    ("cat_shapes", lambda: tt.cat([_ones(2, 3), _ones(2, 4)]), "cat", None),
    ("cat_empty_list", lambda: tt.cat([]), "cat", None),
    ("stack_shapes", lambda: tt.stack([_ones(2, 3), _ones(3, 2)]), "stack", None),
    ("split_sizes", lambda: _ones(4, 2).split([1, 2]), "split", None),
    ("chunk_zero", lambda: _ones(4).chunk(0), "chunk", None),
    ("pad_odd", lambda: tt.pad(_ones(2, 3), (1, 2, 3)), "pad", None),
    ("pad_negative", lambda: tt.pad(_ones(2, 3), ((0, -1), (0, 0))), "pad", None),
    ("tile_negative", lambda: _ones(2).repeat(-1), "tile", None),
    ("getitem_out_of_bounds", lambda: _ones(2, 3)[2], "getitem", None),
    ("setitem_shape", lambda: tt.index_put(_ones(2, 3), 0, _ones(4)), "setitem", None),
    ("clip_no_bounds", lambda: tt.clip(_ones(2)), "clip", None),
    ("gelu_approximate", lambda: tt.gelu(_ones(2), approximate="fast"), "gelu", None),
    ("mse_shapes", lambda: tt.mse_loss(_ones(3), _ones(3, 1)), "mse_loss", None),
    ("bce_shapes", lambda: tt.binary_cross_entropy(_ones(3) * 0.5, _ones(2)),
     "binary_cross_entropy", None),
    ("cross_entropy_class_range",
     lambda: tt.cross_entropy(_ones(2, 3), tt.tensor([0, 3], dtype="int64")), "cross_entropy",
     None),
    ("cross_entropy_shapes",
     lambda: tt.cross_entropy(_ones(2, 3), tt.tensor([0, 1, 2], dtype="int64")), "cross_entropy",
     None),
]


@pytest.mark.parametrize(("call", "word"), [
    pytest.param(c, w, id=label, marks=[pytest.mark.xfail(strict=True, reason=r)] if r else [])
    for label, c, w, r in BAD_CALLS])
def test_bad_arguments_raise_naming_the_op(call: Callable[[], Any], word: str) -> None:
    with pytest.raises((ValueError, IndexError, TypeError), match=word):
        call()


def test_inplace_on_leaf_requiring_grad_raises() -> None:
    x = _ones(2, 3)
    for f in (lambda: x.__iadd__(1.0), lambda: x.__imul__(2.0), lambda: x.__setitem__(0, 1.0)):
        with pytest.raises(RuntimeError, match="leaf"):
            f()
    with tt.no_grad():  # allowed outside the graph, and not recorded
        x += 1.0
    assert x.grad_fn is None
    np.testing.assert_array_equal(x.numpy(), np.full((2, 3), 2.0))


# ----------------------------------------------------------------- Python numbers

NUMBERS = [1.0001, 0.001, -0.0, 0.0, 3, -7, 1e300, 2**63, 1e-45, float("nan"), float("inf")]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul])
def test_arithmetic_with_python_numbers_is_bitwise_numpy(dtype: Any, op: Any) -> None:
    # Numbers are wrapped as 0-d arrays of the tensor's dtype (and cached): the bits
    # must be NumPy's own, signs of zero included, and gradients must still be right.
    data = np.array([1.5, -2.25, 0.0, -0.0, 3e4], dtype=dtype)
    x = tt.tensor(data, requires_grad=True)
    for c in NUMBERS * 2:  # the second time from the cache
        with np.errstate(all="ignore"):
            want = op(data, c)
            want_left = op(c, data)
            got, got_left = op(x, c), op(c, x)
        assert got.dtype == want.dtype and got_left.dtype == want_left.dtype
        np.testing.assert_array_equal(np.signbit(got.data), np.signbit(want))
        np.testing.assert_array_equal(got.data, want)
        np.testing.assert_array_equal(got_left.data, want_left)
    y = op(x, 2.5)
    with np.errstate(all="ignore"):
        y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.full(5, 2.5 if op is operator.mul else 1.0))


def test_saved_numbers_are_read_only_and_too_large_ints_fail_as_in_numpy() -> None:
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    (c,) = (x * 0.5).grad_fn.saved_tensors
    assert c.shape == () and c.dtype == np.float32 and not c.flags.writeable
    with pytest.raises(OverflowError):
        np.ones(2, np.float32) * 10**400
    with pytest.raises(OverflowError):
        x * 10**400
    assert (tt.tensor(np.array([1, 2])) * 1.5).dtype == np.float64  # integers: NumPy's rules
