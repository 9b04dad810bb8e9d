"""Look at a recorded graph: statistics, DOT text, pictures, inline display in Jupyter.

- ``graph_stats(t)``: op nodes, leaves, edges, depth, op counts and bytes saved for
  backward per op type (read off the live graph);
- ``to_dot(t)``: the graph as Graphviz DOT text (no dependency). Op nodes show the op,
  its output shape and dtype; leaves that are parameters are named after their
  Module attribute when a ``module`` (or a ``params`` dict) is given;
- ``draw(t, path)``: render SVG or PNG with Graphviz's ``dot`` program (Debian/Ubuntu:
  ``apt-get install graphviz``), or write the DOT text (``format='dot'``);
- ``graph(t)``: a ``Graph`` object that Jupyter displays inline as SVG.

Arrows point the way data flows: from inputs, through ops, to the output.

>>> import tinytorch as tt
>>> from tinytorch import nn, viz
>>> _ = tt.manual_seed(0)
>>> model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
>>> loss = model(tt.tensor([[1.0, 2.0, 3.0]])).sum()
>>> stats = viz.graph_stats(loss)
>>> stats["nodes"], stats["leaves"], stats["depth"]
(4, 2, 4)
>>> dot = viz.to_dot(loss, module=model)
>>> "0.weight" in dot and "MatmulBackward" in dot
True
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

from tinytorch.autograd.node import Node
from tinytorch.profiler.graph import graph_nodes, node_saved_bytes, saved_bytes_by_op
from tinytorch.profiler.ops_profiler import format_bytes
from tinytorch.tensor import Tensor

__all__ = ["Graph", "GraphvizNotFoundError", "draw", "graph", "graph_stats", "to_dot"]

FORMATS = ("svg", "png", "dot")
_INSTALL_HINT = (
    "install Graphviz (Debian/Ubuntu: sudo apt-get install graphviz; macOS: brew install "
    "graphviz; conda: conda install graphviz), or write DOT text instead with format='dot' "
    "or tinytorch.viz.to_dot()")


class GraphvizNotFoundError(RuntimeError):
    """Raised when a picture is asked for and Graphviz's ``dot`` program is missing."""


def _roots(t: Any) -> list[Tensor]:
    roots = list(t) if isinstance(t, (list, tuple)) else [t]
    for r in roots:
        if not isinstance(r, Tensor):
            raise TypeError(f"viz: expected a Tensor or a list of Tensors, got "
                            f"{type(r).__name__}")
    return roots


def _leaves(nodes: list[Node]) -> list[Tensor]:
    seen: set[int] = set()
    out = []
    for n in nodes:
        for e in n._edges:
            if isinstance(e, Tensor) and id(e) not in seen:
                seen.add(id(e))
                out.append(e)
    return out


def _depth(nodes: list[Node]) -> int:
    """Op nodes on the longest path from an output to a leaf (iterative)."""
    consumers = {id(n): 0 for n in nodes}
    for n in nodes:
        for e in n._edges:
            if isinstance(e, Node):
                consumers[id(e)] += 1
    ready = [n for n in nodes if consumers[id(n)] == 0]
    order = []  # outputs first: every node after all of its consumers
    while ready:
        n = ready.pop()
        order.append(n)
        for e in n._edges:
            if isinstance(e, Node):
                consumers[id(e)] -= 1
                if consumers[id(e)] == 0:
                    ready.append(e)
    depth: dict[int, int] = {}
    for n in reversed(order):  # inputs first
        below = [depth[id(e)] for e in n._edges if isinstance(e, Node)]
        depth[id(n)] = 1 + max(below, default=0)
    return max(depth.values(), default=0)


def graph_stats(t: Tensor | list[Tensor]) -> dict[str, Any]:
    """Counts and memory of the graph behind ``t``.

    Keys: ``nodes`` (op nodes), ``leaves`` (tensors that receive gradients), ``edges``
    (input connections between them), ``depth`` (op nodes on the longest path),
    ``ops`` (node name -> count), ``saved_bytes`` (distinct arrays held for backward)
    and ``saved_bytes_by_op`` (node name -> bytes; a shared array counts once).

    >>> import tinytorch as tt
    >>> x = tt.tensor([1.0, 2.0], requires_grad=True)
    >>> s = graph_stats((x * x).sum())
    >>> s["ops"], s["edges"], s["saved_bytes"]
    ({'SumBackward': 1, 'MulBackward': 1}, 3, 8)
    """
    nodes = graph_nodes(_roots(t))
    ops: dict[str, int] = {}
    for n in nodes:
        ops[n.name()] = ops.get(n.name(), 0) + 1
    by_op = saved_bytes_by_op(nodes)
    return {
        "nodes": len(nodes),
        "leaves": len(_leaves(nodes)),
        "edges": sum(1 for n in nodes for e in n._edges if e is not None),
        "depth": _depth(nodes),
        "ops": ops,
        "saved_bytes": sum(by_op.values()),
        "saved_bytes_by_op": {k: v for k, v in by_op.items() if v},
    }


def _param_names(params: Any, module: Any) -> dict[int, str]:
    names: dict[int, str] = {}
    if module is not None:
        for name, p in module.named_parameters():
            names[id(p)] = name
    if params is not None:
        items: Iterable[tuple[str, Any]] = params.items() if isinstance(params, Mapping) \
            else params
        for name, p in items:
            names[id(p)] = name
    return names


def _quote(text: str) -> str:
    """A DOT double-quoted string; ``\\n`` in ``text`` stays a line break."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _describe(shape: tuple[int, ...], dtype: Any) -> str:
    return f"{tuple(shape)} {dtype}"


def to_dot(t: Tensor | list[Tensor], params: Any = None, module: Any = None,
           show_saved: bool = False) -> str:
    """The graph behind ``t`` as Graphviz DOT text.

    ``module``: a Module whose ``named_parameters()`` name the leaves; ``params``: a
    dict (or pairs) name -> Tensor for the same purpose. ``show_saved`` adds the bytes
    each op saved for backward to its label.

    >>> import tinytorch as tt
    >>> w = tt.tensor([1.0, 2.0], requires_grad=True)
    >>> print(to_dot((w * 3).sum(), params={"w": w}))  # doctest: +NORMALIZE_WHITESPACE
    digraph tinytorch {
      graph [rankdir=TB];
      node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];
      o0 [label="output\\n() float32", fillcolor="#c9f2b8"];
      n0 [label="SumBackward\\n() float32", fillcolor="#e8e8e8"];
      n1 [label="MulBackward\\n(2,) float32", fillcolor="#e8e8e8"];
      l0 [label="w\\n(2,) float32", fillcolor="#cfe3ff"];
      n0 -> o0;
      n1 -> n0;
      l0 -> n1;
    }
    """
    roots = _roots(t)
    names = _param_names(params, module)
    nodes = graph_nodes(roots)
    node_id = {id(n): f"n{i}" for i, n in enumerate(nodes)}
    leaf_id: dict[int, str] = {}
    decl: list[str] = []
    edges: list[str] = []

    def leaf(x: Tensor) -> str:
        key = leaf_id.get(id(x))
        if key is None:
            key = leaf_id[id(x)] = f"l{len(leaf_id)}"
            name = names.get(id(x)) or ("parameter" if type(x).__name__ == "Parameter"
                                        else "leaf")
            label = f"{name}\n{_describe(x.shape, x.dtype)}"
            decl.append(f"  {key} [label={_quote(label)}, fillcolor=\"#cfe3ff\"];")
        return key

    for i, r in enumerate(roots):
        decl.append(f"  o{i} [label={_quote('output' + chr(10) + _describe(r.shape, r.dtype))}, "
                    f"fillcolor=\"#c9f2b8\"];")
        if isinstance(r.grad_fn, Node):
            edges.append(f"  {node_id[id(r.grad_fn)]} -> o{i};")
        elif r.requires_grad:
            edges.append(f"  {leaf(r)} -> o{i};")
    for n in nodes:
        label = f"{n.name()}\n{_describe(*getattr(n, '_meta', ((), '?')))}"
        if show_saved:
            label += f"\nsaved {format_bytes(node_saved_bytes(n))}"
        decl.append(f"  {node_id[id(n)]} [label={_quote(label)}, fillcolor=\"#e8e8e8\"];")
        for e in n._edges:
            if isinstance(e, Node):
                edges.append(f"  {node_id[id(e)]} -> {node_id[id(n)]};")
            elif isinstance(e, Tensor):
                edges.append(f"  {leaf(e)} -> {node_id[id(n)]};")
    head = ["digraph tinytorch {", "  graph [rankdir=TB];",
            '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];']
    return "\n".join([*head, *decl, *edges, "}"]) + "\n"


def _dot_program() -> str:
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizNotFoundError(f"the Graphviz 'dot' program was not found on PATH; "
                                    f"{_INSTALL_HINT}")
    return exe


def _render(source: str, fmt: str) -> bytes:
    """Run ``dot -T<fmt>`` on ``source``."""
    res = subprocess.run([_dot_program(), f"-T{fmt}"], input=source.encode("utf-8"),
                         capture_output=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"dot -T{fmt} failed (exit {res.returncode}): "
                           f"{res.stderr.decode(errors='replace').strip()}")
    return res.stdout


class Graph:
    """DOT source that renders itself: shown inline as SVG in Jupyter (when Graphviz is
    installed; as DOT text otherwise), ``.render(path)`` writes a file."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return f"<tinytorch.viz.Graph: {self.source.count('->')} edges>"

    def pipe(self, format: str = "svg") -> bytes:  # noqa: A002  (graphviz's name)
        """The rendered picture as bytes (``format``: ``'svg'`` or ``'png'``)."""
        if format not in ("svg", "png"):
            raise ValueError(f"Graph.pipe: format must be 'svg' or 'png', got {format!r}")
        return _render(self.source, format)

    def render(self, path: str | os.PathLike[str], format: str | None = None) -> str:  # noqa: A002
        """Write the picture (or DOT text) to ``path``; the format follows the suffix
        unless given. Returns the path."""
        path = os.fspath(path)
        fmt = format or (os.path.splitext(path)[1].lstrip(".").lower() or "svg")
        if fmt not in FORMATS:
            raise ValueError(f"draw: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        data = self.source.encode("utf-8") if fmt == "dot" else self.pipe(fmt)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def _repr_svg_(self) -> str | None:
        try:
            return self.pipe("svg").decode("utf-8")
        except GraphvizNotFoundError:
            return None

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        bundle = {"text/plain": self.source}
        svg = self._repr_svg_()
        if svg is not None:
            bundle["image/svg+xml"] = svg
        return bundle


def graph(t: Tensor | list[Tensor], params: Any = None, module: Any = None,
          show_saved: bool = False) -> Graph:
    """A ``Graph`` of ``t`` (see ``to_dot``); the last line of a notebook cell shows it.

    >>> import tinytorch as tt
    >>> x = tt.tensor([1.0], requires_grad=True)
    >>> graph(tt.exp(x))
    <tinytorch.viz.Graph: 2 edges>
    """
    return Graph(to_dot(t, params=params, module=module, show_saved=show_saved))


def draw(t: Tensor | list[Tensor], path: str | os.PathLike[str], format: str | None = None,  # noqa: A002
         params: Any = None, module: Any = None, show_saved: bool = False) -> str:
    """Render the graph of ``t`` to ``path`` as SVG or PNG with Graphviz ``dot``, or
    write DOT text (``format='dot'``, needs nothing). The format follows the file's
    suffix unless given. Raises ``GraphvizNotFoundError`` with install instructions
    when ``dot`` is missing. Returns the path."""
    return graph(t, params=params, module=module, show_saved=show_saved).render(path, format)
