"""RMSprop, optionally centered and with momentum."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch.optim.optimizer import Optimizer, ParamsT, check_hparam
from tinytorch.tensor import Tensor


class RMSprop(Optimizer):
    """PyTorch's RMSprop: ``s = alpha s + (1-alpha) g^2``; ``avg = sqrt(s - gbar^2) + eps``
    when centered (``gbar`` a running mean of g) else ``sqrt(s) + eps``; then
    ``buf = momentum buf + g / avg; p -= lr buf`` or, without momentum, ``p -= lr g / avg``.

    >>> import tinytorch as tt
    >>> w = tt.tensor([1.0], requires_grad=True)
    >>> opt = tt.optim.RMSprop([w], lr=0.01, alpha=0.75)
    >>> w.sum().backward()
    >>> opt.step()  # 1 - 0.01 * 1 / sqrt(0.25)
    >>> w
    tensor([0.98], requires_grad=True)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        check_hparam("RMSprop", "alpha", group["alpha"], 0.0, 1.0)
        for key in ("eps", "weight_decay", "momentum"):
            check_hparam("RMSprop", key, group[key])

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        alpha, momentum = group["alpha"], group["momentum"]
        if not state:
            state.update(step=0, square_avg=np.zeros_like(p.data))
        state["step"] += 1
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        sq = state["square_avg"]
        sq *= alpha
        sq += (1 - alpha) * (grad * grad)
        if group["centered"]:
            if "grad_avg" not in state:
                state["grad_avg"] = np.zeros_like(p.data)
            gbar = state["grad_avg"]
            gbar *= alpha
            gbar += (1 - alpha) * grad
            avg = np.sqrt(sq - gbar * gbar) + group["eps"]
        else:
            avg = np.sqrt(sq) + group["eps"]
        if momentum > 0:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = np.zeros_like(p.data)
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += grad / avg
            p.data -= group["lr"] * buf
        else:
            p.data -= group["lr"] * (grad / avg)
