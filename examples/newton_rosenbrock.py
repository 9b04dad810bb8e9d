"""Newton's method on the Rosenbrock function with ``tinytorch.func.hessian``.

``f(x, y) = (1 - x)^2 + 100 (y - x^2)^2`` has its minimum at (1, 1) at the bottom of a
long curved valley, where gradient descent crawls. Newton's method solves
``H(x) p = -grad f(x)`` each step (``hessian`` is forward-mode over reverse-mode:
``jacfwd(jacrev(f))``) and halves the step while it does not decrease ``f``. From the
classic start (-1.2, 1) it reaches (1, 1) to machine precision in about 20 steps.

    python examples/newton_rosenbrock.py
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import tinytorch as tt
from tinytorch import func


def rosenbrock(p: tt.Tensor) -> tt.Tensor:
    x, y = p[0], p[1]
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def newton(f: Callable[[tt.Tensor], tt.Tensor], x0: np.ndarray, steps: int = 50,
           tol: float = 1e-12) -> list[np.ndarray]:
    """Damped Newton iterates from ``x0`` until the gradient norm falls below ``tol``."""
    grad, hess = func.grad(f), func.hessian(f)
    x = tt.tensor(np.asarray(x0, dtype=np.float64))
    path = [x.numpy().copy()]
    for _ in range(steps):
        g = grad(x).numpy()
        if np.linalg.norm(g) < tol:
            break
        step = np.linalg.solve(hess(x).numpy(), -g)
        fx, t = f(x).item(), 1.0
        while f(tt.tensor(x.numpy() + t * step)).item() > fx and t > 1e-8:
            t *= 0.5  # backtracking keeps every step downhill
        x = tt.tensor(x.numpy() + t * step)
        path.append(x.numpy().copy())
    return path


def main() -> np.ndarray:
    path = newton(rosenbrock, np.array([-1.2, 1.0]))
    for i, p in enumerate(path):
        print(f"step {i:2d}: x = ({p[0]: .10f}, {p[1]: .10f})  f = "
              f"{rosenbrock(tt.tensor(p)).item():.3e}")
    return path[-1]


if __name__ == "__main__":
    main()
