"""Numerical stability.

1. The softmax family and the logit losses stay finite, keep their dtype and have the
   right gradients for logits of magnitude 1e4, in float32 and float64: random logit
   tables (saturated rows, near-ties at +-1e4, all-equal rows) through every entry point
   (``tinytorch`` ops, ``nn.functional``, ``nn`` modules), along any dimension, with
   class-index, probability and label-smoothed targets, and BCE with ``weight`` and
   ``pos_weight``. The reference is the float64 closed form evaluated at the inputs as
   rounded to the tested dtype, so float32 results are held to float32 accuracy.
   (``test_ops.py`` checks one fixed 1e4 matrix along the last axis; ``test_losses.py``
   one BCE vector.)
2. Float32 training of the digits MLP with Adam gives no NaN/Inf in the loss, the
   gradients or the parameters over 10 seeds, at the CLI's learning rate and at an
   aggressive one; every gradient, parameter and optimizer state stays float32.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import pytest

import tinytorch as tt
import tinytorch.nn.functional as F
from numeric import one_blas_thread
from tinytorch import nn

Array = np.ndarray
BIG = 1e4

# ----------------------------------------------------------------- float64 closed forms


def _softmax(z: Array, dim: int) -> Array:
    e = np.exp(z - z.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def _lse(z: Array, dim: int, keepdims: bool = False) -> Array:
    m = z.max(axis=dim, keepdims=True)
    out = m + np.log(np.exp(z - m).sum(axis=dim, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=dim)


def _log_softmax(z: Array, dim: int) -> Array:
    return z - _lse(z, dim, keepdims=True)


def _softplus(x: Array) -> Array:
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x: Array) -> Array:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def big_logits(rng: np.random.Generator, shape: tuple[int, ...], dim: int = -1) -> Array:
    """Entries of about -1e4, 0 or +1e4 plus a small offset (near-ties among the largest),
    with one saturated line (+1e4 against -1e4) and one all-equal line along ``dim``."""
    z = BIG * rng.choice([-1.0, 0.0, 1.0], size=shape) + rng.uniform(-3.0, 3.0, size=shape)
    z = np.moveaxis(z, dim, -1)
    z[(0,) * (z.ndim - 1)] = -BIG
    z[(0,) * (z.ndim - 1)][0] = BIG
    z[(-1,) * (z.ndim - 1)] = BIG
    return np.moveaxis(z, -1, dim)


# ----------------------------------------------------------------- the cases
# Each case: (tinytorch fn of the logits Tensor, closed form (z, w) -> (value, gradient
# of sum(value * w))), all in float64; extra arrays come from ``rng`` and the shape.



class Case(NamedTuple):
    fn: Callable[[tt.Tensor], tt.Tensor]
    ref: Callable[[Array, Array], tuple[Array, Array]]
    # NOTE: logsumexp's backward is exp(x - lse) with lse rounded to the dtype (PyTorch's
    # rule too): in float32 at 1e4 its gradient is only good to about one spacing of lse.
    grad_within_output_spacing: bool = False


def _softmax_case(dim: int, how: str) -> Case:
    fn = {"op": lambda x: tt.softmax(x, dim), "F": lambda x: F.softmax(x, dim),
          "module": lambda x: nn.Softmax(dim)(x), "method": lambda x: x.softmax(dim)}[how]

    def ref(z: Array, w: Array) -> tuple[Array, Array]:
        s = _softmax(z, dim)
        return s, s * (w - (w * s).sum(axis=dim, keepdims=True))

    return Case(fn, ref)


def _log_softmax_case(dim: int, how: str) -> Case:
    fn = {"op": lambda x: tt.log_softmax(x, dim), "F": lambda x: F.log_softmax(x, dim),
          "module": lambda x: nn.LogSoftmax(dim)(x), "method": lambda x: x.log_softmax(dim)}[how]

    def ref(z: Array, w: Array) -> tuple[Array, Array]:
        return _log_softmax(z, dim), w - _softmax(z, dim) * w.sum(axis=dim, keepdims=True)

    return Case(fn, ref)


def _logsumexp_case(dim: int, keepdims: bool) -> Case:
    def ref(z: Array, w: Array) -> tuple[Array, Array]:
        wk = w if keepdims else np.expand_dims(w, dim)
        return _lse(z, dim, keepdims), wk * _softmax(z, dim)

    return Case(lambda x: tt.logsumexp(x, dim=dim, keepdim=keepdims), ref, True)


def _ce_index_case(targets: Array, reduction: str, smoothing: float, how: str) -> Case:
    """Class-index targets; logits (N, C) or (N, C, d) with targets (N,) or (N, d)."""
    t = tt.tensor(targets, dtype="int64")
    fn = {"F": lambda x: F.cross_entropy(x, t, reduction=reduction, label_smoothing=smoothing),
          "op": lambda x: tt.cross_entropy(x, t, reduction=reduction,
                                           label_smoothing=smoothing),
          "module": lambda x: nn.CrossEntropyLoss(reduction=reduction,
                                                  label_smoothing=smoothing)(x, t)}[how]

    def ref(z: Array, w: Array) -> tuple[Array, Array]:
        c = z.shape[1]
        onehot = np.moveaxis(np.eye(c)[targets], -1, 1)
        soft = (1 - smoothing) * onehot + smoothing / c
        per = -(soft * _log_softmax(z, 1)).sum(axis=1)
        grad = _softmax(z, 1) - soft  # soft sums to 1 over classes
        if reduction == "none":
            return per, np.expand_dims(w, 1) * grad
        scale = 1.0 / per.size if reduction == "mean" else 1.0
        return np.asarray(per.sum() * scale), w * grad * scale

    return Case(fn, ref)


def _ce_prob_case(probs: Array) -> Case:
    """Probability targets that need not sum to 1 (PyTorch allows it), summed."""
    p = tt.tensor(probs, dtype="float64")

    def ref(z: Array, w: Array) -> tuple[Array, Array]:
        loss = -(probs * _log_softmax(z, 1)).sum()
        return np.asarray(loss), w * (_softmax(z, 1) * probs.sum(axis=1, keepdims=True) - probs)

    return Case(lambda x: F.cross_entropy(x, p.astype(x.dtype), reduction="sum"), ref)


def _bce_case(y: Array, weight: Array | None, pos_weight: Array | None, reduction: str,
              how: str) -> Case:
    yt = tt.tensor(y, dtype="float64")

    def fn(x: tt.Tensor) -> tt.Tensor:
        kw: dict[str, Any] = {"reduction": reduction}
        if weight is not None:
            kw["weight"] = tt.tensor(weight.astype(x.dtype))
        if pos_weight is not None:
            kw["pos_weight"] = tt.tensor(pos_weight.astype(x.dtype))
        if how == "module":
            return nn.BCEWithLogitsLoss(**kw)(x, yt.astype(x.dtype))
        f = F.binary_cross_entropy_with_logits if how == "F" else \
            tt.binary_cross_entropy_with_logits
        return f(x, yt.astype(x.dtype), **kw)

    def ref(z: Array, w: Array) -> tuple[Array, Array]:
        pw = 1.0 if pos_weight is None else pos_weight
        wt = 1.0 if weight is None else weight
        lw = 1.0 + (pw - 1.0) * y
        per = wt * ((1.0 - y) * z + lw * _softplus(-z))
        grad = wt * ((1.0 - y) - lw * _sigmoid(-z))
        if reduction == "none":
            return per, w * grad
        scale = 1.0 / per.size if reduction == "mean" else 1.0
        return np.asarray(per.sum() * scale), w * grad * scale

    return Case(fn, ref)


def _cases() -> Iterator[tuple[str, tuple[int, ...], int, Case]]:
    """(id, logits shape, class/softmax dim, case)."""
    rng = np.random.default_rng(2024)
    for shape, dim in [((6, 5), -1), ((6, 5), 0), ((2, 4, 5), 1)]:
        for how in ("op", "F", "module", "method"):
            yield f"softmax-{how}-{shape}-{dim}", shape, dim, _softmax_case(dim, how)
            yield f"log_softmax-{how}-{shape}-{dim}", shape, dim, _log_softmax_case(dim, how)
        for keep in (False, True):
            yield f"logsumexp-{shape}-{dim}-keep{keep}", shape, dim, _logsumexp_case(dim, keep)
    for how in ("op", "F", "module"):
        for reduction in ("mean", "sum", "none"):
            yield (f"cross_entropy-{how}-{reduction}", (6, 5), 1,
                   _ce_index_case(rng.integers(0, 5, 6), reduction, 0.0, how))
    yield ("cross_entropy-label_smoothing", (6, 5), 1,
           _ce_index_case(rng.integers(0, 5, 6), "mean", 0.1, "F"))
    yield ("cross_entropy-spatial", (2, 5, 3), 1,
           _ce_index_case(rng.integers(0, 5, (2, 3)), "mean", 0.0, "F"))
    yield ("cross_entropy-probabilities", (6, 5), 1,
           _ce_prob_case(rng.uniform(0.0, 1.0, (6, 5))))
    y01 = rng.integers(0, 2, (6, 5)).astype(np.float64)
    ysoft = rng.uniform(0.0, 1.0, (6, 5))
    wt, pw = rng.uniform(0.5, 2.0, (6, 5)), rng.uniform(0.5, 3.0, 5)
    for how in ("op", "F", "module"):
        for reduction in ("mean", "sum", "none"):
            yield (f"bce_logits-{how}-{reduction}", (6, 5), -1,
                   _bce_case(y01, None, None, reduction, how))
    yield ("bce_logits-soft-weight-pos_weight", (6, 5), -1,
           _bce_case(ysoft, wt, pw, "mean", "F"))
    yield "bce_logits-pos_weight-module", (6, 5), -1, _bce_case(y01, None, pw, "sum", "module")


def _params() -> Iterator[Any]:
    for name, shape, dim, case in _cases():
        for dtype, label in ((np.float32, "f32"), (np.float64, "f64")):
            yield pytest.param(shape, dim, case, dtype, id=f"{name}-{label}")


TOL = {np.float64: {"rtol": 1e-12, "atol": 1e-12}, np.float32: {"rtol": 2e-6, "atol": 2e-5}}


@pytest.mark.parametrize(("shape", "dim", "case", "dtype"), list(_params()))
def test_huge_logits_are_finite_with_exact_gradients(shape: tuple[int, ...], dim: int,
                                                     case: Case, dtype: Any) -> None:
    rng = np.random.default_rng(len(shape) * 10 + dim)
    z = big_logits(rng, shape, dim).astype(dtype)
    z64 = z.astype(np.float64)  # the reference sees exactly the rounded inputs
    x = tt.tensor(z, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = case.fn(x)
        want, _ = case.ref(z64, np.ones(out.shape))
        w = rng.uniform(-1.0, 1.0, out.shape)
        (out * tt.tensor(w.astype(dtype))).sum().backward()
    _, grad = case.ref(z64, w)
    assert out.dtype == dtype and x.grad is not None and x.grad.dtype == dtype
    assert np.isfinite(out.numpy()).all() and np.isfinite(x.grad.numpy()).all()
    rtol, atol = TOL[dtype]["rtol"], TOL[dtype]["atol"]
    value_atol = grad_atol = atol
    if dtype == np.float32:  # values reach 1e4 (-2e4 for log_softmax): float32 spacing ~1e-3
        value_atol = max(atol, float(np.spacing(np.float32(np.abs(want).max()))))
        if case.grad_within_output_spacing:
            grad_atol = value_atol
    np.testing.assert_allclose(out.numpy(), want, rtol=rtol, atol=value_atol)
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=rtol, atol=grad_atol)


def test_float32_log_softmax_near_1e4_is_accurate() -> None:
    """The minimal case: one row of float32 logits near 1e4."""
    z = np.array([1e4, 1e4 - 0.5, 1e4 - 1.3, -1e4, 0.0], dtype=np.float32)
    z64 = z.astype(np.float64)
    x = tt.tensor(z, requires_grad=True)
    out = tt.log_softmax(x, dim=0)
    out[0].backward()  # gradient of log p_0: onehot_0 - softmax
    assert x.grad is not None
    np.testing.assert_allclose(out.numpy()[:3], _log_softmax(z64, 0)[:3], atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), np.eye(5)[0] - _softmax(z64, 0), atol=1e-6)


def test_huge_logit_cases_cover_every_function() -> None:
    ids = " ".join(name for name, *_ in _cases())
    for name in ("softmax", "log_softmax", "logsumexp", "cross_entropy", "bce_logits"):
        assert name in ids


# ----------------------------------------------------------------- float32 training


def _floats(state: Any) -> Iterator[np.ndarray]:
    """Every floating array inside an optimizer state dict."""
    if isinstance(state, dict):
        for v in state.values():
            yield from _floats(v)
    elif isinstance(state, (list, tuple)):
        for v in state:
            yield from _floats(v)
    elif isinstance(state, (np.ndarray, tt.Tensor)):
        arr = np.asarray(state.data if isinstance(state, tt.Tensor) else state)
        if arr.dtype.kind == "f" and arr.ndim:
            yield arr


@pytest.fixture(scope="module")
def digits() -> tuple[Array, Array]:
    pytest.importorskip("sklearn")
    from tinytorch.data import load_digits

    x, y, _, _ = load_digits(as_arrays=True)
    return x, y


STEPS = 250
BATCH = 32


@pytest.mark.parametrize(("seed", "lr"), [(s, 3e-3) for s in range(10)]
                         + [(s, 0.1) for s in range(10, 13)],
                         ids=[f"seed{s}-lr3e-3" for s in range(10)]
                         + [f"seed{s}-lr0.1" for s in range(10, 13)])
def test_float32_digits_mlp_training_stays_finite(digits: tuple[Array, Array], seed: int,
                                                  lr: float) -> None:
    from tinytorch.models import build_model

    x, y = digits
    assert x.dtype == np.float32
    tt.manual_seed(seed)
    model = build_model("mlp", (1, 8, 8), 10)
    model[0].fit(x)
    params = list(model.parameters())
    opt = tt.optim.Adam(params, lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    order = np.random.default_rng(seed).permutation(len(x))
    losses = []
    with one_blas_thread(), np.errstate(over="raise", invalid="raise"):
        for step in range(STEPS):
            idx = order[(step * BATCH) % len(x):][:BATCH]
            if len(idx) < BATCH:
                order = np.random.default_rng(seed + step).permutation(len(x))
                idx = order[:BATCH]
            loss = loss_fn(model(tt.tensor(x[idx])), tt.tensor(y[idx]))
            opt.zero_grad()
            loss.backward()
            assert loss.dtype == np.float32 and np.isfinite(loss.item()), (step, loss.item())
            for p in params:
                assert p.grad is not None and p.grad.dtype == np.float32, (step, p.grad)
                assert np.isfinite(p.grad.data).all(), f"non-finite gradient at step {step}"
            opt.step()
            losses.append(loss.item())
    for p in params:
        assert p.dtype == np.float32 and np.isfinite(p.data).all()
    for arr in _floats(opt.state_dict()):
        assert arr.dtype == np.float32 and np.isfinite(arr).all()
    assert np.mean(losses[-25:]) < np.mean(losses[:25])  # it also learned something
