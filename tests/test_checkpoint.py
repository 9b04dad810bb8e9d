"""Gradient checkpointing: the gradients equal the plain run's exactly, activations are
recomputed instead of kept (tracemalloc sees less memory), and the edges (randomness,
in-place edits, second backward, forward mode, no_grad) behave."""

from __future__ import annotations

import gc
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinytorch as tt
from tinytorch.autograd import forward_ad as fwad
from tinytorch.utils import checkpoint, checkpoint_sequential
from tinytorch.utils.checkpoint import CheckpointBackward

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import checkpoint_memory  # noqa: E402


def mlp(layers: int, width: int, seed: int = 0,
        dtype: Any = np.float64) -> tuple[list[Callable[[Any], Any]], list[tt.Tensor]]:
    fns, params = checkpoint_memory.make_mlp(layers, width, seed)
    if dtype != np.float32:
        for p in params:
            p.data = p.data.astype(dtype)
    return fns, params


def grads_of(params: list[tt.Tensor], run: Callable[[], tt.Tensor],
             extra: list[tt.Tensor] = ()) -> list[np.ndarray]:  # type: ignore[assignment]
    for p in [*params, *extra]:
        p.grad = None
    (run() ** 2).sum().backward()
    return [p.grad.numpy().copy() for p in [*params, *extra]]  # type: ignore[union-attr]


@pytest.mark.parametrize("segments", [1, 2, 3, 5, 12])
@pytest.mark.parametrize("x_requires_grad", [False, True])
def test_checkpoint_sequential_gradients_are_bit_identical(segments: int,
                                                           x_requires_grad: bool) -> None:
    fns, params = mlp(12, 16)
    x = tt.tensor(np.random.default_rng(3).normal(size=(8, 16)), requires_grad=x_requires_grad)
    extra = [x] if x_requires_grad else []
    plain = grads_of(params, lambda: checkpoint_memory.step(fns, x, None), extra)
    ckpt = grads_of(params, lambda: checkpoint_sequential(fns, segments, x), extra)
    for a, b in zip(plain, ckpt):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_checkpoint_with_several_arguments_and_autograd_grad() -> None:
    calls = []

    def block(x: tt.Tensor, y: tt.Tensor, scale: float) -> tt.Tensor:
        calls.append(1)
        return tt.sin(x @ y) * scale + tt.exp(y).sum()

    x = tt.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    y = tt.tensor(np.linspace(0, 1, 12).reshape(3, 4), requires_grad=True)
    out = checkpoint(block, x, y, 0.5)
    assert isinstance(out.grad_fn, CheckpointBackward) and len(calls) == 1
    gx, gy = tt.autograd.grad(out.sum(), (x, y))
    assert len(calls) == 2  # recomputed once in backward
    ex, ey = tt.autograd.grad(block(x, y, 0.5).sum(), (x, y))
    assert np.array_equal(gx.numpy(), ex.numpy()) and np.array_equal(gy.numpy(), ey.numpy())


def test_only_arguments_that_require_grad_get_gradients() -> None:
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    c = tt.tensor([3.0, 4.0])
    checkpoint(lambda a, b: (a * b).sum(), x, c).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])
    assert c.grad is None


def test_peak_memory_is_lower_with_checkpointing() -> None:
    fns, params = mlp(16, 64, dtype=np.float32)
    x = tt.tensor(np.ones((128, 64), np.float32))
    for p in params:  # .grad stays allocated: the peak is about activations
        p.grad = tt.tensor(np.zeros(p.shape, np.float32))

    def peaks(segments: int | None) -> tuple[int, int]:
        gc.collect()
        tracemalloc.start()
        start = tracemalloc.get_traced_memory()[0]
        out = checkpoint_memory.step(fns, x, segments).sum()
        held = tracemalloc.get_traced_memory()[0] - start
        out.backward()
        peak = tracemalloc.get_traced_memory()[1] - start
        tracemalloc.stop()
        return held, peak

    held_plain, peak_plain = peaks(None)
    held_ckpt, peak_ckpt = peaks(4)
    act = 128 * 64 * 4  # one float32 activation
    assert held_plain >= 16 * act  # every layer's tanh output is kept
    assert held_ckpt <= 8 * act  # 3 boundaries + the 4 plain layers of the last segment
    assert peak_ckpt < 0.7 * peak_plain


def test_checkpoint_memory_example_runs() -> None:
    rows = checkpoint_memory.main(["--layers", "8", "--width", "32", "--batch", "16",
                                   "--repeats", "1"])
    assert [r["segments"] for r in rows] == [None, 2, 4, 8, 16]
    assert all(r["exact"] for r in rows)
    assert rows[2]["held_mib"] < rows[0]["held_mib"]


def test_randomness_is_replayed_in_the_recomputation() -> None:
    w = tt.tensor(np.linspace(-1, 1, 9).reshape(3, 3), requires_grad=True)

    def noisy(x: tt.Tensor) -> tt.Tensor:
        mask = tt.random.default_generator().random(x.shape) > 0.5
        return tt.tanh(x @ w) * tt.tensor(mask.astype(np.float64))

    x = tt.tensor(np.ones((4, 3)), requires_grad=True)
    tt.manual_seed(7)
    (noisy(x) ** 2).sum().backward()
    expected = w.grad.numpy().copy()
    w.grad = None
    tt.manual_seed(7)
    y = checkpoint(noisy, x)
    after_forward = tt.random.get_rng_state()
    (y**2).sum().backward()
    assert np.array_equal(w.grad.numpy(), expected)
    assert tt.random.get_rng_state() == after_forward  # the replay does not advance it


def test_second_backward_needs_retain_graph() -> None:
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    y = checkpoint(lambda x: (x * x).sum(), x)
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_in_place_change_of_an_input_is_caught() -> None:
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1.0
    y = checkpoint(lambda h: (h * h).sum(), h)
    h += 1.0
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_create_graph_is_refused_and_no_grad_just_runs() -> None:
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    y = checkpoint(lambda x: (x**3).sum(), x)
    with pytest.raises(RuntimeError, match="double backward"):
        tt.autograd.grad(y, x, create_graph=True)
    with tt.no_grad():
        z = checkpoint(lambda x: x * 2, x)
    assert z.grad_fn is None and not z.requires_grad
    with pytest.raises(TypeError, match="single Tensor"):
        checkpoint(lambda x: (x, x), x)
    with pytest.raises(ValueError, match="segments"):
        checkpoint_sequential([tt.tanh], 0, x)


def test_forward_mode_through_a_checkpoint() -> None:
    w = tt.tensor([[1.0, 2.0], [0.5, -1.0]])
    f = lambda x: tt.tanh(x @ w) * x  # noqa: E731
    x, v = tt.tensor([0.3, -0.2], requires_grad=True), tt.tensor([1.0, 2.0])
    with fwad.dual_level():
        plain = fwad.unpack_dual(f(fwad.make_dual(x, v))).tangent
        ckpt = fwad.unpack_dual(checkpoint(f, fwad.make_dual(x, v))).tangent
    assert ckpt is not None and np.array_equal(plain.numpy(), ckpt.numpy())


def test_checkpoint_under_anomaly_mode_still_reaches_the_weights() -> None:
    w = tt.tensor([1.0, -2.0], requires_grad=True)
    with tt.autograd.detect_anomaly():
        y = checkpoint(lambda x: (x * w).sum(), tt.tensor([3.0, 4.0]))
        y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 4.0])


def test_checkpoint_sequential_over_modules() -> None:
    nn = pytest.importorskip("tinytorch.nn")
    tt.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(),
                          nn.Linear(8, 3))
    x = tt.tensor(np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32))
    params = list(model.parameters())
    plain = grads_of(params, lambda: model(x))
    ckpt = grads_of(params, lambda: checkpoint_sequential(model, 3, x))
    for a, b in zip(plain, ckpt):
        assert np.array_equal(a, b)
