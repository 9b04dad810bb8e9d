"""Forward mode (JVP rules) against reverse mode for the nn ops: convolution, pooling,
batch normalisation and the losses, each with its options.

For ``f`` with Jacobian ``J``, random ``u`` and ``v`` must satisfy
``<u, J v> (forward) == <J^T u, v> (reverse)`` in float64, with a tangent on every
input at once and on each input alone. Integer targets, masks and other constants are
closed over by the table's lambdas; every listed input is differentiable.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

import tinytorch as tt
from tinytorch.autograd import forward_ad as fwad
from tinytorch.autograd import grad as autograd_grad
from tinytorch.nn import functional as F


def rng_for(*parts: Any) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("|".join(map(str, parts)).encode()))


class Entry(NamedTuple):
    name: str
    fn: Callable[..., Any]
    shapes: tuple[tuple[int, ...], ...]
    low: float = -1.0  # inputs are drawn uniformly from [low, high]
    high: float = 1.0


_R = np.random.default_rng(0)
LABELS = np.array([0, 2, 1, 2])  # class indices for logits (4, 3)
LABELS_IGNORE = np.array([0, -100, 1, 2])
LABELS_3D = _R.integers(0, 3, size=(2, 4))  # for logits (2, 3, 4)
CLASS_W = np.array([0.5, 2.0, 1.0])
BCE_Y = _R.uniform(0, 1, size=(3, 4))
ELEM_W = _R.uniform(0.5, 1.5, size=(4,))  # broadcasts to (3, 4)
POS_W = np.array([0.5, 1.0, 2.0, 3.0])
RUN_MEAN = np.array([0.1, -0.2, 0.3])
RUN_VAR = np.array([0.5, 1.5, 2.0])


def _probs(q: Any) -> Any:
    """A differentiable probability target from free parameters."""
    return tt.softmax(q, 1)


TABLE: list[Entry] = [
    # convolution: stride, padding, dilation, groups, bias, unbatched
    Entry("conv2d", lambda x, w, b: F.conv2d(x, w, b), ((2, 3, 5, 5), (4, 3, 3, 3), (4,))),
    Entry("conv2d_no_bias", lambda x, w: F.conv2d(x, w), ((1, 2, 4, 5), (3, 2, 2, 3))),
    Entry("conv2d_stride_pad", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
          ((2, 2, 6, 5), (3, 2, 3, 3), (3,))),
    Entry("conv2d_dilation", lambda x, w: F.conv2d(x, w, dilation=2, padding=(1, 2)),
          ((1, 2, 7, 7), (2, 2, 3, 2))),
    Entry("conv2d_groups", lambda x, w, b: F.conv2d(x, w, b, stride=(1, 2), groups=2),
          ((2, 4, 5, 6), (6, 2, 2, 2), (6,))),
    Entry("conv2d_same", lambda x, w: F.conv2d(x, w, padding="same"), ((1, 2, 4, 4), (2, 2, 2, 3))),
    Entry("conv2d_unbatched", lambda x, w: F.conv2d(x, w), ((2, 4, 4), (3, 2, 2, 2))),
    # pooling (max: distinct random values, so no ties)
    Entry("max_pool2d", lambda x: F.max_pool2d(x, 2), ((2, 3, 4, 6),)),
    Entry("max_pool2d_overlap_pad", lambda x: F.max_pool2d(x, 3, stride=2, padding=1),
          ((1, 2, 7, 6),)),
    Entry("max_pool2d_dilation_ceil", lambda x: F.max_pool2d(x, 2, stride=2, dilation=2,
                                                             ceil_mode=True), ((1, 2, 7, 7),)),
    Entry("avg_pool2d", lambda x: F.avg_pool2d(x, 2), ((2, 3, 4, 6),)),
    Entry("avg_pool2d_pad_ceil", lambda x: F.avg_pool2d(x, 3, stride=2, padding=1,
                                                         ceil_mode=True,
                                                         count_include_pad=False),
          ((1, 2, 6, 7),)),
    # batch norm
    Entry("batch_norm_train", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
          ((4, 3, 2, 2), (3,), (3,))),
    Entry("batch_norm_train_no_affine", lambda x: F.batch_norm(
        x, np.zeros(3), np.ones(3), training=True), ((5, 3),)),
    Entry("batch_norm_eval", lambda x, w, b: F.batch_norm(
        x, RUN_MEAN, RUN_VAR, w, b, training=False), ((2, 3, 2, 2), (3,), (3,))),
    # regression losses
    *[Entry(f"mse_loss_{r}", lambda p, t, r=r: F.mse_loss(p, t, reduction=r), ((3, 4), (3, 4)))
      for r in ("mean", "sum", "none")],
    Entry("mse_loss_0d", lambda p, t: F.mse_loss(p, t), ((), ())),
    *[Entry(f"l1_loss_{r}", lambda p, t, r=r: F.l1_loss(p, t, reduction=r), ((3, 4), (3, 4)))
      for r in ("mean", "sum", "none")],
    # binary classification (probabilities inside the clip range)
    *[Entry(f"bce_{r}", lambda p, y, r=r: F.binary_cross_entropy(p, y, reduction=r),
            ((3, 4), (3, 4)), 0.05, 0.95) for r in ("mean", "sum", "none")],
    Entry("bce_weight", lambda p: F.binary_cross_entropy(p, BCE_Y, weight=ELEM_W),
          ((3, 4),), 0.05, 0.95),
    *[Entry(f"bce_logits_{r}", lambda x, y, r=r: F.binary_cross_entropy_with_logits(
        x, y * 0.5 + 0.5, reduction=r), ((3, 4), (3, 4)), -3.0, 3.0)
      for r in ("mean", "sum", "none")],
    Entry("bce_logits_weight_pos_weight", lambda x, y: F.binary_cross_entropy_with_logits(
        x, y * 0.5 + 0.5, weight=ELEM_W, pos_weight=POS_W), ((3, 4), (3, 4)), -3.0, 3.0),
    Entry("bce_logits_pos_weight_sum", lambda x, y: F.binary_cross_entropy_with_logits(
        x, y * 0.5 + 0.5, reduction="sum", pos_weight=POS_W), ((3, 4), (3, 4)), -3.0, 3.0),
    # cross-entropy: the fused class-index path, then the general one
    Entry("cross_entropy_fast_path", lambda z: F.cross_entropy(z, LABELS), ((4, 3),)),
    *[Entry(f"cross_entropy_{r}", lambda z, r=r: F.cross_entropy(z, LABELS, reduction=r),
            ((4, 3),)) for r in ("sum", "none")],
    *[Entry(f"cross_entropy_weight_{r}", lambda z, r=r: F.cross_entropy(
        z, LABELS, weight=CLASS_W, reduction=r), ((4, 3),)) for r in ("mean", "sum", "none")],
    Entry("cross_entropy_ignore_index", lambda z: F.cross_entropy(z, LABELS_IGNORE,
                                                                  weight=CLASS_W), ((4, 3),)),
    *[Entry(f"cross_entropy_smoothing_{r}", lambda z, r=r: F.cross_entropy(
        z, LABELS, reduction=r, label_smoothing=0.2), ((4, 3),)) for r in ("mean", "none")],
    Entry("cross_entropy_3d", lambda z: F.cross_entropy(z, LABELS_3D, label_smoothing=0.1),
          ((2, 3, 4),)),
    Entry("cross_entropy_unbatched", lambda z: F.cross_entropy(z, np.array(1)), ((3,),)),
    *[Entry(f"cross_entropy_probs_{r}", lambda z, q, r=r: F.cross_entropy(
        z, _probs(q), reduction=r, label_smoothing=0.1, weight=CLASS_W), ((4, 3), (4, 3)))
      for r in ("mean", "sum", "none")],
    *[Entry(f"nll_loss_{r}", lambda z, r=r: F.nll_loss(tt.log_softmax(z, 1), LABELS_IGNORE,
                                                        weight=CLASS_W, reduction=r), ((4, 3),))
      for r in ("mean", "sum", "none")],
]


def forward_mode(fn: Callable[..., Any], arrays: list[np.ndarray],
                 tangents: list[np.ndarray | None]) -> tuple[Any, Any]:
    with fwad.dual_level():
        xs = [tt.tensor(a) if t is None else fwad.make_dual(tt.tensor(a), tt.tensor(t))
              for a, t in zip(arrays, tangents)]
        primal, tangent = fwad.unpack_dual(fn(*xs))
    return primal, tangent


def reverse_mode(fn: Callable[..., Any], arrays: list[np.ndarray], u: np.ndarray) -> list[Any]:
    xs = [tt.tensor(a, requires_grad=True) for a in arrays]
    gs = autograd_grad((fn(*xs) * tt.tensor(u)).sum(), xs, allow_unused=True)
    return [np.zeros_like(a) if g is None else g.numpy() for a, g in zip(arrays, gs)]


def check_adjoint(entry: Entry, only: int | None) -> None:
    rng = rng_for("jvp-nn", entry.name)
    arrays = [rng.uniform(entry.low, entry.high, size=s) for s in entry.shapes]
    vs = [rng.uniform(-1.0, 1.0, size=s) for s in entry.shapes]
    tangents = [v if only is None or i == only else None for i, v in enumerate(vs)]
    out, jv = forward_mode(entry.fn, arrays, tangents)
    assert jv is not None, f"{entry.name}: no tangent came out"
    assert jv.shape == out.shape and jv.dtype == out.dtype == np.float64
    u = rng.uniform(-1.0, 1.0, size=out.shape)
    lhs = float(np.sum(jv.numpy() * u))
    vjp = reverse_mode(entry.fn, arrays, u)
    rhs = sum(float(np.sum(g * v)) for g, v in zip(vjp, tangents) if v is not None)
    scale = 1.0 + sum(float(np.abs(g).sum()) for g in vjp)
    assert abs(lhs - rhs) <= 1e-10 * scale, (
        f"{entry.name}: <u, J v> = {lhs!r} (forward) but <J^T u, v> = {rhs!r} (reverse)"
        + ("" if only is None else f", tangent on input {only} only"))


@pytest.mark.parametrize("entry", TABLE, ids=[e.name for e in TABLE])
def test_jvp_matches_vjp(entry: Entry) -> None:
    check_adjoint(entry, None)
    if len(entry.shapes) > 1:
        for i in range(len(entry.shapes)):
            check_adjoint(entry, i)


def test_jvp_matches_central_differences() -> None:
    """The adjoint test cannot see a rule that is wrong in the same way in both modes."""
    rng = rng_for("fd")
    cases = [("conv2d_stride_pad", TABLE[2]), ("batch_norm_train", TABLE[12])]
    cases += [(e.name, e) for e in TABLE if e.name in ("cross_entropy_probs_none",
                                                         "bce_logits_weight_pos_weight")]
    for name, e in cases:
        arrays = [rng.uniform(e.low, e.high, size=s) for s in e.shapes]
        vs = [rng.uniform(-1.0, 1.0, size=s) for s in e.shapes]
        _, jv = forward_mode(e.fn, arrays, vs)
        h = 1e-6
        plus = e.fn(*[tt.tensor(a + h * v) for a, v in zip(arrays, vs)]).numpy()
        minus = e.fn(*[tt.tensor(a - h * v) for a, v in zip(arrays, vs)]).numpy()
        np.testing.assert_allclose(jv.numpy(), (plus - minus) / (2 * h), rtol=1e-6, atol=1e-8,
                                   err_msg=name)


@pytest.mark.parametrize("name", ["conv2d_groups", "batch_norm_train", "cross_entropy_fast_path",
                                  "cross_entropy_probs_mean", "bce_logits_weight_pos_weight"])
def test_reverse_over_forward(name: str) -> None:
    """The tangent is built from recorded ops, so reverse mode differentiates it: the
    gradient of <u, J(x) v> w.r.t. x matches central differences of that scalar."""
    e = next(e for e in TABLE if e.name == name)
    rng = rng_for("rof", name)
    arrays = [rng.uniform(e.low, e.high, size=s) for s in e.shapes]
    vs = [rng.uniform(-1.0, 1.0, size=s) for s in e.shapes]

    def jvp_dot(xs: list[Any], u: np.ndarray) -> Any:
        with fwad.dual_level():
            duals = [fwad.make_dual(x, tt.tensor(v)) for x, v in zip(xs, vs)]
            return (fwad.unpack_dual(e.fn(*duals)).tangent * tt.tensor(u)).sum()

    out = e.fn(*[tt.tensor(a) for a in arrays])
    u = rng.uniform(-1.0, 1.0, size=out.shape)
    xs = [tt.tensor(a, requires_grad=True) for a in arrays]
    gs = autograd_grad(jvp_dot(xs, u), xs, allow_unused=True)
    ds = [rng.uniform(-1.0, 1.0, size=a.shape) for a in arrays]
    h = 1e-6
    fd = (jvp_dot([tt.tensor(a + h * d) for a, d in zip(arrays, ds)], u).item()
          - jvp_dot([tt.tensor(a - h * d) for a, d in zip(arrays, ds)], u).item()) / (2 * h)
    analytic = sum(0.0 if g is None else float(np.sum(g.numpy() * d)) for g, d in zip(gs, ds))
    np.testing.assert_allclose(analytic, fd, rtol=1e-5, atol=1e-8)


def test_max_pool2d_window_of_minus_inf_in_padding() -> None:
    """A window that is all -inf keeps offset 0, which may be padding: its output does
    not move in either mode."""
    x = np.full((1, 1, 2, 2), -np.inf)
    _, jv = forward_mode(lambda t: F.max_pool2d(t, 2, stride=1, padding=1), [x],
                         [np.ones((1, 1, 2, 2))])
    xr = tt.tensor(x, requires_grad=True)
    F.max_pool2d(xr, 2, stride=1, padding=1).sum().backward()
    assert float(jv.numpy().sum()) == float(xr.grad.numpy().sum()) == 4.0
