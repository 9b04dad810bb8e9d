"""Forward-mode automatic differentiation with dual tensors.

Inside ``dual_level()``, ``make_dual(x, t)`` attaches a tangent ``t`` to ``x``;
every op then pushes tangents forward with its own JVP rule (``Node.jvp``, next to
the op's forward and backward), and ``unpack_dual(y)`` returns ``y``'s value and
tangent: the Jacobian-vector product ``J t``.

>>> import tinytorch as tt
>>> from tinytorch.autograd import forward_ad as fwad
>>> with fwad.dual_level():
...     x = fwad.make_dual(tt.tensor([1.0, 2.0]), tt.tensor([1.0, 0.0]))
...     y = x * x
...     primal, tangent = fwad.unpack_dual(y)
>>> tangent
tensor([2., 0.])
"""

from __future__ import annotations

from typing import Any, NamedTuple

from tinytorch.autograd import grad_mode

level: int = 0


class dual_level:
    """Context manager in which dual tensors carry tangents. Leaving it drops them."""

    def __enter__(self) -> int:
        global level
        level += 1
        grad_mode.extras += 1
        return level

    def __exit__(self, *exc: object) -> None:
        global level
        level -= 1
        grad_mode.extras -= 1


def make_dual(tensor: Any, tangent: Any) -> Any:
    """A view of ``tensor`` that carries ``tangent`` (same shape) forward."""
    from tinytorch.tensor import Tensor

    if not level:
        raise RuntimeError("make_dual: only valid inside a forward_ad.dual_level() context")
    if not isinstance(tangent, Tensor):
        tangent = Tensor(tangent, dtype=tensor.dtype)
    if tangent.shape != tensor.shape:
        raise ValueError(f"make_dual: tangent shape {tangent.shape} does not match the "
                         f"primal's {tensor.shape}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"make_dual: only floating-point tensors can carry tangents, "
                        f"got {tensor.dtype}")
    dual = tensor.view(tensor.shape)  # differentiable view: reverse mode still reaches x
    dual._fw_grad = tangent.astype(tensor.dtype) if tangent.dtype != tensor.dtype else tangent
    dual._fw_level = level
    return dual


class UnpackedDual(NamedTuple):
    primal: Any
    tangent: Any


def unpack_dual(tensor: Any) -> UnpackedDual:
    """``(primal, tangent)``; the tangent is None for a tensor without one."""
    from tinytorch.tensor import Tensor

    tangent = tangent_of(tensor)
    if tangent is None or (tensor.requires_grad and tensor.grad_fn is None):
        return UnpackedDual(tensor, tangent)
    # Same data and graph position, without the tangent.
    primal = Tensor._from_op(tensor.data, None)
    primal.requires_grad = tensor.requires_grad
    primal.grad_fn = tensor.grad_fn
    primal._vc = tensor._counter()
    primal._base = tensor
    return UnpackedDual(primal, tangent)


def copy_tangent(src: Any, dst: Any) -> None:
    """Give ``dst`` the tangent ``src`` carries at this level (or none)."""
    t = tangent_of(src)
    if t is not None:
        dst._fw_grad = t
        dst._fw_level = level
    elif getattr(dst, "_fw_grad", None) is not None:
        dst._fw_grad = None


def tangent_of(x: Any) -> Any:
    """The tangent ``x`` carries at the current level, or None."""
    t = getattr(x, "_fw_grad", None)
    if t is None or getattr(x, "_fw_level", 0) != level or not level:
        return None
    return t
