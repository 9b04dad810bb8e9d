"""Anomaly detection: find the op that first produced a NaN or Inf.

While on, every recorded op remembers where in the user's code it was created; a
NaN/Inf in an op's output (forward) or in the gradients its rule returns
(backward) raises ``AnomalyError`` naming the op and showing that place. Off, the
per-op cost is one integer check.

>>> import tinytorch as tt
>>> x = tt.tensor([0.0, 1.0], requires_grad=True)
>>> with tt.autograd.detect_anomaly():
...     y = tt.log(x)  # log(0) = -inf
Traceback (most recent call last):
...
tinytorch.autograd.anomaly.AnomalyError: LogBackward produced -inf in its forward output ...
"""

from __future__ import annotations

import os
import traceback
from typing import Any

import numpy as np

from tinytorch.autograd import grad_mode

enabled: bool = False

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class AnomalyError(RuntimeError):
    """A NaN or Inf appeared while anomaly detection was on."""


def set_detect_anomaly(mode: bool) -> None:
    """Turn anomaly detection on or off."""
    global enabled
    mode = bool(mode)
    if mode != enabled:
        grad_mode.extras += 1 if mode else -1
        enabled = mode


class detect_anomaly:
    """Context manager (or decorator) that turns anomaly detection on inside it."""

    def __enter__(self) -> None:
        self.prev = enabled
        set_detect_anomaly(True)

    def __exit__(self, *exc: object) -> None:
        set_detect_anomaly(self.prev)

    def __call__(self, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with detect_anomaly():
                return fn(*args, **kwargs)

        return wrapper


def is_anomaly_enabled() -> bool:
    return enabled


def capture_stack() -> list[traceback.FrameSummary]:
    """The user's frames at this point (tinytorch's own frames left out)."""
    frames = traceback.extract_stack()[:-1]
    return [f for f in frames if not os.path.abspath(f.filename).startswith(_PACKAGE_DIR)]


def _where(node: Any) -> str:
    stack = getattr(node, "_trace", None)
    if not stack:
        return "  (no creation trace: the op was recorded before anomaly mode was on)"
    return "".join(traceback.format_list(stack[-6:])).rstrip()


def _bad_value(arr: Any) -> str | None:
    a = np.asarray(arr)
    if a.dtype.kind not in "fc" or np.isfinite(a).all():
        return None
    if np.isnan(a).any():
        return "nan"
    return "-inf" if (a == -np.inf).any() else "inf"


def check_output(node: Any, data: np.ndarray) -> None:
    bad = _bad_value(data)
    if bad is not None:
        raise AnomalyError(
            f"{node.name()} produced {bad} in its forward output (shape {data.shape}). "
            f"The op was created here:\n{_where(node)}"
        )


def check_grads(node: Any, grads: tuple[Any, ...]) -> None:
    for i, g in enumerate(grads):
        if g is None:
            continue
        bad = _bad_value(g.data if hasattr(g, "requires_grad") else g)
        if bad is not None:
            raise AnomalyError(
                f"{node.name()} returned {bad} in its backward gradient for input {i}. "
                f"The op was created here:\n{_where(node)}"
            )
