"""``gradcheck`` / ``gradgradcheck``: they pass on correct ops (every twice-differentiable
op of the table, second derivatives included) and fail, naming the input, the element
and both values, on deliberately wrong custom Functions."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest

import tinytorch as tt
from op_table import TABLE, OpSpec, case_id
from test_forward_ad import no_jvp_yet
from tinytorch.autograd import Function, GradcheckError, gradcheck, gradgradcheck


def T(a: Any, requires_grad: bool = True) -> tt.Tensor:
    return tt.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


# ----------------------------------------------------------------- deliberately wrong ops


class HalfSquare(Function):
    """x * x with a backward that forgets the factor 2."""

    @staticmethod
    def forward(ctx: Any, x: tt.Tensor) -> tt.Tensor:
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx: Any, g: tt.Tensor) -> tt.Tensor:
        (x,) = ctx.saved_tensors
        return g * x

    @staticmethod
    def jvp(ctx: Any, t: tt.Tensor) -> tt.Tensor:
        (x,) = ctx.saved_tensors
        return t * x * 2


class WrongSecondInput(Function):
    """a * b whose gradient for b is wrong at one element only (index (1, 0))."""

    @staticmethod
    def forward(ctx: Any, a: tt.Tensor, b: tt.Tensor) -> tt.Tensor:
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Any, g: tt.Tensor) -> tuple[tt.Tensor, tt.Tensor]:
        a, b = ctx.saved_tensors
        mask = np.ones(b.shape)
        mask[1, 0] = 3.0
        return g * b, g * a * mask


class WrongJvp(Function):
    """sin with a correct backward but a JVP of the wrong sign."""

    @staticmethod
    def forward(ctx: Any, x: tt.Tensor) -> tt.Tensor:
        ctx.save_for_backward(x)
        return tt.sin(x)

    @staticmethod
    def backward(ctx: Any, g: tt.Tensor) -> tt.Tensor:
        (x,) = ctx.saved_tensors
        return g * tt.cos(x)

    @staticmethod
    def jvp(ctx: Any, t: tt.Tensor) -> tt.Tensor:
        (x,) = ctx.saved_tensors
        return -t * tt.cos(x)


class ConstantDerivative(Function):
    """x**3 whose backward treats x as a constant: right first derivative, wrong second."""

    @staticmethod
    def forward(ctx: Any, x: tt.Tensor) -> tt.Tensor:
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx: Any, g: tt.Tensor) -> tt.Tensor:
        (x,) = ctx.saved_tensors
        return g * (3 * x.data * x.data)  # the array: no graph through x


def test_gradcheck_names_input_element_and_values() -> None:
    x = T([[0.5, -1.0], [2.0, 0.25]])
    with pytest.raises(GradcheckError) as info:
        gradcheck(HalfSquare.apply, (x,))
    err = info.value
    assert err.input_index == 0
    assert err.element in {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert err.output_element == err.element  # an elementwise op: diagonal Jacobian
    xv = x.numpy()[err.element]
    assert err.analytic == pytest.approx(xv)
    assert err.numeric == pytest.approx(2 * xv, rel=1e-6)
    msg = str(err)
    assert "input 0" in msg and f"element {err.element}" in msg
    assert repr(err.analytic) in msg and repr(err.numeric) in msg
    assert "(analytic)" in msg and "(numeric)" in msg


def test_gradcheck_finds_the_one_wrong_element_of_the_second_input() -> None:
    a, b = T(np.arange(1.0, 7.0).reshape(3, 2)), T(np.linspace(-1, 1, 6).reshape(3, 2))
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(3, 2\)\), element \(1, 0\)"
                       ) as info:
        gradcheck(WrongSecondInput.apply, (a, b))
    err = info.value
    assert (err.input_index, err.element, err.output_element) == (1, (1, 0), (1, 0))
    assert err.analytic == pytest.approx(3 * a.numpy()[1, 0])
    assert err.numeric == pytest.approx(a.numpy()[1, 0], rel=1e-6)
    assert "1 of 36 entries" in str(err)
    # without the flag: False instead of an exception
    assert gradcheck(WrongSecondInput.apply, (a, b), raise_exception=False) is False
    # an input that does not require grad is not checked (its gradient is the wrong one)
    assert gradcheck(WrongSecondInput.apply, (a, T(b.numpy(), requires_grad=False)))


def test_gradcheck_forward_mode_mismatch() -> None:
    x = T([0.3, 1.2, -0.7])
    assert gradcheck(WrongJvp.apply, (x,))  # reverse mode is right
    with pytest.raises(GradcheckError, match="forward mode") as info:
        gradcheck(WrongJvp.apply, (x,), check_forward_ad=True)
    err = info.value
    assert "forward-mode JVP" in str(err) and "reverse mode" in str(err)
    assert err.analytic == pytest.approx(-err.numeric)


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable() -> None:
    x = T([0.5, 1.5])
    assert gradcheck(ConstantDerivative.apply, (x,))
    with pytest.raises(GradcheckError, match="gradgradcheck") as info:
        gradgradcheck(ConstantDerivative.apply, (x,))
    err = info.value
    assert err.input_index == 0  # d(grad)/dx is wrong, d(grad)/d(grad_output) is right
    assert err.analytic == 0.0
    assert err.numeric == pytest.approx(6 * x.numpy()[err.element] * _go(x)[err.element],
                                        rel=1e-5)


def _go(x: tt.Tensor) -> np.ndarray:
    """The grad_outputs gradgradcheck draws by default (seed 0) for one output."""
    return np.random.default_rng(0).uniform(-1.0, 1.0, size=x.shape)


# ----------------------------------------------------------------- passes on correct ops


def test_gradcheck_passes_on_composites_with_several_inputs_and_outputs() -> None:
    w, b = T(np.random.default_rng(0).normal(size=(3, 2))), T([0.1, -0.2])
    x = T(np.random.default_rng(1).normal(size=(4, 3)))

    def net(x: tt.Tensor, w: tt.Tensor, b: tt.Tensor) -> tuple[tt.Tensor, tt.Tensor, tt.Tensor]:
        h = tt.tanh(x @ w + b)
        return h, tt.log_softmax(h, dim=1).sum(), tt.argmax(h)  # the int output is skipped

    assert gradcheck(net, (x, w, b), check_forward_ad=True)
    assert gradgradcheck(lambda x, w, b: net(x, w, b)[:2], (x, w, b), check_forward_ad=True)
    assert gradcheck(HalfSquare.apply, (x,), atol=10.0, rtol=0)  # tolerances are honoured


def test_gradcheck_argument_checks() -> None:
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(tt.exp, (T([1.0], requires_grad=False),))
    x32 = tt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(UserWarning, match="float32"):
        gradcheck(lambda x: x * 2, x32, eps=1e-2)
    assert gradcheck(tt.exp, T([0.5]))  # a bare tensor is fine
    assert gradcheck(lambda x, k: x * k, (T([1.0, 2.0]), 3.0))  # non-tensor arguments


def test_gradcheck_leaves_inputs_unchanged() -> None:
    x = T([0.1, 0.2, 0.3])
    before = x.numpy().copy()
    gradcheck(tt.sin, (x,))
    assert np.array_equal(x.numpy(), before) and x.grad is None


# ----------------------------------------------------------------- every op of the table



def _twice(spec: OpSpec) -> bool:
    return spec.twice and not ({"forward", "grad", "hvp"} & set(spec.xfail))


@pytest.mark.parametrize("spec", [pytest.param(s, id=f"{s.name}-{case_id(s.shapes[0])}")
                                  for s in TABLE if _twice(s)])
def test_gradgradcheck_every_twice_differentiable_op(spec: OpSpec) -> None:
    case = spec.shapes[0]
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()))
    xs = [T(d.sample(rng, s)) for d, s in zip(spec.domains(), case)]
    assert gradgradcheck(spec.fn, xs, atol=1e-5, rtol=1e-4)
    # forward mode here pushes tangents through each op and the ops of its backward rule:
    # the JVP rules of the whole table, forward over reverse
    with no_jvp_yet():
        assert gradgradcheck(spec.fn, xs, check_forward_ad=True, atol=1e-5, rtol=1e-4)
