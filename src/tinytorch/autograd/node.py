"""Graph nodes: one per recorded operation.

A ``Node`` is what PyTorch calls a ``grad_fn`` and TinyTorch calls a
``Function``: it remembers where its inputs came from (``_edges``), what it saved
for backward, and how to turn the output's gradient into input gradients
(``backward``). Each op subclasses it next to its forward code in ``tinytorch.ops``.

A backward rule receives the output gradient followed by the saved values. In the
fast path they are NumPy arrays; with ``create_graph=True`` they are Tensors, so
the same expression records a graph of its own (higher-order gradients).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

# Creation order of nodes: a node's inputs always have smaller numbers than the node,
# so running nodes from the highest number down is a topological order.
next_seq = itertools.count(1).__next__


class Node:
    """Base class of every graph node (``y.grad_fn``).

    Subclasses call ``super().__init__(*inputs)`` to record where the inputs
    came from, then ``save_for_backward(...)`` with whatever ``backward`` needs:
    input Tensors (saved by reference and checked for in-place changes) or
    plain values (axes, shapes, masks). Set ``saves_output = True`` to receive
    the forward output as the last saved value.
    """

    # Every node sets these (``Node.__init__`` and ``Tensor._from_op``; the hot path of
    # elementwise ops, ``ops.common.elementwise``, sets them itself). The rarer attributes
    # below default at class level and land in the instance __dict__ only when used.
    __slots__ = ("_link", "_vals", "_meta", "_seq", "__dict__", "__weakref__")

    # Where the inputs came from: per input, the producing node, the leaf Tensor itself
    # (one that requires grad) or None. A one-input node keeps that edge bare, the others
    # a tuple: one object fewer per op on chains (read them as ``_edges``).
    _link: Any
    _seq: int  # creation order (see next_seq)
    saves_output: bool = False
    _plain: bool = True  # built by Node.__init__ alone (set per subclass)
    _check: bool = False  # backward needs the engine's careful path: saved Tensors to
    # version-check, a modified saved output, packed saved values or hooks
    _out_changed: bool = False  # the saved output was modified in place
    _src: tuple[Any, ...] | None = None  # saved Tensors (for checks and create_graph)
    _vers: tuple[Any, ...] = ()  # their versions when saved
    _hooks: list[Any] | None = None
    _special: bool = False  # set while anomaly detection or forward-mode AD needs this node
    _trace: Any = None  # creation stack, in anomaly mode
    _primals: Any  # the inputs, while a forward-mode tangent is pending
    _out_tangent: Any = None  # the output's tangent, for create_graph over forward mode

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._plain = cls.__init__ is Node.__init__

    def __init__(self, *inputs: Any) -> None:
        # NOTE: one and two inputs are written out: this runs once per recorded op.
        n = len(inputs)
        if n == 1:
            t = inputs[0]
            if isinstance(t, _Tensor) and t.requires_grad:
                self._link = t.grad_fn or t
            else:
                self._link = None
        elif n == 2:
            a, b = inputs
            ea = (a.grad_fn or a) if isinstance(a, _Tensor) and a.requires_grad else None
            eb = (b.grad_fn or b) if isinstance(b, _Tensor) and b.requires_grad else None
            self._link = (ea, eb)
        else:
            self._link = tuple([
                t.grad_fn or t if isinstance(t, _Tensor) and t.requires_grad else None
                for t in inputs
            ])
        self._vals: tuple[Any, ...] | None = ()
        self._seq = next_seq()
        # The output's (shape, dtype), set when the output Tensor is made (Tensor._from_op):
        # what the gradient arriving here must be.
        self._meta: tuple[tuple[int, ...], Any]
        if grad_mode.extras:  # anomaly detection or forward-mode AD is on
            _note_special(self, inputs)

    def save_for_backward(self, *values: Any) -> None:
        """Keep ``values`` for ``backward``; Tensors are checked for in-place edits."""
        for v in values:
            if isinstance(v, _Tensor):
                break
        else:  # no Tensors: nothing to check later
            self._vals = values
            return
        vals: list[Any] = []
        src: list[Any] = []
        vers: list[Any] = []
        for v in values:
            if isinstance(v, _Tensor):
                vals.append(v.data)
                src.append(v)
                vers.append(v._counter()[0])
            else:
                vals.append(v)
                src.append(None)
                vers.append(None)
        self._vals = tuple(vals)
        self._src = tuple(src)
        self._vers = tuple(vers)
        self._check = True

    def backward(self, grad: Any, *saved: Any) -> Any:
        """Return the gradient for each input (a tuple, or one value for one input)."""
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    def jvp(self, primals: tuple[Any, ...], tangents: tuple[Any, ...], out: Any) -> Any:
        """Forward mode: the output's tangent given the inputs (``primals``), their
        tangents (Tensors, or None for inputs without one) and the output."""
        raise NotImplementedError(
            f"{type(self).__name__}: forward-mode AD (jvp) is not implemented for this op"
        )

    # ------------------------------------------------------------------ helpers
    @property
    def _edges(self) -> tuple[Any, ...]:
        """One edge per input (see ``_link``)."""
        link = self._link
        return link if type(link) is tuple else (link,)

    @property
    def needs_input_grad(self) -> tuple[bool, ...]:
        """For each input, whether it needs a gradient (read off the edges)."""
        edges = self._link
        if type(edges) is not tuple:
            return _NEED_1 if edges is not None else _NEED_0
        if len(edges) == 2:
            return _NEED_2[edges[0] is not None][edges[1] is not None]
        return tuple([e is not None for e in edges])

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        """What this node saved: the input Tensors, or plain values (after a
        backward without ``retain_graph`` they have been released)."""
        if self._vals is None:
            raise RuntimeError(_released_message(self))
        if self._src is None:
            return self._vals
        return tuple(v if s is None else s for v, s in zip(self._vals, self._src))

    @property
    def next_functions(self) -> tuple[tuple[Any, int], ...]:
        """``((node, 0), ...)`` per input as in PyTorch: the producing node, an
        ``AccumulateGrad`` for a leaf that requires grad, or ``None``."""
        out: list[tuple[Any, int]] = []
        for e in self._edges:
            if e is None or isinstance(e, Node):
                out.append((e, 0))
            else:
                out.append((AccumulateGrad(e), 0))
        return tuple(out)

    def register_hook(self, fn: Any) -> Any:
        """Call ``fn(grad)`` with the gradient of this node's output before it is used;
        a non-None return value replaces the gradient."""
        if self._hooks is None:
            self._hooks = []
            self._check = True  # the engine runs hooks on its careful path
        self._hooks.append(fn)
        return _RemovableHandle(self._hooks, fn)

    def apply(self, grad_output: Any) -> tuple[Any, ...]:
        """Gradients for each input given the output gradient (TinyTorch's API).

        Values are NumPy arrays, summed back to each input's shape.

        >>> import numpy as np, tinytorch as tt
        >>> from tinytorch.core.autograd import MulBackward
        >>> a = tt.tensor([1.0, 2.0], dtype=tt.float64, requires_grad=True)
        >>> b = tt.tensor([3.0, 4.0], dtype=tt.float64, requires_grad=True)
        >>> MulBackward(a, b).apply(np.ones(2))
        (array([3., 4.]), array([1., 2.]))
        """
        from tinytorch.autograd.engine import call_rule

        return call_rule(self, np.asarray(grad_output), create_graph=False)


# Every (shape, dtype) a node output has had, as the one tuple all such nodes share in
# ``_meta``: a deep graph then holds no record per node (nor the collector work one costs).
_METAS: dict[tuple[Any, Any], tuple[Any, Any]] = {}


def shared_meta(meta: tuple[Any, Any]) -> tuple[Any, Any]:
    """The kept tuple equal to ``meta``, a node output's ``(shape, dtype)``."""
    kept = _METAS.get(meta)
    if kept is None:
        if len(_METAS) >= 1024:  # bounded: a program with ever-new shapes starts over
            _METAS.clear()
        kept = _METAS[meta] = meta
    return kept


# Shared flag tuples for needs_input_grad: no allocation per call.
_NEED_0 = (False,)
_NEED_1 = (True,)
_NEED_2 = (((False, False), (False, True)), ((True, False), (True, True)))


def output_modified(t: Tensor | None) -> None:
    """``t``'s memory was written in place: a node that saved ``t`` (or a tensor ``t``
    is a view of) as its output must refuse to run its backward with it."""
    while t is not None:
        fn = t.grad_fn
        if fn is not None and fn.saves_output and fn._vals and fn._vals[-1] is t.data:
            fn._out_changed = fn._check = True
        t = t._base


def _note_special(node: Node, inputs: tuple[Any, ...]) -> None:
    """Record what anomaly detection / forward-mode AD will need from this node."""
    if anomaly.enabled:
        node._trace = anomaly.capture_stack()
        node._special = True
    if forward_ad.level and any(forward_ad.tangent_of(t) is not None for t in inputs):
        node._primals = inputs
        node._special = True
    if graph.current() is not None:
        node._special = True  # pack what it saves once the output exists


def finish_special(t: Tensor, node: Node) -> Tensor:
    """The slow end of ``Tensor._from_op`` for a node in a special mode."""
    attached = grad_mode.enabled and any(e is not None for e in node._edges)
    if not attached:  # recorded only to push a tangent forward
        t.grad_fn = None
        t.requires_grad = False
    if anomaly.enabled:
        anomaly.check_output(node, t.data)
    if attached and graph.current() is not None:
        graph.pack_saved(node)
    primals = node.__dict__.get("_primals")
    if primals is not None:
        del node._primals  # do not keep the inputs alive through the graph
        tangents = tuple(forward_ad.tangent_of(p) for p in primals)
        # NOTE: the rule runs with tangents hidden (level 0), so its own arithmetic on
        # dual inputs does not push tangents again; grad mode stays as it is, so reverse
        # mode can see through the tangent it builds (jacrev of jacfwd).
        level, forward_ad.level = forward_ad.level, 0
        try:
            tangent = node.jvp(primals, tangents, t)
        finally:
            forward_ad.level = level
        if tangent is not None:
            t._fw_grad = node._out_tangent = fit_tangent(node, tangent, t)
            t._fw_level = forward_ad.level
    return t


def fit_tangent(node: Node, tangent: Any, out: Tensor) -> Any:
    """Tangents take the output's shape (broadcasting up) and dtype."""
    if not isinstance(tangent, _Tensor):
        tangent = _Tensor._from_op(np.asarray(tangent), None)
    if tangent.shape != out.shape:
        try:
            tangent = tangent.expand(out.shape)
        except ValueError:
            raise RuntimeError(
                f"{node.name()}: jvp returned a tangent of shape {tangent.shape} for an output "
                f"of shape {out.shape}"
            ) from None
    if tangent.dtype != out.dtype:
        tangent = tangent.astype(out.dtype)
    return tangent


class AccumulateGrad:
    """Stands for a leaf tensor in ``next_functions`` (as in PyTorch)."""

    __slots__ = ("variable",)

    def __init__(self, variable: Tensor) -> None:
        self.variable = variable

    def name(self) -> str:
        return "AccumulateGrad"

    def __repr__(self) -> str:
        return "<AccumulateGrad>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AccumulateGrad) and other.variable is self.variable

    def __hash__(self) -> int:
        return id(self.variable)


class _RemovableHandle:
    """Returned by ``register_hook``; ``.remove()`` takes the hook out again."""

    __slots__ = ("_hooks", "_fn")

    def __init__(self, hooks: list[Any], fn: Any) -> None:
        self._hooks = hooks
        self._fn = fn

    def remove(self) -> None:
        for i, h in enumerate(self._hooks):
            if h is self._fn:
                del self._hooks[i]
                return


def _released_message(node: Node) -> str:
    return (
        f"Trying to backward through the graph a second time: the values saved by "
        f"{node.name()} were freed after the first backward. Pass retain_graph=True to "
        f"the first backward() if you need to backward through the graph again."
    )


# Bound at the bottom to avoid an import cycle (tensor.py imports this module).
from tinytorch.autograd import anomaly, forward_ad, grad_mode, graph  # noqa: E402
from tinytorch.tensor import Tensor  # noqa: E402
from tinytorch.tensor import Tensor as _Tensor  # noqa: E402
