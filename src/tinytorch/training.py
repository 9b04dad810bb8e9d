"""The training loop: one ``Trainer`` serves the CLI and TinyTorch's ``core.training``.

It runs epochs of steps (forward, loss, backward, optional gradient clipping,
optimizer step, scheduler step), evaluates loss and accuracy, keeps a history, and
can stop between steps and later resume exactly where it stopped: its
``state_dict`` holds the model, optimizer, scheduler, the position inside the
epoch and every random state, so a resumed run reaches bit-identical parameters.

>>> import tinytorch as tt
>>> from tinytorch import nn
>>> from tinytorch.data import DataLoader, TensorDataset
>>> _ = tt.manual_seed(0)
>>> x = tt.random.default_generator().standard_normal((64, 2)).astype("float32")
>>> y = (x[:, 0] > 0).astype("int64")
>>> model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
>>> trainer = Trainer(model, tt.optim.Adam(model.parameters(), lr=0.05), nn.CrossEntropyLoss())
>>> loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=0)
>>> history = trainer.fit(loader, epochs=20)
>>> trainer.evaluate(loader)[1] > 0.9
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tinytorch import random as tt_random
from tinytorch.autograd.grad_mode import no_grad
from tinytorch.tensor import Tensor

# Schedulers whose rate changes every optimizer step rather than every epoch.
_PER_STEP_SCHEDULERS = ("OneCycleLR",)


class Trainer:
    """Fit ``model`` with ``optimizer`` on ``loss_fn(outputs, targets)``.

    ``scheduler`` steps once per epoch (or per batch for ``OneCycleLR``, or when
    ``scheduler_per_step=True``); ``grad_clip_norm`` clips the global gradient norm.
    """

    def __init__(self, model: Any, optimizer: Any, loss_fn: Callable[..., Tensor],
                 scheduler: Any = None, grad_clip_norm: float | None = None,
                 scheduler_per_step: bool | None = None) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = grad_clip_norm
        if scheduler_per_step is None:
            scheduler_per_step = type(scheduler).__name__ in _PER_STEP_SCHEDULERS
        self.scheduler_per_step = scheduler_per_step
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps taken
        self.history: dict[str, list[float]] = {
            "train_loss": [], "train_acc": [], "eval_loss": [], "eval_acc": [],
            "learning_rates": [], "epoch_seconds": [],
        }
        # Where we are inside an interrupted epoch (see state_dict).
        self._batch = 0
        self._epoch_start_state: dict[str, Any] | None = None
        self._running = (0.0, 0, 0)  # loss sum, correct, seen

    # ------------------------------------------------------------------ one step
    def train_step(self, inputs: Tensor, targets: Tensor) -> tuple[float, int]:
        """One optimizer step; returns the batch's summed loss and correct count."""
        self.model.train()
        outputs = self.model(inputs)
        loss = self.loss_fn(outputs, targets)
        self.optimizer.zero_grad()
        loss.backward()
        if self.grad_clip_norm is not None:
            from tinytorch.nn.utils import clip_grad_norm_

            clip_grad_norm_(self.model.parameters(), self.grad_clip_norm)
        self.optimizer.step()
        self.step += 1
        if self.scheduler is not None and self.scheduler_per_step:
            self.scheduler.step()
        n = len(targets)
        value = float(loss.item())
        if not math.isfinite(value):
            raise FloatingPointError(
                f"Trainer: the loss became {value} at step {self.step}; lower the learning "
                f"rate or enable gradient clipping"
            )
        return value * n, _correct(outputs, targets)

    def train_epoch(self, loader: Any, accumulation_steps: int = 1,
                    should_stop: Callable[[], bool] | None = None,
                    on_step: Callable[[int, float], None] | None = None) -> float:
        """Run (the rest of) one epoch; returns its mean training loss.

        ``accumulation_steps`` is accepted for TinyTorch compatibility; only 1 is
        supported. ``should_stop`` is polled after every step: when it returns True
        the epoch stops there and can be resumed from ``state_dict()``.
        """
        if accumulation_steps != 1:
            raise ValueError("Trainer.train_epoch: gradient accumulation is not supported")
        gen = getattr(loader, "generator", None) if getattr(loader, "shuffle", False) else None
        if self._epoch_start_state is None:
            self._epoch_start_state = _rng_states(gen)
        else:  # resuming: replay the same shuffle
            _restore_loader_rng(gen, self._epoch_start_state)
        loss_sum, correct, seen = self._running
        skip = self._batch
        for i, (inputs, targets) in enumerate(loader):
            if i < skip:
                continue
            batch_loss, batch_correct = self.train_step(inputs, targets)
            loss_sum += batch_loss
            correct += batch_correct
            seen += len(targets)
            self._batch = i + 1
            self._running = (loss_sum, correct, seen)
            if on_step is not None:
                on_step(i, loss_sum / max(seen, 1))
            if should_stop is not None and should_stop():
                raise _Interrupted
        self.epoch += 1
        self._batch = 0
        self._epoch_start_state = None
        self._running = (0.0, 0, 0)
        self.history["train_loss"].append(loss_sum / max(seen, 1))
        self.history["train_acc"].append(correct / max(seen, 1))
        if self.scheduler is not None and not self.scheduler_per_step:
            self.scheduler.step()
        self.history["learning_rates"].append(self.optimizer.param_groups[0]["lr"])
        return loss_sum / max(seen, 1)

    def evaluate(self, loader: Any) -> tuple[float, float]:
        """Mean loss and accuracy over ``loader``, in eval mode and without a graph."""
        was_training = getattr(self.model, "training", True)
        self.model.eval()
        loss_sum, correct, seen = 0.0, 0, 0
        with no_grad():
            for inputs, targets in loader:
                outputs = self.model(inputs)
                loss_sum += float(self.loss_fn(outputs, targets).item()) * len(targets)
                correct += _correct(outputs, targets)
                seen += len(targets)
        self.model.train(was_training)
        if seen == 0:
            raise ValueError("Trainer.evaluate: the loader yielded no samples")
        return loss_sum / seen, correct / seen

    def fit(self, train_loader: Any, val_loader: Any = None, epochs: int = 1,
            should_stop: Callable[[], bool] | None = None,
            on_step: Callable[[int, float], None] | None = None,
            on_epoch: Callable[[Trainer], None] | None = None) -> dict[str, list[float]]:
        """Train until ``epochs`` epochs are complete (counting those already done).

        Returns the history. If ``should_stop`` fires, raises ``TrainingInterrupted``
        after the current step; ``state_dict()`` then resumes mid-epoch.
        """
        import time

        while self.epoch < epochs:
            start = time.perf_counter()
            try:
                self.train_epoch(train_loader, should_stop=should_stop, on_step=on_step)
            except _Interrupted:
                raise TrainingInterrupted(self.epoch, self._batch) from None
            self.history["epoch_seconds"].append(time.perf_counter() - start)
            if val_loader is not None:
                loss, acc = self.evaluate(val_loader)
                self.history["eval_loss"].append(loss)
                self.history["eval_acc"].append(acc)
            if on_epoch is not None:
                on_epoch(self)
        return self.history

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically (arrays and JSON values)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "progress": {
                "epoch": self.epoch, "step": self.step, "batch": self._batch,
                "running": list(self._running), "epoch_start": self._epoch_start_state,
                "rng": tt_random.get_rng_state(),
            },
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        p = state["progress"]
        self.epoch, self.step, self._batch = int(p["epoch"]), int(p["step"]), int(p["batch"])
        loss_sum, correct, seen = p["running"]
        self._running = (float(loss_sum), int(correct), int(seen))
        self._epoch_start_state = p["epoch_start"]
        tt_random.set_rng_state(p["rng"])
        self.history = {k: list(v) for k, v in state["history"].items()}

    def save_checkpoint(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        """Write ``state_dict()`` (plus ``metadata``) atomically as safetensors."""
        from tinytorch.serialization import save

        save({**self.state_dict(), "metadata": metadata or {}}, path)

    def load_checkpoint(self, path: str) -> dict[str, Any]:
        """Restore from ``save_checkpoint``; returns the stored metadata."""
        from tinytorch.serialization import load

        state = load(path)
        self.load_state_dict(state)
        return state.get("metadata", {})


class TrainingInterrupted(Exception):
    """``fit`` stopped between steps because ``should_stop`` returned True."""

    def __init__(self, epoch: int, batch: int) -> None:
        super().__init__(f"stopped in epoch {epoch + 1} after batch {batch}")
        self.epoch = epoch
        self.batch = batch


class _Interrupted(Exception):
    pass


def _correct(outputs: Tensor, targets: Tensor) -> int:
    """Correct predictions for class-index targets (0 for anything else)."""
    t = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
    out = outputs.data
    if out.ndim != 2 or t.ndim != 1 or t.dtype.kind not in "iu":
        return 0
    return int((out.argmax(axis=1) == t).sum())


def _rng_states(loader_gen: Any) -> dict[str, Any]:
    return {"loader": None if loader_gen is None else loader_gen.bit_generator.state}


def _restore_loader_rng(loader_gen: Any, state: dict[str, Any]) -> None:
    if loader_gen is not None and state.get("loader") is not None:
        loader_gen.bit_generator.state = state["loader"]
