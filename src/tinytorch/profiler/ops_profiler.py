"""``profile()``: per-op time and memory of the code run inside a ``with`` block.

How it measures, without touching tinytorch's code: Python's own profiling hook
(``sys.setprofile``) is installed for the duration of the block and restored after.
It reacts to two kinds of Python frames and ignores every other call:

- the op functions of the op table (``tinytorch.ops``: ``add``, ``matmul``, ...):
  one *forward* event per call, named after the op;
- the ``backward`` method of a graph node: one *backward* event per call, named
  after the node (``MulBackward``).

An event's *self* time is its duration minus that of the events nested in it (a
composite op calling primitive ops, a checkpoint recomputing its segment). When an
op returns, its output's ``grad_fn`` tells what that op saved for backward: the
bytes of the arrays in the node's saved values. Peak memory is tracemalloc's peak
over the block (NumPy reports its allocations to tracemalloc).

Outside the block nothing is installed, so code that is not profiled runs exactly as
before. Inside it, every Python call pays for the hook: absolute times are inflated,
compare rows with each other.

>>> import tinytorch as tt
>>> from tinytorch.profiler import profile
>>> w = tt.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
>>> with profile() as prof:
...     loss = tt.tanh(w @ w).sum()
...     loss.backward()
>>> sorted(s.name for s in prof.key_averages())
['MatmulBackward', 'SumBackward', 'TanhBackward', 'matmul', 'sum', 'tanh']
>>> [s.count for s in prof.key_averages() if s.name == "matmul"]
[1]
>>> print(prof.table(row_limit=2))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import tracemalloc
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

from tinytorch.autograd.node import Node
from tinytorch.profiler.graph import node_saved_bytes
from tinytorch.tensor import Tensor

__all__ = ["Event", "OpStats", "profile", "record_function"]

FORWARD, BACKWARD, RANGE = "forward", "backward", "range"
_BWD = "bwd"  # marker: a backward method, named after the node at call time

SORT_KEYS: dict[str, str] = {
    "self_cpu_time_total": "self_time_ns", "self_time": "self_time_ns",
    "cpu_time_total": "total_time_ns", "total_time": "total_time_ns",
    "count": "count", "calls": "count",
    "saved_bytes": "saved_bytes", "self_cpu_memory_usage": "saved_bytes",
    "name": "name",
}


@dataclass
class Event:
    """One call: an op's forward, a node's backward, or a ``record_function`` range.
    Times are nanoseconds from ``time.perf_counter_ns``."""

    name: str
    kind: str
    start_ns: int
    end_ns: int
    self_ns: int
    depth: int
    saved_bytes: int = 0
    shape: tuple[int, ...] | None = None
    dtype: str | None = None


@dataclass
class OpStats:
    """All the events of one name and kind, added up."""

    name: str
    kind: str
    count: int = 0
    self_time_ns: int = 0
    total_time_ns: int = 0
    saved_bytes: int = 0

    @property
    def self_time_ms(self) -> float:
        return self.self_time_ns / 1e6

    @property
    def total_time_ms(self) -> float:
        return self.total_time_ns / 1e6


def _op_codes() -> dict[CodeType, Any]:
    """Code object -> op name for the op table, -> ``_BWD`` for node backward rules."""
    from tinytorch import ops

    codes: dict[CodeType, Any] = {}
    for name in ops.__all__:
        fn = getattr(ops, name, None)
        code = getattr(fn, "__code__", None)
        if code is not None:
            codes[code] = code.co_name
    stack: list[type] = [Node]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        bwd = cls.__dict__.get("backward")
        code = getattr(bwd, "__code__", None)
        if code is not None and cls is not Node:
            codes[code] = _BWD
    return codes


class profile:  # noqa: N801  (PyTorch's spelling: torch.profiler.profile)
    """Context manager recording per-op call counts, self and total time, bytes saved
    for backward and tracemalloc's peak memory (``record_memory=False`` skips
    tracemalloc, which slows allocation down).

    After the block: ``key_averages()``, ``table()``, ``export_chrome_trace(path)``,
    ``events``, ``peak_memory`` (bytes above the start), ``saved_bytes`` and
    ``wall_time_ns``.
    """

    def __init__(self, record_memory: bool = True) -> None:
        self.record_memory = record_memory
        self.events: list[Event] = []
        self.peak_memory: int | None = None
        self.wall_time_ns = 0
        self._stack: list[list[Any]] = []
        self._codes: dict[CodeType, Any] = {}
        self._claimed: weakref.WeakSet[Node] = weakref.WeakSet()
        self._previous: Any = None
        self._own_tracemalloc = False
        self._start_ns = 0
        self._mem_start = 0
        self._pid = os.getpid()
        self._tid = threading.get_ident()

    # ------------------------------------------------------------------ recording
    def __enter__(self) -> profile:
        if self._start_ns:
            raise RuntimeError("profile: this profile was already used; make a new one")
        self._codes = _op_codes()
        if self.record_memory:
            if not tracemalloc.is_tracing():
                tracemalloc.start()
                self._own_tracemalloc = True
            tracemalloc.reset_peak()
            self._mem_start = tracemalloc.get_traced_memory()[0]
        self._previous = sys.getprofile()
        self._start_ns = time.perf_counter_ns()
        sys.setprofile(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(self._previous)
        end = time.perf_counter_ns()
        self.wall_time_ns = end - self._start_ns
        while self._stack:  # frames still open (an exception left the block)
            self._close(self._stack.pop(), end, None)
        if self.record_memory:
            self.peak_memory = max(0, tracemalloc.get_traced_memory()[1] - self._mem_start)
            if self._own_tracemalloc:
                tracemalloc.stop()
        self.events.sort(key=lambda e: e.start_ns)
        self._codes = {}

    def _hook(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            kind = self._codes.get(code, 0)
            if kind == 0:
                kind = self._classify(frame)
            if kind is None:
                return
            if kind is _BWD:
                node = frame.f_locals.get("self")
                name = node.name() if isinstance(node, Node) else code.co_name
                self._stack.append([name, BACKWARD, frame, time.perf_counter_ns(), 0])
            else:
                self._stack.append([kind, FORWARD, frame, time.perf_counter_ns(), 0])
        elif event == "return" and self._stack and self._stack[-1][2] is frame:
            end = time.perf_counter_ns()
            self._close(self._stack.pop(), end, arg)

    def _classify(self, frame: FrameType) -> Any:
        """Codes not known at entry: a backward rule of a node class made since, or
        nothing to record (remembered either way)."""
        code = frame.f_code
        kind = None
        if code.co_name == "backward" and isinstance(frame.f_locals.get("self"), Node):
            kind = _BWD
        self._codes[code] = kind
        return kind

    def _close(self, entry: list[Any], end: int, output: Any) -> None:
        name, kind, _, start, children = entry
        total = end - start
        if self._stack:
            self._stack[-1][4] += total
        ev = Event(name, kind, start - self._start_ns, end - self._start_ns, total - children,
                   len(self._stack))
        if kind == FORWARD:
            out = output[0] if isinstance(output, (list, tuple)) and output else output
            if isinstance(out, Tensor):
                ev.shape, ev.dtype = out.data.shape, str(out.data.dtype)
            for t in output if isinstance(output, (list, tuple)) else (output,):
                node = t.grad_fn if isinstance(t, Tensor) else None
                # NOTE: a composite op returns the node its last inner op made; the
                # inner op (closed first) has already claimed its saved bytes.
                if node is not None and node not in self._claimed:
                    self._claimed.add(node)
                    ev.saved_bytes += node_saved_bytes(node)
        self.events.append(ev)

    def _push_range(self, name: str) -> list[Any]:
        entry = [name, RANGE, None, time.perf_counter_ns(), 0]
        self._stack.append(entry)
        return entry

    def _pop_range(self, entry: list[Any]) -> None:
        end = time.perf_counter_ns()
        while self._stack:
            top = self._stack.pop()
            self._close(top, end, None)
            if top is entry:
                break

    # ------------------------------------------------------------------ results
    @property
    def saved_bytes(self) -> int:
        """Bytes saved for backward by the ops run in the block (per node, added up)."""
        return sum(e.saved_bytes for e in self.events)

    def key_averages(self) -> list[OpStats]:
        """One ``OpStats`` per (name, kind), in order of first call."""
        stats: dict[tuple[str, str], OpStats] = {}
        for e in self.events:
            s = stats.get((e.name, e.kind))
            if s is None:
                s = stats[(e.name, e.kind)] = OpStats(e.name, e.kind)
            s.count += 1
            s.self_time_ns += e.self_ns
            s.total_time_ns += e.end_ns - e.start_ns
            s.saved_bytes += e.saved_bytes
        return list(stats.values())

    def table(self, sort_by: str = "self_cpu_time_total", row_limit: int = 100) -> str:
        """The aggregated events as a text table, largest first.

        ``sort_by``: ``self_cpu_time_total`` (default), ``cpu_time_total``, ``count``,
        ``saved_bytes`` or ``name``; ``row_limit`` caps the rows (-1: all).
        """
        key = SORT_KEYS.get(sort_by)
        if key is None:
            raise ValueError(f"table: unknown sort_by {sort_by!r}; expected one of "
                             f"{', '.join(SORT_KEYS)}")
        rows = sorted(self.key_averages(), key=lambda s: getattr(s, key),
                      reverse=key != "name")
        shown = rows if row_limit is None or row_limit < 0 else rows[:row_limit]
        timed = [e for e in self.events if e.kind != RANGE]
        self_total = sum(e.self_ns for e in timed) or 1
        head = ["Name", "Pass", "Calls", "Self ms", "Self %", "Total ms", "Avg self us",
                "Saved"]
        body = [[s.name, s.kind, str(s.count), f"{s.self_time_ms:.3f}",
                 "-" if s.kind == RANGE else f"{100 * s.self_time_ns / self_total:.1f}%",
                 f"{s.total_time_ms:.3f}", f"{s.self_time_ns / 1e3 / s.count:.1f}",
                 format_bytes(s.saved_bytes)] for s in shown]
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

        def line(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        rule = "-" * len(line(head))
        out = [rule, line(head), rule, *(line(r) for r in body), rule]
        if len(shown) < len(rows):
            out.append(f"({len(rows) - len(shown)} more rows; raise row_limit to see them)")
        fwd = sum(e.self_ns for e in timed if e.kind == FORWARD) / 1e6
        bwd = sum(e.self_ns for e in timed if e.kind == BACKWARD) / 1e6
        out.append(f"Self time: forward ops {fwd:.3f} ms, backward rules {bwd:.3f} ms; "
                   f"wall time of the block {self.wall_time_ns / 1e6:.3f} ms "
                   f"(profiler overhead included)")
        mem = f"; peak memory {format_bytes(self.peak_memory)} (tracemalloc, above the start)" \
            if self.peak_memory is not None else ""
        out.append(f"Saved for backward {format_bytes(self.saved_bytes)}{mem}")
        return "\n".join(out)

    def export_chrome_trace(self, path: str | os.PathLike[str]) -> None:
        """Write the events in the Chrome trace format (open in chrome://tracing or
        https://ui.perfetto.dev): complete events (``"ph": "X"``), microseconds."""
        trace: list[dict[str, Any]] = [
            {"name": "process_name", "ph": "M", "pid": self._pid, "tid": self._tid,
             "args": {"name": "tinytorch"}},
            {"name": "thread_name", "ph": "M", "pid": self._pid, "tid": self._tid,
             "args": {"name": "main"}},
        ]
        for e in self.events:
            args: dict[str, Any] = {"self_us": e.self_ns / 1e3}
            if e.shape is not None:
                args["output_shape"] = list(e.shape)
                args["dtype"] = e.dtype
            if e.saved_bytes:
                args["saved_bytes"] = e.saved_bytes
            trace.append({"name": e.name, "cat": e.kind, "ph": "X", "ts": e.start_ns / 1e3,
                          "dur": (e.end_ns - e.start_ns) / 1e3, "pid": self._pid,
                          "tid": self._tid, "args": args})
        doc = {"traceEvents": trace, "displayTimeUnit": "ms",
               "otherData": {"peak_memory_bytes": self.peak_memory,
                             "saved_bytes": self.saved_bytes}}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f)


class record_function:  # noqa: N801  (PyTorch's spelling)
    """Label a stretch of code; it shows as a ``range`` row and a trace event when a
    ``profile`` block is active on this thread, and costs one function call otherwise.

    >>> import tinytorch as tt
    >>> from tinytorch.profiler import profile, record_function
    >>> with profile(record_memory=False) as prof:
    ...     with record_function("step"):
    ...         y = tt.tensor([1.0, 2.0], requires_grad=True) * 2
    >>> [(e.name, e.kind) for e in prof.events]
    [('step', 'range'), ('mul', 'forward')]
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._owner: profile | None = None
        self._entry: list[Any] | None = None

    def __enter__(self) -> record_function:
        hook: Callable[..., Any] | None = sys.getprofile()
        owner = getattr(hook, "__self__", None)
        if isinstance(owner, profile):
            self._owner = owner
            self._entry = owner._push_range(self.name)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owner is not None and self._entry is not None:
            self._owner._pop_range(self._entry)
        self._owner = self._entry = None


def format_bytes(n: int | None) -> str:
    """``1536`` -> ``'1.5 KB'`` (powers of 1024)."""
    if n is None:
        return "-"
    if n == 0:
        return "0"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
