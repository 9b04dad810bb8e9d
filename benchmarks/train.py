"""Accuracy and speed of the models ``tinytorch train`` builds, beside PyTorch.

For each (dataset, model) it trains tinytorch with the CLI's default settings, then
the same architecture, initial weights, optimizer, schedule, batch size and data
order in PyTorch (when installed), and prints a markdown table of test accuracy and
seconds per epoch. It also times Conv2d forward+backward on a 64x1x28x28 batch with
32 3x3 filters in both.

    python benchmarks/train.py                 # digits MLP + CNN (about a minute)
    python benchmarks/train.py --fashion       # also Fashion-MNIST (tens of minutes)
    python benchmarks/train.py --out report.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import tinytorch as tt  # noqa: E402
from tinytorch import nn  # noqa: E402
from tinytorch.cli import DEFAULTS, DEFAULTS_CNN, build, load_data  # noqa: E402
from tinytorch.data import DataLoader  # noqa: E402
from tinytorch.models import Standardize  # noqa: E402
from tinytorch.training import Trainer  # noqa: E402

try:
    import torch
except ImportError:  # the comparison is optional
    torch = None

TARGETS = {("digits", "mlp"): 0.97, ("digits", "cnn"): 0.98,
           ("fashion-mnist", "mlp"): 0.88, ("fashion-mnist", "cnn"): 0.91}


def config(dataset: str, model: str, seed: int) -> dict:
    d = (DEFAULTS_CNN if model == "cnn" else DEFAULTS)[dataset]
    return {"dataset": dataset, "model": model, "optimizer": "adam", "scheduler": "cosine",
            "seed": seed, "data_root": None, **d}


def train_tinytorch(cfg: dict) -> tuple[float, float, Trainer]:
    train_set, test_set, shape = load_data(cfg["dataset"], None)
    loader = DataLoader(train_set, batch_size=cfg["batch_size"], shuffle=True,
                        generator=np.random.default_rng(cfg["seed"] + 1))
    model, opt, sched = build(cfg, shape, len(loader))
    model[0].fit(train_set.tensors[0].data)
    trainer = Trainer(model, opt, nn.CrossEntropyLoss(), scheduler=sched)
    initial = {k: v.copy() for k, v in model.state_dict().items()}
    trainer.fit(loader, DataLoader(test_set, batch_size=512), epochs=cfg["epochs"])
    seconds = float(np.mean(trainer.history["epoch_seconds"]))
    trainer.initial_state = initial  # type: ignore[attr-defined]
    return trainer.history["eval_acc"][-1], seconds, trainer


def to_torch(model: nn.Sequential, state: dict) -> torch.nn.Module:
    """The same architecture in PyTorch, loaded with tinytorch's initial weights."""
    layers = []
    for i, m in enumerate(model):
        p = f"{i}."
        if isinstance(m, Standardize):
            mean = torch.tensor(state[p + "mean"])
            scale = torch.tensor(state[p + "scale"])
            layers.append(_Lambda(lambda x, mean=mean, scale=scale: (x - mean) / scale))
        elif isinstance(m, nn.Sequential):  # not produced today, kept for safety
            raise TypeError("nested Sequential")
        elif isinstance(m, nn.Flatten):
            layers.append(torch.nn.Flatten())
        elif isinstance(m, nn.Linear):
            lin = torch.nn.Linear(m.in_features, m.out_features)
            lin.weight.data = torch.tensor(state[p + "weight"].T.copy())
            lin.bias.data = torch.tensor(state[p + "bias"])
            layers.append(lin)
        elif isinstance(m, nn.Conv2d):
            conv = torch.nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size,
                                   stride=m.stride, padding=m.padding)
            conv.weight.data = torch.tensor(state[p + "weight"])
            conv.bias.data = torch.tensor(state[p + "bias"])
            layers.append(conv)
        elif isinstance(m, nn.BatchNorm2d):
            layers.append(torch.nn.BatchNorm2d(m.num_features))
        elif isinstance(m, nn.ReLU):
            layers.append(torch.nn.ReLU())
        elif isinstance(m, nn.MaxPool2d):
            layers.append(torch.nn.MaxPool2d(m.kernel_size))
        elif isinstance(m, nn.Dropout):
            layers.append(torch.nn.Dropout(m.p))
        else:
            raise TypeError(f"no PyTorch twin for {type(m).__name__}")
    return torch.nn.Sequential(*layers)


class _Lambda(torch.nn.Module if torch is not None else object):  # type: ignore[misc]
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def train_torch(cfg: dict, tt_trainer: Trainer) -> tuple[float, float]:
    torch.manual_seed(cfg["seed"])
    train_set, test_set, _ = load_data(cfg["dataset"], None)
    xtr, ytr = (torch.tensor(t.data) for t in train_set.tensors)
    xte, yte = (torch.tensor(t.data) for t in test_set.tensors)
    model = to_torch(tt_trainer.model, tt_trainer.initial_state)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"])
    rng = np.random.default_rng(cfg["seed"] + 1)  # same batch order as tinytorch
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for _ in range(cfg["epochs"]):
        start = time.perf_counter()
        model.train()
        order = torch.from_numpy(rng.permutation(len(xtr)))
        for i in range(0, len(xtr), cfg["batch_size"]):
            idx = order[i:i + cfg["batch_size"]]
            opt.zero_grad()
            loss_fn(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
        sched.step()
        times.append(time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        acc = (model(xte).argmax(1) == yte).float().mean().item()
    return acc, float(np.mean(times))


def conv_timing(repeats: int = 10) -> tuple[float, float | None]:
    """Median ms of Conv2d forward+backward (64x1x28x28, 32 filters 3x3, padding 1)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    conv = nn.Conv2d(1, 32, 3, padding=1)
    xt = tt.tensor(x, requires_grad=True)
    ours, theirs = [], []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        conv(xt).sum().backward()
        ours.append(time.perf_counter() - start)
    if torch is not None:
        tconv = torch.nn.Conv2d(1, 32, 3, padding=1)
        xtorch = torch.tensor(x, requires_grad=True)
        for _ in range(repeats + 2):
            start = time.perf_counter()
            tconv(xtorch).sum().backward()
            theirs.append(time.perf_counter() - start)
    med = lambda v: 1e3 * float(np.median(v[2:]))  # noqa: E731
    return med(ours), (med(theirs) if theirs else None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fashion", action="store_true", help="also train on Fashion-MNIST")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the table to this file")
    args = ap.parse_args()
    runs = [("digits", "mlp"), ("digits", "cnn")]
    if args.fashion:
        runs += [("fashion-mnist", "mlp"), ("fashion-mnist", "cnn")]
    lines = ["| dataset | model | epochs | tinytorch acc | target | s/epoch | "
             "PyTorch acc | PyTorch s/epoch | time ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for dataset, model in runs:
        cfg = config(dataset, model, args.seed)
        acc, sec, trainer = train_tinytorch(cfg)
        t_acc, t_sec = train_torch(cfg, trainer) if torch is not None else (None, None)
        ok = "ok" if acc >= TARGETS[(dataset, model)] else "MISSED"
        lines.append(
            f"| {dataset} | {model} | {cfg['epochs']} | {100 * acc:.2f}% | "
            f">= {100 * TARGETS[(dataset, model)]:.0f}% {ok} | {sec:.2f} | "
            + (f"{100 * t_acc:.2f}% | {t_sec:.2f} | {sec / t_sec:.2f}x |" if t_acc is not None
               else "- | - | - |"))
        print(lines[-1], flush=True)
    ours, theirs = conv_timing()
    conv_line = (f"\nConv2d forward+backward, 64x1x28x28, 32 3x3 filters: tinytorch "
                 f"{ours:.1f} ms" + (f", PyTorch {theirs:.1f} ms ({ours / theirs:.2f}x, "
                                     f"target <= 2x)" if theirs else ""))
    report = "\n".join(lines) + "\n" + conv_line + "\n"
    print(conv_line)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
