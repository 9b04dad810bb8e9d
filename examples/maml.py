"""A meta-gradient through one SGD step (MAML) on small regression tasks.

Each task is a 1-D regression ``y = a sin(x + b)`` with its own amplitude and phase. A
tiny MLP with parameters ``theta`` adapts to a task with one SGD step on its training
points, ``theta' = theta - alpha * grad L_train(theta)``, and is scored on the task's
validation points, ``L_val(theta')``. MAML trains ``theta`` on the gradient of that
score, which runs *through* the inner SGD step (a second-order term):

    d L_val(theta') / d theta = (I - alpha * H_train(theta)) grad L_val(theta')

``tinytorch.func.grad`` nests for this: the inner gradient keeps its graph because
``theta`` requires grad in the outer one. The meta-gradient is checked against float64
central differences of the meta-loss, then a few meta-training steps run.

    python examples/maml.py
"""

from __future__ import annotations

import numpy as np

import tinytorch as tt
from tinytorch import func

ALPHA = 0.1  # inner (adaptation) learning rate
HIDDEN = 8


def init_params(rng: np.random.Generator) -> list[tt.Tensor]:
    shapes = [(1, HIDDEN), (HIDDEN,), (HIDDEN, 1), (1,)]
    return [tt.tensor(rng.normal(0.0, 0.5, size=s)) for s in shapes]


def predict(params: list[tt.Tensor], x: tt.Tensor) -> tt.Tensor:
    w1, b1, w2, b2 = params
    return tt.tanh(x @ w1 + b1) @ w2 + b2


def mse(params: list[tt.Tensor], x: tt.Tensor, y: tt.Tensor) -> tt.Tensor:
    return ((predict(params, x) - y) ** 2).mean()


def sample_task(rng: np.random.Generator, n: int = 10) -> tuple[tt.Tensor, ...]:
    a, b = rng.uniform(0.5, 2.0), rng.uniform(0.0, np.pi)
    xs = rng.uniform(-3.0, 3.0, size=(2, n, 1))
    ys = a * np.sin(xs + b)
    return tt.tensor(xs[0]), tt.tensor(ys[0]), tt.tensor(xs[1]), tt.tensor(ys[1])


def adapted(params: list[tt.Tensor], x: tt.Tensor, y: tt.Tensor) -> list[tt.Tensor]:
    """One SGD step on the task's training points (differentiable in ``params``)."""
    grads = func.grad(lambda *p: mse(list(p), x, y), argnums=tuple(range(len(params))))(
        *params)
    return [p - ALPHA * g for p, g in zip(params, grads)]


def meta_loss(params: list[tt.Tensor], tasks: list[tuple[tt.Tensor, ...]]) -> tt.Tensor:
    total = None
    for x_tr, y_tr, x_val, y_val in tasks:
        loss = mse(adapted(params, x_tr, y_tr), x_val, y_val)
        total = loss if total is None else total + loss
    assert total is not None
    return total * (1.0 / len(tasks))


def meta_gradient(params: list[tt.Tensor],
                  tasks: list[tuple[tt.Tensor, ...]]) -> tuple[tt.Tensor, tuple[tt.Tensor, ...]]:
    return func.value_and_grad(lambda *p: meta_loss(list(p), tasks),
                               argnums=tuple(range(len(params))))(*params)


def finite_difference(params: list[tt.Tensor], tasks: list[tuple[tt.Tensor, ...]],
                      eps: float = 1e-6) -> list[np.ndarray]:
    out = []
    for i, p in enumerate(params):
        g = np.zeros(p.shape)
        for idx in np.ndindex(p.shape):
            moved = []
            for sign in (1.0, -1.0):
                q = p.numpy().copy()
                q[idx] += sign * eps
                ps = [*params[:i], tt.tensor(q), *params[i + 1:]]
                moved.append(meta_loss(ps, tasks).item())
            g[idx] = (moved[0] - moved[1]) / (2 * eps)
        out.append(g)
    return out


def first_order_gradient(params: list[tt.Tensor],
                         tasks: list[tuple[tt.Tensor, ...]]) -> list[np.ndarray]:
    """The first-order approximation (FOMAML): the inner step treated as a constant."""
    total = [np.zeros(p.shape) for p in params]
    for x_tr, y_tr, x_val, y_val in tasks:
        fast = [q.detach() for q in adapted(params, x_tr, y_tr)]
        gs = func.grad(lambda *p, x=x_val, y=y_val: mse(list(p), x, y),
                       argnums=tuple(range(len(fast))))(*fast)
        total = [t + g.numpy() / len(tasks) for t, g in zip(total, gs)]
    return total


def main(meta_steps: int = 30, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    params = init_params(rng)
    tasks = [sample_task(rng) for _ in range(4)]

    value, grads = meta_gradient(params, tasks)
    numeric = finite_difference(params, tasks)
    err = max(float(np.max(np.abs(g.numpy() - n))) for g, n in zip(grads, numeric))
    scale = max(float(np.max(np.abs(n))) for n in numeric)
    fo = first_order_gradient(params, tasks)
    fo_gap = max(float(np.max(np.abs(g.numpy() - f))) for g, f in zip(grads, fo))
    print(f"meta-loss {value.item():.6f}; meta-gradient vs finite differences: max error "
          f"{err:.2e} (largest entry {scale:.2e}); second-order term size {fo_gap:.2e}")

    start = value.item()
    for step in range(meta_steps):  # meta-training: SGD on theta
        batch = [sample_task(rng) for _ in range(4)]
        _, grads = meta_gradient(params, batch)
        params = [p - 0.05 * g for p, g in zip(params, grads)]
        if step % 10 == 9:
            print(f"meta-step {step + 1}: meta-loss on the first tasks "
                  f"{meta_loss(params, tasks).item():.4f}")
    end = meta_loss(params, tasks).item()
    return {"fd_error": err, "fd_scale": scale, "second_order": fo_gap, "meta_loss_start": start,
            "meta_loss_end": end}


if __name__ == "__main__":
    main()
