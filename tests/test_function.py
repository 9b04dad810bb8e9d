"""Custom differentiable ops (``tinytorch.autograd.Function``): forward, backward and
jvp, ``ctx`` (saving inputs and outputs, ``needs_input_grad``), double backward, errors,
and coexistence with TinyTorch's node API (``AddBackward(a, b).apply(g)``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tinytorch as tt
from tinytorch import func
from tinytorch.autograd import Function, FunctionCtx, Node, gradcheck, gradgradcheck
from tinytorch.autograd import forward_ad as fwad
from tinytorch.core import autograd as core_autograd


def T(a: Any, requires_grad: bool = True) -> tt.Tensor:
    return tt.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


class Cube(Function):
    @staticmethod
    def forward(ctx: Any, x: tt.Tensor) -> tt.Tensor:
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx: Any, g: tt.Tensor) -> tt.Tensor:
        (x,) = ctx.saved_tensors
        return g * 3 * x * x

    @staticmethod
    def jvp(ctx: Any, t: tt.Tensor) -> tt.Tensor:
        (x,) = ctx.saved_tensors
        return t * 3 * x * x


class ScaledMul(Function):
    """``a * b * scale`` with a Python-number argument; records needs_input_grad."""

    seen: list[tuple[bool, ...]] = []

    @staticmethod
    def forward(ctx: Any, a: tt.Tensor, b: tt.Tensor, scale: float) -> tt.Tensor:
        ScaledMul.seen.append(ctx.needs_input_grad)
        ctx.save_for_backward(a, b)
        ctx.scale = scale
        return a * b * scale

    @staticmethod
    def backward(ctx: Any, g: tt.Tensor) -> tuple[Any, ...]:
        a, b = ctx.saved_tensors
        need_a, need_b, _ = ctx.needs_input_grad
        return (g * b * ctx.scale if need_a else None,
                g * a * ctx.scale if need_b else None, None)

    @staticmethod
    def jvp(ctx: Any, ta: Any, tb: Any, tscale: Any) -> tt.Tensor:
        a, b = ctx.saved_tensors
        assert tscale is None  # a number carries no tangent
        total = None
        for t, other in ((ta, b), (tb, a)):
            if t is not None:
                term = t * other * ctx.scale
                total = term if total is None else total + term
        return total


class ExpSavingOutput(Function):
    @staticmethod
    def forward(ctx: Any, x: tt.Tensor) -> tt.Tensor:
        y = tt.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, g: tt.Tensor) -> tt.Tensor:
        (y,) = ctx.saved_tensors
        return g * y


# ----------------------------------------------------------------- forward and backward


def test_forward_backward_and_node() -> None:
    x = T([1.0, -2.0])
    y = Cube.apply(x)
    assert isinstance(y.grad_fn, FunctionCtx) and isinstance(y.grad_fn, Node)
    assert y.grad_fn.name() == "CubeBackward" and repr(y.grad_fn) == "<CubeBackward>"
    assert y.grad_fn.next_functions[0][0].variable is x
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 12.0])
    assert gradcheck(Cube.apply, (T([0.5, 1.5]),), check_forward_ad=True)


def test_forward_is_not_recorded_inside() -> None:
    x = T([2.0])
    y = Cube.apply(x)
    # one node for the whole op: its input is the leaf, not the inner multiplications
    assert [type(f) for f, _ in y.grad_fn.next_functions] == [core_autograd.AccumulateGrad]


def test_no_node_without_grad() -> None:
    x = T([2.0], requires_grad=False)
    assert Cube.apply(x).grad_fn is None
    with tt.no_grad():
        assert Cube.apply(T([2.0])).grad_fn is None


def test_needs_input_grad_and_non_tensor_arguments() -> None:
    ScaledMul.seen.clear()
    a, b = T([1.0, 2.0]), T([3.0, 4.0], requires_grad=False)
    y = ScaledMul.apply(a, b, 0.5)
    assert ScaledMul.seen == [(True, False, False)]
    assert y.grad_fn.needs_input_grad == (True, False, False)
    y.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.5, 2.0])
    assert b.grad is None
    assert gradcheck(lambda a, b: ScaledMul.apply(a, b, 0.5), (T([1.0, 2.0]), T([0.3, 0.1])),
                     check_forward_ad=True)


def test_saving_inputs_gives_back_the_tensors() -> None:
    x = T([1.0, 2.0])
    y = Cube.apply(x)
    (saved,) = y.grad_fn.saved_tensors
    assert saved is x


def test_saving_the_output_first_order() -> None:
    x = T([0.5, 1.0])
    ExpSavingOutput.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.5, 1.0]))


def test_saving_the_output_double_backward() -> None:
    x = T([0.5, 1.0])
    y = ExpSavingOutput.apply(x)
    assert isinstance(y.grad_fn.saved_tensors[0], tt.Tensor)
    assert gradgradcheck(ExpSavingOutput.apply, (x,))


def test_double_backward_through_a_custom_function() -> None:
    x = T([0.5, -1.5])
    (g,) = tt.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    assert g.requires_grad
    (h,) = tt.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * x.numpy())
    assert gradgradcheck(Cube.apply, (x,))
    np.testing.assert_allclose(func.hessian(lambda x: Cube.apply(x).sum())(x).numpy(),
                               np.diag(6 * x.numpy()))


# ----------------------------------------------------------------- forward mode


def test_jvp_runs_in_forward_mode() -> None:
    x, v = T([1.0, 2.0], requires_grad=False), T([1.0, -1.0], requires_grad=False)
    out, jv = func.jvp(Cube.apply, x, v)
    np.testing.assert_allclose(jv.numpy(), 3 * x.numpy() ** 2 * v.numpy())
    with fwad.dual_level():
        a = fwad.make_dual(T([1.0, 2.0], False), T([1.0, 1.0], False))
        t = fwad.unpack_dual(ScaledMul.apply(a, T([3.0, 5.0], False), 2.0)).tangent
    np.testing.assert_allclose(t.numpy(), [6.0, 10.0])  # tangent only on a
    np.testing.assert_allclose(func.jacfwd(Cube.apply)(x).numpy(), np.diag(3 * x.numpy() ** 2))


def test_missing_jvp_is_a_clear_error() -> None:
    with pytest.raises(NotImplementedError, match="ExpSavingOutputBackward.*no jvp"):
        func.jvp(ExpSavingOutput.apply, T([1.0]), T([1.0]))


# ----------------------------------------------------------------- errors


def test_errors_name_the_function() -> None:
    class NotATensor(Function):
        @staticmethod
        def forward(ctx: Any, x: tt.Tensor) -> Any:
            return x.numpy()

    class TooFew(Function):
        @staticmethod
        def forward(ctx: Any, a: tt.Tensor, b: tt.Tensor) -> tt.Tensor:
            return a + b

        @staticmethod
        def backward(ctx: Any, g: tt.Tensor) -> Any:
            return g

    class WrongType(Function):
        @staticmethod
        def forward(ctx: Any, x: tt.Tensor) -> tt.Tensor:
            return x * 1.0

        @staticmethod
        def backward(ctx: Any, g: tt.Tensor) -> Any:
            return g.numpy()

    class WrongShape(Function):
        @staticmethod
        def forward(ctx: Any, x: tt.Tensor) -> tt.Tensor:
            return x.sum()

        @staticmethod
        def backward(ctx: Any, g: tt.Tensor) -> Any:
            return tt.tensor(np.ones(5))

    class NoBackward(Function):
        @staticmethod
        def forward(ctx: Any, x: tt.Tensor) -> tt.Tensor:
            return x * 2.0

    x = T([1.0, 2.0])
    with pytest.raises(TypeError, match="NotATensor.forward must return a single Tensor"):
        NotATensor.apply(x)
    with pytest.raises(RuntimeError, match="TooFewBackward: backward returned 1 gradients "
                                           "for 2 inputs"):
        TooFew.apply(x, T([3.0, 4.0])).sum().backward()
    with pytest.raises(TypeError, match="WrongTypeBackward: backward must return Tensors"):
        WrongType.apply(x).sum().backward()
    with pytest.raises(RuntimeError, match=r"WrongShapeBackward: backward returned a "
                                           r"gradient of shape \(5,\)"):
        WrongShape.apply(x).backward()
    with pytest.raises(NotImplementedError, match="backward"):
        NoBackward.apply(x).sum().backward()


def test_in_place_change_of_a_saved_input_is_caught() -> None:
    x = T([1.0, 2.0])
    h = x * 1.0
    y = Cube.apply(h)
    h *= 2.0
    with pytest.raises(RuntimeError, match="CubeBackward.*modified by an in-place"):
        y.sum().backward()


# ----------------------------------------------------------------- TinyTorch's node API


def test_coexists_with_tinytorch_node_api() -> None:
    a, b = T([1.0, 2.0, 3.0]), T([4.0, 5.0, 6.0])
    # TinyTorch: a node instance computes gradients from an output gradient (arrays)
    ga, gb = core_autograd.AddBackward(a, b).apply(np.ones(3))
    np.testing.assert_array_equal(ga, np.ones(3))
    np.testing.assert_array_equal(gb, np.ones(3))
    ga, gb = core_autograd.MulBackward(a, b).apply(np.full(3, 2.0))
    np.testing.assert_array_equal(ga, 2 * b.numpy())
    np.testing.assert_array_equal(gb, 2 * a.numpy())
    assert a.grad is None and b.grad is None  # nothing accumulated
    # PyTorch: a Function class runs its forward; the node it records is a graph node
    y = Cube.apply(a) * b + core_autograd.add(a, b)
    assert isinstance(y.grad_fn, core_autograd.Function)  # TinyTorch's name for Node
    assert core_autograd.Function is Node and Function is not Node
    assert issubclass(FunctionCtx, core_autograd.Function)
    y.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 3 * a.numpy() ** 2 * b.numpy() + 1)
    np.testing.assert_allclose(b.grad.numpy(), a.numpy() ** 3 + 1)
    # a custom node answers TinyTorch's apply too (arrays in, arrays out)
    (gx,) = Cube.apply(T([2.0])).grad_fn.apply(np.ones(1))
    np.testing.assert_allclose(gx, [12.0])
