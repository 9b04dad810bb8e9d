"""Soak test: does a long training run leak memory?

Trains the default digits MLP (``build_model('mlp', (1, 8, 8), 10)``: Standardize,
64-256-128-10 with ReLU and dropout; Adam, cross-entropy, batch 32 as ``tinytorch train``
uses) for ``--steps`` optimizer steps through ``tinytorch.training.Trainer.train_step``,
reshuffling every epoch. Every ``--every`` steps it records

- RSS (psutil when installed, else ``/proc/self/statm``),
- tracemalloc's current and peak traced memory (Python allocations, NumPy arrays
  included),
- live tinytorch objects found by the garbage collector (Tensors and graph nodes),

then prints a table. If the graphs were kept alive (a reference cycle, a cache, a
history that holds tensors), all of these grow with the step count. Exits with status 1
when RSS grew by more than ``--max-growth`` percent between the warm-up step and the end.

Usage::

    python benchmarks/soak.py                  # 5,000 steps, warm-up at step 500
    python benchmarks/soak.py --steps 20000 --every 2000
    python benchmarks/soak.py --no-tracemalloc # faster, RSS only
    python benchmarks/soak.py --threads 0      # BLAS threads as configured (default: 1)
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc
from typing import Any

import numpy as np

import tinytorch as tt
from tinytorch.autograd.node import Node
from tinytorch.data import DataLoader, load_digits
from tinytorch.models import build_model
from tinytorch.nn import CrossEntropyLoss
from tinytorch.training import Trainer

MiB = 1024 * 1024


def rss_bytes() -> tuple[int, str]:
    """Resident set size of this process, and how it was measured."""
    try:
        import psutil
    except ImportError:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE"), "/proc/self/statm"
    return psutil.Process().memory_info().rss, "psutil"


def live_objects() -> tuple[int, int]:
    """Tensors and graph nodes the garbage collector can see."""
    gc.collect()
    tensors = nodes = 0
    for obj in gc.get_objects():
        if isinstance(obj, tt.Tensor):
            tensors += 1
        elif isinstance(obj, Node):
            nodes += 1
    return tensors, nodes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000, help="optimizer steps")
    parser.add_argument("--warmup", type=int, default=500,
                        help="step after which memory should stay flat")
    parser.add_argument("--every", type=int, default=500, help="sample memory every N steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-growth", type=float, default=5.0,
                        help="allowed RSS growth after warm-up, in percent")
    parser.add_argument("--no-tracemalloc", action="store_true",
                        help="skip tracemalloc (about twice as fast)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads via threadpoolctl (0: leave as is); memory, not "
                             "speed, is measured, and one thread keeps a busy machine usable")
    args = parser.parse_args(argv)
    if args.threads:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            print("soak: threadpoolctl is not installed; BLAS threads left as they are")
        else:
            threadpool_limits(args.threads)
    if not 0 < args.warmup < args.steps:
        parser.error(f"--warmup must be between 0 and --steps ({args.steps})")

    trace = not args.no_tracemalloc
    if trace:
        tracemalloc.start()
    tt.manual_seed(args.seed)
    train, _ = load_digits()
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True,
                        generator=np.random.default_rng(args.seed + 1))
    model = build_model("mlp", (1, 8, 8), 10)
    model[0].fit(train.tensors[0].data)
    trainer = Trainer(model, tt.optim.Adam(model.parameters(), lr=args.lr), CrossEntropyLoss())

    samples: list[dict[str, Any]] = []
    marks = set(range(args.every, args.steps + 1, args.every)) | {args.warmup, args.steps}
    rss0, how = rss_bytes()
    step, loss_sum, seen = 0, 0.0, 0
    start = time.perf_counter()
    while step < args.steps:
        for x, y in loader:
            batch_loss, _ = trainer.train_step(x, y)
            loss_sum += batch_loss
            seen += len(y)
            step += 1
            if step in marks:
                elapsed = time.perf_counter() - start
                current, peak = tracemalloc.get_traced_memory() if trace else (0, 0)
                tensors, nodes = live_objects()
                samples.append({"step": step, "rss": rss_bytes()[0], "traced": current,
                                "peak": peak, "tensors": tensors, "nodes": nodes,
                                "loss": loss_sum / max(seen, 1), "seconds": elapsed})
                loss_sum, seen = 0.0, 0
            if step >= args.steps:
                break
    total = time.perf_counter() - start

    print(f"soak: digits MLP, Adam lr={args.lr}, batch {args.batch_size}, {args.steps} steps "
          f"in {total:.1f} s ({1e3 * total / args.steps:.2f} ms/step"
          f"{', tracemalloc on' if trace else ''}); RSS via {how}, {rss0 / MiB:.1f} MiB at start")
    print(f"{'step':>6} {'RSS MiB':>9} {'traced MiB':>11} {'peak MiB':>9} {'tensors':>8} "
          f"{'nodes':>6} {'train loss':>11}")
    for s in samples:
        print(f"{s['step']:>6} {s['rss'] / MiB:>9.2f} {s['traced'] / MiB:>11.3f} "
              f"{s['peak'] / MiB:>9.3f} {s['tensors']:>8} {s['nodes']:>6} {s['loss']:>11.4f}")

    warm = next(s for s in samples if s["step"] == args.warmup)
    end = samples[-1]
    growth = 100.0 * (end["rss"] - warm["rss"]) / warm["rss"]
    print(f"\nRSS after warm-up (step {args.warmup}): {warm['rss'] / MiB:.2f} MiB; "
          f"at the end (step {end['step']}): {end['rss'] / MiB:.2f} MiB; "
          f"growth {growth:+.2f}% (limit {args.max_growth}%)")
    if trace:
        print(f"tracemalloc current: {warm['traced'] / MiB:.3f} -> {end['traced'] / MiB:.3f} MiB "
              f"({(end['traced'] - warm['traced']) / 1024:+.1f} KiB)")
    print(f"live Tensors: {warm['tensors']} -> {end['tensors']}; "
          f"graph nodes: {warm['nodes']} -> {end['nodes']}")
    if growth > args.max_growth:
        print(f"FAIL: RSS grew {growth:.2f}% after warm-up (more than {args.max_growth}%)")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
