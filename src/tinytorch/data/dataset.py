"""Datasets: the map-style protocol, TensorDataset, Subset and random_split."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinytorch.random import default_generator
from tinytorch.tensor import Tensor

GeneratorLike = np.random.Generator | int | None


def as_generator(generator: GeneratorLike, owner: str) -> np.random.Generator:
    """A NumPy Generator from a Generator, an int seed or None (the default generator)."""
    if generator is None:
        return default_generator()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(f"{owner}: generator must be a numpy.random.Generator, an int seed or "
                    f"None, got {type(generator).__name__}")


class Dataset:
    """A map-style dataset: ``dataset[i]`` is one sample, ``len(dataset)`` their number."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")


class TensorDataset(Dataset):
    """Samples are rows of equally long tensors: ``dataset[i] == (t[i] for t in tensors)``.

    >>> import numpy as np
    >>> from tinytorch.data import TensorDataset
    >>> ds = TensorDataset(np.zeros((5, 3), np.float32), np.arange(5))
    >>> len(ds), ds[2][0].shape, int(ds[2][1])
    (5, (3,), 2)
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        ts = [t if isinstance(t, Tensor) else Tensor(np.asarray(t)) for t in tensors]
        for i, t in enumerate(ts):
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {i} is 0-d; every tensor needs a "
                                 f"first (sample) dimension")
        n = {t.shape[0] for t in ts}
        if len(n) != 1:
            raise ValueError(f"TensorDataset: tensors have different first dimensions "
                             f"{[t.shape[0] for t in ts]}; all must have the same length")
        self.tensors: tuple[Tensor, ...] = tuple(ts)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(Tensor._from_op(t.data[index], None) for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int] | np.ndarray) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Dataset, lengths: Sequence[int | float],
                 generator: GeneratorLike = None) -> list[Subset]:
    """Split into non-overlapping random subsets of the given lengths (or fractions that
    sum to 1, as in PyTorch: floors, then the remainder one by one to the first subsets).

    >>> import numpy as np
    >>> from tinytorch.data import TensorDataset, random_split
    >>> train, test = random_split(TensorDataset(np.arange(10)), [0.8, 0.2], generator=0)
    >>> len(train), len(test)
    (8, 2)
    """
    n = len(dataset)
    lengths = list(lengths)
    counts: list[Any] = lengths
    if lengths and all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1):
        if any(x < 0 or x > 1 for x in lengths):
            raise ValueError(f"random_split: fractions must lie in [0, 1], got {lengths}")
        counts = [int(math.floor(n * x)) for x in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
    if any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 0
           for c in counts):
        raise ValueError(f"random_split: lengths must be non-negative ints or fractions "
                         f"summing to 1, got {lengths}")
    if sum(counts) != n:
        raise ValueError(f"random_split: lengths {list(counts)} sum to {sum(counts)}, but the "
                         f"dataset has {n} samples")
    perm = as_generator(generator, "random_split").permutation(n)
    bounds = np.cumsum([0, *counts])
    return [Subset(dataset, perm[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
