"""Numerical gradient checks shared by the test modules (float64 central differences)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np

import tinytorch as tt


def check_grads(fn: Callable[[], tt.Tensor], tensors: Sequence[tt.Tensor],
                rng: np.random.Generator, eps: float = 1e-6, rtol: float = 1e-5,
                atol: float = 1e-7, record: bool = False) -> None:
    """Gradients of ``sum(fn() * R)`` for a random ``R`` drawn from ``rng``, against
    central differences (each tensor's data is perturbed in place).

    ``record=True`` keeps grad mode on while ``fn`` is re-evaluated (for functions that
    differentiate internally)."""
    out = fn()
    weights = rng.standard_normal(out.shape)
    for t in tensors:
        t.grad = None
    (out * tt.Tensor(weights)).sum().backward()
    analytic = [np.zeros(t.shape) if t.grad is None else t.grad.data.copy() for t in tensors]

    def value() -> float:
        with tt.set_grad_enabled(record):
            return float(np.sum(fn().data * weights))

    for i, (t, a) in enumerate(zip(tensors, analytic)):
        flat = t.data.reshape(-1)
        assert np.shares_memory(flat, t.data)
        numeric = np.zeros(flat.size)
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            hi = value()
            flat[j] = orig - eps
            lo = value()
            flat[j] = orig
            numeric[j] = (hi - lo) / (2 * eps)
        np.testing.assert_allclose(a.reshape(-1), numeric, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i} (shape {t.shape})")


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Multi-threaded BLAS on a busy 2-core machine can make a small matmul 1000x slower;
    one thread keeps timing-sensitive tests fast and steady."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1):
        yield
