"""Gradient checkpointing on a deep MLP: peak memory (tracemalloc) and time.

A 32-layer tanh MLP (width 512, batch 256, float32) is trained for one step plainly and
with ``checkpoint_sequential`` at several segment counts. Reported per run:

- ``held``: memory the graph holds after the forward pass (the saved activations);
- ``peak``: the peak during forward + backward, above what existed before the step,
  with the parameters' ``.grad`` already allocated (the steady state of training with
  gradient accumulation, so the figure is about activations, not gradients);
- ``total``: the same peak when ``.grad`` starts empty (gradients, 32 MiB here, included);
- ``time``: the best of a few forward + backward runs (without tracemalloc), taken
  round-robin over the runs.

Gradients of every run must equal the plain run's bit for bit.

    python examples/checkpoint_memory.py [--layers 32 --width 512 --batch 256]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

import tinytorch as tt
from tinytorch.utils.checkpoint import checkpoint_sequential


def make_mlp(layers: int, width: int, seed: int = 0) -> tuple[list[Callable[[Any], Any]],
                                                               list[tt.Tensor]]:
    rng = np.random.default_rng(seed)
    params: list[tt.Tensor] = []
    fns: list[Callable[[Any], Any]] = []
    for _ in range(layers):
        w = tt.tensor(rng.normal(0.0, 1.0 / np.sqrt(width), (width, width)).astype(np.float32),
                      requires_grad=True)
        b = tt.tensor(np.zeros(width, np.float32), requires_grad=True)
        params += [w, b]
        fns.append(lambda h, w=w, b=b: tt.tanh(h @ w + b))  # type: ignore[misc]
    return fns, params


def step(fns: list[Callable[[Any], Any]], x: tt.Tensor, segments: int | None) -> tt.Tensor:
    if segments is None:
        h = x
        for f in fns:
            h = f(h)
        return h
    return checkpoint_sequential(fns, segments, x)


def _peak(fns: list[Callable[[Any], Any]], x: tt.Tensor, seg: int | None,
          params: list[tt.Tensor], fresh_grads: bool) -> tuple[float, float]:
    """(held after forward, peak during forward + backward) in bytes, above the start."""
    if fresh_grads:
        for p in params:
            p.grad = None
    gc.collect()
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    out = step(fns, x, seg).sum()
    held = tracemalloc.get_traced_memory()[0] - start
    out.backward()
    peak = tracemalloc.get_traced_memory()[1] - start
    tracemalloc.stop()
    return held, peak


def measure(layers: int = 32, width: int = 512, batch: int = 256,
            segments: tuple[int | None, ...] = (None, 2, 4, 8, 16), repeats: int = 3
            ) -> list[dict[str, Any]]:
    fns, params = make_mlp(layers, width)
    x = tt.tensor(np.random.default_rng(1).normal(size=(batch, width)).astype(np.float32))
    rows: list[dict[str, Any]] = []
    reference: list[np.ndarray] | None = None
    for seg in segments:
        for p in params:
            p.grad = None
        step(fns, x, seg).sum().backward()
        grads = [p.grad.numpy().copy() for p in params]  # type: ignore[union-attr]
        if reference is None:
            reference = grads
        exact = all(np.array_equal(a, b) for a, b in zip(reference, grads))
        _, total = _peak(fns, x, seg, params, fresh_grads=True)
        # .grad already allocated: what is left is activations and temporaries
        held, peak = _peak(fns, x, seg, params, fresh_grads=False)
        rows.append({"segments": seg, "held_mib": held / 2**20, "peak_mib": peak / 2**20,
                     "total_peak_mib": total / 2**20, "time_s": float("inf"), "exact": exact})
    # time: round-robin over the runs (a shared machine drifts), best of ``repeats``
    for _ in range(repeats):
        for row in rows:
            for p in params:
                p.grad = None
            gc.collect()
            t0 = time.perf_counter()
            step(fns, x, row["segments"]).sum().backward()
            row["time_s"] = min(row["time_s"], time.perf_counter() - t0)
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    rows = measure(a.layers, a.width, a.batch, repeats=a.repeats)
    base = rows[0]
    print(f"{a.layers}-layer tanh MLP, width {a.width}, batch {a.batch}, float32")
    print(f"{'run':>12} {'held MiB':>9} {'peak MiB':>9} {'total MiB':>10} {'time s':>7} "
          f"{'vs plain':>8} exact")
    for r in rows:
        name = "plain" if r["segments"] is None else f"{r['segments']} segments"
        print(f"{name:>12} {r['held_mib']:9.1f} {r['peak_mib']:9.1f} {r['total_peak_mib']:10.1f} "
              f"{r['time_s']:7.3f} {r['time_s'] / base['time_s']:7.2f}x {r['exact']}")
    return rows


if __name__ == "__main__":
    main()
