"""Time and memory against graph depth, and the checkpointing trade-off, for
``benchmarks/run_all.py``.

tinytorch's figures come from ``AutogradSystemsProfiler`` (real graphs: medians of
timed runs, bytes saved by the graph's nodes, tracemalloc peaks). Beside them, in the
same run:

- depth: the same computation written by hand in NumPy (forward and backward, no graph)
  and in PyTorch (when installed), timed the same way; PyTorch's saved bytes are read
  with ``torch.autograd.graph.saved_tensors_hooks`` (distinct storages, weights left out,
  as for tinytorch);
- checkpointing: the same residual network in PyTorch, plain and with
  ``torch.utils.checkpoint.checkpoint_sequential`` (non-reentrant), timed. PyTorch's CPU
  allocator is not visible to tracemalloc, so its memory column is left out.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from typing import Any

import numpy as np

from tinytorch.profiler import AutogradSystemsProfiler
from tinytorch.profiler.systems import _depth_forward, _depth_inputs

try:
    import torch
    from torch.utils.checkpoint import checkpoint_sequential as torch_checkpoint_sequential
except ImportError:
    torch = None

MB = 1024 * 1024


# ----------------------------------------------------------------- depth


def _torch_depth(depth: int, per_level: int, size: int, repeats: int, seed: int
                 ) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    x_np, w_np = _depth_inputs(size, depth, per_level, rng, np.float32)
    weights = [torch.from_numpy(w) for w in w_np]
    weight_ptrs = {w.untyped_storage().data_ptr() for w in weights}
    times = []
    for _ in range(repeats + 1):
        x = torch.tensor(x_np, requires_grad=True)
        t0 = time.perf_counter()
        _depth_forward(x, weights, depth, per_level, torch).backward()
        times.append(time.perf_counter() - t0)
    storages: dict[int, int] = {}

    def pack(t: Any) -> Any:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in weight_ptrs:
            storages[ptr] = t.untyped_storage().nbytes()
        return t

    x = torch.tensor(x_np, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = _depth_forward(x, weights, depth, per_level, torch)
    loss.backward()
    return {"time_ms": 1e3 * statistics.median(times[1:]), "saved_mb": sum(storages.values()) / MB}


def depth_scaling(max_depth: int, per_level: int, repeats: int, seed: int = 0
                  ) -> dict[str, Any]:
    prof = AutogradSystemsProfiler(repeats=repeats, seed=seed)
    report = prof.profile_computational_graph_depth(max_depth, per_level)
    torch_rows = {}
    if torch is not None:
        for d in range(1, max_depth + 1):
            torch_rows[d] = _torch_depth(d, per_level, prof.size, repeats, seed)
    return {"report": report, "torch": torch_rows, "per_level": per_level}


def depth_table(res: dict[str, Any]) -> list[str]:
    results, torch_rows = res["report"]["detailed_results"], res["torch"]
    head = ("| depth | ops | tinytorch fwd ms | tinytorch bwd ms | tinytorch fwd+bwd ms | "
            "NumPy (hand) fwd+bwd ms | PyTorch fwd+bwd ms | tinytorch saved MB | "
            "tinytorch peak MB | PyTorch saved MB |")
    out = [head, "|" + "---|" * 10]
    for d, r in results.items():
        tr = torch_rows.get(d)
        out.append(
            f"| {d} | {r['total_operations']} | {r['forward_time_ms']:.3f} | "
            f"{r['backward_time_ms']:.3f} | {r['total_time_ms']:.3f} | {r['numpy_time_ms']:.3f} | "
            + (f"{tr['time_ms']:.3f} | " if tr else "- | ")
            + f"{r['saved_memory_mb']:.3f} | {r['peak_memory_mb']:.3f} | "
            + (f"{tr['saved_mb']:.3f} |" if tr else "- |"))
    analysis = res["report"]["graph_analysis"]
    s = analysis.get("scaling_metrics", {})
    if s:
        out += ["", f"Linear fits over depth: time {s['time_ms_per_level']:.3f} ms/level "
                    f"(R² {s['time_linearity_r2']:.3f}); saved memory "
                    f"{s['saved_mb_per_level']:.4f} MB/level (R² {s['memory_linearity_r2']:.4f});"
                    f" peak memory {s['peak_mb_per_level']:.4f} MB/level "
                    f"(R² {s['peak_linearity_r2']:.4f}). Bottleneck verdict: "
                    f"**{analysis['primary_bottleneck']}** ({analysis['bottleneck_reason']})."]
    out += ["", "Strategies derived from these measurements:", ""]
    out += [f"- {s}" for s in res["report"]["optimization_strategies"]]
    return out


def depth_plot(res: dict[str, Any], path: str) -> None:
    import matplotlib.pyplot as plt

    results, torch_rows = res["report"]["detailed_results"], res["torch"]
    d = np.array(sorted(results))
    get = lambda k: np.array([results[i][k] for i in d])  # noqa: E731
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    series = [("tinytorch fwd+bwd", get("total_time_ms")),
              ("NumPy (hand) fwd+bwd", get("numpy_time_ms"))]
    if torch_rows:
        series.append(("PyTorch fwd+bwd", np.array([torch_rows[i]["time_ms"] for i in d])))
    for label, y in series:
        line = ax1.plot(d, y, "o", label=label)[0]
        slope, icpt = np.polyfit(d, y, 1)
        ax1.plot(d, slope * d + icpt, "-", color=line.get_color(), alpha=0.5)
    ax1.set_xlabel(f"graph depth (levels of {res['per_level']} ops on 100x100)")
    ax1.set_ylabel("ms (median)")
    ax1.set_title("Time against depth (points: measured, lines: fit)")
    ax1.legend()
    mem = [("tinytorch saved for backward", get("saved_memory_mb")),
           ("tinytorch tracemalloc peak", get("peak_memory_mb"))]
    if torch_rows:
        mem.append(("PyTorch saved for backward", np.array([torch_rows[i]["saved_mb"]
                                                           for i in d])))
    for label, y in mem:
        ax2.plot(d, y, "o-", label=label)
    ax2.set_xlabel("graph depth")
    ax2.set_ylabel("MB")
    ax2.set_title("Memory against depth")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------- checkpointing


def _torch_checkpointing(freqs: list[int], num_layers: int, width: int, batch: int,
                         repeats: int, seed: int) -> dict[int | None, float]:
    rng = np.random.default_rng(seed)
    scale = 1 / math.sqrt(width)
    params = []
    for _ in range(num_layers):
        params.append([torch.tensor(rng.uniform(-scale, scale, (width, width)).astype(np.float32),
                                    requires_grad=True),
                       torch.zeros(width, requires_grad=True),
                       torch.tensor(rng.uniform(-scale, scale, (width, width)).astype(np.float32),
                                    requires_grad=True),
                       torch.zeros(width, requires_grad=True)])
    x = torch.tensor(rng.standard_normal((batch, width)).astype(np.float32), requires_grad=True)

    class Block(torch.nn.Module):
        def __init__(self, p: list[Any]) -> None:
            super().__init__()
            self.p = p

        def forward(self, h: Any) -> Any:
            w1, b1, w2, b2 = self.p
            return h + torch.tanh(torch.relu(h @ w1 + b1) @ w2 + b2)

    blocks = torch.nn.Sequential(*[Block(p) for p in params])

    def run(freq: int | None) -> None:
        if freq is None:
            out = blocks(x)
        else:
            segments = max(1, math.ceil(num_layers / freq))
            out = torch_checkpoint_sequential(blocks, segments, x, use_reentrant=False)
        out.sum().backward()

    configs: list[int | None] = [None, *freqs]
    times: dict[int | None, list[float]] = {c: [] for c in configs}
    for r in range(repeats + 1):
        gc.collect()
        for c in configs[r % len(configs):] + configs[:r % len(configs)]:
            t0 = time.perf_counter()
            run(c)
            if r:
                times[c].append(time.perf_counter() - t0)
    return {c: 1e3 * statistics.median(v) for c, v in times.items()}


def checkpointing(freqs: list[int], num_layers: int, width: int, batch: int, repeats: int,
                  seed: int = 0) -> dict[str, Any]:
    prof = AutogradSystemsProfiler(repeats=repeats, seed=seed)
    rows = prof.analyze_memory_checkpointing_trade_offs(freqs, num_layers, width, batch)
    torch_ms = (_torch_checkpointing(freqs, num_layers, width, batch, repeats, seed)
                if torch is not None else {})
    return {"rows": rows, "base": prof.profiling_data["checkpointing"], "torch": torch_ms,
            "layers": num_layers, "width": width, "batch": batch}


def checkpoint_table(res: dict[str, Any]) -> list[str]:
    base, torch_ms = res["base"], res["torch"]
    out = ["| checkpoint every | segments | peak MB | reduction | saved by graph MB | "
           "recompute ms | step ms | time overhead (recompute) | measured slowdown | "
           "memory/time ratio | PyTorch step ms | PyTorch slowdown |",
           "|" + "---|" * 12]
    tb = torch_ms.get(None)
    out.append(f"| no checkpointing | 1 | {base['baseline_memory_mb']:.2f} | - | "
               f"{base['baseline_saved_mb']:.2f} | 0 | {base['baseline_time_ms']:.1f} | "
               f"- | - | - | "
               + (f"{tb:.1f} | - |" if tb else "- | - |"))
    for r in res["rows"]:
        f = r["checkpoint_frequency"]
        tc = torch_ms.get(f)
        out.append(
            f"| {f} layers | {r['segments']} | {r['memory_mb']:.2f} | "
            f"{r['memory_reduction_pct']:.1f}% | {r['saved_mb']:.2f} | "
            f"{r['recomputation_time_ms']:.1f} | {r['step_time_ms']:.1f} | "
            f"{r['time_overhead_pct']:.1f}% | {r['measured_slowdown_pct']:+.1f}% | "
            f"{r['memory_time_ratio']:.2f} | "
            + (f"{tc:.1f} | {100 * (tc - tb) / tb:+.1f}% |" if tc and tb else "- | - |"))
    best = max(res["rows"], key=lambda r: r["memory_time_ratio"])
    out += ["", f"Network: {res['layers']} residual layers h + tanh(relu(h W1 + b1) W2 + b2), "
                f"width {res['width']}, batch {res['batch']}, float32; gradients preallocated, "
                f"so peaks are activations. Best measured memory/time ratio: checkpoint every "
                f"{best['checkpoint_frequency']} layers ({best['memory_reduction_pct']:.0f}% less "
                f"peak memory for {best['time_overhead_pct']:.0f}% recomputation time)."]
    return out


def checkpoint_plot(res: dict[str, Any], path: str) -> None:
    import matplotlib.pyplot as plt

    rows, base = res["rows"], res["base"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    labels = ["none"] + [str(r["checkpoint_frequency"]) for r in rows]
    peaks = [base["baseline_memory_mb"]] + [r["memory_mb"] for r in rows]
    ax1.bar(labels, peaks, color=["#999999"] + ["#4c72b0"] * len(rows))
    ax1.set_xlabel("checkpoint every N layers")
    ax1.set_ylabel("peak memory of fwd+bwd, MB (tracemalloc)")
    ax1b = ax1.twinx()
    ax1b.plot(labels, [0.0] + [r["time_overhead_pct"] for r in rows], "o-", color="#dd8452")
    ax1b.set_ylabel("recomputation time, % of plain step", color="#dd8452")
    ax1.set_title("Checkpointing: memory and recomputation")
    ax2.plot([base["baseline_time_ms"]], [base["baseline_memory_mb"]], "s", color="#999999",
             label="no checkpointing")
    ax2.plot([r["baseline_time_ms"] + r["recomputation_time_ms"] for r in rows],
             [r["memory_mb"] for r in rows], "o-", label="checkpointed")
    for r in rows:
        ax2.annotate(f"every {r['checkpoint_frequency']}",
                     (r["baseline_time_ms"] + r["recomputation_time_ms"], r["memory_mb"]),
                     textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax2.set_xlabel("plain step time + measured recomputation, ms")
    ax2.set_ylabel("peak memory, MB")
    ax2.set_title("Trade-off curve")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
