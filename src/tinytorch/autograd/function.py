"""User-defined differentiable ops, the PyTorch way.

Subclass ``Function`` with static ``forward(ctx, *args)`` and ``backward(ctx, *grads)``
(and optionally ``jvp(ctx, *tangents)`` for forward mode), then call ``MyOp.apply(...)``.
``ctx`` is the graph node itself: ``ctx.save_for_backward(*tensors)``,
``ctx.saved_tensors``, ``ctx.needs_input_grad`` and any attribute you set.

>>> import tinytorch as tt
>>> class Cube(tt.autograd.Function):
...     @staticmethod
...     def forward(ctx, x):
...         ctx.save_for_backward(x)
...         return x * x * x
...     @staticmethod
...     def backward(ctx, grad):
...         (x,) = ctx.saved_tensors
...         return grad * 3 * x * x
>>> x = tt.tensor([2.0], requires_grad=True)
>>> y = Cube.apply(x)
>>> y.backward()
>>> x.grad, y.grad_fn
(tensor([12.]), <CubeBackward>)

This is separate from TinyTorch's node API (``AddBackward(a, b).apply(g)``): there
``apply`` is called on a node instance and computes gradients; here ``apply`` is
called on the ``Function`` class and runs the forward pass.
"""

from __future__ import annotations

from typing import Any

from tinytorch.autograd import forward_ad, grad_mode
from tinytorch.autograd.node import Node
from tinytorch.tensor import Tensor


class FunctionCtx(Node):
    """The node recorded for a ``Function``; also the ``ctx`` its methods receive."""

    fn: type[Function]

    def name(self) -> str:
        return f"{self.fn.__name__}Backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        saved = Node.saved_tensors.fget(self)  # type: ignore[attr-defined]
        slots = self.__dict__.get("_out_slots", ())
        if not slots:
            return saved
        saved = list(saved)
        for i in slots:  # the output, as a tensor whose grad_fn is this node
            out = Tensor._from_op(self._vals[i], None)  # type: ignore[index]
            out.requires_grad = True
            out.grad_fn = self
            saved[i] = out
        return tuple(saved)

    def backward(self, grad: Any, *saved: Any) -> Any:
        create_graph = isinstance(grad, Tensor)
        g = grad if create_graph else Tensor._from_op(grad, None)
        with grad_mode.set_grad_enabled(create_graph):
            grads = self.fn.backward(self, g)
        if not isinstance(grads, tuple):
            grads = (grads,)
        n = len(self._edges)
        if len(grads) < n:
            raise RuntimeError(
                f"{self.name()}: backward returned {len(grads)} gradients for {n} inputs"
            )
        grads = grads[:n]  # PyTorch allows trailing gradients for non-tensor arguments
        out: list[Any] = []
        for i, gi in enumerate(grads):
            if gi is None:
                out.append(None)
            elif isinstance(gi, Tensor):
                out.append(gi if create_graph else gi.data)
            else:
                raise TypeError(
                    f"{self.name()}: backward must return Tensors or None, got "
                    f"{type(gi).__name__} for input {i}"
                )
        return tuple(out)

    def jvp(self, primals: tuple[Any, ...], tangents: tuple[Any, ...], out: Any) -> Any:
        if "jvp" not in vars(self.fn) and not any(
            "jvp" in vars(c) for c in self.fn.__mro__[1:] if c is not Function
        ):
            raise NotImplementedError(f"{self.name()}: the Function defines no jvp")
        return self.fn.jvp(self, *tangents)  # type: ignore[attr-defined]


class Function:
    """Base class for custom differentiable operations (see the module docstring)."""

    @staticmethod
    def forward(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("Function subclasses must define forward(ctx, ...)")

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        raise NotImplementedError("Function subclasses must define backward(ctx, grad)")

    @classmethod
    def apply(cls, *args: Any) -> Any:
        """Run ``forward`` (not recorded) and record one node for the whole op."""
        ctx = FunctionCtx(*args)
        ctx.fn = cls
        with grad_mode.no_grad():
            out = cls.forward(ctx, *args)
        if not isinstance(out, Tensor):
            raise TypeError(
                f"{cls.__name__}.forward must return a single Tensor, got {type(out).__name__}"
            )
        if ctx._src is not None and any(s is out for s in ctx._src):
            # Saving the output itself would make a cycle (node -> output -> node):
            # keep its array and rebuild it on unpacking, like the built-in ops do.
            slots = tuple(i for i, s in enumerate(ctx._src) if s is out)
            ctx._out_slots = slots  # type: ignore[attr-defined]
            ctx._src = tuple(None if s is out else s for s in ctx._src)
        needed = (grad_mode.enabled and any(ctx.needs_input_grad)) or (
            forward_ad.level and ctx._special
        )
        if not needed:
            return Tensor._from_op(out.data, None)
        return Tensor._from_op(out.data, ctx)
