"""TinyTorch's autograd names: node classes, ``Variable``, functional helpers.

``Function`` is the graph-node base class (what PyTorch calls a ``grad_fn``): a
node can be built directly and asked for gradients, as TinyTorch's tests do.

>>> import numpy as np
>>> from tinytorch.core.tensor import Tensor
>>> from tinytorch.core.autograd import AddBackward
>>> a, b = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0], requires_grad=True)
>>> AddBackward(a, b).apply(np.ones(2))
(array([1., 1.], dtype=float32), array([1., 1.], dtype=float32))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch.autograd.node import AccumulateGrad
from tinytorch.autograd.node import Node as Function
from tinytorch.ops import add, div, matmul, mul, pow, sub
from tinytorch.ops.binary import AddBackward, DivBackward, MulBackward, PowBackward, SubBackward
from tinytorch.ops.linalg import MatmulBackward
from tinytorch.ops.loss import BCEBackward, CrossEntropyBackward, MSEBackward
from tinytorch.ops.movement import (
    GetItemBackward,
    PermuteBackward,
    ReshapeBackward,
    SliceBackward,
    TransposeBackward,
)
from tinytorch.ops.nn import GELUBackward, ReLUBackward, SoftmaxBackward
from tinytorch.ops.reduce import SumBackward
from tinytorch.ops.unary import ExpBackward, LogBackward, SigmoidBackward, TanhBackward
from tinytorch.profiler import AutogradSystemsProfiler
from tinytorch.tensor import Tensor

__all__ = [
    "AccumulateGrad", "AddBackward", "AutogradSystemsProfiler", "BCEBackward",
    "CrossEntropyBackward", "DivBackward",
    "ExpBackward", "Function", "GELUBackward", "GetItemBackward", "LogBackward",
    "MSEBackward", "MatmulBackward", "MulBackward", "PermuteBackward", "PowBackward",
    "ReLUBackward", "ReshapeBackward", "SigmoidBackward", "SliceBackward", "SoftmaxBackward",
    "SubBackward", "SumBackward", "TanhBackward", "TransposeBackward", "Variable", "add",
    "divide", "enable_autograd", "matmul", "multiply", "power", "subtract", "to_numpy",
]

multiply = mul
subtract = sub
divide = div
power = pow


def Variable(data: Any, requires_grad: bool = True, **kwargs: Any) -> Tensor:  # noqa: N802
    """TinyTorch's ``Variable``: a Tensor that requires grad unless told otherwise.

    >>> Variable([1.0, 2.0]).requires_grad
    True
    """
    if isinstance(data, Tensor) and not kwargs:
        data = data.data
    return Tensor(data, requires_grad=requires_grad, **kwargs)


def enable_autograd(quiet: bool = True) -> None:
    """Kept for TinyTorch code: autograd is always on in tinytorch, so this does nothing."""
    return None


def to_numpy(x: Any) -> np.ndarray:
    """The NumPy array behind a Tensor (or ``np.asarray`` of anything else)."""
    return x.data if isinstance(x, Tensor) else np.asarray(x)
