"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_`` (in place, on ``.grad``)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from tinytorch.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _with_grads(parameters: Tensor | Iterable[Tensor]) -> list[tuple[Tensor, Tensor]]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [(p, p.grad) for p in params if p.grad is not None]


def _scale_(p: Tensor, grad: Tensor, factor: float) -> None:
    if grad.requires_grad:  # a graph-carrying gradient (create_graph): replace it
        p.grad = grad * factor
    else:
        grad.data *= np.asarray(factor, dtype=grad.dtype)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so that their joint ``norm_type`` norm is at most
    ``max_norm``; returns the norm before clipping (a 0-d float64 Tensor).

    >>> import tinytorch as tt
    >>> p = tt.tensor([0.0, 0.0], requires_grad=True)
    >>> p.grad = tt.tensor([3.0, 4.0])
    >>> tt.nn.utils.clip_grad_norm_([p], 1.0).item()
    5.0
    >>> p.grad
    tensor([0.6, 0.8])
    """
    pairs = _with_grads(parameters)
    norm_type = float(norm_type)
    if not pairs:
        return Tensor(0.0, dtype=np.float64)
    if math.isinf(norm_type):
        total = max(float(np.max(np.abs(g.data))) if g.data.size else 0.0 for _, g in pairs)
    else:
        powers = [float(np.sum(np.abs(g.data.astype(np.float64)) ** norm_type)) for _, g in pairs]
        total = float(sum(powers) ** (1.0 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} is {total}; "
                           f"pass error_if_nonfinite=False to clip anyway")
    coef = float(max_norm) / (total + 1e-6)
    if coef < 1.0:
        for p, g in pairs:
            _scale_(p, g, coef)
    return Tensor(total, dtype=np.float64)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]``, in place."""
    c = float(clip_value)
    for p, g in _with_grads(parameters):
        if g.requires_grad:
            p.grad = g.clip(-c, c)
        else:
            np.clip(g.data, -c, c, out=g.data)
