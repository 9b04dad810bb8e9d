"""TinyTorch's ``tinytorch.core.layers``: ``Linear``, ``Dense``, ``Dropout``.

>>> from tinytorch.core.layers import Dense
>>> layer = Dense(3, 2)
>>> layer.weights.shape, layer.bias.shape
((3, 2), (2,))
"""

from __future__ import annotations

from typing import Any

from tinytorch.nn import Dropout, Linear, Module, Parameter, Sequential

__all__ = ["Dense", "Dropout", "Linear", "Module", "Parameter", "Sequential"]


class Dense(Linear):
    """TinyTorch's older name: ``Dense(input_size, output_size)`` with ``.weights``."""

    def __init__(self, input_size: int, output_size: int, bias: bool = True, **kwargs: Any):
        super().__init__(input_size, output_size, bias=bias, **kwargs)

    @property
    def weights(self) -> Parameter:
        return self.weight

    @weights.setter
    def weights(self, value: Any) -> None:
        self.weight = value
