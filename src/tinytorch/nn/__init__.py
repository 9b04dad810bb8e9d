"""Neural-network building blocks: ``Module`` and ``Parameter``, layers, activations,
losses, containers, ``init`` and ``functional``; PyTorch's names and behaviour.

>>> import tinytorch as tt
>>> from tinytorch import nn
>>> _ = tt.manual_seed(0)
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
>>> loss = nn.CrossEntropyLoss()(model(tt.tensor([[1.0, 2.0, 3.0, 4.0]])),
...                              tt.tensor([2], dtype="int64"))
>>> loss.backward()
>>> model[0].weight.grad.shape
(4, 8)
"""

from tinytorch.nn import functional, init, utils
from tinytorch.nn.activation import (
    GELU,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from tinytorch.nn.containers import Flatten, Identity, ModuleDict, ModuleList, Sequential
from tinytorch.nn.layers import (
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Embedding,
    LayerNorm,
    Linear,
    MaxPool2d,
)
from tinytorch.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
)
from tinytorch.nn.module import IncompatibleKeys, Module, Parameter

__all__ = [
    "AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "Conv2d",
    "CrossEntropyLoss", "Dropout", "Embedding", "Flatten", "GELU", "Identity",
    "IncompatibleKeys", "L1Loss", "LayerNorm", "LeakyReLU", "Linear", "LogSoftmax", "MSELoss",
    "MaxPool2d", "Module", "ModuleDict", "ModuleList", "NLLLoss", "Parameter", "ReLU",
    "Sequential", "SiLU", "Sigmoid", "Softmax", "Softplus", "Tanh", "functional", "init",
    "utils",
]
