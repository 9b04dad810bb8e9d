"""TinyTorch's ``tinytorch.core.activations`` (re-exported from ``tinytorch.nn``)."""

from tinytorch.nn import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh

__all__ = ["GELU", "LeakyReLU", "ReLU", "Sigmoid", "Softmax", "Tanh"]
