"""``AutogradSystemsProfiler``: how time and memory of real graphs scale with depth,
and what gradient checkpointing trades (TinyTorch's API, measured instead of modelled).

Every number comes from running tinytorch: forward and backward are timed with
``time.perf_counter`` (median of repeats), memory is read two ways, the bytes of the
arrays the graph's nodes saved for backward (walking the graph from the output) and
tracemalloc's peak during forward + backward. The verdicts and strategies are
computed from those numbers.

>>> from tinytorch.profiler import AutogradSystemsProfiler
>>> prof = AutogradSystemsProfiler(repeats=1)
>>> report = prof.profile_computational_graph_depth(max_depth=2, operations_per_level=4)
>>> r1, r2 = report["detailed_results"][1], report["detailed_results"][2]
>>> r2["saved_bytes"] > r1["saved_bytes"] > 0, r2["total_operations"]
(True, 8)
>>> rows = prof.analyze_memory_checkpointing_trade_offs([2], num_layers=4, width=64, batch=32)
>>> sorted(rows[0])[:3]
['baseline_memory_mb', 'baseline_time_ms', 'checkpoint_frequency']
"""

from __future__ import annotations

import gc
import math
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinytorch import ops
from tinytorch.autograd import grad_mode
from tinytorch.profiler.graph import saved_bytes
from tinytorch.tensor import Tensor

__all__ = ["AutogradSystemsProfiler"]

MB = 1024 * 1024


def _median_ms(samples: list[float]) -> float:
    return 1e3 * statistics.median(samples)


def _fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least-squares line through (xs, ys): slope, intercept, R^2 (1.0 for a perfect
    fit; also 1.0 when ys are all equal)."""
    x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if len(x) < 2:
        return 0.0, float(y[0]) if len(y) else 0.0, 1.0
    slope, intercept = np.polyfit(x, y, 1)
    ss_res = float(np.sum((y - (slope * x + intercept)) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return float(slope), float(intercept), 1.0 if ss_tot == 0 else 1.0 - ss_res / ss_tot


# ------------------------------------------------------------------ the depth workload


def _depth_forward(x: Any, weights: list[Any], depth: int, per_level: int,
                   lib: Any) -> Any:
    """``depth`` levels of ``per_level`` ops cycling scale, shift, matmul, tanh; then
    ``sum(h * h)``. ``lib`` is ``tinytorch.ops`` or ``numpy`` (same arithmetic)."""
    h = x
    k = 0
    for _ in range(depth):
        for i in range(per_level):
            op = i % 4
            if op == 0:
                h = h * 0.9
            elif op == 1:
                h = h + 0.1
            elif op == 2:
                h = h @ weights[k]
                k += 1
            else:
                h = lib.tanh(h)
    return (h * h).sum()


def _depth_numpy_grad(x: np.ndarray, weights: list[np.ndarray], depth: int,
                      per_level: int) -> np.ndarray:
    """The same computation by hand in NumPy, forward then backward (the reference
    that has no engine at all)."""
    saved: list[tuple[int, Any]] = []
    h = x
    k = 0
    for _ in range(depth):
        for i in range(per_level):
            op = i % 4
            if op == 0:
                h = h * 0.9
                saved.append((0, None))
            elif op == 1:
                h = h + 0.1
                saved.append((1, None))
            elif op == 2:
                saved.append((2, (h, weights[k])))
                h = h @ weights[k]
                k += 1
            else:
                h = np.tanh(h)
                saved.append((3, h))
    g = 2 * h
    for op, s in reversed(saved):
        if op == 0:
            g = g * 0.9
        elif op == 2:
            g = g @ s[1].T
        elif op == 3:
            g = g * (1 - s * s)
    return g


def _depth_inputs(size: int, depth: int, per_level: int, rng: np.random.Generator,
                  dtype: Any) -> tuple[np.ndarray, list[np.ndarray]]:
    n_mm = depth * sum(1 for i in range(per_level) if i % 4 == 2)
    x = rng.standard_normal((size, size)).astype(dtype)
    weights = [(rng.standard_normal((size, size)) / math.sqrt(size)).astype(dtype)
               for _ in range(n_mm)]
    return x, weights


# ------------------------------------------------------------------ the checkpoint workload


class _Clock:
    """Adds up the time blocks spend being run again during backward."""

    def __init__(self) -> None:
        self.in_backward = False
        self.recompute_s = 0.0


class _Block:
    """One residual layer ``h + tanh(relu(h @ W1 + b1) @ W2 + b2)``; when called during
    backward (a checkpoint recomputing its segment) it times itself."""

    def __init__(self, params: list[Tensor], clock: _Clock) -> None:
        self.w1, self.b1, self.w2, self.b2 = params
        self.clock = clock

    def __call__(self, h: Tensor) -> Tensor:
        if not self.clock.in_backward:
            return self._run(h)
        t0 = time.perf_counter()
        out = self._run(h)
        self.clock.recompute_s += time.perf_counter() - t0
        return out

    def _run(self, h: Tensor) -> Tensor:
        z = ops.relu(h @ self.w1 + self.b1)
        return h + ops.tanh(z @ self.w2 + self.b2)


def _residual_net(num_layers: int, width: int, rng: np.random.Generator,
                  dtype: Any) -> tuple[list[_Block], list[Tensor], _Clock]:
    clock = _Clock()
    blocks, params = [], []
    scale = 1.0 / math.sqrt(width)
    for _ in range(num_layers):
        p = [Tensor(rng.uniform(-scale, scale, (width, width)).astype(dtype), True),
             Tensor(np.zeros(width, dtype), True),
             Tensor(rng.uniform(-scale, scale, (width, width)).astype(dtype), True),
             Tensor(np.zeros(width, dtype), True)]
        params += p
        blocks.append(_Block(p, clock))
    return blocks, params, clock


# ------------------------------------------------------------------ the profiler


class AutogradSystemsProfiler:
    """Measure real tinytorch graphs: time and memory against depth, and gradient
    checkpointing's memory/time trade-off.

    ``size``: side of the square tensors of the depth graphs (100 as in TinyTorch);
    ``repeats``: timed runs per configuration (the median is reported); ``seed``:
    for the random inputs and weights; ``dtype``: float32 by default.
    """

    def __init__(self, size: int = 100, repeats: int = 5, seed: int = 0,
                 dtype: Any = np.float32) -> None:
        if repeats < 1:
            raise ValueError(f"AutogradSystemsProfiler: repeats must be >= 1, got {repeats}")
        self.size = size
        self.repeats = repeats
        self.seed = seed
        self.dtype = np.dtype(dtype)
        self.profiling_data: dict[str, Any] = {}
        self.graph_analysis: dict[str, Any] = {}
        self.optimization_strategies: list[str] = []
        self.checkpointing_results: list[dict[str, Any]] = []

    # -------------------------------------------------------------- graph depth
    def profile_computational_graph_depth(self, max_depth: int = 10,
                                          operations_per_level: int = 5) -> dict[str, Any]:
        """Build graphs of depth 1..``max_depth`` (each level ``operations_per_level``
        ops cycling ``*0.9``, ``+0.1``, ``@ W`` and ``tanh`` on ``size x size``
        tensors, then ``sum(h*h)``), run forward and backward, and measure.

        Returns ``{'detailed_results': {depth: {...}}, 'graph_analysis': {...},
        'optimization_strategies': [...]}``. Per depth: ``graph_depth``,
        ``total_operations``, ``forward_time_ms``, ``backward_time_ms``,
        ``total_time_ms`` (medians), ``numpy_time_ms`` (the same forward + backward
        written by hand in NumPy), ``engine_overhead_pct``, ``saved_bytes`` /
        ``saved_memory_mb`` (arrays the graph holds for backward, the weights left out:
        they exist without it), ``graph_memory_mb``
        (tracemalloc: memory allocated by the forward pass and still held),
        ``peak_memory_mb`` (tracemalloc peak over forward + backward, above the start),
        ``total_memory_mb`` (= ``peak_memory_mb``), ``base_memory_mb`` (the input),
        ``operations_per_second`` and ``memory_per_operation`` (MB saved per op).
        """
        if max_depth < 1 or operations_per_level < 1:
            raise ValueError(f"profile_computational_graph_depth: max_depth and "
                             f"operations_per_level must be >= 1, got {max_depth} and "
                             f"{operations_per_level}")
        rng = np.random.default_rng(self.seed)
        x_np, w_np = _depth_inputs(self.size, max_depth, operations_per_level, rng, self.dtype)
        weights = [Tensor(w) for w in w_np]
        results: dict[int, dict[str, Any]] = {}
        with grad_mode.enable_grad():
            for depth in range(1, max_depth + 1):
                results[depth] = self._measure_depth(x_np, weights, w_np, depth,
                                                     operations_per_level)
        analysis = self._analyze_graph_scaling(results)
        self.profiling_data["graph_depth_analysis"] = results
        self.graph_analysis = analysis
        self.optimization_strategies = self._generate_graph_optimizations(results, analysis)
        return {"detailed_results": results, "graph_analysis": analysis,
                "optimization_strategies": list(self.optimization_strategies)}

    def _measure_depth(self, x_np: np.ndarray, weights: list[Tensor], w_np: list[np.ndarray],
                       depth: int, per_level: int) -> dict[str, Any]:
        fwd, bwd, ref = [], [], []
        gc.collect()
        for _ in range(self.repeats):
            x = Tensor(x_np, requires_grad=True)
            t0 = time.perf_counter()
            loss = _depth_forward(x, weights, depth, per_level, ops)
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
            t0 = time.perf_counter()
            _depth_numpy_grad(x_np, w_np, depth, per_level)
            ref.append(time.perf_counter() - t0)
            del loss, x

        # Memory: one more run under tracemalloc (it slows allocation, so not timed).
        x = Tensor(x_np, requires_grad=True)
        gc.collect()
        owned = not tracemalloc.is_tracing()
        if owned:
            tracemalloc.start()
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        loss = _depth_forward(x, weights, depth, per_level, ops)
        held = tracemalloc.get_traced_memory()[0] - start
        saved = saved_bytes(loss, exclude=weights)
        loss.backward()
        peak = tracemalloc.get_traced_memory()[1] - start
        if owned:
            tracemalloc.stop()
        del loss, x

        ops_count = depth * per_level
        forward_ms, backward_ms = _median_ms(fwd), _median_ms(bwd)
        total_ms = forward_ms + backward_ms
        numpy_ms = _median_ms(ref)
        return {
            "graph_depth": depth,
            "total_operations": ops_count,
            "forward_time_ms": forward_ms,
            "backward_time_ms": backward_ms,
            "total_time_ms": total_ms,
            "numpy_time_ms": numpy_ms,
            "engine_overhead_pct": 100.0 * max(0.0, total_ms - numpy_ms) / total_ms,
            "base_memory_mb": x_np.nbytes / MB,
            "saved_bytes": saved,
            "saved_memory_mb": saved / MB,
            "graph_memory_mb": held / MB,
            "peak_memory_mb": peak / MB,
            "total_memory_mb": peak / MB,
            "operations_per_second": ops_count / (total_ms / 1e3),
            "memory_per_operation": saved / MB / ops_count,
        }

    def _analyze_graph_scaling(self, results: dict[int, dict[str, Any]]) -> dict[str, Any]:
        depths = sorted(results)
        get = lambda key: [results[d][key] for d in depths]  # noqa: E731
        fwd, bwd, total = get("forward_time_ms"), get("backward_time_ms"), get("total_time_ms")
        saved, peak = get("saved_memory_mb"), get("peak_memory_mb")
        ratios = [b / max(f, 1e-9) for f, b in zip(fwd, bwd)]
        analysis: dict[str, Any] = {}
        if len(depths) >= 2:
            shallow, deep = depths[0], depths[-1]
            depth_ratio = deep / shallow
            fwd_ratio = fwd[-1] / fwd[0]
            bwd_ratio = bwd[-1] / bwd[0]
            mem_ratio = saved[-1] / saved[0] if saved[0] else float("inf")
            mem_slope, _, mem_r2 = _fit(depths, saved)
            peak_slope, _, peak_r2 = _fit(depths, peak)
            time_slope, _, time_r2 = _fit(depths, total)
            analysis["scaling_metrics"] = {
                "depth_ratio": depth_ratio,
                "forward_time_scaling": fwd_ratio,
                "backward_time_scaling": bwd_ratio,
                "memory_scaling": mem_ratio,
                "peak_memory_scaling": peak[-1] / peak[0] if peak[0] else float("inf"),
                "theoretical_linear": depth_ratio,
                "time_ms_per_level": time_slope,
                "time_linearity_r2": time_r2,
                "saved_mb_per_level": mem_slope,
                "memory_linearity_r2": mem_r2,
                "peak_mb_per_level": peak_slope,
                "peak_linearity_r2": peak_r2,
            }
            if bwd_ratio > fwd_ratio * 1.5:
                analysis["primary_bottleneck"] = "backward_pass"
                analysis["bottleneck_reason"] = (
                    f"backward time grew {bwd_ratio:.1f}x from depth {shallow} to {deep}, "
                    f"forward only {fwd_ratio:.1f}x")
            elif mem_ratio > depth_ratio * 1.5:
                analysis["primary_bottleneck"] = "memory"
                analysis["bottleneck_reason"] = (
                    f"saved memory grew {mem_ratio:.1f}x for {depth_ratio:.1f}x the depth "
                    f"(faster than linear)")
            elif statistics.mean(ratios) > 2.0:
                analysis["primary_bottleneck"] = "backward_pass"
                analysis["bottleneck_reason"] = (
                    f"backward takes {statistics.mean(ratios):.1f}x the forward time on "
                    f"average; both grow with depth ({bwd_ratio:.1f}x, {fwd_ratio:.1f}x)")
            elif statistics.mean(ratios) < 0.5:
                analysis["primary_bottleneck"] = "forward_pass"
                analysis["bottleneck_reason"] = (
                    f"forward takes {1 / statistics.mean(ratios):.1f}x the backward time on "
                    f"average")
            else:
                analysis["primary_bottleneck"] = "balanced"
                analysis["bottleneck_reason"] = (
                    f"forward and backward scale alike ({fwd_ratio:.1f}x and "
                    f"{bwd_ratio:.1f}x for {depth_ratio:.1f}x the depth) and memory grows "
                    f"{mem_ratio:.1f}x")
        else:
            analysis["primary_bottleneck"] = "undetermined"
            analysis["bottleneck_reason"] = "one depth measured: nothing to compare"
        analysis["efficiency_metrics"] = {
            "avg_backward_forward_ratio": statistics.mean(ratios),
            "peak_memory_mb": max(peak),
            "max_saved_memory_mb": max(saved),
            "memory_efficiency_trend": "increasing" if saved[-1] > saved[0] * 2 else "stable",
            "avg_operations_per_second": statistics.mean(get("operations_per_second")),
            "avg_engine_overhead_pct": statistics.mean(get("engine_overhead_pct")),
            "us_per_operation": 1e3 * sum(total) / sum(get("total_operations")),
        }
        return analysis

    def _generate_graph_optimizations(self, results: dict[int, dict[str, Any]],
                                      analysis: dict[str, Any]) -> list[str]:
        """Advice chosen by comparing the measured figures with thresholds."""
        out: list[str] = []
        deep = results[max(results)]
        eff = analysis["efficiency_metrics"]
        scaling = analysis.get("scaling_metrics")
        if scaling is not None:
            per_level, r2 = scaling["saved_mb_per_level"], scaling["memory_linearity_r2"]
            if r2 >= 0.95 and per_level > 0:
                out.append(
                    f"Memory grows linearly with depth: {per_level:.3f} MB saved per level "
                    f"(R^2 {r2:.3f}), {deep['saved_memory_mb']:.2f} MB at depth "
                    f"{deep['graph_depth']}. For deeper graphs, gradient checkpointing "
                    f"(tinytorch.utils.checkpoint) keeps only segment inputs.")
            elif per_level > 0:
                out.append(
                    f"Saved memory does not grow linearly (R^2 {r2:.2f}): look for ops that "
                    f"save more than their inputs and outputs.")
            if scaling["time_ms_per_level"] > 0 and scaling["time_linearity_r2"] >= 0.9:
                out.append(
                    f"Time grows linearly with depth: {scaling['time_ms_per_level']:.3f} ms "
                    f"per level (R^2 {scaling['time_linearity_r2']:.2f}).")
            elif scaling["backward_time_scaling"] > 1.5 * scaling["depth_ratio"]:
                out.append(
                    f"Backward time grows faster than depth "
                    f"({scaling['backward_time_scaling']:.1f}x for {scaling['depth_ratio']:.1f}x): "
                    f"check for repeated traversal work.")
            else:
                out.append(
                    f"Time against depth is noisy (R^2 {scaling['time_linearity_r2']:.2f}): "
                    f"raise repeats for a steadier fit.")
        if eff["peak_memory_mb"] > 50:
            out.append(
                f"High peak memory ({eff['peak_memory_mb']:.1f} MB): checkpoint deep segments "
                f"or free intermediate results early (no retain_graph).")
        ratio = eff["avg_backward_forward_ratio"]
        if ratio > 3.0:
            out.append(
                f"Backward is {ratio:.1f}x the forward time (usual: 1-3x): profile the "
                f"backward rules with tinytorch.profiler.profile() to find the slow one.")
        elif ratio < 1.0:
            out.append(
                f"Backward costs {ratio:.2f}x the forward: the forward pass is where to "
                f"look first.")
        else:
            out.append(f"Backward/forward time ratio {ratio:.1f}x is in the usual 1-3x range.")
        overhead = eff["avg_engine_overhead_pct"]
        if overhead > 60:
            out.append(
                f"Engine bookkeeping is {overhead:.0f}% of the time next to hand-written "
                f"NumPy ({eff['us_per_operation']:.1f} us per op): the tensors are small for "
                f"the op count; batch more work into fewer, larger ops (fuse elementwise "
                f"chains).")
        elif overhead > 25:
            out.append(
                f"Engine bookkeeping is {overhead:.0f}% of the time next to hand-written "
                f"NumPy ({eff['us_per_operation']:.1f} us per op): kernels and bookkeeping "
                f"both matter; larger tensors shift the balance toward the kernels.")
        else:
            out.append(
                f"Time is spent mostly in NumPy kernels (engine overhead {overhead:.0f}%): "
                f"speed-ups come from the arithmetic itself (fewer matmuls, BLAS threads, "
                f"float32).")
        return out

    # -------------------------------------------------------------- checkpointing
    def analyze_memory_checkpointing_trade_offs(
        self, checkpoint_frequencies: Sequence[int] = (1, 2, 4, 8), num_layers: int = 16,
        width: int = 256, batch: int = 128,
    ) -> list[dict[str, Any]]:
        """Train-step a ``num_layers``-deep residual MLP (each layer
        ``h + tanh(relu(h @ W1 + b1) @ W2 + b2)``, ``width`` units, ``batch`` rows)
        plainly and with ``checkpoint_sequential``, checkpointing every ``f`` layers
        for each ``f`` in ``checkpoint_frequencies``.

        Per frequency: ``checkpoint_frequency``, ``segments``, ``memory_mb`` (tracemalloc
        peak of forward + backward above the start, gradients preallocated so it is
        activations), ``baseline_memory_mb`` (the same without checkpointing),
        ``memory_reduction_pct``, ``saved_mb`` (what the graph holds after forward,
        parameters left out),
        ``recomputation_time_ms`` (time spent re-running layers during backward),
        ``step_time_ms`` and ``baseline_time_ms`` (medians of forward + backward),
        ``time_overhead_pct`` (recomputation time over the plain step time),
        ``measured_slowdown_pct`` (step time over the plain one, noisier) and
        ``memory_time_ratio`` (reduction % per overhead %, overhead floored at 1%).
        """
        from tinytorch.utils.checkpoint import checkpoint_sequential

        freqs = [int(f) for f in checkpoint_frequencies]
        if not freqs or min(freqs) < 1:
            raise ValueError(f"analyze_memory_checkpointing_trade_offs: frequencies must be "
                             f"positive ints, got {list(checkpoint_frequencies)}")
        rng = np.random.default_rng(self.seed)
        blocks, params, clock = _residual_net(num_layers, width, rng, self.dtype)
        x = Tensor(rng.standard_normal((batch, width)).astype(self.dtype), requires_grad=True)

        def step_fn(freq: int | None) -> Callable[[], Tensor]:
            if freq is None:
                def plain() -> Tensor:
                    h = x
                    for b in blocks:
                        h = b(h)
                    return h.sum()
                return plain
            segments = max(1, math.ceil(num_layers / freq))
            return lambda: checkpoint_sequential(blocks, segments, x).sum()

        configs: list[int | None] = [None, *freqs]
        steps = {c: step_fn(c) for c in configs}
        for p in [*params, x]:  # preallocate .grad: peaks then count activations only
            p.grad = None
        with grad_mode.enable_grad():
            steps[None]().backward()
            memory = {c: self._step_memory(steps[c], clock, params) for c in configs}
            times: dict[int | None, list[float]] = {c: [] for c in configs}
            recompute: dict[int | None, list[float]] = {c: [] for c in configs}
            for r in range(self.repeats + 1):  # round-robin, first round is a warm-up
                gc.collect()
                for c in configs[r % len(configs):] + configs[:r % len(configs)]:
                    clock.recompute_s = 0.0
                    t0 = time.perf_counter()
                    loss = steps[c]()
                    clock.in_backward = True
                    loss.backward()
                    clock.in_backward = False
                    if r:
                        times[c].append(time.perf_counter() - t0)
                        recompute[c].append(clock.recompute_s)
                    del loss

        base_peak, _ = memory[None]
        base_ms = _median_ms(times[None])
        rows = []
        for f in freqs:
            peak, held = memory[f]
            step_ms, rec_ms = _median_ms(times[f]), _median_ms(recompute[f])
            reduction = 100.0 * (base_peak - peak) / base_peak
            overhead = 100.0 * rec_ms / base_ms
            rows.append({
                "checkpoint_frequency": f,
                "segments": max(1, math.ceil(num_layers / f)),
                "memory_mb": peak / MB,
                "baseline_memory_mb": base_peak / MB,
                "memory_reduction_pct": reduction,
                "saved_mb": held / MB,
                "recomputation_time_ms": rec_ms,
                "step_time_ms": step_ms,
                "baseline_time_ms": base_ms,
                "time_overhead_pct": overhead,
                "measured_slowdown_pct": 100.0 * (step_ms - base_ms) / base_ms,
                "memory_time_ratio": reduction / max(overhead, 1.0),
            })
        self.checkpointing_results = rows
        self.profiling_data["checkpointing"] = {
            "num_layers": num_layers, "width": width, "batch": batch,
            "baseline_memory_mb": base_peak / MB, "baseline_saved_mb": memory[None][1] / MB,
            "baseline_time_ms": base_ms, "results": rows,
        }
        return rows

    @staticmethod
    def _step_memory(step: Callable[[], Tensor], clock: _Clock,
                     params: list[Tensor]) -> tuple[int, int]:
        """(peak over forward + backward above the start, bytes the graph saved besides
        the parameters)."""
        gc.collect()
        owned = not tracemalloc.is_tracing()
        if owned:
            tracemalloc.start()
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        loss = step()
        held = saved_bytes(loss, exclude=params)
        clock.in_backward = True
        loss.backward()
        clock.in_backward = False
        peak = tracemalloc.get_traced_memory()[1] - start
        if owned:
            tracemalloc.stop()
        return peak, held
