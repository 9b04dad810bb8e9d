"""Training throughput (samples/s) of the models ``tinytorch train`` builds, for
``benchmarks/run_all.py``.

Each contender trains the same architecture on scikit-learn's digits (1,437 training
images) with Adam, over the same shuffled batch order, and one epoch is timed at a
time, contenders taken round-robin (the machine may be shared); the best epoch counts:

- **tinytorch**: ``build_model('mlp' | 'cnn', (1, 8, 8), 10)``, forward, cross-entropy,
  ``backward()``, ``Adam.step()``;
- **NumPy (hand)**: the MLP written out by hand, forward, backward and Adam (no graph);
  not written for the CNN (im2col convolution, batch norm and pooling by hand would be a
  second engine);
- **PyTorch**: the same layers in ``torch.nn`` (when installed).

Data loading is kept out of the timing: batches are sliced from arrays in memory.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import tinytorch as tt
from tinytorch import nn
from tinytorch.data import load_digits
from tinytorch.models import build_model

try:
    import torch
except ImportError:
    torch = None

LR = 3e-3
DROPOUT = 0.2


@dataclass
class Throughput:
    model: str
    batch: int
    samples: int
    epoch_s: dict[str, list[float]] = field(default_factory=dict)

    def rate(self, name: str) -> float | None:
        """Samples per second of the best epoch."""
        times = self.epoch_s.get(name)
        return self.samples / min(times) if times else None


def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    train, _ = load_digits()
    x = np.ascontiguousarray(train.tensors[0].data, dtype=np.float32)
    y = np.ascontiguousarray(train.tensors[1].data, dtype=np.int64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 0.1
    return x, y, mean.astype(np.float32), scale.astype(np.float32)


# ----------------------------------------------------------------- tinytorch


def tinytorch_trainer(kind: str, mean: np.ndarray, scale: np.ndarray
                      ) -> Callable[[np.ndarray, np.ndarray], None]:
    tt.manual_seed(0)
    model = build_model(kind, (1, 8, 8), 10)
    model[0].mean.data[...] = mean
    model[0].scale.data[...] = scale
    model.train()
    opt = tt.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()

    def step(xb: np.ndarray, yb: np.ndarray) -> None:
        opt.zero_grad()
        loss_fn(model(tt.tensor(xb)), tt.tensor(yb)).backward()
        opt.step()

    return step


# ----------------------------------------------------------------- NumPy by hand


class NumpyMLP:
    """Standardize, flatten, Linear-ReLU-Dropout x2, Linear; cross-entropy; Adam."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, sizes: tuple[int, ...] =
                 (64, 256, 128, 10), seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.mean, self.scale = mean, scale
        self.params: list[np.ndarray] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1 / np.sqrt(fan_in)
            self.params.append(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32))
            self.params.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def _dropout_mask(self, shape: tuple[int, ...]) -> np.ndarray:
        return (self.rng.random(shape, dtype=np.float32) >= DROPOUT) * np.float32(
            1 / (1 - DROPOUT))

    def step(self, x: np.ndarray, y: np.ndarray) -> None:
        w1, b1, w2, b2, w3, b3 = self.params
        n = len(y)
        h0 = ((x - self.mean) / self.scale).reshape(n, -1)
        z1 = h0 @ w1 + b1
        m1 = self._dropout_mask(z1.shape)
        d1 = np.maximum(z1, 0) * m1
        z2 = d1 @ w2 + b2
        m2 = self._dropout_mask(z2.shape)
        d2 = np.maximum(z2, 0) * m2
        z3 = d2 @ w3 + b3
        e = np.exp(z3 - z3.max(axis=1, keepdims=True))
        dz3 = e / e.sum(axis=1, keepdims=True)
        dz3[np.arange(n), y] -= 1
        dz3 /= n
        dd2 = dz3 @ w3.T
        dz2 = dd2 * m2 * (z2 > 0)
        dd1 = dz2 @ w2.T
        dz1 = dd1 * m1 * (z1 > 0)
        grads = [h0.T @ dz1, dz1.sum(0), d1.T @ dz2, dz2.sum(0), d2.T @ dz3, dz3.sum(0)]
        self.t += 1
        c1, c2 = 1 - 0.9 ** self.t, 1 - 0.999 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= LR * (m / c1) / (np.sqrt(v / c2) + 1e-8)


# ----------------------------------------------------------------- PyTorch


def torch_trainer(kind: str, mean: np.ndarray, scale: np.ndarray
                  ) -> Callable[[np.ndarray, np.ndarray], None]:
    torch.manual_seed(0)
    tm, ts = torch.from_numpy(mean), torch.from_numpy(scale)
    if kind == "mlp":
        body = [torch.nn.Flatten(), torch.nn.Linear(64, 256), torch.nn.ReLU(),
                torch.nn.Dropout(DROPOUT), torch.nn.Linear(256, 128), torch.nn.ReLU(),
                torch.nn.Dropout(DROPOUT), torch.nn.Linear(128, 10)]
    else:
        body = [torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.BatchNorm2d(16),
                torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Conv2d(16, 32, 3, padding=1),
                torch.nn.BatchNorm2d(32), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                torch.nn.Flatten(), torch.nn.Linear(32 * 2 * 2, 128), torch.nn.ReLU(),
                torch.nn.Dropout(0.25), torch.nn.Linear(128, 10)]
    model = torch.nn.Sequential(*body)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(xb: np.ndarray, yb: np.ndarray) -> None:
        opt.zero_grad()
        loss_fn(model((torch.from_numpy(xb) - tm) / ts), torch.from_numpy(yb)).backward()
        opt.step()

    return step


# ----------------------------------------------------------------- the measurement


def _epoch(step: Callable[[np.ndarray, np.ndarray], None], x: np.ndarray, y: np.ndarray,
           order: np.ndarray, batch: int) -> float:
    gc.collect()
    t0 = time.perf_counter()
    for i in range(0, len(order), batch):
        idx = order[i:i + batch]
        step(x[idx], y[idx])
    return time.perf_counter() - t0


def measure(kind: str, batch: int, epochs: int, seed: int = 0) -> Throughput:
    """Best-epoch throughput of each contender for one model and batch size."""
    x, y, mean, scale = _digits()
    contenders: dict[str, Callable[[np.ndarray, np.ndarray], None]] = {
        "tinytorch": tinytorch_trainer(kind, mean, scale)}
    if kind == "mlp":
        contenders["numpy"] = NumpyMLP(mean, scale).step
    if torch is not None:
        contenders["torch"] = torch_trainer(kind, mean, scale)
    rng = np.random.default_rng(seed)
    warm = rng.permutation(len(y))[: 4 * batch]
    for step in contenders.values():  # warm-up: first-call costs, optimizer state
        _epoch(step, x, y, warm, batch)
    res = Throughput(kind, batch, len(y), {name: [] for name in contenders})
    names = list(contenders)
    for e in range(epochs):
        order = rng.permutation(len(y))
        k = e % len(names)
        for name in names[k:] + names[:k]:
            res.epoch_s[name].append(_epoch(contenders[name], x, y, order, batch))
    return res


def table(results: list[Throughput]) -> list[str]:
    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:,.0f}"

    def ratio(a: float | None, b: float | None) -> str:
        return "-" if a is None or b is None else f"{a / b:.2f}x"

    out = ["| model | batch | tinytorch samples/s | NumPy (hand) samples/s | "
           "PyTorch samples/s | tinytorch / NumPy | tinytorch / PyTorch | epochs timed |",
           "|---|---|---|---|---|---|---|---|"]
    for r in results:
        t, n, p = r.rate("tinytorch"), r.rate("numpy"), r.rate("torch")
        out.append(f"| {r.model} | {r.batch} | {fmt(t)} | {fmt(n) if n else 'n/a'} | "
                   f"{fmt(p)} | {ratio(t, n)} | {ratio(t, p)} | "
                   f"{len(r.epoch_s['tinytorch'])} |")
    return out


def plot(results: list[Throughput], path: str) -> None:
    import matplotlib.pyplot as plt

    labels = [f"{r.model}\nbatch {r.batch}" for r in results]
    names = [("tinytorch", "tinytorch"), ("numpy", "NumPy (hand)"), ("torch", "PyTorch")]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.27
    for i, (key, label) in enumerate(names):
        vals = [r.rate(key) or 0.0 for r in results]
        if any(vals):
            ax.bar(np.arange(len(results)) + (i - 1) * width, vals, width, label=label)
    ax.set_xticks(np.arange(len(results)), labels)
    ax.set_ylabel("training samples / s (best epoch)")
    ax.set_title("Training throughput on digits (Adam)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def numpy_mlp_matches_tinytorch(tol: float = 1e-4) -> float:
    """Sanity check of the hand-written MLP: with dropout off, its first-step gradients
    (read back through the Adam update) equal tinytorch's. Returns the max abs diff of
    the updated parameters."""
    x, y, mean, scale = _digits()
    xb, yb = x[:32], y[:32]
    hand = NumpyMLP(mean, scale)
    tt.manual_seed(0)
    model = build_model("mlp", (1, 8, 8), 10)
    model[0].mean.data[...] = mean
    model[0].scale.data[...] = scale
    model.eval()  # no dropout in tinytorch ...
    linears = [m for m in model if isinstance(m, nn.Linear)]
    for lin, (w, b) in zip(linears, zip(hand.params[::2], hand.params[1::2])):
        lin.weight.data[...] = w
        lin.bias.data[...] = b
    opt = tt.optim.Adam(model.parameters(), lr=LR)
    nn.CrossEntropyLoss()(model(tt.tensor(xb)), tt.tensor(yb)).backward()
    opt.step()
    hand._dropout_mask = lambda shape: np.float32(1.0)  # type: ignore[method-assign]
    hand.step(xb, yb)  # ... nor by hand
    got = [p.data for lin in linears for p in (lin.weight, lin.bias)]
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(got, hand.params))
    if diff > tol:
        raise AssertionError(f"hand-written NumPy MLP disagrees with tinytorch: {diff:.2e}")
    return diff


__all__ = ["NumpyMLP", "Throughput", "measure", "numpy_mlp_matches_tinytorch", "plot", "table"]
