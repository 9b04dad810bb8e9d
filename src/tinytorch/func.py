"""Composable function transforms: gradients, Jacobians, Hessians, JVPs and VJPs.

Each transform takes a function of Tensors and returns a new function of Tensors, as
``torch.func`` and JAX do. Reverse mode (``grad``, ``vjp``, ``jacrev``) runs the
backward engine; forward mode (``jvp``, ``jacfwd``) pushes tangents through each op's
JVP rule (``tinytorch.autograd.forward_ad``). Transforms nest: ``grad(grad(f))``,
``jacfwd(jacrev(f))`` (that is ``hessian``), ``jacrev(jacfwd(f))``.

>>> import tinytorch as tt
>>> from tinytorch import func
>>> f = lambda x: (x ** 3).sum()
>>> x = tt.tensor([1.0, 2.0])
>>> func.grad(f)(x)
tensor([ 3., 12.])
>>> func.grad(lambda x: func.grad(f)(x).sum())(x)  # d/dx of 3 x**2
tensor([ 6., 12.])
>>> func.hessian(f)(x)
tensor([[ 6.,  0.],
        [ 0., 12.]])

A transform differentiates with respect to the arguments it is given (``argnums``);
tensors a function closes over are constants to it, unless an enclosing transform or
the caller differentiates with respect to them: then the results keep their graph
(``create_graph``), which is how nesting and meta-gradients work.

Only one forward-mode level is active at a time: ``jvp``/``jacfwd`` inside another
``jvp``/``jacfwd`` raise. Any nesting of forward inside or around reverse works.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinytorch.autograd import forward_ad
from tinytorch.autograd.engine import grad as _autograd_grad
from tinytorch.autograd.grad_mode import enable_grad
from tinytorch.ops.movement import stack
from tinytorch.tensor import Tensor

__all__ = ["grad", "hessian", "hvp", "jacfwd", "jacobian", "jacrev", "jvp", "value_and_grad",
           "vjp"]

Argnums = int | tuple[int, ...]

# ----------------------------------------------------------------- helpers


def _argnums(op: str, argnums: Argnums, nargs: int) -> tuple[tuple[int, ...], bool]:
    """Normalise ``argnums`` to a tuple; the flag says whether one int was given."""
    nums: tuple[int, ...]
    if isinstance(argnums, (int, np.integer)):
        nums, single = (int(argnums),), True
    else:
        nums, single = tuple(int(a) for a in argnums), False
    if not nums:
        raise ValueError(f"{op}: argnums must name at least one argument")
    for a in nums:
        if not -nargs <= a < nargs:
            raise ValueError(f"{op}: argnums {argnums!r} is out of range for {nargs} "
                             f"positional arguments")
    return tuple(a % nargs for a in nums), single


def _check_input(op: str, x: Any, where: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {where} must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: {where} must be a floating-point Tensor, got dtype {x.dtype}")
    return x


def _prepared_args(op: str, args: tuple[Any, ...], nums: Any) -> list[Any]:
    """``args`` with the differentiated ones checked and made fresh graph leaves."""
    call = list(args)
    for i in nums:
        call[i] = _prepare(_check_input(op, args[i], f"argument {i}"))
    return call


def _prepare(x: Tensor) -> Tensor:
    """A leaf-like handle on ``x`` to differentiate against.

    When an enclosing transform already tracks ``x`` (it requires grad or carries a
    tangent), the handle is a view of it, so that transform still sees through;
    otherwise it is a fresh detached leaf.
    """
    if x.requires_grad or forward_ad.tangent_of(x) is not None:
        xi = x.view(x.shape)
        if not xi.requires_grad:  # only a tangent was pushed through the view
            xi.requires_grad_(True)
        return xi
    return x.detach().requires_grad_(True)


def _keeps_graph(outs: Sequence[Tensor], args: Sequence[Any],
                 inside: Sequence[Tensor]) -> bool:
    """Whether results must keep their graph: something outside this transform (an
    argument, a closed-over tensor) that requires grad can be differentiated through them.
    ``inside`` are the transform's own leaves."""
    if any(isinstance(a, Tensor) and a.requires_grad for a in args):
        return True
    own = {id(t) for t in inside}
    seen: set[int] = set()
    todo = [o.grad_fn for o in outs if o.grad_fn is not None]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for e in node._edges:
            if e is None:
                continue
            if isinstance(e, Tensor):
                if id(e) not in own:
                    return True
            elif id(e) not in seen:
                todo.append(e)
    return False


def _has_tangent(*groups: Sequence[Any]) -> bool:
    """Whether forward mode is pushing a tangent through any of these values."""
    return any(forward_ad.tangent_of(x) is not None for g in groups for x in g)


def _release(t: Tensor, keep: bool) -> Tensor:
    """``t`` cut off from this transform's graph unless ``keep``; a tangent it carries
    for an enclosing forward-mode transform stays (as a constant)."""
    if keep:
        return t
    tangent = forward_ad.tangent_of(t)
    if tangent is None:
        return t.detach() if t.requires_grad else t
    return forward_ad.make_dual(t.detach(), tangent.detach())


def _release_tree(x: Any, keep: bool) -> Any:
    """``_release`` on the Tensors inside tuples, lists and dicts (``has_aux`` values)."""
    if isinstance(x, Tensor):
        return _release(x, keep)
    if isinstance(x, (tuple, list)):
        return type(x)(_release_tree(i, keep) for i in x)
    if isinstance(x, dict):
        return {k: _release_tree(v, keep) for k, v in x.items()}
    return x


def _zeros_like(x: Tensor) -> Tensor:
    return Tensor._from_op(np.zeros(x.shape, dtype=x.dtype), None)


def _grads(outs: Sequence[Tensor], inputs: Sequence[Tensor], seeds: Sequence[Any] | None,
           create_graph: bool) -> list[Tensor]:
    """d(outs)/d(inputs) seeded with ``seeds``; zeros where an input is not reached."""
    pairs = [(o, None if seeds is None else s) for o, s in
             zip(outs, seeds if seeds is not None else [None] * len(outs)) if o.requires_grad]
    if not pairs:
        return [_zeros_like(x) for x in inputs]
    gs = _autograd_grad([o for o, _ in pairs], list(inputs),
                        None if seeds is None else [s for _, s in pairs],
                        retain_graph=True, create_graph=create_graph, allow_unused=True)
    return [_zeros_like(x) if g is None else g for x, g in zip(inputs, gs)]


def _as_outputs(op: str, res: Any) -> tuple[tuple[Tensor, ...], bool]:
    """A function's result as a tuple of Tensors; the flag says whether it was one."""
    if isinstance(res, Tensor):
        return (res,), True
    if isinstance(res, (tuple, list)) and res and all(isinstance(r, Tensor) for r in res):
        return tuple(res), False
    raise TypeError(f"{op}: the function must return a Tensor or a tuple of Tensors, got "
                    f"{type(res).__name__}")


def _basis(shape: tuple[int, ...], dtype: Any, j: int) -> Tensor:
    e = np.zeros(int(np.prod(shape, dtype=np.int64)), dtype=dtype)
    e[j] = 1
    return Tensor._from_op(e.reshape(shape), None)


def _stack_rows(rows: list[Tensor], shape: tuple[int, ...], dtype: Any) -> Tensor:
    """Jacobian rows (or columns, ``axis=-1``) stacked and shaped ``shape``."""
    if not rows:
        return Tensor._from_op(np.zeros(shape, dtype=dtype), None)
    return stack(rows).reshape(shape)


# ----------------------------------------------------------------- reverse mode


def value_and_grad(f: Callable[..., Any], argnums: Argnums = 0,
                   has_aux: bool = False) -> Callable[..., Any]:
    """``f``'s value and its gradient with respect to argument(s) ``argnums``.

    ``f`` must return a one-element Tensor (or ``(value, aux)`` with ``has_aux``).
    Returns ``(value, grad)`` (``((value, aux), grad)`` with ``has_aux``); ``grad`` is a
    tuple when ``argnums`` is a tuple.

    >>> import tinytorch as tt
    >>> from tinytorch.func import value_and_grad
    >>> value_and_grad(lambda x, y: (x * y).sum(), argnums=(0, 1))(
    ...     tt.tensor([1.0, 2.0]), tt.tensor([3.0, 4.0]))
    (tensor(11.), (tensor([3., 4.]), tensor([1., 2.])))
    """

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nums, single = _argnums("grad", argnums, len(args))
        with enable_grad():
            call = _prepared_args("grad", args, nums)
            res = f(*call, **kwargs)
            if has_aux:
                if not isinstance(res, tuple) or len(res) != 2:
                    raise TypeError("grad: with has_aux=True the function must return a "
                                    "(value, aux) pair")
                out, aux = res
            else:
                out, aux = res, None
            if not isinstance(out, Tensor) or out.data.size != 1:
                raise TypeError(
                    f"grad: the function must return a one-element Tensor, got "
                    f"{type(out).__name__}" + (f" of shape {out.shape}"
                                               if isinstance(out, Tensor) else ""))
            inputs = [call[i] for i in nums]
            keep = _keeps_graph([out], args, inputs)
            gs = _grads([out], inputs, None, keep or _has_tangent(args, [out]))
            value = _release(out, keep)
            gs = [_release(g, keep) for g in gs]
            aux = _release_tree(aux, keep)
        g = gs[0] if single else tuple(gs)
        return ((value, aux) if has_aux else value), g

    return wrapper


def grad(f: Callable[..., Any], argnums: Argnums = 0,
         has_aux: bool = False) -> Callable[..., Any]:
    """The gradient of a scalar function ``f`` with respect to argument(s) ``argnums``.

    With ``has_aux=True``, ``f`` returns ``(value, aux)`` and the transform returns
    ``(grad, aux)``. Nests: ``grad(grad(f))`` differentiates the gradient.

    >>> import tinytorch as tt
    >>> from tinytorch.func import grad
    >>> grad(grad(tt.sin))(tt.tensor(0.5))  # -sin(0.5)
    tensor(-0.4794)
    >>> grad(lambda x: ((x ** 2).sum(), x.max()), has_aux=True)(tt.tensor([1.0, 3.0]))
    (tensor([2., 6.]), tensor(3.))
    """
    vg = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapper


def vjp(f: Callable[..., Any], *primals: Tensor) -> tuple[Any, Callable[..., Any]]:
    """``f(*primals)`` and a function mapping output cotangents ``u`` to ``J^T u``.

    The VJP function takes one Tensor per output (shaped like it) and returns a tuple
    with one Tensor per primal; it may be called many times.

    >>> import tinytorch as tt
    >>> from tinytorch.func import vjp
    >>> out, vjp_fn = vjp(lambda x: x ** 2, tt.tensor([1.0, 2.0, 3.0]))
    >>> out
    tensor([1., 4., 9.])
    >>> vjp_fn(tt.tensor([1.0, 0.0, 1.0]))
    (tensor([2., 0., 6.]),)
    """
    if not primals:
        raise ValueError("vjp: give at least one primal")
    with enable_grad():
        xs = [_prepare(_check_input("vjp", p, f"primal {i}")) for i, p in enumerate(primals)]
        res = f(*xs)
        outs, single = _as_outputs("vjp", res)
        keep = _keeps_graph(outs, primals, xs)
        deep = keep or _has_tangent(primals, outs)

    def vjp_fn(*cotangents: Any) -> tuple[Tensor, ...]:
        if len(cotangents) == 1 and isinstance(cotangents[0], (tuple, list)):
            cotangents = tuple(cotangents[0])
        if len(cotangents) != len(outs):
            raise ValueError(f"vjp: {len(outs)} outputs but {len(cotangents)} cotangents")
        for k, (o, c) in enumerate(zip(outs, cotangents)):
            _check_input("vjp", c, f"cotangent {k}")
            if c.shape != o.shape:
                raise ValueError(f"vjp: cotangent {k} has shape {c.shape}, output {k} has "
                                 f"shape {o.shape}")
        keep_c = keep or any(c.requires_grad for c in cotangents)
        with enable_grad():
            gs = _grads(outs, xs, cotangents, keep_c or deep or _has_tangent(cotangents))
            return tuple(_release(g, keep_c) for g in gs)

    with enable_grad():
        shown = tuple(_release(o, keep) for o in outs)
    return (shown[0] if single else shown), vjp_fn


def jacrev(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """The Jacobian of ``f`` by reverse mode: one backward pass per output element.

    For an output of shape ``S`` and an input of shape ``T`` the Jacobian has shape
    ``S + T``. A tuple ``argnums`` gives a tuple of Jacobians; a tuple of outputs gives
    a tuple (per output) of those.

    >>> import tinytorch as tt
    >>> from tinytorch.func import jacrev
    >>> jacrev(lambda x: x[:2] * x[1:])(tt.tensor([1.0, 2.0, 3.0]))
    tensor([[2., 1., 0.],
            [0., 3., 2.]])
    """

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nums, single_in = _argnums("jacrev", argnums, len(args))
        with enable_grad():
            call = _prepared_args("jacrev", args, nums)
            outs, single_out = _as_outputs("jacrev", f(*call, **kwargs))
            inputs = [call[i] for i in nums]
            keep = _keeps_graph(outs, args, inputs)
            deep = keep or _has_tangent(args, outs)
            per_out = []
            for o in outs:
                rows: list[list[Tensor]] = [[] for _ in inputs]
                for j in range(o.data.size):
                    gs = _grads([o], inputs, [_basis(o.shape, o.dtype, j)], deep)
                    for r, g in zip(rows, gs):
                        r.append(_release(g, keep))
                per_out.append(tuple(_stack_rows(r, o.shape + x.shape, x.dtype)
                                     for r, x in zip(rows, inputs)))
        res = [p[0] if single_in else p for p in per_out]
        return res[0] if single_out else tuple(res)

    return wrapper


# ----------------------------------------------------------------- forward mode


def _check_single_level(op: str, primals: Sequence[Any]) -> None:
    if forward_ad.level and any(forward_ad.tangent_of(p) is not None for p in primals):
        raise NotImplementedError(
            f"{op}: nested forward mode (jvp/jacfwd of a function already being pushed "
            f"forward) is not supported; use jacfwd(jacrev(f)) or jacrev(jacfwd(f))")


def jvp(f: Callable[..., Any], primals: Any, tangents: Any) -> tuple[Any, Any]:
    """``(f(*primals), J v)`` by forward mode: the tangents ``v`` are pushed through every
    op's JVP rule alongside the values (one pass, no backward).

    ``primals`` and ``tangents`` are Tensors or tuples of Tensors of matching shapes.

    >>> import tinytorch as tt
    >>> from tinytorch.func import jvp
    >>> jvp(lambda x: tt.sin(x) * 2, (tt.tensor([0.0, 1.0]),), (tt.tensor([1.0, 0.0]),))
    (tensor([0.    , 1.6829]), tensor([2., 0.]))
    """
    ps = (primals,) if isinstance(primals, Tensor) else tuple(primals)
    ts = (tangents,) if isinstance(tangents, Tensor) else tuple(tangents)
    if len(ps) != len(ts):
        raise ValueError(f"jvp: {len(ps)} primals but {len(ts)} tangents")
    for i, (p, t) in enumerate(zip(ps, ts)):
        _check_input("jvp", p, f"primal {i}")
        _check_input("jvp", t, f"tangent {i}")
        if p.shape != t.shape:
            raise ValueError(f"jvp: tangent {i} has shape {t.shape}, primal {i} has shape "
                             f"{p.shape}")
    _check_single_level("jvp", ps)
    with forward_ad.dual_level():
        duals = [forward_ad.make_dual(p, t) for p, t in zip(ps, ts)]
        outs, single = _as_outputs("jvp", f(*duals))
        unpacked = [forward_ad.unpack_dual(o) for o in outs]
    values = tuple(u.primal for u in unpacked)
    jvps = tuple(_zeros_like(o) if u.tangent is None else u.tangent
                 for o, u in zip(outs, unpacked))
    return (values[0], jvps[0]) if single else (values, jvps)


def jacfwd(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """The Jacobian of ``f`` by forward mode: one JVP per input element (a basis
    tangent each). Same shapes and conventions as ``jacrev``; cheaper when inputs are
    few and outputs many.

    >>> import tinytorch as tt
    >>> from tinytorch.func import jacfwd
    >>> jacfwd(lambda x: tt.exp(x) * x.sum())(tt.tensor([0.0, 0.0]))
    tensor([[1., 1.],
            [1., 1.]])
    """

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nums, single_in = _argnums("jacfwd", argnums, len(args))
        for i in nums:
            _check_input("jacfwd", args[i], f"argument {i}")
        _check_single_level("jacfwd", [args[i] for i in nums])
        cols: list[list[list[Tensor]]] = []  # [input][element][output]
        outs: tuple[Tensor, ...] = ()
        single_out = True
        for i in nums:
            x = args[i]
            per_elem = []
            for j in range(x.data.size):
                with forward_ad.dual_level():
                    call = list(args)
                    call[i] = forward_ad.make_dual(x, _basis(x.shape, x.dtype, j))
                    outs, single_out = _as_outputs("jacfwd", f(*call, **kwargs))
                    ts = [forward_ad.unpack_dual(o).tangent for o in outs]
                per_elem.append([_zeros_like(o) if t is None else t for o, t in zip(outs, ts)])
            cols.append(per_elem)
        if not outs:  # every differentiated input is empty: call once for the shapes
            outs, single_out = _as_outputs("jacfwd", f(*args, **kwargs))
        res = []
        for k, o in enumerate(outs):
            per_in = []
            for i, per_elem in zip(nums, cols):
                x = args[i]
                if per_elem:  # columns: the input's axis goes last, after the output's
                    jac = stack([c[k] for c in per_elem], dim=-1).reshape(o.shape + x.shape)
                else:
                    jac = Tensor._from_op(np.zeros(o.shape + x.shape, dtype=o.dtype), None)
                per_in.append(jac)
            res.append(per_in[0] if single_in else tuple(per_in))
        return res[0] if single_out else tuple(res)

    return wrapper


def jacobian(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """The Jacobian of ``f`` (reverse mode: ``jacrev``).

    >>> import tinytorch as tt
    >>> from tinytorch.func import jacobian
    >>> jacobian(lambda x: x * 3.0)(tt.tensor([1.0, 2.0]))
    tensor([[3., 0.],
            [0., 3.]])
    """
    return jacrev(f, argnums)


def hessian(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """The Hessian of a scalar ``f``: forward mode over reverse mode,
    ``jacfwd(jacrev(f))``.

    >>> import tinytorch as tt
    >>> from tinytorch.func import hessian
    >>> hessian(lambda x: x[0] ** 2 * x[1])(tt.tensor([1.0, 2.0]))
    tensor([[4., 2.],
            [2., 0.]])
    """
    return jacfwd(jacrev(f, argnums), argnums)


def hvp(f: Callable[..., Any], primals: Any, tangents: Any) -> tuple[Tensor, Any]:
    """``(f(*primals), H v)`` for a scalar ``f``: forward mode over the gradient
    (``jvp(grad(f))``), one backward and one forward pass, no Hessian built.

    >>> import tinytorch as tt
    >>> from tinytorch.func import hvp
    >>> hvp(lambda x: (x ** 3).sum(), tt.tensor([1.0, 2.0]), tt.tensor([1.0, 1.0]))
    (tensor(9.), tensor([ 6., 12.]))
    """
    single = isinstance(primals, Tensor)
    ps = (primals,) if single else tuple(primals)
    ts = (tangents,) if isinstance(tangents, Tensor) else tuple(tangents)
    vg = value_and_grad(f, argnums=tuple(range(len(ps))))

    def value_and_grads(*xs: Tensor) -> tuple[Tensor, ...]:
        value, gs = vg(*xs)
        return (value, *gs)

    outs, touts = jvp(value_and_grads, ps, ts)
    value, hv = outs[0], touts[1:]
    return value, (hv[0] if single else hv)
