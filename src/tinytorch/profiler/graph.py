"""Walking a recorded graph: its nodes, and the arrays they saved for backward.

Every figure here is read off the live graph: the nodes reachable from an output
through ``_edges`` and the NumPy arrays each node keeps in ``_vals`` (its saved
values). An array shared by several nodes (a ``tanh`` output that the next
``matmul`` also saved) is counted once, as is a view and the array it looks into.

>>> import tinytorch as tt
>>> from tinytorch.profiler.graph import graph_nodes, saved_bytes
>>> x = tt.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> y = tt.tanh(x * x)
>>> [n.name() for n in graph_nodes(y)]
['TanhBackward', 'MulBackward']
>>> saved_bytes(y)  # tanh keeps its output, mul keeps x (once): 2 arrays of 3 float32
24
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from tinytorch.autograd.node import Node
from tinytorch.tensor import Tensor

__all__ = ["buffer_of", "graph_nodes", "node_saved_arrays", "node_saved_bytes", "saved_bytes",
           "saved_bytes_by_op"]


def graph_nodes(root: Any) -> list[Node]:
    """The nodes reachable from ``root`` (a Tensor, a Node or a sequence of them),
    each once, outputs first (depth-first discovery order; no recursion)."""
    starts = root if isinstance(root, (list, tuple)) else [root]
    seen: set[int] = set()
    order: list[Node] = []
    stack: list[Node] = []
    for r in reversed(starts):
        n = r.grad_fn if isinstance(r, Tensor) else r
        if isinstance(n, Node):
            stack.append(n)
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        order.append(n)
        for e in reversed(n._edges):
            if isinstance(e, Node) and id(e) not in seen:
                stack.append(e)
    return order


def node_saved_arrays(node: Node) -> Iterator[np.ndarray]:
    """The NumPy arrays ``node`` keeps for its backward rule (none once released)."""
    vals = node._vals
    if not vals:
        return
    for v in vals:
        if isinstance(v, np.ndarray):
            yield v
        elif isinstance(v, Tensor):
            yield v.data


def buffer_of(a: np.ndarray) -> np.ndarray:
    """The array that owns ``a``'s memory (``a`` itself unless it is a view)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def node_saved_bytes(node: Node) -> int:
    """Bytes of the distinct buffers one node saved (``x * x`` keeps ``x`` once)."""
    bufs = {id(b): b.nbytes for b in map(buffer_of, node_saved_arrays(node))}
    return sum(bufs.values())


def _excluded(exclude: Iterable[Any]) -> set[int]:
    ids = set()
    for t in exclude:
        arr = t.data if isinstance(t, Tensor) else t
        if isinstance(arr, np.ndarray):
            ids.add(id(buffer_of(arr)))
    return ids


def saved_bytes_by_op(nodes: Iterable[Node], exclude: Iterable[Any] = ()) -> dict[str, int]:
    """Bytes saved for backward per node name; a buffer shared by several nodes is
    charged to the first of them in ``nodes`` (so the values add up to the total).
    Buffers of the Tensors or arrays in ``exclude`` (weights, which exist without the
    graph) are not counted."""
    seen = _excluded(exclude)
    out: dict[str, int] = {}
    for n in nodes:
        total = 0
        for a in node_saved_arrays(n):
            buf = buffer_of(a)
            if id(buf) not in seen:
                seen.add(id(buf))
                total += buf.nbytes
        name = n.name()
        out[name] = out.get(name, 0) + total
    return out


def saved_bytes(root: Any, exclude: Iterable[Any] = ()) -> int:
    """Bytes of the distinct arrays the graph behind ``root`` holds for backward,
    leaving out the buffers of ``exclude`` (Tensors or arrays, e.g. parameters)."""
    return sum(saved_bytes_by_op(graph_nodes(root), exclude).values())
