"""TinyTorch's ``tinytorch.core.optimizers`` (re-exported from ``tinytorch.optim``)."""

from tinytorch.optim import SGD, Adam, AdamW, Optimizer

__all__ = ["SGD", "Adam", "AdamW", "Optimizer"]
