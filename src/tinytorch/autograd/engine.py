"""The backward engine: walks the graph from the outputs to the leaves.

Order is found iteratively (nodes run newest first, no recursion), so graphs of
any depth work. Each node's gradient is summed from all its consumers before the
node runs; every gradient a rule returns goes through one check (``_fit``) that
sums away broadcasting and casts to the input's dtype, naming the op when the
shape cannot match. Saved values are dropped as soon as a node has run unless
``retain_graph`` is set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from heapq import heappop, heappush
from typing import Any

import numpy as np

from tinytorch.autograd import anomaly, forward_ad, grad_mode, graph
from tinytorch.autograd.node import Node, _released_message
from tinytorch.tensor import Tensor

_ndarray = np.ndarray


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` (array or Tensor) down to ``shape``, undoing NumPy broadcasting;
    a ValueError when ``shape`` does not broadcast to ``grad``'s shape.

    >>> import numpy as np
    >>> unbroadcast(np.ones((2, 3, 4)), (3, 1)).tolist()
    [[8.0], [8.0], [8.0]]
    """
    gshape = grad.shape
    lead = len(gshape) - len(shape)
    # the axes where grad differs from shape: each must be a size-1 axis it stretched
    kept = [lead + i for i, n in enumerate(shape) if lead >= 0 and n != gshape[lead + i]]
    if lead < 0 or any(shape[k - lead] != 1 for k in kept):
        raise ValueError(
            f"unbroadcast: shape {tuple(shape)} does not broadcast to the gradient's shape "
            f"{tuple(gshape)}"
        )
    if not kept:
        if not lead:
            return grad
        if shape:  # only leading axes go (a bias): one sum gives a fresh array of shape
            return grad.sum(axis=tuple(range(lead)))
    grad = grad.sum(axis=tuple(range(lead)) + tuple(kept), keepdims=True)
    return grad.reshape(shape) if lead else grad


def _fit(grad: Any, shape: tuple[int, ...], dtype: Any, node: Any, edge: Any) -> Any:
    """The one check every gradient passes: sum away broadcasting, cast to the
    input's dtype, and name the op when the shape cannot match."""
    if not hasattr(grad, "shape"):
        grad = np.asarray(grad)
    if grad.shape != shape:
        try:
            grad = unbroadcast(grad, shape)
        except ValueError:
            raise RuntimeError(
                f"{_name(node)}: backward returned a gradient of shape {tuple(grad.shape)} for "
                f"input {_input_index(node, edge)}, which has shape {shape}"
            ) from None
    if grad.dtype != dtype:
        grad = grad.astype(dtype)
    return grad


def _input_index(node: Any, edge: Any) -> int:
    return next((i for i, e in enumerate(node._edges) if e is edge), -1)


def _name(node: Any) -> str:
    return node.name() if hasattr(node, "name") else type(node).__name__


def _target(edge: Any) -> tuple[tuple[int, ...], Any]:
    """Shape and dtype an edge's gradient must have."""
    if isinstance(edge, Node):
        return edge._meta
    return edge.data.shape, edge.data.dtype


def _check_saved(node: Node) -> None:
    """Raise if a tensor this node saved was modified in place since."""
    if node._src is not None:
        for s, v in zip(node._src, node._vers):
            if s is not None and s._vc[0] != v:
                raise RuntimeError(
                    f"{node.name()}: one of the tensors it saved for backward (shape "
                    f"{s.shape}) was modified by an in-place operation (version {v} -> "
                    f"{s._vc[0]}). Clone it before modifying, or avoid the in-place op."
                )
    if node._out_changed:
        raise RuntimeError(
            f"{node.name()}: its output, saved for backward, was modified by an in-place "
            f"operation. Clone the output before modifying it."
        )


def _graph_args(node: Node) -> list[Any]:
    """Saved values as Tensors connected to the graph (for ``create_graph=True``)."""
    args = list(node._vals)  # type: ignore[arg-type]
    if node._src is not None:
        for i, s in enumerate(node._src):
            if s is not None:
                args[i] = s
    if node.saves_output:
        out = Tensor._from_op(args[-1], None)
        out.requires_grad = True
        out.grad_fn = node
        tangent = node.__dict__.get("_out_tangent")
        if tangent is not None:  # forward mode over this backward (jacfwd of jacrev)
            out._fw_grad = tangent
            out._fw_level = forward_ad.level
        args[-1] = out
    return args


def _run_rule(node: Node, grad: Any, create_graph: bool) -> tuple[Any, ...]:
    """Run one node's backward rule after checking its saved values are usable."""
    vals = node._vals
    if vals is None:
        raise RuntimeError(_released_message(node))
    if node._check:
        if "_packed" in node.__dict__:
            graph.unpack_saved(node)
            vals = node._vals
        _check_saved(node)
    if create_graph:
        with grad_mode.enable_grad():
            out = node.backward(grad, *_graph_args(node))
    else:
        out = node.backward(grad, *(vals or ()))
    link = node._link
    if type(out) is not tuple or len(out) != (len(link) if type(link) is tuple else 1):
        out = _as_grad_tuple(node, out)
    return out


def _as_grad_tuple(node: Node, out: Any) -> tuple[Any, ...]:
    """A rule for one input may return a bare gradient; anything else must match."""
    if type(out) is not tuple:
        out = (out,)
    if len(out) != len(node._edges):
        raise RuntimeError(
            f"{node.name()}: backward returned {len(out)} gradients for "
            f"{len(node._edges)} inputs"
        )
    return out


def call_rule(node: Node, grad: Any, create_graph: bool) -> tuple[Any, ...]:
    """One node's input gradients, each fitted to its input's shape and dtype."""
    out = _run_rule(node, grad, create_graph)
    fitted = []
    for e, g in zip(node._edges, out):
        if e is not None and g is not None:
            g = _fit(g, *_target(e), node, e)
        fitted.append(g)
    return tuple(fitted)


def _run_hooks(hooks: list[Any], grad: Any, create_graph: bool) -> Any:
    """Tensor hooks see and may replace the gradient (always as a Tensor)."""
    for hook in list(hooks):
        gt = grad if create_graph else Tensor._from_op(grad, None)
        res = hook(gt)
        if res is not None:
            if not isinstance(res, Tensor):
                raise TypeError(f"hook {hook!r} must return a Tensor or None, got {type(res)}")
            if res.shape != gt.shape:
                raise RuntimeError(
                    f"hook {hook!r} changed the gradient's shape from {gt.shape} to {res.shape}"
                )
            grad = res if create_graph else res.data
    return grad


def _accumulate(leaf: Tensor, grad: Any, fresh: bool, create_graph: bool) -> None:
    """Add ``grad`` into ``leaf.grad``; ``fresh`` means nothing else holds the array."""
    if leaf._hooks:
        grad = _run_hooks(leaf._hooks, grad, create_graph)
        fresh = False
    old = leaf.grad
    if create_graph:
        if not isinstance(grad, Tensor):
            grad = Tensor._from_op(grad, None)
        leaf.grad = grad if old is None else old + grad
    elif old is None:
        leaf.grad = Tensor._from_op(grad if fresh else np.array(grad), None)
    elif old.requires_grad or old.data.shape != grad.shape:
        leaf.grad = Tensor._from_op(old.data + grad, None)
    else:
        old.data += grad


def _seed(t: Tensor, gradient: Any, create_graph: bool) -> Any:
    if gradient is None:
        seed: Any = np.ones_like(t.data)
    else:
        arr = gradient.data if isinstance(gradient, Tensor) else np.asarray(gradient)
        if arr.shape != t.shape:
            raise RuntimeError(
                f"backward: gradient has shape {arr.shape} but the output has shape {t.shape}"
            )
        if create_graph and isinstance(gradient, Tensor):
            return gradient
        seed = arr.astype(t.dtype, copy=False)
    return Tensor._from_op(seed, None) if create_graph else seed


def _execute(
    roots: Sequence[Tensor],
    seeds: Sequence[Any],
    keep: bool,
    create_graph: bool,
    capture: dict[Any, int] | None = None,
) -> list[Any] | None:
    """Propagate ``seeds`` from ``roots``; accumulate into leaves, or, when
    ``capture`` maps graph positions (nodes or leaf tensors) to slots, return the
    gradients arriving there instead.

    Order: a node runs once every consumer that will send it a gradient has run.
    Consumers are always created after what they consume, so running the pending
    nodes latest-created first (a heap on ``-node._seq``) guarantees it, with no
    pass over the graph beforehand. A node whose gradient is complete and which is
    newer than everything pending runs straight away, off the heap: long chains
    never touch it."""
    captured: list[Any] | None = None if capture is None else [None] * (max(capture.values()) + 1)
    grads: dict[Node, Any] = {}  # pending nodes -> the sum of the gradients received so far
    heap: list[tuple[int, int, Node]] = []  # pending nodes as (-seq, id, node): ids break ties
    for t, s in zip(roots, seeds):
        fn = t.grad_fn
        if fn is None:  # the root is a leaf itself
            if capture is None:
                _accumulate(t, s, False, create_graph)
            elif t in capture:
                _put(captured, capture[t], s)  # type: ignore[arg-type]
        elif fn in grads:
            grads[fn] = grads[fn] + s
        else:
            grads[fn] = s
            heappush(heap, (-fn._seq, id(fn), fn))
    needed = None if capture is None else _nodes_leading_to(list(grads), capture)

    # Hooks, captures, checks, anomaly mode and create_graph go the careful way.
    careful = create_graph or capture is not None or (grad_mode.extras and anomaly.enabled)
    prev_mode = grad_mode.enabled
    grad_mode.enabled = create_graph
    try:
        while heap:
            node: Node | None = heappop(heap)[2]
            g = grads.pop(node)  # type: ignore[arg-type]
            while node is not None:
                vals = node._vals
                if careful or node._check or vals is None:
                    if node._hooks:
                        g = _run_hooks(node._hooks, g, create_graph)
                    if capture is not None:
                        slot = capture.get(node)
                        if slot is not None:
                            _put(captured, slot, g)  # type: ignore[arg-type]
                        if node not in needed:  # type: ignore[operator]
                            break  # nothing upstream of it is captured
                    in_grads = _run_rule(node, g, create_graph)
                    if grad_mode.extras and anomaly.enabled:
                        anomaly.check_grads(node, in_grads)
                    if not keep:
                        node._vals = None
                        if node._src is not None:  # only then set on the node itself
                            node._src = None
                else:  # arrays in and out, nothing to check
                    # NOTE: a call with *args costs far more than a plain one in
                    # CPython; most rules take one or two saved values.
                    n = len(vals)
                    if n == 1:
                        in_grads = node.backward(g, vals[0])
                    elif n == 2:
                        in_grads = node.backward(g, vals[0], vals[1])
                    else:
                        in_grads = node.backward(g, *vals)
                    if not keep:
                        node._vals = None
                    if type(in_grads) is not tuple:
                        # NOTE: the chain case. A one-input rule returned its gradient
                        # bare; when it already fits the input's node, nothing else is
                        # pending and that node is newer than all pending ones, it runs
                        # next, straight away.
                        # (A pending node is on the heap and not newer than itself.)
                        e = node._link  # a tuple unless the node has one input
                        if isinstance(e, Node) and in_grads is not None:
                            shape, dtype = e._meta
                            if (
                                in_grads.shape == shape and in_grads.dtype is dtype
                                and (not heap or heap[0][0] > -e._seq)
                            ):
                                node, g = e, in_grads
                                continue
                        in_grads = _as_grad_tuple(node, in_grads)
                this, node, handoff = node, None, None
                edges = this._link
                if type(edges) is not tuple:
                    edges = (edges,)
                if len(in_grads) != len(edges):
                    in_grads = _as_grad_tuple(this, in_grads)  # raises: counts differ
                for e, gi in zip(edges, in_grads):
                    if gi is None or e is None:
                        continue
                    if isinstance(e, Tensor):  # a leaf
                        data = e.data
                        if gi.shape != data.shape or gi.dtype != data.dtype:
                            gi = _fit(gi, data.shape, data.dtype, this, e)
                        if capture is None:
                            fresh = gi is not g and getattr(gi, "base", 0) is None
                            _accumulate(e, gi, fresh, create_graph)
                        elif e in capture:
                            _put(captured, capture[e], gi)  # type: ignore[arg-type]
                        continue
                    shape, dt = e._meta
                    if gi.shape != shape or (gi.dtype is not dt and gi.dtype != dt):
                        gi = _fit(gi, shape, dt, this, e)
                    prev = grads.get(e)
                    if prev is not None:
                        grads[e] = prev + gi
                    elif e is node:  # the same input twice (x * x)
                        handoff = handoff + gi
                    elif node is None:  # candidate to run next, off the heap
                        node, handoff = e, gi
                    else:
                        grads[e] = gi
                        heappush(heap, (-e._seq, id(e), e))
                # NOTE: a pending node newer than the candidate may still send it a
                # gradient (it could be one of its consumers): then it waits its turn.
                if node is not None and heap and heap[0][0] < -node._seq:
                    grads[node] = handoff
                    heappush(heap, (-node._seq, id(node), node))
                    node = None
                g = handoff
    finally:
        grad_mode.enabled = prev_mode
    return captured


def _put(captured: list[Any], slot: int, g: Any) -> None:
    captured[slot] = g if captured[slot] is None else captured[slot] + g


def _nodes_leading_to(nodes: Iterable[Node], capture: dict[Any, int]) -> set[Node]:
    """The nodes (reachable from ``nodes``) from which some captured position can be
    reached."""
    memo: dict[Node, bool] = {}
    for start in nodes:
        if start in memo:
            continue
        stack: list[tuple[Node, bool]] = [(start, False)]
        while stack:
            n, expanded = stack.pop()
            if expanded:
                memo[n] = any(
                    e is not None and (e in capture or (isinstance(e, Node) and memo.get(e, False)))
                    for e in n._edges
                )
                continue
            if n in memo:
                continue
            stack.append((n, True))
            for e in n._edges:
                if isinstance(e, Node) and e not in memo:
                    stack.append((e, False))
    return {n for n, ok in memo.items() if ok}


def backward(
    tensor: Tensor, gradient: Any = None, retain_graph: bool | None = None,
    create_graph: bool = False,
) -> None:
    """``tensor.backward(...)``: see ``Tensor.backward``."""
    if not tensor.requires_grad:
        raise RuntimeError(
            "backward: the tensor does not require grad and has no grad_fn (did you forget "
            "requires_grad=True, or build it under no_grad?)"
        )
    keep = create_graph if retain_graph is None else retain_graph
    _execute([tensor], [_seed(tensor, gradient, create_graph)], keep, create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated).

    >>> import tinytorch as tt
    >>> x = tt.tensor(3.0, requires_grad=True)
    >>> (dx,) = tt.autograd.grad(x ** 3, x, create_graph=True)
    >>> dx
    tensor(27., grad_fn=<MulBackward>)
    >>> tt.autograd.grad(dx, x)[0]
    tensor(18.)
    """
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        gos = [grad_outputs] * len(outs) if len(outs) == 1 or grad_outputs is None else None
        if gos is None:
            raise ValueError("grad: give one grad_output per output")
    else:
        gos = list(grad_outputs)
        if len(gos) != len(outs):
            raise ValueError(f"grad: {len(outs)} outputs but {len(gos)} grad_outputs")
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    for i, t in enumerate(outs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: output {i} does not require grad and has no grad_fn")
    capture: dict[Any, int] = {}
    for i, t in enumerate(ins):
        capture.setdefault(t if t.grad_fn is None else t.grad_fn, i)
    keep = create_graph if retain_graph is None else retain_graph
    seeds = [_seed(t, g, create_graph) for t, g in zip(outs, gos)]
    captured = _execute(outs, seeds, keep, create_graph, capture)
    assert captured is not None
    result: list[Tensor | None] = []
    for i, t in enumerate(ins):
        g = captured[capture[t if t.grad_fn is None else t.grad_fn]]
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: input {i} (shape {t.shape}) was not used to compute the outputs; "
                    f"pass allow_unused=True to get None for it"
                )
            result.append(None)
        elif isinstance(g, Tensor):
            result.append(g)
        else:
            result.append(Tensor._from_op(g, None))
    return tuple(result)
