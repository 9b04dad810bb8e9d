"""Check analytic gradients against finite differences (``gradcheck``) and second
derivatives likewise (``gradgradcheck``), as ``torch.autograd.gradcheck`` does.

The whole Jacobian of every output with respect to every input that requires grad is
built twice: column by column from float64 central differences, and row by row from
the backward engine (``autograd.grad``). On a mismatch the error names the input, the
element (index tuple), and both values. ``check_forward_ad=True`` also builds the
columns with forward mode (one JVP per input element) and compares them with reverse
mode's.

>>> import tinytorch as tt
>>> from tinytorch.autograd import gradcheck
>>> x = tt.tensor([0.5, -1.0, 2.0], dtype=tt.float64, requires_grad=True)
>>> gradcheck(lambda x: tt.tanh(x) * x, (x,), check_forward_ad=True)
True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinytorch.autograd import forward_ad
from tinytorch.autograd.engine import grad as _grad
from tinytorch.autograd.grad_mode import enable_grad, no_grad
from tinytorch.tensor import Tensor

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]


class GradcheckError(RuntimeError):
    """A gradient did not match. Attributes say where: ``input_index``, ``element``
    (index tuple into that input), ``output_index``, ``output_element``, and the two
    values (``analytic``, ``numeric``; for forward mode, the JVP's and the reverse
    mode's)."""

    def __init__(self, message: str, *, input_index: int, element: tuple[int, ...],
                 output_index: int, output_element: tuple[int, ...], analytic: float,
                 numeric: float) -> None:
        super().__init__(message)
        self.input_index = input_index
        self.element = element
        self.output_index = output_index
        self.output_element = output_element
        self.analytic = analytic
        self.numeric = numeric


def _as_tuple(x: Any) -> tuple[Any, ...]:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _float_outputs(res: Any) -> list[Tensor | None]:
    """The function's outputs; non-float ones (indices, masks) are not checked (None)."""
    outs = _as_tuple(res)
    for k, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: output {k} is a {type(o).__name__}, expected Tensors")
    return [o if o.dtype.kind == "f" else None for o in outs]


def _evaluate(fn: Callable[..., Any], inputs: tuple[Any, ...]) -> list[np.ndarray | None]:
    with no_grad():
        outs = _float_outputs(fn(*inputs))
    return [None if o is None else np.array(o.data, dtype=np.float64) for o in outs]


def _reverse_jacobians(outs: list[Tensor | None], inputs: tuple[Any, ...],
                       diff: list[int]) -> list[list[np.ndarray | None]]:
    """``J[k][i]``: d(output k)/d(input i) as a (output size, input size) matrix."""
    jac: list[list[np.ndarray | None]] = []
    for o in outs:
        if o is None:
            jac.append([None] * len(diff))
            continue
        mats = [np.zeros((o.data.size, inputs[i].data.size)) for i in diff]
        if o.requires_grad:
            for j in range(o.data.size):
                seed = np.zeros(o.data.size, dtype=o.dtype)
                seed[j] = 1
                gs = _grad(o, [inputs[i] for i in diff], Tensor(seed.reshape(o.shape)),
                           retain_graph=True, allow_unused=True)
                for m, g in zip(mats, gs):
                    if g is not None:
                        m[j] = g.data.reshape(-1)
        jac.append(list(mats))
    return jac


def _numeric_jacobians(fn: Callable[..., Any], inputs: tuple[Any, ...], diff: list[int],
                       eps: float) -> list[list[np.ndarray | None]]:
    base = _evaluate(fn, inputs)
    jac: list[list[np.ndarray | None]] = [
        [None if b is None else np.zeros((b.size, inputs[i].data.size)) for i in diff]
        for b in base]
    for col, i in enumerate(diff):
        x = inputs[i].data
        if not x.flags.writeable:
            raise ValueError(f"gradcheck: input {i} is a read-only view; pass a copy")
        for n, idx in enumerate(np.ndindex(x.shape)):
            old = x[idx].copy()
            try:
                x[idx] = old + eps
                plus = _evaluate(fn, inputs)
                x[idx] = old - eps
                minus = _evaluate(fn, inputs)
            finally:
                x[idx] = old
            for k, (p, m) in enumerate(zip(plus, minus)):
                if p is not None and m is not None:
                    jac[k][col][:, n] = ((p - m) / (2 * eps)).reshape(-1)  # type: ignore[index]
    return jac


def _forward_jacobians(fn: Callable[..., Any], inputs: tuple[Any, ...], diff: list[int],
                       n_outs: int) -> list[list[np.ndarray | None]]:
    jac: list[list[np.ndarray | None]] = [[None] * len(diff) for _ in range(n_outs)]
    for col, i in enumerate(diff):
        x = inputs[i]
        for n in range(x.data.size):
            e = np.zeros(x.data.size, dtype=x.dtype)
            e[n] = 1
            with forward_ad.dual_level():
                call = list(inputs)
                call[i] = forward_ad.make_dual(x, Tensor(e.reshape(x.shape)))
                outs = _float_outputs(fn(*call))
                tangents = [None if o is None else forward_ad.unpack_dual(o).tangent
                            for o in outs]
            for k, (o, t) in enumerate(zip(outs, tangents)):
                if o is None:
                    continue
                if jac[k][col] is None:
                    jac[k][col] = np.zeros((o.data.size, x.data.size))
                if t is not None:
                    jac[k][col][:, n] = t.data.reshape(-1)  # type: ignore[index]
    return jac


def _compare(what: str, got: list[list[np.ndarray | None]],
             want: list[list[np.ndarray | None]], inputs: tuple[Any, ...], diff: list[int],
             out_shapes: Sequence[tuple[int, ...]], atol: float, rtol: float,
             names: Sequence[str], out_names: Sequence[str],
             labels: tuple[str, str]) -> GradcheckError | None:
    """The worst mismatch of ``got`` against ``want`` as an error, or None."""
    for k, (row_g, row_w) in enumerate(zip(got, want)):
        for col, (a, b) in enumerate(zip(row_g, row_w)):
            if a is None or b is None:
                continue
            bad = ~(np.abs(a - b) <= atol + rtol * np.abs(b))  # NaN counts as bad
            if not bad.any():
                continue
            excess = np.where(bad, np.nan_to_num(np.abs(a - b) - rtol * np.abs(b), nan=np.inf),
                              -np.inf)
            j, n = (int(v) for v in np.unravel_index(int(np.argmax(excess)), a.shape))
            i = diff[col]
            element = _index(n, inputs[i].shape)
            out_element = _index(j, out_shapes[k])
            la, lb = labels
            av, bv = float(a[j, n]), float(b[j, n])
            return GradcheckError(
                f"{what}: {names[i]} (shape {inputs[i].shape}), element {element}: "
                f"d {out_names[k]}{list(out_element)} / d {names[i]}{list(element)} is "
                f"{av!r} ({la}) but {bv!r} ({lb}); |difference| {abs(av - bv):.3g} > "
                f"atol {atol:g} + rtol {rtol:g} * |{lb}|. {int(bad.sum())} of {bad.size} "
                f"entries of this Jacobian differ.",
                input_index=i, element=element, output_index=k, output_element=out_element,
                analytic=av, numeric=bv)
    return None


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(v) for v in np.unravel_index(flat, shape)) if shape else ()


def _check(fn: Callable[..., Any], inputs: tuple[Any, ...], eps: float, atol: float,
           rtol: float, check_forward_ad: bool, raise_exception: bool, what: str,
           names: Sequence[str], out_names: Callable[[int], Sequence[str]]) -> bool:
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError(f"{what}: no input requires grad; mark the inputs to check with "
                         f"requires_grad=True")
    for i in diff:
        if inputs[i].dtype != np.float64:
            warnings.warn(f"{what}: {names[i]} is {inputs[i].dtype}, not float64; finite "
                          f"differences will be inaccurate", stacklevel=3)
    with enable_grad():
        outs = _float_outputs(fn(*inputs))
        reverse = _reverse_jacobians(outs, inputs, diff)
    numeric = _numeric_jacobians(fn, inputs, diff, eps)
    onames = out_names(len(outs))
    shapes = [() if o is None else o.shape for o in outs]
    err = _compare(what, reverse, numeric, inputs, diff, shapes, atol, rtol, names, onames,
                   ("analytic", "numeric"))
    if err is None and check_forward_ad:
        forward = _forward_jacobians(fn, inputs, diff, len(outs))
        err = _compare(f"{what} (forward mode)", forward, reverse, inputs, diff, shapes, atol,
                       rtol, names, onames, ("forward-mode JVP", "reverse mode"))
    if err is None:
        return True
    if raise_exception:
        raise err
    return False


def gradcheck(fn: Callable[..., Any], inputs: Any, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, check_forward_ad: bool = False,
              raise_exception: bool = True) -> bool:
    """Compare the gradients of ``fn(*inputs)`` with float64 central differences.

    Every float output is differentiated with respect to every input that requires
    grad. An entry passes when ``|analytic - numeric| <= atol + rtol * |numeric|``. On
    failure raises ``GradcheckError`` naming the input, the element, and both values
    (or returns False with ``raise_exception=False``). With ``check_forward_ad=True``
    forward-mode JVPs must match reverse mode too.

    >>> import tinytorch as tt
    >>> from tinytorch.autograd import gradcheck
    >>> a = tt.tensor([[1.0, 2.0]], dtype=tt.float64, requires_grad=True)
    >>> b = tt.tensor([[3.0], [4.0]], dtype=tt.float64, requires_grad=True)
    >>> gradcheck(tt.matmul, (a, b))
    True
    """
    inputs = _as_tuple(inputs)
    names = [f"input {i}" for i in range(len(inputs))]
    return _check(fn, inputs, eps, atol, rtol, check_forward_ad, raise_exception, "gradcheck",
                  names, lambda n: [f"output {k}" for k in range(n)])


def gradgradcheck(fn: Callable[..., Any], inputs: Any, grad_outputs: Any = None,
                  eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  check_forward_ad: bool = False, raise_exception: bool = True,
                  seed: int = 0) -> bool:
    """``gradcheck`` of the gradient: checks second derivatives of ``fn``.

    The checked function maps ``(*inputs, *grad_outputs)`` to the vector-Jacobian
    products ``autograd.grad(fn(*inputs), inputs, grad_outputs, create_graph=True)``,
    so both the Hessian-vector products and the (linear) dependence on the output
    gradient are checked. ``grad_outputs`` default to random float64 tensors (from
    ``seed``) that require grad.

    >>> import tinytorch as tt
    >>> from tinytorch.autograd import gradgradcheck
    >>> x = tt.tensor([0.3, 1.2], dtype=tt.float64, requires_grad=True)
    >>> gradgradcheck(lambda x: tt.sin(x) * x, (x,))
    True
    """
    inputs = _as_tuple(inputs)
    with enable_grad():
        outs = _float_outputs(fn(*inputs))
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        gos: tuple[Any, ...] = tuple(
            None if o is None else Tensor(rng.uniform(-1.0, 1.0, size=o.shape),
                                          requires_grad=True, dtype=np.float64)
            for o in outs)
    else:
        gos = _as_tuple(grad_outputs)
        if len(gos) != len(outs):
            raise ValueError(f"gradgradcheck: {len(outs)} outputs but {len(gos)} grad_outputs")
    n = len(inputs)

    def vjps(*args: Any) -> tuple[Tensor, ...]:
        ins, rest = args[:n], iter(args[n:])
        wrt = [ins[i] for i in diff]
        gs = [None if g is None else next(rest) for g in gos]
        with enable_grad():  # also while gradcheck evaluates it for finite differences
            res = _float_outputs(fn(*ins))
            pairs = [(o, g) for o, g in zip(res, gs) if o is not None and o.requires_grad]
            got = _grad([o for o, _ in pairs], wrt, [g for _, g in pairs], create_graph=True,
                        allow_unused=True) if pairs else (None,) * len(wrt)
        return tuple(Tensor(np.zeros(w.shape, dtype=w.dtype)) if g is None else g
                     for w, g in zip(wrt, got))

    args = (*inputs, *[g for g in gos if g is not None])
    live = [k for k, g in enumerate(gos) if g is not None]
    names = [f"input {i}" for i in range(n)] + [f"grad_output {k}" for k in live]
    return _check(vjps, args, eps, atol, rtol, check_forward_ad, raise_exception,
                  "gradgradcheck", names, lambda m: [f"grad of input {i}" for i in diff])
