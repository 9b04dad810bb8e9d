"""Real datasets: scikit-learn's bundled digits (offline), Fashion-MNIST and MNIST (IDX).

Images come as float32 in [0, 1] with shape (N, 1, H, W) (or (N, H*W) with
``flatten=True``); labels as int64.

>>> from tinytorch.data import load_digits
>>> train, test = load_digits()
>>> len(train), len(test), tuple(train.tensors[0].shape[1:])
(1438, 359, (1, 8, 8))
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tinytorch.data.dataset import TensorDataset
from tinytorch.data.idx import DatasetError, DatasetNotFoundError, read_idx

__all__ = ["FASHION_MNIST_ROOT", "MNIST", "FashionMNIST", "load_digits", "train_test_indices"]

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"


def train_test_indices(labels: Any, test_fraction: float = 0.2,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic stratified split: each class gives ``round(test_fraction * count)``
    samples to the test side. Returns sorted (train, test) index arrays.

    >>> import numpy as np
    >>> train, test = train_test_indices(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 0.5, seed=1)
    >>> len(train), len(test), sorted(np.r_[train, test].tolist()) == list(range(8))
    (4, 4, True)
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"train_test_indices: test_fraction must lie in [0, 1], got "
                         f"{test_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        test.append(members[: int(round(test_fraction * len(members)))])
    test_idx = np.sort(np.concatenate(test)) if test else np.zeros(0, np.int64)
    mask = np.ones(len(labels), bool)
    mask[test_idx] = False
    return np.flatnonzero(mask), test_idx


def _images(pixels: np.ndarray, scale: float, flatten: bool) -> np.ndarray:
    x = pixels.astype(np.float32)
    x /= np.float32(scale)
    n = len(x)
    return x.reshape(n, -1) if flatten else x.reshape(n, 1, *x.shape[1:])


def load_digits(test_fraction: float = 0.2, seed: int = 0, flatten: bool = False,
                as_arrays: bool = False) -> Any:
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes; no network needed),
    pixels scaled to [0, 1], split deterministically and stratified by class.

    Returns ``(train, test)`` TensorDatasets of (image, label), or with
    ``as_arrays=True`` the arrays ``(x_train, y_train, x_test, y_test)``.
    """
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError:
        raise DatasetNotFoundError(
            "load_digits: the digits data ships with scikit-learn, which is not installed; "
            "install it with `pip install scikit-learn` (or `pip install tinytorch[train]`)"
        ) from None
    bunch = _sk_load_digits()
    x = _images(bunch.images, 16.0, flatten)  # pixel values are 0..16
    y = bunch.target.astype(np.int64)
    train, test = train_test_indices(y, test_fraction, seed)
    arrays = (x[train], y[train], x[test], y[test])
    if as_arrays:
        return arrays
    return TensorDataset(arrays[0], arrays[1]), TensorDataset(arrays[2], arrays[3])


class MNIST(TensorDataset):
    """MNIST from the four IDX files (``.gz`` or plain) in ``root``.

    Files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``; the
    ``.idx3-ubyte`` spelling and torchvision's ``root/MNIST/raw`` layout work too).
    Samples are (image float32 (1, 28, 28) in [0, 1], label int64).
    """

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
               "6 - six", "7 - seven", "8 - eight", "9 - nine"]
    default_root: str | None = None
    source = ("download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
              "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from "
              "https://yann.lecun.com/exdb/mnist/ (or a mirror)")

    def __init__(self, root: str | os.PathLike[str] | None = None, train: bool = True,
                 flatten: bool = False) -> None:
        name = type(self).__name__
        if root is None:
            if self.default_root is None:
                raise TypeError(f"{name}: root (the folder holding the IDX files) is required")
            root = self.default_root
        self.root, self.train = os.fspath(root), train
        split = "train" if train else "t10k"
        images = read_idx(self._find(f"{split}-images-idx3-ubyte"))
        labels = read_idx(self._find(f"{split}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetError(f"{name}: expected images (N, H, W) and labels (N,), got "
                               f"{images.shape} and {labels.shape} in {self.root}")
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise DatasetError(f"{name}: labels must lie in [0, {len(self.classes)}), got "
                               f"[{labels.min()}, {labels.max()}] in {self.root}")
        super().__init__(_images(images, 255.0, flatten), labels.astype(np.int64))

    def _find(self, stem: str) -> str:
        folders = [self.root, os.path.join(self.root, "raw"),
                   os.path.join(self.root, type(self).__name__, "raw")]
        names = [stem, stem.replace("-idx", ".idx")]
        for folder in folders:
            for name in names:
                for candidate in (name, name + ".gz"):
                    path = os.path.join(folder, candidate)
                    if os.path.isfile(path):
                        return path
        raise DatasetNotFoundError(self._how_to_get(stem))

    def _how_to_get(self, stem: str) -> str:
        return (f"{type(self).__name__}: {stem}[.gz] not found in {self.root}. To get it, "
                f"{self.source} and put them in {self.root} (or pass root=FOLDER).")


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST (60,000 + 10,000 28x28 grey images, 10 classes), read
    from the IDX files that the Debian package ``dataset-fashion-mnist`` installs in
    /usr/share/datasets/fashion-mnist (the default ``root``), or from any folder."""

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
    default_root = FASHION_MNIST_ROOT
    source = ("install the Debian/Ubuntu package with `sudo apt-get install "
              "dataset-fashion-mnist` (it puts the files in /usr/share/datasets/fashion-mnist),"
              " or download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
              "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from "
              "https://github.com/zalandoresearch/fashion-mnist (data/fashion)")
