"""TinyTorch's ``tinytorch.core.dataloader`` (re-exported from ``tinytorch.data``)."""

from tinytorch.data import DataLoader, Dataset, TensorDataset

__all__ = ["DataLoader", "Dataset", "TensorDataset"]
