"""Losses as modules. Each takes ``reduction='mean' | 'sum' | 'none'``; class and element
weights are buffers, so they travel with ``state_dict`` as in PyTorch."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch.nn import functional as F
from tinytorch.nn.module import Module
from tinytorch.ops.common import data_of
from tinytorch.ops.loss import _check_reduction
from tinytorch.tensor import Tensor


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        _check_reduction(type(self).__name__, reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class _WeightedLoss(_Loss):
    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", None if weight is None
                             else np.array(data_of(weight)))


class MSELoss(_Loss):
    """Mean squared error.

    >>> import tinytorch as tt
    >>> from tinytorch import nn
    >>> nn.MSELoss()(tt.tensor([1.0, 3.0]), tt.tensor([0.0, 0.0])).item()
    5.0
    """

    def forward(self, predictions: Any, targets: Any) -> Tensor:
        return F.mse_loss(predictions, targets, self.reduction)


class L1Loss(_Loss):
    """Mean absolute error."""

    def forward(self, predictions: Any, targets: Any) -> Tensor:
        return F.l1_loss(predictions, targets, self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy of logits ``(N, C)`` against class indices ``(N,)`` or class
    probabilities ``(N, C)``, with class ``weight``, ``ignore_index`` and
    ``label_smoothing`` as in PyTorch.

    >>> import tinytorch as tt
    >>> from tinytorch import nn
    >>> loss = nn.CrossEntropyLoss(label_smoothing=0.1)
    >>> round(loss(tt.tensor([[2.0, 0.0]]), tt.tensor([0], dtype="int64")).item(), 4)
    0.2269
    """

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, logits: Any, targets: Any) -> Tensor:
        return F.cross_entropy(logits, targets, self.weight, self.ignore_index,
                               self.reduction, self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of class indices given log-probabilities (use after
    ``LogSoftmax``)."""

    def __init__(self, weight: Any = None, ignore_index: int = -100,
                 reduction: str = "mean") -> None:
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, log_probs: Any, targets: Any) -> Tensor:
        return F.nll_loss(log_probs, targets, self.weight, self.ignore_index, self.reduction)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities in (0, 1) (use after ``Sigmoid``; prefer
    ``BCEWithLogitsLoss``, which is stable)."""

    def forward(self, predictions: Any, targets: Any) -> Tensor:
        return F.binary_cross_entropy(predictions, targets, self.weight, self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    """Sigmoid and binary cross-entropy in one stable step (finite for logits of size
    1e4); ``pos_weight`` scales the positive term per class."""

    def __init__(self, weight: Any = None, reduction: str = "mean",
                 pos_weight: Any = None) -> None:
        super().__init__(weight, reduction)
        self.register_buffer("pos_weight", None if pos_weight is None
                             else np.array(data_of(pos_weight)))

    def forward(self, logits: Any, targets: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, targets, self.weight,
                                                  self.reduction, self.pos_weight)
