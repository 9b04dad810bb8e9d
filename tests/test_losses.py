"""Losses (ops.loss, nn.functional, nn loss modules): float64 central differences,
PyTorch when installed, stability, and the errors for mismatched shapes and classes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

import numeric
import tinytorch as tt
import tinytorch.nn.functional as F
from tinytorch import nn
from tinytorch.ops.loss import BCEBackward, CrossEntropyBackward, MSEBackward

RNG = np.random.default_rng(99)
REDUCTIONS = ["mean", "sum", "none"]


def t64(a: Any, requires_grad: bool = True) -> tt.Tensor:
    return tt.Tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def check_grads(fn: Callable[[], tt.Tensor], tensors: Sequence[tt.Tensor],
                eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-8) -> None:
    """Gradients of ``sum(fn() * R)`` against float64 central differences."""
    numeric.check_grads(fn, tensors, RNG, eps, rtol, atol)


def _probs(shape: tuple[int, ...], axis: int = 1) -> np.ndarray:
    p = RNG.uniform(0.1, 1.0, shape)
    return p / p.sum(axis=axis, keepdims=True)


def _labels(n: int, c: int, ignore: int | None = None) -> np.ndarray:
    t = RNG.integers(0, c, n)
    if ignore is not None:
        t[1] = ignore
    return t


# ----------------------------------------------------------------- central differences


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses_gradients(reduction: str) -> None:
    p, y = t64(RNG.standard_normal((3, 4))), t64(RNG.standard_normal((3, 4)))
    check_grads(lambda: F.mse_loss(p, y, reduction), [p, y])
    y.data[0, 0] = p.data[0, 0] + 0.5  # keep away from the kink at 0
    check_grads(lambda: F.l1_loss(p, y, reduction), [p, y])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_losses_gradients(reduction: str) -> None:
    p = t64(RNG.uniform(0.05, 0.95, (4, 3)))
    y = t64(RNG.uniform(0, 1, (4, 3)))
    w = RNG.uniform(0.5, 2, (4, 3))
    check_grads(lambda: F.binary_cross_entropy(p, y, w, reduction), [p, y])
    x = t64(RNG.standard_normal((4, 3)) * 3)
    pw = RNG.uniform(0.5, 3, 3)
    check_grads(lambda: F.binary_cross_entropy_with_logits(x, y, None, reduction), [x, y])
    check_grads(lambda: F.binary_cross_entropy_with_logits(x, y, w, reduction, pw), [x, y])


CE_OPTIONS = [
    dict(),
    dict(label_smoothing=0.2),
    dict(weight=np.array([0.5, 2.0, 1.0, 1.5])),
    dict(weight=np.array([0.5, 2.0, 1.0, 1.5]), ignore_index=3, label_smoothing=0.1),
    dict(ignore_index=-100),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", CE_OPTIONS, ids=[str(i) for i in range(len(CE_OPTIONS))])
def test_cross_entropy_gradients(reduction: str, opts: dict[str, Any]) -> None:
    z = t64(RNG.standard_normal((5, 4)) * 2)
    t = tt.tensor(_labels(5, 4, opts.get("ignore_index")), dtype="int64")
    check_grads(lambda: F.cross_entropy(z, t, reduction=reduction, **opts), [z])
    q = t64(_probs((5, 4)))
    popts = {k: v for k, v in opts.items() if k != "ignore_index"}
    check_grads(lambda: F.cross_entropy(z, q, reduction=reduction, **popts), [z, q])
    zs = t64(RNG.standard_normal((2, 4, 2, 3)))  # spatial: (N, C, H, W)
    ts = tt.tensor(RNG.integers(0, 4, (2, 2, 3)), dtype="int64")
    check_grads(lambda: F.cross_entropy(zs, ts, reduction=reduction, **opts), [zs])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_gradients(reduction: str) -> None:
    lp = t64(np.log(_probs((5, 3))))
    t = tt.tensor(_labels(5, 3, ignore=-100), dtype="int64")
    check_grads(lambda: F.nll_loss(lp, t, np.array([1.0, 2.0, 0.5]), reduction=reduction),
                [lp])


def test_cross_entropy_second_derivative() -> None:
    z = t64(RNG.standard_normal((3, 4)))
    t = tt.tensor([0, 3, 1], dtype="int64")

    def grad_norm() -> tt.Tensor:
        (g,) = tt.autograd.grad(F.cross_entropy(z, t, label_smoothing=0.1), z,
                                create_graph=True)
        return (g * g).sum()

    out = grad_norm()
    out.backward()
    analytic = z.grad.data.copy()
    numeric = np.zeros(z.size)
    flat = z.data.reshape(-1)
    for j in range(flat.size):
        orig = flat[j]
        flat[j] = orig + 1e-6
        hi = grad_norm().item()
        flat[j] = orig - 1e-6
        lo = grad_norm().item()
        flat[j] = orig
        numeric[j] = (hi - lo) / 2e-6
    np.testing.assert_allclose(analytic.reshape(-1), numeric, rtol=1e-5, atol=1e-9)


# ----------------------------------------------------------------- behaviour


def test_reductions_relate() -> None:
    z = tt.tensor(RNG.standard_normal((6, 3)))
    t = tt.tensor(RNG.integers(0, 3, 6), dtype="int64")
    none = F.cross_entropy(z, t, reduction="none")
    assert none.shape == (6,)
    assert F.cross_entropy(z, t, reduction="sum").item() == pytest.approx(none.data.sum(),
                                                                           rel=1e-6)
    assert F.cross_entropy(z, t).item() == pytest.approx(none.data.mean(), rel=1e-6)
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none'"):
        F.mse_loss(z, z, reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="max")


def test_ignore_index_rows_do_not_count() -> None:
    z = tt.tensor(RNG.standard_normal((4, 3)), requires_grad=True)
    full = F.cross_entropy(z[:2], tt.tensor([0, 2], dtype="int64"))
    ignored = F.cross_entropy(z, tt.tensor([0, 2, -100, -100], dtype="int64"))
    assert ignored.item() == pytest.approx(full.item(), rel=1e-6)
    ignored.backward()
    assert np.all(z.grad.data[2:] == 0)
    custom = F.cross_entropy(z, tt.tensor([0, 2, 7, 7], dtype="int64"), ignore_index=7)
    assert custom.item() == pytest.approx(full.item(), rel=1e-6)
    with np.errstate(all="ignore"):
        all_ignored = F.cross_entropy(z, tt.tensor([-100] * 4, dtype="int64"))
    assert np.isnan(all_ignored.item())  # 0 / 0, as in PyTorch


def test_label_smoothing_matches_its_definition() -> None:
    z = np.array([[2.0, 0.0, -1.0]])
    logp = z - np.log(np.exp(z).sum())
    expected = -(0.7 * logp[0, 0] + 0.3 / 3 * logp.sum())
    got = F.cross_entropy(tt.tensor(z), tt.tensor([0], dtype="int64"), label_smoothing=0.3)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # a one-hot probability target gives the same loss as its class index
    onehot = F.cross_entropy(tt.tensor(z), tt.tensor([[1.0, 0.0, 0.0]]), label_smoothing=0.3)
    assert onehot.item() == pytest.approx(expected, rel=1e-6)


def test_stable_for_huge_logits() -> None:
    x = tt.tensor(np.array([1e4, -1e4, 1e4, -1e4, 0.0]), dtype="float32", requires_grad=True)
    y = tt.tensor(np.array([1.0, 0.0, 0.0, 1.0, 1.0]), dtype="float32")
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_allclose(loss.data, [0.0, 0.0, 1e4, 1e4, np.log(2)], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.data, [0.0, 0.0, 1.0, -1.0, -0.5], atol=1e-7)
    pw = F.binary_cross_entropy_with_logits(x, y, reduction="none", pos_weight=np.full(5, 2.0))
    assert np.all(np.isfinite(pw.data))
    z = tt.tensor(np.array([[1e4, 0.0, -1e4]]), requires_grad=True)
    ce = F.cross_entropy(z, tt.tensor([1], dtype="int64"))
    assert ce.item() == pytest.approx(1e4)
    ce.backward()
    assert np.all(np.isfinite(z.grad.data))
    assert np.isfinite(F.cross_entropy(z, tt.tensor([[0.2, 0.3, 0.5]]),
                                       label_smoothing=0.1).item())


def test_float32_stays_float32() -> None:
    z = tt.tensor(RNG.standard_normal((4, 3)), dtype="float32", requires_grad=True)
    t = tt.tensor([0, 1, 2, 1], dtype="int64")
    for loss in (F.cross_entropy(z, t, label_smoothing=0.1),
                 F.nll_loss(F.log_softmax(z, 1), t, weight=np.ones(3)),
                 F.binary_cross_entropy_with_logits(z, z.detach() > 0, pos_weight=np.ones(3)),
                 F.mse_loss(z, z.detach() * 2), F.l1_loss(z, z.detach() * 2)):
        assert loss.dtype == np.float32
        z.grad = None
        loss.backward()
        assert z.grad.dtype == np.float32


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize("fn", [F.mse_loss, F.l1_loss, F.binary_cross_entropy,
                                F.binary_cross_entropy_with_logits],
                         ids=["mse", "l1", "bce", "bce_logits"])
def test_shape_mismatch_is_a_value_error_naming_op_and_shapes(fn: Any) -> None:
    p = tt.tensor(np.full((4, 1), 0.5))
    y = tt.tensor(np.full(4, 0.5))
    name = {"mse_loss": "mse_loss", "l1_loss": "l1_loss"}.get(fn.__name__, fn.__name__)
    with pytest.raises(ValueError, match=rf"{name}: .*\(4, 1\).*\(4,\)"):
        fn(p, y)


def test_cross_entropy_target_errors() -> None:
    z = tt.tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"cross_entropy: logits of shape \(3, 4\).*\(3, 1\)"):
        F.cross_entropy(z, tt.tensor(np.zeros((3, 1)), dtype="int64"))
    with pytest.raises(IndexError, match="cross_entropy: target class 4 is out of range"):
        F.cross_entropy(z, tt.tensor([0, 4, 1], dtype="int64"))
    with pytest.raises(IndexError, match="target class -1"):
        F.cross_entropy(z, tt.tensor([0, -1, 1], dtype="int64"))
    with pytest.raises(IndexError, match="nll_loss: target class 9"):
        F.nll_loss(z, tt.tensor([0, 9, 1], dtype="int64"))
    with pytest.raises(TypeError, match="integers"):
        F.cross_entropy(z, tt.tensor([0.5, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        F.cross_entropy(z, tt.tensor([0, 1, 2], dtype="int64"), weight=np.ones(3))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(z, tt.tensor([0, 1, 2], dtype="int64"), label_smoothing=1.5)
    # integer-valued float class indices are accepted (TinyTorch passes them)
    assert F.cross_entropy(z, tt.tensor([0.0, 1.0, 3.0])).item() == pytest.approx(np.log(4))


# ----------------------------------------------------------------- TinyTorch compatibility


def test_nodes_keep_their_tinytorch_signatures() -> None:
    p = tt.tensor([0.2, 0.7], requires_grad=True)
    y = tt.tensor([0.0, 1.0])
    gp, gy = MSEBackward(p, y).apply(np.float32(1.0))
    np.testing.assert_allclose(gp, (p.data - y.data), rtol=1e-6)  # 2 (p - y) / 2
    np.testing.assert_allclose(gy, -(p.data - y.data), rtol=1e-6)
    gp, _ = BCEBackward(p, y).apply(np.float32(1.0))
    np.testing.assert_allclose(gp, (p.data - y.data) / (p.data * (1 - p.data)) / 2, rtol=1e-5)
    z = tt.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]], requires_grad=True)
    t = tt.tensor([1, 0], dtype="int64")
    (gz,) = CrossEntropyBackward(z, t).apply(np.float32(1.0))
    e = np.exp(z.data - z.data.max(1, keepdims=True))
    expected = (e / e.sum(1, keepdims=True) - np.eye(3)[[1, 0]]) / 2
    np.testing.assert_allclose(gz, expected, rtol=1e-6)
    # the original call forms keep working and record the same nodes
    assert type(tt.mse_loss(p, y).grad_fn) is MSEBackward
    assert type(tt.binary_cross_entropy(p, y).grad_fn) is BCEBackward
    assert isinstance(tt.cross_entropy(z, t).grad_fn, CrossEntropyBackward)


def test_loss_modules() -> None:
    z = tt.tensor(RNG.standard_normal((4, 3)))
    t = tt.tensor([0, 2, 1, 1], dtype="int64")
    w = np.array([1.0, 2.0, 3.0])
    loss = nn.CrossEntropyLoss(weight=w, label_smoothing=0.1, reduction="sum")
    assert loss(z, t).item() == pytest.approx(
        F.cross_entropy(z, t, w, label_smoothing=0.1, reduction="sum").item())
    assert list(loss.state_dict()) == ["weight"]
    assert repr(loss) == "CrossEntropyLoss(reduction='sum')"
    nll = nn.NLLLoss()(F.log_softmax(z, 1), t).item()
    assert nll == pytest.approx(F.cross_entropy(z, t).item(), rel=1e-6)
    p = tt.tensor(RNG.uniform(0.1, 0.9, 4))
    assert nn.BCELoss()(p, (p > 0.5).float()).item() > 0
    assert nn.BCEWithLogitsLoss(pos_weight=np.array(2.0))(p, p).item() > 0
    assert nn.MSELoss(reduction="none")(p, p).shape == (4,)
    assert nn.L1Loss(reduction="sum")(p, p * 0).item() == pytest.approx(p.data.sum(), rel=1e-6)


# ----------------------------------------------------------------- against PyTorch


def _torch() -> Any:
    return pytest.importorskip("torch")


def _both(ours_fn: Callable[..., tt.Tensor], torch_fn: Callable[..., Any],
          arrays: Sequence[np.ndarray], grad: Sequence[bool], consts: Sequence[Any] = ()) -> None:
    """Run both with the same float64 inputs; compare the loss and each input's gradient."""
    T = _torch()
    ours = [tt.Tensor(a, requires_grad=g) for a, g in zip(arrays, grad)]
    theirs = [T.tensor(a, requires_grad=g) for a, g in zip(arrays, grad)]
    out = ours_fn(*ours, *consts)
    tout = torch_fn(*theirs, *[T.tensor(c) if isinstance(c, np.ndarray) else c for c in consts])
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    r = RNG.standard_normal(out.shape)
    (out * tt.Tensor(r)).sum().backward()
    (tout * T.tensor(r)).sum().backward()
    for a, b, g in zip(ours, theirs, grad):
        if g:
            np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_simple_losses_match_torch(reduction: str) -> None:
    T = _torch()
    tf = T.nn.functional
    p, y = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    _both(lambda a, b: F.mse_loss(a, b, reduction),
          lambda a, b: tf.mse_loss(a, b, reduction=reduction), [p, y], [True, True])
    _both(lambda a, b: F.l1_loss(a, b, reduction),
          lambda a, b: tf.l1_loss(a, b, reduction=reduction), [p, y], [True, True])
    probs, labels = RNG.uniform(0.05, 0.95, (4, 3)), RNG.uniform(0, 1, (4, 3))
    w = RNG.uniform(0.5, 2, (4, 3))
    _both(lambda a, b, c: F.binary_cross_entropy(a, b, c, reduction),
          lambda a, b, c: tf.binary_cross_entropy(a, b, c, reduction=reduction),
          [probs, labels], [True, False], [w])
    x = RNG.standard_normal((4, 3)) * 4
    pw = RNG.uniform(0.5, 3, 3)
    _both(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction),
          lambda a, b: tf.binary_cross_entropy_with_logits(a, b, reduction=reduction),
          [x, labels], [True, True])
    _both(lambda a, b, c, d: F.binary_cross_entropy_with_logits(a, b, c, reduction, d),
          lambda a, b, c, d: tf.binary_cross_entropy_with_logits(a, b, c, reduction=reduction,
                                                                 pos_weight=d),
          [x, labels], [True, True], [w, pw])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", CE_OPTIONS, ids=[str(i) for i in range(len(CE_OPTIONS))])
@pytest.mark.parametrize("shape", [(6, 4), (2, 4, 3, 2), (4,)], ids=["2d", "spatial", "1d"])
def test_cross_entropy_and_nll_match_torch(reduction: str, opts: dict[str, Any],
                                           shape: tuple[int, ...]) -> None:
    T = _torch()
    tf = T.nn.functional
    z = RNG.standard_normal(shape) * 2
    tshape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    t = RNG.integers(0, 4, tshape)
    if len(shape) > 1 and "ignore_index" in opts:
        t.reshape(-1)[0] = opts["ignore_index"]
    weight = opts.get("weight")
    kw = dict(ignore_index=opts.get("ignore_index", -100), reduction=reduction,
              label_smoothing=opts.get("label_smoothing", 0.0))
    _both(lambda a: F.cross_entropy(a, tt.tensor(t, dtype="int64"), weight, **kw),
          lambda a: tf.cross_entropy(a, T.tensor(t), None if weight is None
                                     else T.tensor(weight), **kw), [z], [True])
    q = _probs(shape, axis=1 if len(shape) > 1 else 0)
    pkw = dict(reduction=reduction, label_smoothing=kw["label_smoothing"])
    _both(lambda a, b: F.cross_entropy(a, b, weight, **pkw),
          lambda a, b: tf.cross_entropy(a, b, None if weight is None else T.tensor(weight),
                                        **pkw), [z, q], [True, True])
    if kw["label_smoothing"] == 0:
        lp = np.log(_probs(shape, axis=1 if len(shape) > 1 else 0))
        nkw = dict(ignore_index=kw["ignore_index"], reduction=reduction)
        _both(lambda a: F.nll_loss(a, tt.tensor(t, dtype="int64"), weight, **nkw),
              lambda a: tf.nll_loss(a, T.tensor(t), None if weight is None
                                    else T.tensor(weight), **nkw), [lp], [True])


def test_loss_modules_match_torch() -> None:
    T = _torch()
    z = RNG.standard_normal((5, 3))
    t = np.array([0, 2, 1, 1, 2])
    w = np.array([0.3, 1.0, 2.0])
    pairs = [
        (nn.CrossEntropyLoss(w, ignore_index=1, label_smoothing=0.05),
         T.nn.CrossEntropyLoss(T.tensor(w), ignore_index=1, label_smoothing=0.05)),
        (nn.NLLLoss(w, reduction="sum"), T.nn.NLLLoss(T.tensor(w), reduction="sum")),
    ]
    for ours, theirs in pairs:
        _both(lambda a, o=ours: o(a, tt.tensor(t, dtype="int64")),
              lambda a, th=theirs: th(a, T.tensor(t)), [z], [True])
