"""Gradient checkpointing: trade compute for memory.

``checkpoint(fn, *args)`` runs ``fn`` without recording its graph, so none of its
intermediate activations are kept; only the inputs are. One node stands for the
whole call; its backward runs ``fn`` again, with grad enabled, on detached copies of
the inputs and backpropagates through that fresh graph. The gradients are exactly the
plain run's (the same float operations run), at the price of one more forward pass.

``checkpoint_sequential(functions, segments, x)`` splits a chain of callables (or the
modules of a ``Sequential``) into segments and checkpoints each but the last, so at
most one segment's activations are alive at a time.

>>> import tinytorch as tt
>>> from tinytorch.utils.checkpoint import checkpoint
>>> w = tt.tensor([[0.5, -1.0], [2.0, 1.0]], requires_grad=True)
>>> x = tt.tensor([[1.0, 2.0]], requires_grad=True)
>>> y = checkpoint(lambda x: tt.tanh(x @ w) @ w, x)
>>> y.grad_fn
<CheckpointBackward>
>>> y.sum().backward()
>>> x.grad.shape, w.grad.shape
((1, 2), (2, 2))

Like PyTorch's reentrant checkpoint, tensors that ``fn`` uses without receiving them
as arguments (a layer's weights) get their gradients accumulated into ``.grad`` when
the recomputation is backpropagated; ``autograd.grad`` reaches only the arguments, and
double backward (``create_graph=True``) through a checkpoint is not supported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinytorch import random as _random
from tinytorch.autograd import engine, forward_ad, grad_mode
from tinytorch.autograd.node import Node
from tinytorch.tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential"]


class CheckpointBackward(Node):
    """Stands for a whole ``checkpoint(fn, *args)`` call: backward recomputes ``fn``."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...],
                 rng_state: Any = None, nargs: int | None = None) -> None:
        super().__init__(*args)
        self.save_for_backward(*args)  # Tensors are checked for in-place changes
        self.nargs = len(args) if nargs is None else nargs  # fn's own arguments
        self.fn = fn
        self.rng_state = rng_state
        self.forward_tangent: Any = None  # set by checkpoint() in forward mode

    def backward(self, grad: Any, *saved: Any) -> Any:
        if isinstance(grad, Tensor):
            raise RuntimeError(
                "checkpoint: double backward (create_graph=True) through a checkpointed "
                "function is not supported; run that part without checkpoint")
        src = self._src or (None,) * len(saved)
        if len(saved) > self.nargs:  # the stand-in leaf added by checkpoint()
            saved, src = saved[:self.nargs], src[:self.nargs]
        inputs = []
        for value, tensor, need in zip(saved, src, self.needs_input_grad):
            if tensor is None:  # a plain argument (number, array, flag): passed as given
                inputs.append(value)
                continue
            copy = Tensor._from_op(value, None)  # detached: the same array, no history
            copy.requires_grad = need
            inputs.append(copy)
        with grad_mode.enable_grad(), _rng_restored(self.rng_state):
            out = self.fn(*inputs)
        if not isinstance(out, Tensor) or not out.requires_grad:
            return (None,) * len(self._edges)
        engine.backward(out, grad)  # also accumulates into tensors fn used internally
        grads = [i.grad.data if need and i.grad is not None else None
                 for i, need in zip(inputs, self.needs_input_grad)]
        return (*grads, *[None] * (len(self._edges) - len(grads)))

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        # The forward pass already pushed the tangents through fn (forward mode keeps
        # no activations, so there is nothing to save): hand that tangent on.
        tangent, self.forward_tangent = self.forward_tangent, None
        return tangent


class _rng_restored:
    """Run with the default generator set to ``state``; put the current state back after
    (so dropout masks are the same in the recomputation as in the forward pass)."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def __enter__(self) -> None:
        if self.state is not None:
            self.current = _random.get_rng_state()
            _random.set_rng_state(self.state)

    def __exit__(self, *exc: object) -> None:
        if self.state is not None:
            _random.set_rng_state(self.current)


def checkpoint(fn: Callable[..., Tensor], *args: Any, preserve_rng_state: bool = True) -> Tensor:
    """``fn(*args)`` without keeping ``fn``'s intermediate activations; backward
    recomputes them. ``fn`` must return one Tensor.

    Under grad mode the result always carries the checkpoint node, even when no
    argument requires grad: ``fn`` may use trainable tensors it was not given (weights),
    and that cannot be known without recording it. With ``preserve_rng_state`` the
    recomputation sees the same random numbers (dropout) as the forward pass.

    >>> import tinytorch as tt
    >>> from tinytorch.utils.checkpoint import checkpoint
    >>> x = tt.tensor([1.0, 2.0], requires_grad=True)
    >>> checkpoint(lambda x: (tt.exp(x) * x).sum(), x).backward()
    >>> x.grad
    tensor([ 5.4366, 22.1672])
    """
    if not grad_mode.enabled:
        return fn(*args)
    state = _random.get_rng_state() if preserve_rng_state else None
    with grad_mode.no_grad():
        out = fn(*args)
    if not isinstance(out, Tensor):
        raise TypeError(f"checkpoint: the function must return a single Tensor, got "
                        f"{type(out).__name__}")
    edges = args
    if not any(isinstance(a, Tensor) and a.requires_grad for a in args):
        # NOTE: a node needs one edge to count as part of the graph (in special modes
        # the engine drops edgeless nodes); this stand-in leaf never gets a gradient.
        edges = (*args, Tensor._from_op(np.zeros(()), None).requires_grad_())
    node = CheckpointBackward(fn, edges, state, nargs=len(args))
    node.forward_tangent = forward_ad.tangent_of(out)
    return Tensor._from_op(out.data, node)


class _Segment:
    """A run of callables applied one after another (what one checkpoint recomputes)."""

    def __init__(self, functions: list[Callable[[Any], Any]]) -> None:
        self.functions = functions

    def __call__(self, x: Any) -> Any:
        for f in self.functions:
            x = f(x)
        return x


def checkpoint_sequential(functions: Any, segments: int, x: Tensor,
                          preserve_rng_state: bool = True) -> Tensor:
    """Apply ``functions`` (callables, or a ``Sequential``'s modules) in order to ``x``,
    in ``segments`` checkpointed pieces (the last one runs normally, its output is
    needed for backward at once). Peak memory falls from all activations to about one
    segment's plus the segment boundaries.

    >>> import tinytorch as tt
    >>> from tinytorch.utils.checkpoint import checkpoint_sequential
    >>> w = tt.tensor([[1.0, 0.5], [0.0, 1.0]], requires_grad=True)
    >>> layers = [lambda h: tt.tanh(h @ w)] * 6
    >>> y = checkpoint_sequential(layers, 3, tt.tensor([[1.0, -1.0]]))
    >>> y.sum().backward()
    >>> w.grad.shape
    (2, 2)
    """
    fns = list(functions)
    if not fns:
        raise ValueError("checkpoint_sequential: no functions given")
    if not isinstance(segments, int) or segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be a positive int, got "
                         f"{segments!r}")
    segments = min(segments, len(fns))
    size, extra = divmod(len(fns), segments)
    start = 0
    for s in range(segments):
        end = start + size + (1 if s < extra else 0)
        piece = _Segment(fns[start:end])
        x = piece(x) if s == segments - 1 else checkpoint(
            piece, x, preserve_rng_state=preserve_rng_state)
        start = end
    return x
