"""Hooks on what the graph saves: ``saved_tensors_hooks(pack, unpack)``.

While the context is active, every input Tensor an op saves for backward is passed to
``pack`` and only its result is kept; backward calls ``unpack`` to get a Tensor
back (outputs an op keeps, like exp's, stay plain arrays). Use it to offload,
compress or log saved activations.

>>> import numpy as np, tinytorch as tt
>>> packed = []
>>> def pack(t):
...     packed.append(t.shape)
...     return t.numpy().copy()          # keep a plain copy instead
>>> x = tt.tensor([1.0, 2.0], requires_grad=True)
>>> with tt.autograd.graph.saved_tensors_hooks(pack, tt.tensor):
...     y = (x * x).sum()
>>> y.backward()
>>> packed, x.grad
([(2,), (2,)], tensor([2., 4.]))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tinytorch.autograd import grad_mode

_stack: list[tuple[Callable[[Any], Any], Callable[[Any], Any]]] = []


class saved_tensors_hooks:
    """Context manager installing a ``(pack_hook, unpack_hook)`` pair."""

    def __init__(self, pack_hook: Callable[[Any], Any], unpack_hook: Callable[[Any], Any]):
        self.hooks = (pack_hook, unpack_hook)

    def __enter__(self) -> None:
        _stack.append(self.hooks)
        grad_mode.extras += 1

    def __exit__(self, *exc: object) -> None:
        _stack.pop()
        grad_mode.extras -= 1


def current() -> tuple[Callable[[Any], Any], Callable[[Any], Any]] | None:
    """The innermost active hook pair, if any."""
    return _stack[-1] if _stack else None


def pack_saved(node: Any) -> None:
    """Replace the Tensors ``node`` saved by what the active pack hook returns."""
    hooks = current()
    if hooks is None or node._vals is None:
        return
    pack, unpack = hooks
    vals = list(node._vals)
    src = list(node._src) if node._src is not None else [None] * len(vals)
    packed = {}
    for i, s in enumerate(src):
        if s is not None:
            packed[i] = pack(s)
            vals[i] = src[i] = None
    if packed:
        node._packed = (packed, unpack)
        node._vals = tuple(vals)
        node._src = tuple(src)  # all None now
        node._check = True  # backward takes the slow path, which unpacks


def unpack_saved(node: Any) -> None:
    """Undo ``pack_saved`` just before the node's rule runs."""
    packed, unpack = node._packed
    vals = list(node._vals)
    src = list(node._src)
    for i, p in packed.items():
        t = unpack(p)
        if not hasattr(t, "requires_grad"):
            raise TypeError(f"{node.name()}: unpack hook must return a Tensor, got {type(t)}")
        vals[i] = t.data
        src[i] = t
    node._vals = tuple(vals)
    node._src = tuple(src)
    node._vers = tuple(None if s is None else s._counter()[0] for s in src)
    del node._packed
