"""TinyTorch's ``tinytorch.core.losses`` (re-exported from ``tinytorch.nn``)."""

from tinytorch.nn import BCELoss, CrossEntropyLoss, MSELoss
from tinytorch.ops import log_softmax

MeanSquaredError = MSELoss
BinaryCrossEntropyLoss = BCELoss

__all__ = ["BinaryCrossEntropyLoss", "CrossEntropyLoss", "MSELoss", "MeanSquaredError",
           "log_softmax"]
