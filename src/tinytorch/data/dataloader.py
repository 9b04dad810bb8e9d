"""DataLoader: batches of Tensors from a Dataset, optionally shuffled by a seeded generator."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from tinytorch.data.dataset import Dataset, GeneratorLike, Subset, TensorDataset, as_generator
from tinytorch.tensor import Tensor


def _batch_array(arr: np.ndarray) -> Tensor:
    """Wrap a stacked batch; one integer per sample (class labels) becomes int64, other
    arrays (uint8 images, say) keep their dtype."""
    if arr.ndim == 1 and arr.dtype.kind in "iu" and arr.dtype != np.int64:
        arr = arr.astype(np.int64)
    return Tensor._from_op(arr, None)


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch, field by field.

    Tensors and arrays are stacked keeping their dtype, except that integer labels (one
    integer per sample) become int64; Python ints become int64, floats float32, bools
    bool; tuples/lists and dicts are collated per field; strings stay a list.

    >>> import numpy as np
    >>> from tinytorch.data import default_collate
    >>> x, y = default_collate([(np.zeros(3, np.float32), 1), (np.ones(3, np.float32), 0)])
    >>> x.shape, x.dtype, y.dtype
    ((2, 3), dtype('float32'), dtype('int64'))
    """
    first = batch[0]
    if isinstance(first, Tensor):
        return _batch_array(np.stack([s.data for s in batch]))
    if isinstance(first, (np.ndarray, np.generic)):
        return _batch_array(np.stack(batch))
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, bool):
        return Tensor._from_op(np.array(batch, dtype=np.bool_), None)
    if isinstance(first, numbers.Integral):
        return Tensor._from_op(np.array(batch, dtype=np.int64), None)
    if isinstance(first, numbers.Real):
        return Tensor._from_op(np.array(batch, dtype=np.float32), None)
    if isinstance(first, Mapping):
        return {k: default_collate([s[k] for s in batch]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in batch):
            raise ValueError("default_collate: samples in a batch have different numbers of "
                             "fields")
        fields = [default_collate(list(field)) for field in zip(*batch)]
        if hasattr(first, "_fields"):  # namedtuple
            return type(first)(*fields)
        return tuple(fields) if isinstance(first, tuple) else fields
    raise TypeError(f"default_collate: cannot batch samples of type {type(first).__name__}; "
                    f"expected Tensors, arrays, numbers, strings, tuples, lists or dicts "
                    f"(or pass collate_fn=...)")


def _fast_arrays(dataset: Dataset) -> tuple[tuple[np.ndarray, ...], np.ndarray | None] | None:
    """(arrays, index map) when batches can be cut with one fancy index per array:
    a plain TensorDataset, or Subsets of one."""
    if type(dataset).__getitem__ is TensorDataset.__getitem__:
        return tuple(t.data for t in dataset.tensors), None  # type: ignore[attr-defined]
    if type(dataset) is Subset:
        inner = _fast_arrays(dataset.dataset)
        if inner is not None:
            arrays, index = inner
            return arrays, dataset.indices if index is None else index[dataset.indices]
    return None


class DataLoader:
    """Iterate over ``dataset`` in batches of Tensors.

    ``shuffle=True`` draws a fresh permutation every epoch from ``generator`` (a
    ``numpy.random.Generator`` or an int seed), or from ``tinytorch.random``'s default
    generator, so ``tinytorch.manual_seed`` makes the order reproducible. With the
    default collate, a TensorDataset (or a Subset of one) is batched with one NumPy
    fancy index per array instead of sample by sample.

    >>> import numpy as np
    >>> from tinytorch.data import DataLoader, TensorDataset
    >>> ds = TensorDataset(np.arange(10, dtype=np.float32).reshape(5, 2), np.arange(5))
    >>> [tuple(x.shape) for x, y in DataLoader(ds, batch_size=2)]
    [(2, 2), (2, 2), (1, 2)]
    >>> len(DataLoader(ds, batch_size=2, drop_last=True))
    2
    """

    def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, collate_fn: Callable[[list[Any]], Any] | None = None,
                 generator: GeneratorLike = None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got "
                             f"{batch_size!r}")
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(f"DataLoader: dataset must support len() and indexing, got "
                            f"{type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self._generator = None if generator is None else as_generator(generator, "DataLoader")

    @property
    def generator(self) -> np.random.Generator:
        return self._generator if self._generator is not None else as_generator(None, "")

    def __len__(self) -> int:
        n, b = len(self.dataset), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[Any]:
        n = len(self.dataset)
        order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        fast = _fast_arrays(self.dataset) if self.collate_fn is None else None
        collate = self.collate_fn or default_collate
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            if fast is not None:
                arrays, index = fast
                rows = idx if index is None else index[idx]
                yield tuple(_batch_array(a[rows]) for a in arrays)
            else:
                yield collate([self.dataset[int(i)] for i in idx])
