"""``from tinytorch.core.tensor import Tensor`` (TinyTorch's path)."""

from tinytorch.tensor import Tensor, tensor

__all__ = ["Tensor", "tensor"]
