"""The ``tinytorch`` command: ``train``, ``evaluate``, ``profile`` and ``graph``.

``tinytorch train`` with no arguments trains an MLP on scikit-learn's digits in a
few seconds and writes the checkpoint, metrics (JSON and CSV) and a PNG of the
curves to ``runs/digits-mlp``. Ctrl-C (or SIGTERM) saves a checkpoint between
steps and exits; ``--resume`` continues from it to the same result an
uninterrupted run gives. ``tinytorch profile`` prints the per-op table of one
training step (``--trace out.json`` for the timeline); ``tinytorch graph`` draws
the model's graph.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

CHECKPOINT = "checkpoint.safetensors"

DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"epochs": 40, "batch_size": 32, "lr": 3e-3},
    "fashion-mnist": {"epochs": 15, "batch_size": 128, "lr": 1e-3},
}
DEFAULTS_CNN: dict[str, dict[str, Any]] = {
    "digits": {"epochs": 20, "batch_size": 32, "lr": 2e-3},
    "fashion-mnist": {"epochs": 8, "batch_size": 64, "lr": 1e-3},
}


# ---------------------------------------------------------------------- arguments
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinytorch", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model (default: MLP on digits)")
    t.add_argument("--dataset", choices=["digits", "fashion-mnist"], default="digits")
    t.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default="adam")
    t.add_argument("--scheduler", choices=["none", "step", "cosine", "exponential", "linear",
                                           "onecycle"], default="cosine")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default=None, help="output folder (default runs/DATASET-MODEL)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    t.add_argument("--data-root", default=None, help="folder with the IDX files")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--no-plot", action="store_true", help="skip the PNG of the curves")

    e = sub.add_parser("evaluate", help="test accuracy and confusion matrix of a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--data-root", default=None)

    pr = sub.add_parser("profile", help="per-op time and memory of one training step")
    g = sub.add_parser("graph", help="draw the graph of one training step's loss")
    for q in (pr, g):
        q.add_argument("--dataset", choices=["digits", "fashion-mnist"], default="digits")
        q.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
        q.add_argument("--batch-size", type=int, default=None)
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--data-root", default=None, help="folder with the IDX files")
    pr.add_argument("--sort-by", default="self_cpu_time_total",
                    choices=["self_cpu_time_total", "cpu_time_total", "count", "saved_bytes",
                             "name"])
    pr.add_argument("--row-limit", type=int, default=30)
    pr.add_argument("--trace", metavar="OUT.json", default=None,
                    help="also write a Chrome/Perfetto trace of the step")
    g.add_argument("--format", choices=["svg", "png", "dot"], default="svg")
    g.add_argument("--out", default=None, help="output file (default DATASET-MODEL-graph.FORMAT)")
    g.add_argument("--show-saved", action="store_true",
                   help="label each op with the bytes it saved for backward")
    return p


def _config(args: argparse.Namespace) -> dict[str, Any]:
    table = DEFAULTS_CNN if args.model == "cnn" else DEFAULTS
    defaults = table[args.dataset]
    cfg = {
        "dataset": args.dataset, "model": args.model, "optimizer": args.optimizer,
        "scheduler": args.scheduler, "seed": args.seed, "data_root": args.data_root,
        "epochs": args.epochs if args.epochs is not None else defaults["epochs"],
        "batch_size": args.batch_size if args.batch_size is not None else defaults["batch_size"],
        "lr": args.lr if args.lr is not None else defaults["lr"],
    }
    if cfg["epochs"] < 1 or cfg["batch_size"] < 1 or cfg["lr"] <= 0:
        raise SystemExit("tinytorch train: --epochs and --batch-size must be >= 1, --lr > 0")
    return cfg


# ---------------------------------------------------------------------- building blocks
def load_data(dataset: str, root: str | None) -> tuple[Any, Any, tuple[int, int, int]]:
    """(train set, test set, input shape) for a dataset name."""
    from tinytorch.data import FashionMNIST, load_digits

    if dataset == "digits":
        train, test = load_digits()
        return train, test, (1, 8, 8)
    train = FashionMNIST(root, train=True)
    test = FashionMNIST(root, train=False)
    return train, test, (1, 28, 28)


def build(cfg: dict[str, Any], input_shape: Sequence[int], steps_per_epoch: int) -> tuple:
    """Model, optimizer and scheduler for a config (after seeding)."""
    import tinytorch as tt
    from tinytorch.models import build_model
    from tinytorch.optim import lr_scheduler

    tt.manual_seed(cfg["seed"])
    model = build_model(cfg["model"], input_shape, 10)
    params = model.parameters()
    lr = cfg["lr"]
    opt: Any
    if cfg["optimizer"] == "sgd":
        opt = tt.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    elif cfg["optimizer"] == "adam":
        opt = tt.optim.Adam(params, lr=lr)
    else:
        opt = tt.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    epochs, kind = cfg["epochs"], cfg["scheduler"]
    sched: Any = None
    if kind == "step":
        sched = lr_scheduler.StepLR(opt, step_size=max(epochs // 3, 1), gamma=0.3)
    elif kind == "cosine":
        sched = lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    elif kind == "exponential":
        sched = lr_scheduler.ExponentialLR(opt, gamma=0.9)
    elif kind == "linear":
        sched = lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=max(epochs // 5, 1))
    elif kind == "onecycle":
        sched = lr_scheduler.OneCycleLR(opt, max_lr=lr * 10, total_steps=epochs * steps_per_epoch)
    return model, opt, sched


class _StopFlag:
    """Set by SIGINT/SIGTERM; the training loop checks it between steps."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self) -> bool:
        return self.signal is not None

    def install(self) -> dict[int, Any]:
        def handler(signum: int, frame: Any) -> None:
            self.signal = signum

        previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
        return previous


# ---------------------------------------------------------------------- train
def train(args: argparse.Namespace) -> int:
    import tinytorch as tt
    from tinytorch.data import DataLoader
    from tinytorch.nn import CrossEntropyLoss
    from tinytorch.training import Trainer, TrainingInterrupted

    out = args.out or os.path.join("runs", f"{args.dataset}-{args.model}")
    ckpt_path = os.path.join(out, CHECKPOINT)
    cfg = _config(args)
    state = None
    if args.resume:
        if not os.path.exists(ckpt_path):
            print(f"tinytorch train: no checkpoint to resume at {ckpt_path}", file=sys.stderr)
            return 2
        state = tt.load(ckpt_path)
        saved_cfg = dict(state["metadata"]["config"])
        if args.epochs is not None:
            saved_cfg["epochs"] = args.epochs
        cfg = saved_cfg

    train_set, test_set, input_shape = load_data(cfg["dataset"], cfg["data_root"])
    loader = DataLoader(train_set, batch_size=cfg["batch_size"], shuffle=True,
                        generator=np.random.default_rng(cfg["seed"] + 1))
    test_loader = DataLoader(test_set, batch_size=512)
    model, opt, sched = build(cfg, input_shape, len(loader))
    model[0].fit(train_set.tensors[0].data)
    trainer = Trainer(model, opt, CrossEntropyLoss(), scheduler=sched)
    if state is not None:
        trainer.load_state_dict(state)
        print(f"resuming {cfg['dataset']}/{cfg['model']} from epoch {trainer.epoch + 1}, "
              f"batch {trainer._batch}")
    else:
        n_params = sum(p.size for p in model.parameters())
        print(f"training {cfg['model']} ({n_params:,} parameters) on {cfg['dataset']}: "
              f"{len(train_set)} train / {len(test_set)} test, {cfg['epochs']} epochs, "
              f"batch {cfg['batch_size']}, {cfg['optimizer']} lr {cfg['lr']}, seed {cfg['seed']}")
    os.makedirs(out, exist_ok=True)

    stop = _StopFlag()
    previous = stop.install()
    bar = _progress(args, len(loader))

    def on_step(i: int, running_loss: float) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{running_loss:.4f}")

    def on_epoch(t: Trainer) -> None:
        h = t.history
        if bar is not None:
            bar.reset()
        print(f"epoch {t.epoch:3d}/{cfg['epochs']}  train loss {h['train_loss'][-1]:.4f} "
              f"acc {100 * h['train_acc'][-1]:5.2f}%  test loss {h['eval_loss'][-1]:.4f} "
              f"acc {100 * h['eval_acc'][-1]:5.2f}%  lr {h['learning_rates'][-1]:.2e}  "
              f"{h['epoch_seconds'][-1]:.2f}s", flush=True)
        t.save_checkpoint(ckpt_path, {"config": cfg})
        write_metrics(out, cfg, h)

    try:
        if bar is not None and trainer._batch:
            bar.update(trainer._batch)
        trainer.fit(loader, test_loader, epochs=cfg["epochs"], should_stop=stop,
                    on_step=on_step, on_epoch=on_epoch)
    except TrainingInterrupted as exc:
        trainer.save_checkpoint(ckpt_path, {"config": cfg})
        if bar is not None:
            bar.close()
        name = signal.Signals(stop.signal).name if stop.signal else "signal"
        print(f"\n{name}: {exc}; checkpoint saved to {ckpt_path}. "
              f"Continue with: tinytorch train --out {out} --resume")
        return 128 + (stop.signal or 2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if bar is not None:
        bar.close()
    h = trainer.history
    if not h["eval_acc"]:  # resumed an already finished run
        loss, acc = trainer.evaluate(test_loader)
        h["eval_loss"].append(loss)
        h["eval_acc"].append(acc)
    if not args.no_plot:
        plot_curves(out, h)
    write_metrics(out, cfg, h)
    print(f"final test accuracy {100 * h['eval_acc'][-1]:.2f}%  "
          f"(checkpoint, metrics and curves in {out})")
    return 0


def _progress(args: argparse.Namespace, total: int) -> Any:
    if args.no_progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, leave=False, unit="batch", dynamic_ncols=True,
                disable=not sys.stderr.isatty())


def write_metrics(out: str, cfg: dict[str, Any], history: dict[str, list[float]]) -> None:
    """metrics.json (config + history) and metrics.csv (one row per epoch)."""
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump({"config": cfg, "history": history}, f, indent=2)
    cols = ["train_loss", "train_acc", "eval_loss", "eval_acc", "learning_rates",
            "epoch_seconds"]
    n = min(len(history[c]) for c in cols)
    with open(os.path.join(out, "metrics.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", *cols])
        for i in range(n):
            w.writerow([i + 1, *(history[c][i] for c in cols)])


def plot_curves(out: str, history: dict[str, list[float]]) -> str | None:
    """curves.png: loss and accuracy per epoch (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no curves.png (pip install tinytorch[train])")
        return None
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, history["train_loss"], label="train")
    ax1.plot(epochs[: len(history["eval_loss"])], history["eval_loss"], label="test")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy loss")
    ax1.legend()
    ax2.plot(epochs, 100 * np.asarray(history["train_acc"]), label="train")
    ax2.plot(epochs[: len(history["eval_acc"])], 100 * np.asarray(history["eval_acc"]),
             label="test")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy (%)")
    ax2.legend()
    fig.tight_layout()
    path = os.path.join(out, "curves.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------- profile, graph
def _one_batch(args: argparse.Namespace) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
    """(model, optimizer, images, labels, config) for one training step."""
    from tinytorch.data import DataLoader

    cfg = {**(DEFAULTS_CNN if args.model == "cnn" else DEFAULTS)[args.dataset],
           "dataset": args.dataset, "model": args.model, "optimizer": "adam",
           "scheduler": "none", "seed": args.seed}
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise SystemExit(f"tinytorch {args.command}: --batch-size must be >= 1")
        cfg["batch_size"] = args.batch_size
    train_set, _, input_shape = load_data(args.dataset, args.data_root)
    model, opt, _ = build(cfg, input_shape, 1)
    model[0].fit(train_set.tensors[0].data)
    model.train()
    x, y = next(iter(DataLoader(train_set, batch_size=cfg["batch_size"])))
    return model, opt, x, y, cfg


def profile_step(args: argparse.Namespace) -> int:
    from tinytorch.nn import CrossEntropyLoss
    from tinytorch.profiler import profile, record_function

    model, opt, x, y, cfg = _one_batch(args)
    loss_fn = CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad()
        with record_function("model forward"):
            out = model(x)
        with record_function("loss"):
            loss = loss_fn(out, y)
        with record_function("loss.backward()"):
            loss.backward()
        with record_function("optimizer.step()"):
            opt.step()

    step()  # warm-up: first-call costs (optimizer state) stay out of the table
    with profile() as prof:
        step()
    print(f"one training step: {cfg['model']} on {cfg['dataset']}, batch {cfg['batch_size']}, "
          f"adam")
    print(prof.table(sort_by=args.sort_by, row_limit=args.row_limit))
    if args.trace:
        prof.export_chrome_trace(args.trace)
        print(f"trace written to {args.trace} (open it in https://ui.perfetto.dev or "
              f"chrome://tracing)")
    return 0


def draw_graph(args: argparse.Namespace) -> int:
    from tinytorch import viz
    from tinytorch.nn import CrossEntropyLoss
    from tinytorch.profiler.ops_profiler import format_bytes

    model, _, x, y, cfg = _one_batch(args)
    loss = CrossEntropyLoss()(model(x), y)
    out = args.out or f"{args.dataset}-{args.model}-graph.{args.format}"
    try:
        viz.draw(loss, out, format=args.format, module=model, show_saved=args.show_saved)
    except viz.GraphvizNotFoundError as exc:
        print(f"tinytorch graph: {exc}", file=sys.stderr)
        return 2
    s = viz.graph_stats(loss)
    print(f"wrote {out}: {s['nodes']} op nodes, {s['leaves']} leaves, {s['edges']} edges, "
          f"depth {s['depth']}, {format_bytes(s['saved_bytes'])} saved for backward "
          f"({cfg['model']} on {cfg['dataset']}, batch {cfg['batch_size']})")
    return 0


# ---------------------------------------------------------------------- evaluate
def evaluate(args: argparse.Namespace) -> int:
    import tinytorch as tt
    from tinytorch.data import DataLoader
    from tinytorch.models import build_model

    state = tt.load(args.checkpoint)
    cfg = state["metadata"]["config"]
    root = args.data_root or cfg.get("data_root")
    _, test_set, input_shape = load_data(cfg["dataset"], root)
    model = build_model(cfg["model"], input_shape, 10)
    model.load_state_dict(state["model"])
    model.eval()
    preds, labels = [], []
    with tt.no_grad():
        for x, y in DataLoader(test_set, batch_size=512):
            preds.append(model(x).data.argmax(axis=1))
            labels.append(y.data)
    pred, true = np.concatenate(preds), np.concatenate(labels)
    matrix = np.zeros((10, 10), dtype=np.int64)
    np.add.at(matrix, (true, pred), 1)
    print(f"{cfg['dataset']}/{cfg['model']}: test accuracy {100 * (pred == true).mean():.2f}% "
          f"on {len(true)} images")
    print("confusion matrix (rows: true class, columns: predicted)")
    print("      " + " ".join(f"{j:5d}" for j in range(10)))
    for i in range(10):
        print(f"{i:5d} " + " ".join(f"{matrix[i, j]:5d}" for j in range(10)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from tinytorch.data import DatasetError

    try:
        if args.command == "train":
            return train(args)
        if args.command == "profile":
            return profile_step(args)
        if args.command == "graph":
            return draw_graph(args)
        return evaluate(args)
    except (DatasetError, FileNotFoundError) as exc:
        print(f"tinytorch {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
