"""Automatic differentiation: graph nodes, the backward engine and grad modes."""

from tinytorch.autograd import forward_ad, graph
from tinytorch.autograd.anomaly import (
    AnomalyError,
    detect_anomaly,
    is_anomaly_enabled,
    set_detect_anomaly,
)
from tinytorch.autograd.engine import backward, grad, unbroadcast
from tinytorch.autograd.function import Function, FunctionCtx
from tinytorch.autograd.grad_mode import (
    enable_grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from tinytorch.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from tinytorch.autograd.node import AccumulateGrad, Node

__all__ = [
    "AccumulateGrad",
    "AnomalyError",
    "Function",
    "FunctionCtx",
    "GradcheckError",
    "detect_anomaly",
    "forward_ad",
    "graph",
    "is_anomaly_enabled",
    "set_detect_anomaly",
    "Node",
    "backward",
    "enable_grad",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
    "unbroadcast",
]
