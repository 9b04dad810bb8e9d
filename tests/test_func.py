"""``tinytorch.func``: Jacobians and Hessians against closed forms, nesting, VJP/JVP/HVP.

Closed forms: linear maps (J = A), quadratic forms (grad = (Q + Q^T) x, H = Q + Q^T),
Rosenbrock (gradient and Hessian written out), softmax (J = diag(s) - s s^T) and
log-softmax (J = I - 1 s^T). Every Jacobian is computed by ``jacrev``, ``jacfwd`` and
``jacobian``; every Hessian by ``hessian`` (forward over reverse), ``jacrev(jacrev)``
and ``jacrev(jacfwd)``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinytorch as tt
from tinytorch import func
from tinytorch.autograd import forward_ad as fwad

RNG = np.random.default_rng(1234)
TOL = {"rtol": 1e-10, "atol": 1e-12}


def T(a: Any, **kw: Any) -> tt.Tensor:
    return tt.tensor(np.asarray(a, dtype=np.float64), **kw)


JACOBIANS: list[Callable[..., Any]] = [func.jacrev, func.jacfwd, func.jacobian]
HESSIANS: list[Callable[..., Any]] = [
    func.hessian,
    lambda f: func.jacrev(func.jacrev(f)),
    lambda f: func.jacrev(func.jacfwd(f)),
    lambda f: func.jacfwd(func.jacrev(f)),
]
HESSIAN_IDS = ["hessian", "jacrev(jacrev)", "jacrev(jacfwd)", "jacfwd(jacrev)"]


def rosenbrock(x: tt.Tensor) -> tt.Tensor:
    return ((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def rosenbrock_grad(x: np.ndarray) -> np.ndarray:
    g = np.zeros_like(x)
    g[:-1] += -2 * (1 - x[:-1]) - 400 * x[:-1] * (x[1:] - x[:-1] ** 2)
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


def rosenbrock_hessian(x: np.ndarray) -> np.ndarray:
    n = len(x)
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 2 - 400 * (x[i + 1] - x[i] ** 2) + 800 * x[i] ** 2
        h[i + 1, i + 1] += 200
        h[i, i + 1] += -400 * x[i]
        h[i + 1, i] += -400 * x[i]
    return h


# ----------------------------------------------------------------- Jacobians


@pytest.mark.parametrize("jac", JACOBIANS, ids=["jacrev", "jacfwd", "jacobian"])
def test_jacobian_of_linear_map(jac: Callable[..., Any]) -> None:
    a, b = RNG.normal(size=(4, 3)), RNG.normal(size=4)
    x = T(RNG.normal(size=3))
    j = jac(lambda x: T(a) @ x + T(b))(x)
    assert j.shape == (4, 3) and j.dtype == np.float64 and not j.requires_grad
    np.testing.assert_allclose(j.numpy(), a, **TOL)


@pytest.mark.parametrize("jac", JACOBIANS, ids=["jacrev", "jacfwd", "jacobian"])
def test_jacobian_of_batched_linear_map_has_output_then_input_axes(
        jac: Callable[..., Any]) -> None:
    a = RNG.normal(size=(3, 4))
    x = T(RNG.normal(size=(2, 3)))
    j = jac(lambda x: x @ T(a))(x)  # out (2, 4), in (2, 3)
    expected = np.einsum("ik,lj->ijkl", np.eye(2), a)
    assert j.shape == (2, 4, 2, 3)
    np.testing.assert_allclose(j.numpy(), expected, **TOL)


@pytest.mark.parametrize("jac", JACOBIANS, ids=["jacrev", "jacfwd", "jacobian"])
def test_jacobian_of_softmax(jac: Callable[..., Any]) -> None:
    x = RNG.normal(size=5)
    s = np.exp(x - x.max())
    s /= s.sum()
    np.testing.assert_allclose(jac(tt.softmax)(T(x)).numpy(), np.diag(s) - np.outer(s, s),
                               **TOL)
    np.testing.assert_allclose(jac(tt.log_softmax)(T(x)).numpy(),
                               np.eye(5) - np.outer(np.ones(5), s), **TOL)


@pytest.mark.parametrize("jac", JACOBIANS, ids=["jacrev", "jacfwd", "jacobian"])
def test_jacobian_argnums_and_multiple_outputs(jac: Callable[..., Any]) -> None:
    x, y = T([1.0, 2.0]), T([3.0, 4.0, 5.0])

    def f(x: tt.Tensor, y: tt.Tensor) -> tuple[tt.Tensor, tt.Tensor]:
        return x.sum() * y, (x * x).sum()

    (jx, jy), (kx, ky) = jac(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(jx.numpy(), np.outer(y.numpy(), np.ones(2)), **TOL)
    np.testing.assert_allclose(jy.numpy(), 3.0 * np.eye(3), **TOL)
    np.testing.assert_allclose(kx.numpy(), 2 * x.numpy(), **TOL)
    np.testing.assert_allclose(ky.numpy(), np.zeros(3), **TOL)  # unused: zeros, not None
    j_second = jac(f, argnums=-1)(x, y)
    np.testing.assert_allclose(j_second[0].numpy(), jy.numpy(), **TOL)


def test_jacobian_of_scalar_function_of_scalar() -> None:
    x = T(0.7)
    for jac in JACOBIANS:
        j = jac(lambda x: tt.sin(x) * x)(x)
        assert j.shape == ()
        np.testing.assert_allclose(j.numpy(), np.cos(0.7) * 0.7 + np.sin(0.7), **TOL)


# ----------------------------------------------------------------- Hessians


@pytest.mark.parametrize("hess", HESSIANS, ids=HESSIAN_IDS)
def test_hessian_of_quadratic_form(hess: Callable[..., Any]) -> None:
    q = RNG.normal(size=(4, 4))
    x = RNG.normal(size=4)

    def f(x: tt.Tensor) -> tt.Tensor:
        return x @ (T(q) @ x)

    np.testing.assert_allclose(func.grad(f)(T(x)).numpy(), (q + q.T) @ x, **TOL)
    h = hess(f)(T(x))
    assert h.shape == (4, 4) and not h.requires_grad
    np.testing.assert_allclose(h.numpy(), q + q.T, **TOL)


@pytest.mark.parametrize("hess", HESSIANS, ids=HESSIAN_IDS)
def test_rosenbrock_gradient_and_hessian(hess: Callable[..., Any]) -> None:
    x = np.array([-1.2, 1.0, 0.3, 2.0])
    np.testing.assert_allclose(func.grad(rosenbrock)(T(x)).numpy(), rosenbrock_grad(x),
                               **TOL)
    np.testing.assert_allclose(hess(rosenbrock)(T(x)).numpy(), rosenbrock_hessian(x),
                               rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("hess", HESSIANS, ids=HESSIAN_IDS)
def test_hessian_of_log_sum_exp(hess: Callable[..., Any]) -> None:
    """H of logsumexp is the softmax Jacobian: diag(s) - s s^T."""
    x = RNG.normal(size=4)
    s = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(hess(tt.logsumexp)(T(x)).numpy(), np.diag(s) - np.outer(s, s),
                               **TOL)


def test_hessian_of_a_composite_agrees_across_modes_and_with_torch() -> None:
    w = RNG.normal(size=(3, 3))

    def f(x: tt.Tensor) -> tt.Tensor:
        h = tt.tanh(x @ T(w)) * tt.sigmoid(x)
        return tt.logsumexp(h * 3.0) + (tt.gelu(x) ** 2).mean() + tt.softplus(x).max()

    x = RNG.normal(size=3)
    hs = [hess(f)(T(x)).numpy() for hess in HESSIANS]
    for h in hs[1:]:
        np.testing.assert_allclose(h, hs[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hs[0], hs[0].T, rtol=1e-10, atol=1e-12)
    torch = pytest.importorskip("torch")

    def tf(x: Any) -> Any:
        h = torch.tanh(x @ torch.as_tensor(w)) * torch.sigmoid(x)
        gelu = torch.nn.functional.gelu(x)
        return (torch.logsumexp(h * 3.0, 0) + (gelu**2).mean()
                + torch.nn.functional.softplus(x).max())

    expected = torch.func.hessian(tf)(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(hs[0], expected, rtol=1e-9, atol=1e-11)


def test_hessian_with_respect_to_two_arguments() -> None:
    def f(x: tt.Tensor, y: tt.Tensor) -> tt.Tensor:
        return (x * x).sum() * y.sum() + (x[0] * y[1])

    x, y = T([1.0, 2.0]), T([0.5, -1.0])
    ((hxx, hxy), (hyx, hyy)) = func.hessian(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(hxx.numpy(), 2 * y.numpy().sum() * np.eye(2), **TOL)
    np.testing.assert_allclose(hxy.numpy(), np.outer(2 * x.numpy(), [1, 1]) + [[0, 1], [0, 0]],
                               **TOL)
    np.testing.assert_allclose(hyx.numpy(), hxy.numpy().T, **TOL)
    np.testing.assert_allclose(hyy.numpy(), np.zeros((2, 2)), **TOL)


# ----------------------------------------------------------------- grad and nesting


def test_grad_of_grad_of_grad() -> None:
    """f = x^3 sin x: f' = 3x^2 sin x + x^3 cos x, f'' and f''' by hand."""
    def f(x: tt.Tensor) -> tt.Tensor:
        return x**3 * tt.sin(x)

    x = 0.8
    s, c = np.sin(x), np.cos(x)
    d1 = 3 * x**2 * s + x**3 * c
    d2 = 6 * x * s + 6 * x**2 * c - x**3 * s
    d3 = 6 * s + 18 * x * c - 9 * x**2 * s - x**3 * c
    np.testing.assert_allclose(func.grad(f)(T(x)).numpy(), d1, **TOL)
    np.testing.assert_allclose(func.grad(func.grad(f))(T(x)).numpy(), d2, **TOL)
    np.testing.assert_allclose(func.grad(func.grad(func.grad(f)))(T(x)).numpy(), d3, **TOL)


def test_grad_of_sum_of_grad_is_hessian_row_sum() -> None:
    x = np.array([0.3, -0.5, 1.1])
    g2 = func.grad(lambda x: func.grad(rosenbrock)(x).sum())(T(x))
    np.testing.assert_allclose(g2.numpy(), rosenbrock_hessian(x).sum(0), **TOL)


def test_value_and_grad_has_aux_and_argnums() -> None:
    x, y = T([1.0, 2.0]), T([3.0, -1.0])

    def f(x: tt.Tensor, y: tt.Tensor) -> tuple[tt.Tensor, dict[str, Any]]:
        z = x * y
        return z.sum(), {"z": z, "n": 2}

    (value, aux), (gx, gy) = func.value_and_grad(f, argnums=(0, 1), has_aux=True)(x, y)
    assert value.item() == 1.0 and not value.requires_grad
    assert aux["n"] == 2 and not aux["z"].requires_grad
    np.testing.assert_allclose(aux["z"].numpy(), [3.0, -2.0])
    np.testing.assert_allclose(gx.numpy(), y.numpy())
    np.testing.assert_allclose(gy.numpy(), x.numpy())
    g, aux2 = func.grad(f, has_aux=True)(x, y)
    np.testing.assert_allclose(g.numpy(), y.numpy())
    assert aux2["n"] == 2


def test_grad_of_unused_argument_is_zero_and_kwargs_pass_through() -> None:
    g = func.grad(lambda x, y, scale=1.0: (y * scale).sum(), argnums=0)(
        T([1.0, 2.0]), T([1.0]), scale=3.0)
    np.testing.assert_allclose(g.numpy(), [0.0, 0.0])


def test_grad_leaves_inputs_alone_and_works_under_no_grad() -> None:
    x = T([1.0, 2.0])
    with tt.no_grad():
        g = func.grad(lambda x: (x * x).sum())(x)
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0])
    assert x.grad is None and not x.requires_grad and x.grad_fn is None


def test_grad_through_a_parameter_keeps_the_graph() -> None:
    """A meta-parameter closed over by the function: the gradient stays differentiable
    with respect to it (what MAML needs)."""
    w = T([0.5, -1.0], requires_grad=True)

    def loss(x: tt.Tensor) -> tt.Tensor:
        return ((x * w) ** 2).sum()

    x = T([1.0, 2.0])
    g = func.grad(loss)(x)  # 2 x w^2
    assert g.requires_grad
    (dw,) = tt.autograd.grad(g.sum(), w)  # 4 x w
    np.testing.assert_allclose(dw.numpy(), 4 * x.numpy() * w.numpy(), **TOL)


def test_grad_errors() -> None:
    with pytest.raises(TypeError, match="one-element"):
        func.grad(lambda x: x * 2)(T([1.0, 2.0]))
    with pytest.raises(TypeError, match="must be a Tensor"):
        func.grad(lambda x: x)(1.0)
    with pytest.raises(TypeError, match="floating-point"):
        func.grad(lambda x: x.sum())(tt.tensor([1, 2], dtype="int64"))
    with pytest.raises(ValueError, match="out of range"):
        func.grad(lambda x: x.sum(), argnums=2)(T([1.0]))
    with pytest.raises(TypeError, match="has_aux"):
        func.grad(lambda x: x.sum(), has_aux=True)(T([1.0]))


# ----------------------------------------------------------------- vjp / jvp / hvp


def test_vjp_matches_transposed_jacobian_and_can_be_called_twice() -> None:
    a = RNG.normal(size=(3, 2))

    def f(x: tt.Tensor, y: tt.Tensor) -> tt.Tensor:
        return tt.tanh(T(a) @ x) * y

    x, y = T(RNG.normal(size=2)), T(RNG.normal(size=3))
    out, vjp_fn = func.vjp(f, x, y)
    assert not out.requires_grad
    np.testing.assert_allclose(out.numpy(), np.tanh(a @ x.numpy()) * y.numpy(), **TOL)
    jx, jy = func.jacrev(f, argnums=(0, 1))(x, y)
    for _ in range(2):
        u = RNG.normal(size=3)
        gx, gy = vjp_fn(T(u))
        np.testing.assert_allclose(gx.numpy(), jx.numpy().T @ u, **TOL)
        np.testing.assert_allclose(gy.numpy(), jy.numpy().T @ u, **TOL)
    with pytest.raises(ValueError, match="shape"):
        vjp_fn(T([1.0]))


def test_vjp_with_several_outputs() -> None:
    out, vjp_fn = func.vjp(lambda x: (x * 2, x.sum()), T([1.0, 2.0]))
    assert isinstance(out, tuple) and len(out) == 2
    (g,) = vjp_fn(T([1.0, -1.0]), T(3.0))
    np.testing.assert_allclose(g.numpy(), [5.0, 1.0])


def test_jvp_matches_jacobian_vector_product() -> None:
    a = RNG.normal(size=(4, 3))

    def f(x: tt.Tensor, y: tt.Tensor) -> tt.Tensor:
        return tt.exp(T(a) @ x) * y.sum()

    x, y, vx, vy = (T(RNG.normal(size=s)) for s in (3, 2, 3, 2))
    out, jv = func.jvp(f, (x, y), (vx, vy))
    jx, jy = func.jacrev(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(out.numpy(), f(x, y).numpy(), **TOL)
    np.testing.assert_allclose(jv.numpy(), jx.numpy() @ vx.numpy() + jy.numpy() @ vy.numpy(),
                               **TOL)
    # one primal as a bare Tensor; tuple outputs give tuples
    (o1, o2), (t1, t2) = func.jvp(lambda x: (x * 3, x.sum()), T([1.0, 2.0]), T([1.0, 1.0]))
    np.testing.assert_allclose(t1.numpy(), [3.0, 3.0])
    np.testing.assert_allclose(t2.numpy(), 2.0)
    # an output that does not depend on the input has a zero tangent
    _, t0 = func.jvp(lambda x: T([1.0, 2.0]), T([1.0]), T([1.0]))
    np.testing.assert_allclose(t0.numpy(), [0.0, 0.0])


def test_jvp_errors_and_single_forward_level() -> None:
    with pytest.raises(ValueError, match="shape"):
        func.jvp(lambda x: x, T([1.0, 2.0]), T([1.0]))
    with pytest.raises(ValueError, match="tangents"):
        func.jvp(lambda x, y: x, (T([1.0]), T([1.0])), (T([1.0]),))
    with pytest.raises(NotImplementedError, match="nested forward mode"):
        func.jacfwd(func.jacfwd(lambda x: (x**3).sum()))(T([1.0, 2.0]))


def test_hvp_equals_hessian_times_vector() -> None:
    x = np.array([-1.2, 1.0, 0.5])
    v = np.array([0.3, -2.0, 1.0])
    value, hv = func.hvp(rosenbrock, T(x), T(v))
    np.testing.assert_allclose(value.numpy(), rosenbrock(T(x)).numpy(), **TOL)
    np.testing.assert_allclose(hv.numpy(), rosenbrock_hessian(x) @ v, **TOL)
    assert not hv.requires_grad and fwad.unpack_dual(hv).tangent is None

    def f(x: tt.Tensor, y: tt.Tensor) -> tt.Tensor:
        return (x * x * y).sum()

    _, (hx, hy) = func.hvp(f, (T([1.0, 2.0]), T([3.0, 4.0])), (T([1.0, 0.0]), T([0.0, 1.0])))
    # H = [[2y, 2x], [2x, 0]] (diagonal blocks): H v
    np.testing.assert_allclose(hx.numpy(), [6.0, 4.0])
    np.testing.assert_allclose(hy.numpy(), [2.0, 0.0])


def test_transform_results_are_plain_tensors_at_top_level() -> None:
    x = T([0.5, 1.5])
    f = rosenbrock
    for r in (func.grad(f)(x), func.hessian(f)(x), func.jacfwd(tt.exp)(x),
              func.jacrev(tt.exp)(x), func.jvp(tt.exp, x, x)[1]):
        assert not r.requires_grad and r.grad_fn is None


def test_reverse_over_forward_jacobian() -> None:
    """jacrev of a function that itself runs a JVP (reverse over forward)."""
    v = T([1.0, -1.0])

    def directional(x: tt.Tensor) -> tt.Tensor:
        return func.jvp(rosenbrock, x, v)[1]

    x = np.array([0.4, 0.9])
    g = func.grad(directional)(T(x))
    np.testing.assert_allclose(g.numpy(), rosenbrock_hessian(x) @ v.numpy(), **TOL)


# ----------------------------------------------------------------- the examples

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_newton_rosenbrock_converges_to_one_one() -> None:
    x = _load("newton_rosenbrock").main()
    np.testing.assert_allclose(x, [1.0, 1.0], atol=1e-10)


def test_example_maml_meta_gradient_matches_finite_differences() -> None:
    res = _load("maml").main(meta_steps=10)
    assert res["fd_error"] < 1e-7 * max(res["fd_scale"], 1.0)
    assert res["second_order"] > 1e-3  # the gradient through the SGD step matters
    assert res["meta_loss_end"] < res["meta_loss_start"]
