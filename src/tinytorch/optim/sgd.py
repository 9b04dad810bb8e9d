"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch.optim.optimizer import Optimizer, ParamsT, check_hparam
from tinytorch.tensor import Tensor


class SGD(Optimizer):
    """PyTorch's SGD: ``g += wd * p``; ``buf = momentum * buf + (1 - dampening) * g``
    (the first step sets ``buf = g``); ``p -= lr * (g + momentum * buf if nesterov else buf)``.

    >>> import tinytorch as tt
    >>> w = tt.tensor([1.0], requires_grad=True)
    >>> opt = tt.optim.SGD([w], lr=0.5, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     w.sum().backward()
    ...     opt.step()
    >>> w  # 1 - 0.5 * 1 - 0.5 * (0.9 + 1)
    tensor([-0.45], requires_grad=True)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        check_hparam("SGD", "momentum", group["momentum"])
        check_hparam("SGD", "weight_decay", group["weight_decay"])
        check_hparam("SGD", "dampening", group["dampening"], 0.0, 1.0)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: nesterov momentum requires momentum > 0 and dampening = 0, "
                             f"got momentum={group['momentum']}, dampening={group['dampening']}")

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        momentum = group["momentum"]
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(grad, dtype=p.dtype)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.data -= group["lr"] * grad
