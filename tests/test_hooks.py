"""Hooks: Module forward-pre / forward / full backward hooks, Tensor.register_hook and
autograd.graph.saved_tensors_hooks. Hooks fire in registration order, may replace what
they are given, and stop firing once their handle is removed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tinytorch as tt
from tinytorch import nn
from tinytorch.autograd import grad as autograd_grad
from tinytorch.autograd.graph import saved_tensors_hooks


def linear() -> nn.Linear:
    m = nn.Linear(3, 2).double()
    rng = np.random.default_rng(0)
    m.weight.data[...] = rng.uniform(-1, 1, size=m.weight.shape)
    m.bias.data[...] = rng.uniform(-1, 1, size=m.bias.shape)
    return m


def x_in(requires_grad: bool = True) -> tt.Tensor:
    data = np.random.default_rng(1).uniform(-1, 1, size=(4, 3))
    return tt.tensor(data, requires_grad=requires_grad)


class Mul(nn.Module):
    """Two Tensor arguments and a non-Tensor one."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(tt.tensor([2.0, -1.0, 0.5], dtype="float64"))

    def forward(self, a: Any, b: Any, scale: float = 1.0) -> Any:
        return (a * b * self.w).tanh() * scale


# ----------------------------------------------------------------- forward hooks


def test_no_hooks_means_plain_forward() -> None:
    m = linear()
    assert not m._hooks
    np.testing.assert_array_equal(m(x_in()).numpy(), m.forward(x_in()).numpy())


def test_forward_hooks_fire_in_order_and_remove() -> None:
    m, calls = linear(), []
    h1 = m.register_forward_pre_hook(lambda mod, args: calls.append(("pre1", mod)))
    m.register_forward_pre_hook(lambda mod, args: calls.append(("pre2", len(args))))
    h3 = m.register_forward_hook(lambda mod, args, out: calls.append(("fwd1", out.shape)))
    m.register_forward_hook(lambda mod, args, out: calls.append(("fwd2", None)))
    m(x_in())
    assert calls == [("pre1", m), ("pre2", 1), ("fwd1", (4, 2)), ("fwd2", None)]
    h1.remove()
    h3.remove()
    h3.remove()  # removing twice is harmless
    calls.clear()
    m(x_in())
    assert calls == [("pre2", 1), ("fwd2", None)]


def test_pre_hook_replaces_args_and_forward_hook_replaces_output() -> None:
    m, x = linear(), x_in()
    m.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    m.register_forward_pre_hook(lambda mod, args: args[0] + 1)  # a single value is wrapped
    seen = []
    m.register_forward_hook(lambda mod, args, out: seen.append(args[0].numpy()))
    m.register_forward_hook(lambda mod, args, out: out * 3)
    m.register_forward_hook(lambda mod, args, out: None)  # None keeps the output
    y = m(x)
    expected = 3 * ((2 * x.numpy() + 1) @ m.weight.numpy() + m.bias.numpy())
    np.testing.assert_allclose(y.numpy(), expected)
    np.testing.assert_allclose(seen[0], 2 * x.numpy() + 1)
    # the replaced output is differentiable as usual
    (g,) = autograd_grad(y.sum(), x)
    np.testing.assert_allclose(g.numpy(), 6 * np.ones((4, 2)) @ m.weight.numpy().T)


def test_kwargs_reach_forward_with_hooks() -> None:
    m = Mul()
    m.register_forward_hook(lambda mod, args, out: None)
    a, b = x_in(), x_in(False)
    np.testing.assert_allclose(m(a, b, scale=2.0).numpy(), m.forward(a, b, scale=2.0).numpy())


def test_hooks_on_submodules_fire() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    order = []
    for name, sub in net.named_children():
        sub.register_forward_hook(lambda mod, args, out, name=name: order.append(name))
    net(tt.tensor(np.ones((2, 3))))
    assert order == ["0", "1", "2"]


def test_non_callable_hook_is_refused() -> None:
    with pytest.raises(TypeError, match="callable"):
        linear().register_forward_hook(3)


# ----------------------------------------------------------------- full backward hooks


def test_backward_hook_grads_match_autograd_grad() -> None:
    m, x = linear(), x_in()
    seen = []
    m.register_full_backward_hook(lambda mod, gin, gout: seen.append((mod, gin, gout)))
    y = m(x)
    u = tt.tensor(np.random.default_rng(2).uniform(-1, 1, size=(4, 2)))
    (gx,) = autograd_grad((y * u).sum(), x)
    ((mod, gin, gout),) = seen
    assert mod is m and len(gin) == 1 and len(gout) == 1
    np.testing.assert_allclose(gout[0].numpy(), u.numpy())
    np.testing.assert_allclose(gin[0].numpy(), gx.numpy())
    np.testing.assert_allclose(gx.numpy(), u.numpy() @ m.weight.numpy().T)
    # parameters still get their gradients
    y2 = m(x)
    (y2 * u).sum().backward()
    np.testing.assert_allclose(m.weight.grad.numpy(), x.numpy().T @ u.numpy())


def test_backward_hooks_order_replacement_and_removal() -> None:
    m, x = linear(), x_in()
    calls = []

    def first(mod: Any, gin: Any, gout: Any) -> Any:
        calls.append("first")
        return (gin[0] * 10,)

    def second(mod: Any, gin: Any, gout: Any) -> Any:
        calls.append("second")
        return (gin[0] + 1,)  # sees the first hook's replacement

    h1 = m.register_full_backward_hook(first)
    m.register_full_backward_hook(second)
    (g,) = autograd_grad(m(x).sum(), x)
    plain = np.ones((4, 2)) @ m.weight.numpy().T
    assert calls == ["first", "second"]
    np.testing.assert_allclose(g.numpy(), plain * 10 + 1)
    h1.remove()
    (g,) = autograd_grad(m(x).sum(), x)
    np.testing.assert_allclose(g.numpy(), plain + 1)


def test_backward_hook_with_several_inputs() -> None:
    m = Mul()
    a = x_in()
    b = tt.tensor(np.random.default_rng(3).uniform(-1, 1, size=(4, 3)), requires_grad=True)
    c = x_in(False)
    seen = []
    m.register_full_backward_hook(lambda mod, gin, gout: seen.append(gin))
    ga, gb = autograd_grad(m(a, b, 0.5).sum(), (a, b))
    ref_a, ref_b = autograd_grad(m.forward(a, b, 0.5).sum(), (a, b))
    np.testing.assert_allclose(ga.numpy(), ref_a.numpy())
    np.testing.assert_allclose(gb.numpy(), ref_b.numpy())
    np.testing.assert_allclose(seen[0][0].numpy(), ref_a.numpy())
    np.testing.assert_allclose(seen[0][1].numpy(), ref_b.numpy())
    # an argument that does not require grad has None in grad_input
    seen.clear()
    m.register_full_backward_hook(lambda mod, gin, gout: (gin[0] * 0, None))
    (ga,) = autograd_grad(m(a, c).sum(), a)
    assert seen[0][1] is None
    np.testing.assert_array_equal(ga.numpy(), np.zeros((4, 3)))


def test_backward_hook_fires_when_no_input_requires_grad() -> None:
    m, seen = linear(), []
    m.register_full_backward_hook(lambda mod, gin, gout: seen.append((gin, gout)))
    m(x_in(False)).sum().backward()
    assert seen[0][0] == (None,) and seen[0][1][0].shape == (4, 2)
    assert m.weight.grad is not None


def test_backward_hook_with_create_graph() -> None:
    m = Mul()
    a = x_in()
    b = x_in(False)
    m.register_full_backward_hook(lambda mod, gin, gout: (gin[0] * 2, gin[1]))
    (g,) = autograd_grad(m(a, b).sum(), a, create_graph=True)
    (gg,) = autograd_grad(g.sum(), a)
    (r,) = autograd_grad(m.forward(a, b).sum(), a, create_graph=True)
    (rr,) = autograd_grad(r.sum(), a)
    np.testing.assert_allclose(g.numpy(), 2 * r.numpy())
    # NOTE: the second backward passes through the module's input node again, so the
    # hook fires again and scales that gradient too.
    np.testing.assert_allclose(gg.numpy(), 4 * rr.numpy())


def test_backward_hook_needs_a_single_tensor_output() -> None:
    class Pair(nn.Module):
        def forward(self, x: Any) -> Any:
            return x, x * 2

    m = Pair()
    m.register_full_backward_hook(lambda mod, gin, gout: None)
    with pytest.raises(TypeError, match="single Tensor"):
        m(x_in())


def test_backward_hook_wrong_number_of_gradients() -> None:
    m = linear()
    m.register_full_backward_hook(lambda mod, gin, gout: (gin[0], gin[0]))
    with pytest.raises(RuntimeError, match="expected 1"):
        m(x_in()).sum().backward()


def test_backward_hooks_skipped_under_no_grad() -> None:
    m, seen = linear(), []
    m.register_full_backward_hook(lambda mod, gin, gout: seen.append(1))
    with tt.no_grad():
        y = m(x_in())
    assert not y.requires_grad and not seen


# ----------------------------------------------------------------- tensor and saved-tensor hooks


def test_tensor_hooks_order_replace_and_remove() -> None:
    x = tt.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    y = x * 3
    calls = []
    y.register_hook(lambda g: calls.append("a"))
    h = y.register_hook(lambda g: g * 10)
    y.register_hook(lambda g: calls.append(g.tolist()))  # sees the replaced gradient
    (y * y).sum().backward(retain_graph=True)
    assert calls == ["a", [60.0, 120.0]]
    np.testing.assert_allclose(x.grad.numpy(), [180.0, 360.0])
    h.remove()
    x.grad = None
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [18.0, 36.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        tt.tensor([1.0]).register_hook(lambda g: g)


def test_saved_tensors_hooks_pack_and_unpack() -> None:
    packed, unpacked = [], []

    def pack(t: Any) -> Any:
        packed.append(t.shape)
        return t.numpy().copy()

    def unpack(a: Any) -> Any:
        unpacked.append(a.shape)
        return tt.tensor(a)

    x = tt.tensor([0.5, -1.0, 2.0], dtype="float64", requires_grad=True)
    with saved_tensors_hooks(pack, unpack):
        y = (x * x).sum()
    assert packed
    y.backward()
    assert unpacked
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy())


def test_forward_mode_passes_through_backward_hook_nodes() -> None:
    from tinytorch.autograd import forward_ad as fwad

    m = Mul()
    m.register_full_backward_hook(lambda mod, gin, gout: None)
    a, b = x_in(), x_in()
    va = np.random.default_rng(4).uniform(-1, 1, size=(4, 3))
    tangents = []
    for call in (m, m.forward):
        with fwad.dual_level():
            out = call(fwad.make_dual(a, tt.tensor(va)), b)  # b: no tangent
            tangents.append(fwad.unpack_dual(out).tangent.numpy())
    np.testing.assert_allclose(tangents[0], tangents[1])
