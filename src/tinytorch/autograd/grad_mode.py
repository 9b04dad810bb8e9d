"""Grad mode: whether new operations are recorded in the graph.

The flag is the only global state of the engine (besides anomaly mode). Each
context manager also works as a decorator.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# NOTE: read directly by the ops on their hot path (``grad_mode.enabled``).
enabled: bool = True

# How many special modes are on (anomaly detection, forward-mode dual levels). While it
# is 0 the per-op path skips them entirely with a single check.
extras: int = 0


def is_grad_enabled() -> bool:
    """Return True when operations are being recorded for autograd.

    >>> import tinytorch as tt
    >>> tt.is_grad_enabled()
    True
    >>> with tt.no_grad():
    ...     tt.is_grad_enabled()
    False
    """
    return enabled


class _GradModeContext:
    """Switches ``enabled`` to ``mode`` inside a ``with`` block or a decorated call."""

    mode: bool

    def __enter__(self) -> None:
        global enabled
        self.prev = enabled
        enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        global enabled
        enabled = self.prev

    def __call__(self, fn: F) -> F:
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class set_grad_enabled(_GradModeContext):
    """Turn recording on or off; as a call, a context manager or a decorator.

    >>> import tinytorch as tt
    >>> x = tt.tensor([1.0, 2.0], requires_grad=True)
    >>> with tt.set_grad_enabled(False):
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    def __init__(self, mode: bool) -> None:
        # Like PyTorch, the switch happens at construction, so a bare call works too.
        global enabled
        self.mode = bool(mode)
        self.prev = enabled
        enabled = self.mode

    def __enter__(self) -> None:
        pass  # already switched in __init__; __exit__ restores

    def __call__(self, fn: F) -> F:
        global enabled
        enabled = self.prev  # used as a decorator: undo the switch made by __init__
        return super().__call__(fn)


class no_grad(_GradModeContext):
    """Context manager / decorator that disables graph recording.

    >>> import tinytorch as tt
    >>> w = tt.tensor([1.0], requires_grad=True)
    >>> with tt.no_grad():
    ...     (w * 3).requires_grad
    False
    """

    mode = False


class enable_grad(_GradModeContext):
    """Context manager / decorator that re-enables recording inside ``no_grad``.

    >>> import tinytorch as tt
    >>> w = tt.tensor([1.0], requires_grad=True)
    >>> with tt.no_grad(), tt.enable_grad():
    ...     (w * 3).requires_grad
    True
    """

    mode = True
