"""tinytorch.profiler: the figures are measured on real graphs, the op profiler sees every
op and backward rule, the Chrome trace is valid, and ``tinytorch profile`` works.

Timing assertions compare only clearly separated magnitudes: the machine may be small
and shared.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tinytorch as tt
from numeric import one_blas_thread
from tinytorch.profiler import AutogradSystemsProfiler, profile, record_function
from tinytorch.profiler.graph import graph_nodes, node_saved_bytes, saved_bytes
from tinytorch.utils.checkpoint import checkpoint


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with one_blas_thread():
        yield


def _r2(xs, ys):
    slope, intercept = np.polyfit(xs, ys, 1)
    ys = np.asarray(ys, dtype=float)
    res = ys - (slope * np.asarray(xs) + intercept)
    return 1 - (res @ res) / (((ys - ys.mean()) ** 2).sum() or 1.0)


# --------------------------------------------------------------------- AutogradSystemsProfiler


@pytest.fixture(scope="module")
def depth_report():
    prof = AutogradSystemsProfiler(repeats=5)
    return prof, prof.profile_computational_graph_depth(max_depth=8, operations_per_level=5)


def test_depth_report_has_tinytorch_keys(depth_report):
    _, report = depth_report
    assert set(report) == {"detailed_results", "graph_analysis", "optimization_strategies"}
    results = report["detailed_results"]
    assert sorted(results) == list(range(1, 9))
    keys = {"graph_depth", "total_operations", "forward_time_ms", "backward_time_ms",
            "total_time_ms", "saved_bytes", "saved_memory_mb", "peak_memory_mb",
            "total_memory_mb", "operations_per_second", "memory_per_operation"}
    for depth, r in results.items():
        assert keys <= set(r)
        assert r["graph_depth"] == depth and r["total_operations"] == 5 * depth
        assert r["total_time_ms"] == pytest.approx(r["forward_time_ms"] + r["backward_time_ms"])
    analysis = report["graph_analysis"]
    assert {"depth_ratio", "forward_time_scaling", "backward_time_scaling",
            "memory_scaling"} <= set(analysis["scaling_metrics"])
    assert analysis["primary_bottleneck"] in {"backward_pass", "forward_pass", "memory",
                                              "balanced"}
    assert analysis["bottleneck_reason"]
    assert "avg_backward_forward_ratio" in analysis["efficiency_metrics"]
    assert report["optimization_strategies"] and all(
        isinstance(s, str) for s in report["optimization_strategies"])


def test_saved_memory_is_read_off_the_graph_and_grows_linearly(depth_report):
    results = depth_report[1]["detailed_results"]
    saved = [results[d]["saved_bytes"] for d in range(1, 9)]
    assert saved[-1] > 4 * saved[0] > 0
    # Each level adds the same arrays (tanh keeps its 100x100 float32 output). The
    # numbers 0.9 and 0.1 are saved as 0-d float32 arrays that all levels share.
    steps = np.diff(saved)
    assert np.all(steps == steps[0]) and steps[0] == 100 * 100 * 4
    assert saved[0] == 2 * 100 * 100 * 4 + 2 * 4
    # The same figure, measured independently on a graph of depth 3.
    x = tt.tensor(np.ones((100, 100), np.float32), requires_grad=True)
    weights = [tt.tensor(np.eye(100, dtype=np.float32)) for _ in range(3)]
    h = x
    for w in weights:
        h = tt.tanh((h * 0.9 + 0.1) @ w) * 0.9
    loss = (h * h).sum()
    assert saved_bytes(loss, exclude=weights) == results[3]["saved_bytes"]
    assert saved_bytes(loss) == results[3]["saved_bytes"] + 3 * 40_000
    assert sum(node_saved_bytes(n) for n in graph_nodes(loss)) >= saved_bytes(loss)


def test_peak_memory_is_measured_and_grows_roughly_linearly(depth_report):
    results = depth_report[1]["detailed_results"]
    peak = [results[d]["peak_memory_mb"] for d in range(1, 9)]
    assert peak[-1] > 1.5 * peak[0] > 0
    assert _r2(range(1, 9), peak) > 0.9
    assert all(results[d]["memory_per_operation"] > 0 for d in results)


def test_backward_times_are_positive_and_grow_with_depth(depth_report):
    results = depth_report[1]["detailed_results"]
    bwd = [results[d]["backward_time_ms"] for d in range(1, 9)]
    fwd = [results[d]["forward_time_ms"] for d in range(1, 9)]
    assert min(bwd) > 0 and min(fwd) > 0
    # 8 levels vs 1: medians of the two deepest clearly above the two shallowest.
    assert bwd[6] + bwd[7] > bwd[0] + bwd[1]
    assert fwd[6] + fwd[7] > fwd[0] + fwd[1]


def test_strategies_follow_the_measurements(depth_report):
    prof, report = depth_report
    scaling = report["graph_analysis"]["scaling_metrics"]
    text = " ".join(report["optimization_strategies"])
    assert f"{scaling['saved_mb_per_level']:.3f} MB saved per level" in text
    # Feed doctored figures through the same rules: the advice changes with them.
    results = report["detailed_results"]
    slow = {d: {**r, "backward_time_ms": 10 * r["forward_time_ms"],
                "total_time_ms": 11 * r["forward_time_ms"], "peak_memory_mb": 80.0 * d}
            for d, r in results.items()}
    advice = prof._generate_graph_optimizations(slow, prof._analyze_graph_scaling(slow))
    assert any("Backward is 10.0x the forward" in s for s in advice)
    assert any("High peak memory (640.0 MB)" in s for s in advice)
    assert not any("High peak memory" in s for s in report["optimization_strategies"]
                   if max(r["peak_memory_mb"] for r in results.values()) <= 50)


def test_checkpointing_lowers_measured_peak_memory():
    prof = AutogradSystemsProfiler(repeats=2)
    rows = prof.analyze_memory_checkpointing_trade_offs([1, 2, 4], num_layers=8, width=128,
                                                         batch=64)
    assert [r["checkpoint_frequency"] for r in rows] == [1, 2, 4]
    keys = {"checkpoint_frequency", "memory_mb", "memory_reduction_pct",
            "recomputation_time_ms", "time_overhead_pct", "memory_time_ratio"}
    base = prof.profiling_data["checkpointing"]
    for r in rows:
        assert keys <= set(r)
        assert r["memory_mb"] < 0.8 * r["baseline_memory_mb"]
        assert r["memory_reduction_pct"] > 20
        assert r["saved_mb"] < 0.8 * base["baseline_saved_mb"]
        assert r["recomputation_time_ms"] > 0 and r["time_overhead_pct"] > 0
        assert r["memory_time_ratio"] == pytest.approx(
            r["memory_reduction_pct"] / max(r["time_overhead_pct"], 1.0))
    assert rows[0]["segments"] == 8 and rows[2]["segments"] == 2


def test_core_autograd_reexports_the_profiler():
    from tinytorch.core.autograd import AutogradSystemsProfiler as Core

    assert Core is AutogradSystemsProfiler


# --------------------------------------------------------------------- profile()


def _mlp_step():
    rng = np.random.default_rng(0)
    w1 = tt.tensor(rng.standard_normal((8, 16)).astype(np.float32), requires_grad=True)
    w2 = tt.tensor(rng.standard_normal((16, 4)).astype(np.float32), requires_grad=True)
    x = tt.tensor(rng.standard_normal((32, 8)).astype(np.float32))
    return x, w1, w2


def test_profile_counts_ops_and_backward_rules():
    x, w1, w2 = _mlp_step()
    with profile() as prof:
        loss = (tt.tanh(x @ w1) @ w2).sum()
        loss.backward()
    stats = {(s.name, s.kind): s for s in prof.key_averages()}
    assert stats[("matmul", "forward")].count == 2
    assert stats[("tanh", "forward")].count == 1
    assert stats[("MatmulBackward", "backward")].count == 2
    assert stats[("TanhBackward", "backward")].count == 1
    assert stats[("SumBackward", "backward")].count == 1
    for s in stats.values():
        assert 0 < s.self_time_ns <= s.total_time_ns
    # what each op saved: tanh its output (32x16 float32); the second matmul both inputs
    assert stats[("tanh", "forward")].saved_bytes == 32 * 16 * 4
    assert stats[("matmul", "forward")].saved_bytes == 32 * 8 * 4 + 32 * 16 * 4 + 16 * 4 * 4
    assert prof.peak_memory is not None and prof.peak_memory > 0
    assert prof.wall_time_ns >= sum(e.self_ns for e in prof.events)


def test_nested_ops_are_excluded_from_self_time():
    x = tt.tensor(np.arange(12.0, dtype=np.float32).reshape(3, 4), requires_grad=True)
    with profile(record_memory=False) as prof:
        x.var().backward()
    by_name = {e.name: e for e in prof.events if e.kind == "forward"}
    var = by_name["var"]
    inner = [e for e in prof.events if e.start_ns >= var.start_ns and e.end_ns <= var.end_ns
             and e is not var]
    assert inner and all(e.depth > var.depth for e in inner)
    assert var.self_ns == (var.end_ns - var.start_ns) - sum(
        e.end_ns - e.start_ns for e in inner if e.depth == var.depth + 1)


def test_checkpoint_recomputation_shows_inside_its_backward():
    w = tt.tensor(np.eye(4, dtype=np.float32), requires_grad=True)
    x = tt.tensor(np.ones((2, 4), np.float32), requires_grad=True)
    with profile(record_memory=False) as prof:
        checkpoint(lambda h: tt.tanh(h @ w), x).sum().backward()
    (ck,) = [e for e in prof.events if e.name == "CheckpointBackward"]
    inside = {(e.name, e.kind) for e in prof.events
              if e.depth > ck.depth and ck.start_ns <= e.start_ns <= ck.end_ns}
    assert {("matmul", "forward"), ("tanh", "forward"), ("MatmulBackward", "backward")} <= inside


def test_profile_restores_the_hook_and_leaves_ops_untouched():
    before = sys.getprofile()
    codes = {name: getattr(tt.ops, name).__code__ for name in tt.ops.__all__}
    with pytest.raises(ZeroDivisionError), profile():
        _ = tt.tensor([1.0], requires_grad=True) * 2
        1 / 0
    assert sys.getprofile() is before
    assert {name: getattr(tt.ops, name).__code__ for name in tt.ops.__all__} == codes
    # outside a profile, record_function costs nothing and records nothing
    with record_function("idle") as rf:
        pass
    assert rf._owner is None


def test_table_sorts_limits_and_rejects_unknown_keys():
    x, w1, w2 = _mlp_step()
    with profile() as prof, record_function("step"):
        (tt.relu(x @ w1) @ w2).sum().backward()
    table = prof.table(row_limit=3)
    lines = table.splitlines()
    assert lines[1].split()[:3] == ["Name", "Pass", "Calls"]
    assert sum(1 for ln in lines if len(ln.split()) > 1 and ln.split()[1] in
               {"forward", "backward", "range"}) == 3
    assert "more rows" in table and "Saved for backward" in table and "peak memory" in table
    by_count = prof.table(sort_by="count", row_limit=-1).splitlines()
    first = by_count[3].split()
    assert first[0] in {"matmul", "MatmulBackward"} and first[2] == "2"
    assert "step" in prof.table(row_limit=-1)
    with pytest.raises(ValueError, match="unknown sort_by"):
        prof.table(sort_by="bogus")


def test_chrome_trace_is_valid_json_with_complete_events(tmp_path):
    x, w1, w2 = _mlp_step()
    with profile() as prof:
        with record_function("forward"):
            loss = (tt.tanh(x @ w1) @ w2).sum()
        loss.backward()
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    doc = json.loads(path.read_text())
    events = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert {e["name"] for e in events} >= {"forward", "matmul", "tanh", "sum",
                                            "MatmulBackward", "TanhBackward", "SumBackward"}
    for e in events:
        assert {"name", "cat", "ph", "ts", "dur", "pid", "tid"} <= set(e)
        assert e["ts"] >= 0 and e["dur"] >= 0 and e["cat"] in {"forward", "backward", "range"}
    mm = [e for e in events if e["name"] == "matmul"]
    assert mm[0]["args"]["output_shape"] == [32, 16] and mm[0]["args"]["dtype"] == "float32"
    rng = next(e for e in events if e["name"] == "forward")
    assert all(rng["ts"] <= e["ts"] and e["ts"] + e["dur"] <= rng["ts"] + rng["dur"] + 1e-3
               for e in mm)
    assert any(e["ph"] == "M" for e in doc["traceEvents"])


# --------------------------------------------------------------------- CLI

CMD = [sys.executable, "-m", "tinytorch.cli"]
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def test_cli_profile_prints_the_table_and_writes_a_trace(tmp_path):
    pytest.importorskip("sklearn")
    trace = tmp_path / "step.json"
    res = subprocess.run([*CMD, "profile", "--trace", str(trace)], capture_output=True,
                         text=True, timeout=120, env=ENV)
    assert res.returncode == 0, res.stderr
    for name in ("matmul", "MatmulBackward", "cross_entropy", "CrossEntropyBackward",
                 "optimizer.step()", "Self ms", "peak memory"):
        assert name in res.stdout
    names = {e["name"] for e in json.loads(trace.read_text())["traceEvents"]}
    assert {"matmul", "MatmulBackward", "loss.backward()"} <= names
