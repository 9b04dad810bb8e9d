"""Automatic differentiation: graph nodes, the backward engine and grad modes."""

from tinytorch.autograd.engine import backward, grad, unbroadcast
from tinytorch.autograd.grad_mode import (
    enable_grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from tinytorch.autograd.node import AccumulateGrad, Node

__all__ = [
    "AccumulateGrad",
    "Node",
    "backward",
    "enable_grad",
    "grad",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
    "unbroadcast",
]
