"""The models ``tinytorch train`` builds: a multilayer perceptron and a small CNN,
each starting with a ``Standardize`` layer fitted to the training images.

>>> import tinytorch as tt
>>> _ = tt.manual_seed(0)
>>> build_model("mlp", (1, 8, 8), 10)
Sequential(
  (0): Standardize(shape=(1, 8, 8))
  (1): Flatten(start_dim=1, end_dim=-1)
  (2): Linear(in_features=64, out_features=256, bias=True)
  (3): ReLU()
  (4): Dropout(p=0.2)
  (5): Linear(in_features=256, out_features=128, bias=True)
  (6): ReLU()
  (7): Dropout(p=0.2)
  (8): Linear(in_features=128, out_features=10, bias=True)
)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinytorch import nn
from tinytorch.tensor import Tensor


class Standardize(nn.Module):
    """Subtract a per-pixel mean and divide by a per-pixel scale (saved as buffers).

    ``fit(images)`` sets them from training data; the scale is the standard deviation
    plus 0.1, so pixels that barely vary (image borders) are not blown up.
    """

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.register_buffer("mean", Tensor(np.zeros(self.shape, np.float32)))
        self.register_buffer("scale", Tensor(np.ones(self.shape, np.float32)))

    def fit(self, images: Any) -> Standardize:
        x = np.asarray(images, dtype=np.float64)
        self.mean.data[...] = x.mean(axis=0)
        self.scale.data[...] = x.std(axis=0) + 0.1
        return self

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.scale

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


def mlp(in_features: int, classes: int, hidden: Sequence[int] = (256, 128),
        dropout: float = 0.2) -> nn.Sequential:
    """Flatten, then Linear+ReLU layers of the ``hidden`` widths, then a Linear head."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def cnn(in_channels: int, image_size: int, classes: int, channels: Sequence[int] = (32, 64),
        hidden: int = 128) -> nn.Sequential:
    """Two conv blocks (3x3 conv, batch norm, ReLU, 2x2 max-pool), then an MLP head."""
    c1, c2 = channels
    side = image_size // 2 // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 3, padding=1), nn.BatchNorm2d(c1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * side * side, hidden), nn.ReLU(), nn.Dropout(0.25),
        nn.Linear(hidden, classes),
    )


def build_model(kind: str, input_shape: Sequence[int], classes: int) -> nn.Sequential:
    """``kind`` is ``'mlp'`` or ``'cnn'``; ``input_shape`` is (channels, height, width)."""
    c, h, w = input_shape
    if kind == "mlp":
        body = mlp(c * h * w, classes)
    elif kind == "cnn":
        if h != w:
            raise ValueError(f"build_model: the CNN expects square images, got {h}x{w}")
        body = cnn(c, h, classes, (16, 32) if h <= 8 else (32, 64))
    else:
        raise ValueError(f"build_model: unknown model {kind!r}; expected 'mlp' or 'cnn'")
    return nn.Sequential(Standardize(input_shape), *body)
