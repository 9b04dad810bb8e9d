"""Measure what the graph costs.

- ``profile()``: per-op call counts, forward and backward self time, bytes saved for
  backward, peak memory; ``table()`` and ``export_chrome_trace(path)``;
- ``record_function(name)``: label a stretch of code inside a profile;
- ``AutogradSystemsProfiler``: time and memory against graph depth, and gradient
  checkpointing's trade-off, measured on real graphs (TinyTorch's API);
- ``graph``: walking a graph and counting the bytes its nodes saved.

>>> import tinytorch as tt
>>> from tinytorch.profiler import profile
>>> x = tt.tensor([1.0, 2.0], requires_grad=True)
>>> with profile() as prof:
...     (x * x).sum().backward()
>>> [(s.name, s.kind, s.count) for s in prof.key_averages()]  # doctest: +NORMALIZE_WHITESPACE
[('mul', 'forward', 1), ('sum', 'forward', 1),
 ('SumBackward', 'backward', 1), ('MulBackward', 'backward', 1)]
"""

from tinytorch.profiler import graph
from tinytorch.profiler.ops_profiler import Event, OpStats, profile, record_function
from tinytorch.profiler.systems import AutogradSystemsProfiler

__all__ = ["AutogradSystemsProfiler", "Event", "OpStats", "graph", "profile", "record_function"]
