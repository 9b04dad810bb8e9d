"""TinyTorch's ``tinytorch.core.training`` (re-exported from ``tinytorch.training``)."""

from tinytorch.training import Trainer, TrainingInterrupted

__all__ = ["Trainer", "TrainingInterrupted"]
