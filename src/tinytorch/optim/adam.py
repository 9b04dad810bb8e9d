"""Adam and AdamW (decoupled weight decay), with optional AMSGrad."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinytorch.optim.optimizer import Optimizer, ParamsT, check_hparam
from tinytorch.tensor import Tensor


class Adam(Optimizer):
    """PyTorch's Adam: ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``. ``weight_decay``
    adds ``wd * p`` to the gradient (L2); AdamW decays the weights instead.

    >>> import tinytorch as tt
    >>> w = tt.tensor([1.0, -1.0], requires_grad=True)
    >>> opt = tt.optim.Adam([w], lr=0.1)
    >>> (w * 3).sum().backward()
    >>> opt.step()  # the first Adam step moves each weight by about lr
    >>> w
    tensor([ 0.9, -1.1], requires_grad=True)
    """

    _decoupled = False

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _check_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        super()._check_group(group)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        check_hparam(name, "beta1 (betas[0])", betas[0], 0.0, 1.0, high_open=True)
        check_hparam(name, "beta2 (betas[1])", betas[1], 0.0, 1.0, high_open=True)
        check_hparam(name, "eps", group["eps"])
        check_hparam(name, "weight_decay", group["weight_decay"])

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        lr, (b1, b2), wd = group["lr"], group["betas"], group["weight_decay"]
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
        state["step"] += 1
        t = state["step"]
        if wd and self._decoupled:
            p.data *= 1 - lr * wd
        elif wd:
            grad = grad + wd * p.data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * (grad * grad)
        if group["amsgrad"]:
            if "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
            v_max = state["max_exp_avg_sq"]
            v = np.maximum(v_max, v, out=v_max)
        denom = np.sqrt(v) / math.sqrt(1 - b2**t) + group["eps"]
        p.data -= (lr / (1 - b1**t)) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr * wd`` before the Adam step.

    >>> import tinytorch as tt
    >>> w = tt.tensor([1.0], requires_grad=True)
    >>> opt = tt.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> w.sum().backward()
    >>> opt.step()  # 1 * (1 - 0.05) - 0.1
    >>> w
    tensor([0.85], requires_grad=True)
    """

    _decoupled = True

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
