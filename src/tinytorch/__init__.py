"""tinytorch: a small, fast, correct autograd engine on NumPy.

>>> import tinytorch as tt
>>> w = tt.tensor([1.0, -2.0], requires_grad=True)
>>> loss = (tt.tanh(w) ** 2).sum()
>>> loss.backward()
>>> w.grad.shape
(2,)
"""

from tinytorch.tensor import Tensor, from_numpy, tensor  # noqa: I001  (Tensor first)
from tinytorch import autograd, data, optim, random
from tinytorch.random import manual_seed
from tinytorch.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from tinytorch.ops import *  # noqa: F403
from tinytorch.ops import __all__ as _ops_all
from tinytorch import func, nn, utils  # noqa: E402  (after the ops they build on)
from tinytorch import profiler, viz  # noqa: E402
from tinytorch.serialization import CheckpointError, load, save

import numpy as _np

float32 = _np.float32
float64 = _np.float64
int64 = _np.int64
int32 = _np.int32
bool_ = _np.bool_

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "Tensor",
    "autograd",
    "data",
    "load",
    "nn",
    "optim",
    "profiler",
    "save",
    "enable_grad",
    "from_numpy",
    "func",
    "manual_seed",
    "random",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
    "tensor",
    "utils",
    "viz",
    *_ops_all,
]
