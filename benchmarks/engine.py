"""Engine overhead benchmark: tinytorch vs hand-written NumPy vs PyTorch.

Each workload runs forward + backward in these ways, in the same process:

- **NumPy (hand)**: forward and backward written out by hand with NumPy arrays as one
  naturally writes them (no graph, no bookkeeping): the reference of every ratio;
- **tinytorch**: the same computation through the autograd engine;
- for the chains, hand-written NumPy once more with its constants as 0-d arrays (as
  tinytorch keeps Python numbers), printed under the table as a stricter reference;
- **PyTorch** (only when ``import torch`` works; tinytorch itself never imports it).

Every time is reported as a ratio to hand-written NumPy. The workloads:

(a) 1,000-op chain (``x*1.0001``, ``x+0.001``, ``tanh``, repeated) on 16 float32 values,
    backward from ``.sum()``: microseconds per op (the per-op engine overhead);
(b) one SGD step of an MLP 784-256-128-10 (ReLU, softmax cross-entropy, batch 64);
(c) ``relu(x @ W1) @ W2`` with 1024x1024 float32 matrices, ``.sum()``, backward
    (matmul-bound: the engine should cost almost nothing here);
(d) the chain of (a), 20,000 ops on a 1-element tensor (deep-graph overhead).

Method: the machine may be small and shared, so the contenders are interleaved
round-robin (the starting contender rotates each round), each workload is repeated
many times after a warm-up, and the MINIMUM (the least disturbed run) is compared;
medians are shown too. A faster contender makes several calls per sample so that all
samples last about as long (a short sample is likelier to dodge a disturbance, which
would flatter it). ``gc.collect()`` runs before each timed section and the
garbage collector stays enabled inside it (objects alive at start-up are moved out of
its way with ``gc.freeze()`` so that a large import like torch does not inflate
whichever contender happens to trigger a full collection).

Before timing, tinytorch's gradients are compared with the hand-written NumPy ones;
a mismatch prints a FAIL line and makes the script exit with status 1.

Usage::

    python benchmarks/engine.py             # full run (a few minutes at most)
    python benchmarks/engine.py --quick     # CI smoke run, under 20 s
    python benchmarks/engine.py --out engine.md
    python benchmarks/engine.py --threads 1   # steadier numbers on a busy machine
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tinytorch as tt

try:
    import torch
except ImportError:  # PyTorch is optional: its column is left out
    torch = None  # type: ignore[assignment]

F32 = np.float32
MUL, ADD = 1.0001, 0.001  # the chain's constants

# Targets for tinytorch / hand-written NumPy (minimum times).
TARGETS = {"a": 2.0, "b": 1.15, "c": 1.05, "d": 2.0}


# --------------------------------------------------------------------------- timing


@dataclass
class Result:
    key: str
    title: str
    unit: str  # "us/op" or "ms/step"
    scale: float  # seconds per sample -> unit
    samples: dict[str, list[float]] = field(default_factory=dict)

    def min(self, name: str) -> float:
        return min(self.samples[name]) * self.scale

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name]) * self.scale


def interleaved(
    contenders: dict[str, Callable[[], Any]],
    numbers: dict[str, int],
    min_rounds: int,
    max_rounds: int,
    budget_s: float,
) -> dict[str, list[float]]:
    """Time each contender once per round (``numbers[name]`` calls back to back, so
    every sample lasts about as long and is as likely to be disturbed), rotating who
    goes first; stop after ``max_rounds`` or when ``budget_s`` is spent (but never
    before ``min_rounds``). Returns seconds per call."""
    names = list(contenders)
    samples: dict[str, list[float]] = {n: [] for n in names}
    start = time.perf_counter()
    for r in range(max_rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn, number = contenders[name], numbers[name]
            gc.collect()
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - t0) / number)
        if r + 1 >= min_rounds and time.perf_counter() - start > budget_s:
            break
    return samples


def warm_up(contenders: dict[str, Callable[[], Any]], times: int) -> dict[str, int]:
    """Run each contender ``times`` times; return how many calls make one sample of
    each last about as long as one call of the slowest."""
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(times):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    slowest = max(best.values())
    return {name: max(1, min(50, round(slowest / t))) for name, t in best.items()}


# --------------------------------------------------------------------------- checks

FAILURES: list[str] = []


def check(label: str, got: Any, want: Any, rtol: float = 2e-4) -> None:
    """Compare float32 gradients; atol scales with the reference's magnitude."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    scale = float(np.max(np.abs(want))) if want.size else 1.0
    ok = got.shape == want.shape and np.allclose(got, want, rtol=rtol, atol=1e-6 * max(scale, 1.0))
    err = (
        float(np.max(np.abs(got - want))) if got.shape == want.shape and got.size else float("nan")
    )
    if ok:
        print(f"  ok    {label} (max abs diff {err:.2e})")
    else:
        msg = f"FAIL  {label}: shapes {got.shape} vs {want.shape}, max abs diff {err:.3e}"
        print("  !!!!! " + msg + " !!!!!")
        FAILURES.append(msg)


def check_torch(label: str, got: Any, want: Any) -> None:
    """PyTorch is a reference too, but a mismatch there is a warning, not a failure."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    scale = float(np.max(np.abs(want))) if want.size else 1.0
    if np.allclose(got, want, rtol=1e-3, atol=1e-5 * max(scale, 1.0)):
        print(f"  ok    {label} (PyTorch, for reference)")
    else:
        print(f"  WARNING {label}: PyTorch disagrees with hand-written NumPy")


# --------------------------------------------------------------------------- (a), (d) chains


def chain_numpy(x0: np.ndarray, n_ops: int, zero_d: bool = False) -> np.ndarray:
    """Forward the chain saving what backward needs, then run backward by hand.

    The constants are Python numbers, as one writes them; ``zero_d`` makes them 0-d
    arrays of the input's dtype first (NumPy then skips converting them on every call:
    a stricter reference, reported beside the table)."""
    mul, add, one = (np.asarray(c, x0.dtype) for c in (MUL, ADD, 1)) if zero_d else (MUL, ADD, 1)
    x = x0
    ys = []
    triples, rest = divmod(n_ops, 3)
    for _ in range(triples):
        x = x * mul
        x = x + add
        x = np.tanh(x)
        ys.append(x)
    if rest >= 1:
        x = x * mul
    if rest >= 2:
        x = x + add
    x.sum()
    g = np.ones_like(x)
    if rest >= 1:
        g = g * mul  # the add's gradient is g itself
    for y in reversed(ys):
        g = g * (one - y * y)
        g = g * mul
    return g


def chain_autograd(x0: Any, n_ops: int, tanh: Any) -> np.ndarray:
    """The chain in an autograd framework (tinytorch or PyTorch: same operators), then
    backward from the sum; returns the input's gradient as an array."""
    x = x0
    triples, rest = divmod(n_ops, 3)
    for _ in range(triples):
        x = x * MUL
        x = x + ADD
        x = tanh(x)
    if rest >= 1:
        x = x * MUL
    if rest >= 2:
        x = x + ADD
    x.sum().backward()
    g = np.asarray(x0.grad)
    x0.grad = None
    return g


def bench_chain(key: str, n_ops: int, size: int, rounds: tuple[int, int, float]) -> Result:
    title = {
        "a": f"(a) {n_ops:,}-op chain, {size} x float32, fwd+bwd",
        "d": f"(d) {n_ops:,}-op chain, {size} x float32, fwd+bwd",
    }[key]
    x_np = np.random.default_rng(0).standard_normal(size).astype(F32)
    x_tt = tt.tensor(x_np, requires_grad=True)
    contenders: dict[str, Callable[[], Any]] = {
        "numpy": lambda: chain_numpy(x_np, n_ops),
        "numpy-0d": lambda: chain_numpy(x_np, n_ops, zero_d=True),
        "tinytorch": lambda: chain_autograd(x_tt, n_ops, tt.tanh),
    }
    if torch is not None:
        x_th = torch.tensor(x_np, requires_grad=True)
        contenders["torch"] = lambda: chain_autograd(x_th, n_ops, torch.tanh)

    want = contenders["numpy"]()
    check(f"{key}: d sum / d x", contenders["tinytorch"](), want, rtol=1e-4)
    check(f"{key}: d sum / d x (NumPy, 0-d constants)", contenders["numpy-0d"](), want, rtol=1e-4)
    if torch is not None:
        check_torch(f"{key}: d sum / d x", contenders["torch"](), want)

    numbers = warm_up(contenders, 3)
    res = Result(key, title, "us/op", 1e6 / n_ops)
    res.samples = interleaved(contenders, numbers, *rounds)
    return res


# --------------------------------------------------------------------------- (b) MLP step

SIZES = (784, 256, 128, 10)
BATCH, LR = 64, 0.01


def mlp_init(rng: np.random.Generator) -> list[np.ndarray]:
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(F32))
        params.append(rng.uniform(-bound, bound, fan_out).astype(F32))
    return params


def mlp_grads_numpy(params: list[np.ndarray], x: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
    """Forward, fused softmax-cross-entropy gradient, backward: all by hand."""
    w1, b1, w2, b2, w3, b3 = params
    h1 = x @ w1 + b1
    a1 = np.maximum(h1, 0)
    h2 = a1 @ w2 + b2
    a2 = np.maximum(h2, 0)
    z = a2 @ w3 + b3
    zmax = z.max(axis=1, keepdims=True)
    e = np.exp(z - zmax)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(len(t))
    _loss = np.mean(np.log(s[:, 0]) + zmax[:, 0] - z[rows, t])
    dz = e / s
    dz[rows, t] -= 1
    dz *= 1.0 / len(t)
    dw3 = a2.T @ dz
    db3 = dz.sum(axis=0)
    da2 = dz @ w3.T
    da2 *= h2 > 0
    dw2 = a1.T @ da2
    db2 = da2.sum(axis=0)
    da1 = da2 @ w2.T
    da1 *= h1 > 0
    dw1 = x.T @ da1
    db1 = da1.sum(axis=0)
    return [dw1, db1, dw2, db2, dw3, db3]


def mlp_step_numpy(params: list[np.ndarray], x: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
    grads = mlp_grads_numpy(params, x, t)
    for p, g in zip(params, grads):
        p -= LR * g
    return grads


def mlp_step_tinytorch(params: list[tt.Tensor], x: tt.Tensor, t: tt.Tensor) -> list[np.ndarray]:
    w1, b1, w2, b2, w3, b3 = params
    h = tt.relu(x @ w1 + b1)
    h = tt.relu(h @ w2 + b2)
    loss = tt.cross_entropy(h @ w3 + b3, t)
    loss.backward()
    grads = [p.grad.data for p in params]  # type: ignore[union-attr]
    with tt.no_grad():
        for p in params:
            p.data -= LR * p.grad.data  # type: ignore[union-attr]
            p.grad = None
    return grads


def mlp_step_torch(params: list[Any], x: Any, t: Any) -> list[np.ndarray]:
    w1, b1, w2, b2, w3, b3 = params
    h = torch.relu(x @ w1 + b1)
    h = torch.relu(h @ w2 + b2)
    loss = torch.nn.functional.cross_entropy(h @ w3 + b3, t)
    loss.backward()
    grads = [p.grad.numpy() for p in params]
    with torch.no_grad():
        for p in params:
            p -= LR * p.grad
            p.grad = None
    return grads


def bench_mlp(rounds: tuple[int, int, float]) -> Result:
    rng = np.random.default_rng(1)
    init = mlp_init(rng)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(F32)
    t = rng.integers(0, SIZES[-1], BATCH).astype(np.int64)

    # Gradient check on identical parameters, before any update.
    want = mlp_grads_numpy(init, x, t)
    p_check = [tt.tensor(p, requires_grad=True) for p in init]
    got = mlp_step_tinytorch(p_check, tt.tensor(x), tt.tensor(t, dtype=np.int64))
    for name, g, w in zip(("W1", "b1", "W2", "b2", "W3", "b3"), got, want):
        check(f"b: d loss / d {name}", g, w)
    if torch is not None:
        p_th = [torch.tensor(p, requires_grad=True) for p in init]
        got_th = mlp_step_torch(p_th, torch.from_numpy(x), torch.from_numpy(t))
        for name, g, w in zip(("W1", "b1", "W2", "b2", "W3", "b3"), got_th, want):
            check_torch(f"b: d loss / d {name}", g, w)

    p_np = [p.copy() for p in init]
    p_tt = [tt.tensor(p, requires_grad=True) for p in init]
    x_tt, t_tt = tt.tensor(x), tt.tensor(t, dtype=np.int64)
    contenders: dict[str, Callable[[], Any]] = {
        "numpy": lambda: mlp_step_numpy(p_np, x, t),
        "tinytorch": lambda: mlp_step_tinytorch(p_tt, x_tt, t_tt),
    }
    if torch is not None:
        p_th2 = [torch.tensor(p, requires_grad=True) for p in init]
        x_th, t_th = torch.from_numpy(x), torch.from_numpy(t)
        contenders["torch"] = lambda: mlp_step_torch(p_th2, x_th, t_th)

    numbers = warm_up(contenders, 5)
    res = Result("b", "(b) MLP 784-256-128-10 SGD step, batch 64", "ms/step", 1e3)
    res.samples = interleaved(contenders, numbers, *rounds)
    return res


# --------------------------------------------------------------------------- (c) matmul-bound


def mm_numpy(x: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = x @ w1
    mask = h > 0
    a = h * mask
    y = a @ w2
    y.sum()
    g = np.ones_like(y)  # d sum / d y
    dw2 = a.T @ g
    da = g @ w2.T
    da *= mask
    dw1 = x.T @ da
    return dw1, dw2


def mm_tinytorch(x: tt.Tensor, w1: tt.Tensor, w2: tt.Tensor) -> tuple[np.ndarray, np.ndarray]:
    (tt.relu(x @ w1) @ w2).sum().backward()
    grads = (w1.grad.data, w2.grad.data)  # type: ignore[union-attr]
    w1.grad = w2.grad = None
    return grads


def mm_torch(x: Any, w1: Any, w2: Any) -> tuple[np.ndarray, np.ndarray]:
    (torch.relu(x @ w1) @ w2).sum().backward()
    grads = (w1.grad.numpy(), w2.grad.numpy())
    w1.grad = w2.grad = None
    return grads


def bench_matmul(n: int, rounds: tuple[int, int, float]) -> Result:
    rng = np.random.default_rng(2)
    x, w1, w2 = (rng.standard_normal((n, n)).astype(F32) / np.sqrt(n) for _ in range(3))
    x_tt = tt.tensor(x)
    w1_tt, w2_tt = tt.tensor(w1, requires_grad=True), tt.tensor(w2, requires_grad=True)
    contenders: dict[str, Callable[[], Any]] = {
        "numpy": lambda: mm_numpy(x, w1, w2),
        "tinytorch": lambda: mm_tinytorch(x_tt, w1_tt, w2_tt),
    }
    if torch is not None:
        x_th = torch.from_numpy(x)
        w1_th = torch.tensor(w1, requires_grad=True)
        w2_th = torch.tensor(w2, requires_grad=True)
        contenders["torch"] = lambda: mm_torch(x_th, w1_th, w2_th)

    want = contenders["numpy"]()
    got = contenders["tinytorch"]()
    check("c: d sum / d W1", got[0], want[0])
    check("c: d sum / d W2", got[1], want[1])
    if torch is not None:
        got_th = contenders["torch"]()
        check_torch("c: d sum / d W1", got_th[0], want[0])
        check_torch("c: d sum / d W2", got_th[1], want[1])

    numbers = warm_up(contenders, 1)
    res = Result("c", f"(c) relu(x @ W1) @ W2, {n}x{n} float32, fwd+bwd", "ms/step", 1e3)
    res.samples = interleaved(contenders, numbers, *rounds)
    return res


# --------------------------------------------------------------------------- report


def environment() -> list[str]:
    lines = [
        f"- Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} logical CPUs ({platform.platform()})",
        f"- NumPy {np.__version__}; tinytorch {tt.__version__}",
    ]
    blas = None
    try:
        from threadpoolctl import threadpool_info

        pools = [
            f"{p.get('internal_api')} {p.get('version')} ({p.get('user_api')}, "
            f"{p.get('num_threads')} threads)"
            for p in threadpool_info()
        ]
        blas = "; ".join(pools) if pools else None
    except ImportError:
        pass
    if blas is None:  # fall back to NumPy's build info
        try:
            cfg = np.show_config(mode="dicts")
            lib = cfg.get("Build Dependencies", {}).get("blas", {})
            blas = f"{lib.get('name')} {lib.get('version')} (thread count unknown)"
        except (TypeError, AttributeError):
            blas = "unknown (install threadpoolctl to see)"
    lines.append(f"- Thread pools: {blas}")
    if torch is not None:
        lines.append(f"- PyTorch {torch.__version__} ({torch.get_num_threads()} intra-op threads)")
    else:
        lines.append("- PyTorch: not installed (column omitted)")
    return lines


def fmt(v: float) -> str:
    return f"{v:.3g}" if v < 100 else f"{v:,.0f}"


def table(results: list[Result]) -> list[str]:
    have_torch = torch is not None
    head = ["workload", "unit", "NumPy (hand) min / med", "tinytorch min / med"]
    if have_torch:
        head.append("PyTorch min / med")
    head += ["tinytorch ÷ NumPy min (med)", "target", "status"]
    if have_torch:
        head.append("PyTorch ÷ NumPy min (med)")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        base_min, base_med = r.min("numpy"), r.median("numpy")
        ratio = r.min("tinytorch") / base_min
        ratio_med = r.median("tinytorch") / base_med
        target = TARGETS[r.key]
        row = [
            r.title,
            r.unit,
            f"{fmt(base_min)} / {fmt(base_med)}",
            f"{fmt(r.min('tinytorch'))} / {fmt(r.median('tinytorch'))}",
        ]
        if have_torch:
            row.append(f"{fmt(r.min('torch'))} / {fmt(r.median('torch'))}")
        row += [
            f"**{ratio:.2f}x** ({ratio_med:.2f}x)",
            f"<= {target:.2f}x",
            "ok" if ratio <= target else "MISS",
        ]
        if have_torch:
            row.append(f"{r.min('torch') / base_min:.2f}x ({r.median('torch') / base_med:.2f}x)")
        out.append("| " + " | ".join(row) + " |")
    rounds = ", ".join(f"{r.key}: {len(r.samples['numpy'])}" for r in results)
    out.append("")
    out.append(f"Ratios are of minimum times (medians in brackets). Rounds per workload: {rounds}.")
    for r in results:
        if "numpy-0d" in r.samples:
            strict = r.min("numpy-0d")
            out.append(
                f"({r.key}) hand-written NumPy with its constants as 0-d arrays (as tinytorch "
                f"keeps them): {fmt(strict)} {r.unit}, {r.min('numpy') / strict:.2f}x faster "
                f"than with Python numbers; tinytorch ÷ it: {r.min('tinytorch') / strict:.2f}x."
            )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few repeats (CI smoke run, < 20 s)")
    ap.add_argument("--out", metavar="FILE.md", help="also write the report to this file")
    ap.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="limit BLAS (via threadpoolctl) and PyTorch to N threads; steadier on a busy machine",
    )
    args = ap.parse_args(argv)
    if args.threads is not None:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            ap.error("--threads needs threadpoolctl (pip install threadpoolctl)")
        threadpool_limits(args.threads)
        if torch is not None:
            torch.set_num_threads(args.threads)

    # (min rounds, max rounds, time budget in seconds) per workload
    if args.quick:
        plan = {"a": (3, 30, 1.0), "b": (3, 50, 1.0), "c": (1, 4, 1.5), "d": (1, 5, 1.5)}
    else:
        plan = {
            "a": (100, 400, 20.0),
            "b": (200, 1000, 20.0),
            "c": (10, 60, 40.0),
            "d": (10, 60, 30.0),
        }

    env = environment()
    print("## Environment\n")
    print("\n".join(env))
    gc.collect()
    gc.freeze()  # start-up objects (torch's included) stay out of timed collections
    print(
        f"- GC enabled during timing (gc.freeze() after start-up); "
        f"{'quick' if args.quick else 'full'} mode\n"
    )

    print("## Gradient checks (tinytorch vs hand-written NumPy)\n")
    t0 = time.perf_counter()
    results = [
        bench_chain("a", 1000, 16, plan["a"]),
        bench_mlp(plan["b"]),
        bench_matmul(1024, plan["c"]),
        bench_chain("d", 20000, 1, plan["d"]),
    ]
    elapsed = time.perf_counter() - t0

    lines = ["## Engine overhead: tinytorch vs hand-written NumPy", ""] + table(results)
    lines.append(f"Total benchmark time {elapsed:.1f} s.")
    if FAILURES:
        lines += ["", "**GRADIENT CHECK FAILED:**", *[f"- {f}" for f in FAILURES]]
    print()
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write("## Environment\n\n" + "\n".join(env) + "\n\n" + "\n".join(lines) + "\n")
    if FAILURES:
        print(f"\nFAIL: {len(FAILURES)} gradient check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
