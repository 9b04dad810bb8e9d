"""Datasets and batching: Dataset, TensorDataset, DataLoader, random_split, real datasets.

>>> import tinytorch as tt
>>> from tinytorch.data import DataLoader, load_digits
>>> train, test = load_digits()
>>> loader = DataLoader(train, batch_size=64, shuffle=True, generator=0)
>>> x, y = next(iter(loader))
>>> x.shape, x.dtype, y.shape, y.dtype
((64, 1, 8, 8), dtype('float32'), (64,), dtype('int64'))
"""

from tinytorch.data.dataloader import DataLoader, default_collate
from tinytorch.data.dataset import Dataset, Subset, TensorDataset, random_split
from tinytorch.data.datasets import (
    FASHION_MNIST_ROOT,
    MNIST,
    FashionMNIST,
    load_digits,
    train_test_indices,
)
from tinytorch.data.idx import DatasetError, DatasetNotFoundError, read_idx

__all__ = [
    "FASHION_MNIST_ROOT",
    "MNIST",
    "DataLoader",
    "Dataset",
    "DatasetError",
    "DatasetNotFoundError",
    "FashionMNIST",
    "Subset",
    "TensorDataset",
    "default_collate",
    "load_digits",
    "random_split",
    "read_idx",
    "train_test_indices",
]
