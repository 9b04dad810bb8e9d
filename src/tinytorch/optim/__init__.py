"""Optimizers and learning-rate schedules with PyTorch's update rules and state dicts.

>>> import tinytorch as tt
>>> w = tt.tensor([2.0], requires_grad=True)
>>> opt = tt.optim.Adam([w], lr=0.1)
>>> for _ in range(100):
...     opt.zero_grad()
...     ((w - 5.0) ** 2).sum().backward()
...     opt.step()
>>> bool(abs(w.item() - 5.0) < 0.5)
True
"""

from tinytorch.optim import lr_scheduler
from tinytorch.optim.adam import Adam, AdamW
from tinytorch.optim.optimizer import Optimizer
from tinytorch.optim.rmsprop import RMSprop
from tinytorch.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
