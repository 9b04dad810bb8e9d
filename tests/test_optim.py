"""Optimizers and schedulers: hand-computed first steps, PyTorch as the oracle, state dicts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import tinytorch as tt
from tinytorch import optim
from tinytorch.optim import lr_scheduler as sched

try:
    import torch
except ImportError:  # pragma: no cover - torch is optional
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")


def leaf(values, dtype=np.float64):
    return tt.tensor(np.array(values, dtype=dtype), requires_grad=True)


def set_grad(p, g):
    p.grad = tt.tensor(np.array(g, dtype=p.dtype))


# ----------------------------------------------------------------- hand-computed steps
def test_sgd_plain_step():
    p = leaf([1.0, -2.0])
    opt = optim.SGD([p], lr=0.1)
    set_grad(p, [0.5, 1.0])
    opt.step()
    np.testing.assert_allclose(p.data, [1.0 - 0.05, -2.0 - 0.1])


def test_sgd_momentum_dampening_weight_decay_two_steps():
    p = leaf([1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.1)
    set_grad(p, [2.0])
    opt.step()
    g1 = 2.0 + 0.1 * 1.0  # first buffer is the gradient itself (no dampening)
    p1 = 1.0 - 0.1 * g1
    assert p.data[0] == pytest.approx(p1)
    opt.step()
    g2 = 2.0 + 0.1 * p1
    buf = 0.9 * g1 + 0.5 * g2
    assert p.data[0] == pytest.approx(p1 - 0.1 * buf)


def test_sgd_nesterov_two_steps():
    p = leaf([0.0])
    opt = optim.SGD([p], lr=1.0, momentum=0.5, nesterov=True)
    set_grad(p, [1.0])
    opt.step()
    assert p.data[0] == pytest.approx(-(1.0 + 0.5 * 1.0))
    opt.step()
    buf = 0.5 * 1.0 + 1.0
    assert p.data[0] == pytest.approx(-1.5 - (1.0 + 0.5 * buf))


def test_adam_first_two_steps_by_hand():
    p = leaf([1.0, 1.0])
    lr, b1, b2, eps = 0.01, 0.9, 0.99, 1e-8
    opt = optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps)
    g = np.array([0.3, -2.0])
    set_grad(p, g)
    opt.step()
    # step 1: bias-corrected m = g and v = g^2, so the update is lr * g / (|g| + eps)
    expected = 1.0 - lr * g / (np.abs(g) + eps)
    np.testing.assert_allclose(p.data, expected, rtol=1e-12)
    opt.step()
    m = b1 * (1 - b1) * g + (1 - b1) * g
    v = b2 * (1 - b2) * g**2 + (1 - b2) * g**2
    expected -= lr / (1 - b1**2) * m / (np.sqrt(v) / math.sqrt(1 - b2**2) + eps)
    np.testing.assert_allclose(p.data, expected, rtol=1e-12)


def test_adam_l2_versus_adamw_decoupled_decay():
    pa, pw = leaf([2.0]), leaf([2.0])
    adam = optim.Adam([pa], lr=0.1, weight_decay=0.5)
    adamw = optim.AdamW([pw], lr=0.1, weight_decay=0.5)
    for p in (pa, pw):
        set_grad(p, [1.0])
    adam.step()
    adamw.step()
    assert pa.data[0] == pytest.approx(2.0 - 0.1, rel=1e-6)  # g + wd * p = 2 > 0: sign only
    assert pw.data[0] == pytest.approx(2.0 * (1 - 0.1 * 0.5) - 0.1, rel=1e-6)


def test_rmsprop_first_step_by_hand():
    p = leaf([1.0])
    opt = optim.RMSprop([p], lr=0.01, alpha=0.9, eps=0.0, centered=True, momentum=0.5)
    set_grad(p, [2.0])
    opt.step()
    sq, gbar = 0.1 * 4.0, 0.1 * 2.0
    assert p.data[0] == pytest.approx(1.0 - 0.01 * 2.0 / math.sqrt(sq - gbar**2))


def test_adam_keeps_float32():
    p = leaf(np.ones(3), dtype=np.float32)
    opt = optim.Adam([p], lr=0.1, amsgrad=True)
    set_grad(p, [1.0, 2.0, 3.0])
    opt.step()
    assert p.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state[p].values() if hasattr(v, "dtype"))


# ----------------------------------------------------------------- against PyTorch
CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.8, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.1, eps=1e-6)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, weight_decay=0.3, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.1, momentum=0.7)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
]


def run_tinytorch(name, kwargs, init, grads, groups=False):
    ps = [leaf(a) for a in init]
    params = [{"params": [ps[0]]}, {"params": ps[1:], "lr": 0.003}] if groups else ps
    opt = getattr(optim, name)(params, **kwargs)
    for step_grads in grads:
        for p, g in zip(ps, step_grads):
            set_grad(p, g)
        opt.step()
    return [p.data for p in ps]


def run_torch(name, kwargs, init, grads, groups=False):
    ps = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in init]
    params = [{"params": [ps[0]]}, {"params": ps[1:], "lr": 0.003}] if groups else ps
    opt = getattr(torch.optim, name)(params, **kwargs)
    for step_grads in grads:
        for p, g in zip(ps, step_grads):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return [p.detach().numpy() for p in ps]


def random_problem(seed=0, steps=6):
    rng = np.random.default_rng(seed)
    init = [rng.normal(size=(3, 4)), rng.normal(size=(4,))]
    grads = [[rng.normal(size=a.shape) for a in init] for _ in range(steps)]
    return init, grads


@needs_torch
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{k}" for n, k in CONFIGS])
def test_matches_torch(name, kwargs):
    init, grads = random_problem()
    for groups in (False, True):
        ours = run_tinytorch(name, kwargs, init, grads, groups)
        ref = run_torch(name, kwargs, init, grads, groups)
        for a, b in zip(ours, ref):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_real_backward_training_decreases_loss():
    rng = np.random.default_rng(0)
    x, w_true = rng.normal(size=(32, 3)), np.array([[1.0], [-2.0], [0.5]])
    y = tt.tensor(x @ w_true)
    w = leaf(np.zeros((3, 1)))
    opt = optim.SGD([w], lr=0.1, momentum=0.5)
    losses = []
    for _ in range(100):
        opt.zero_grad()
        loss = ((tt.tensor(x) @ w - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 1e-3 * losses[0]


# ----------------------------------------------------------------- behaviour
def test_params_without_grad_are_skipped_and_get_no_state():
    a, b = leaf([1.0]), leaf([2.0])
    opt = optim.Adam([a, b], lr=0.1)
    set_grad(a, [1.0])
    opt.step()
    assert b.data[0] == 2.0 and b not in opt.state
    assert opt.state[a]["step"] == 1


def test_zero_grad_to_none_and_in_place():
    p = leaf([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1)
    set_grad(p, [3.0, 4.0])
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g and np.all(g.data == 0)
    opt.zero_grad()
    assert p.grad is None


def test_step_bumps_version_so_stale_graphs_refuse_backward():
    p = leaf([1.0, 2.0])
    y = (p * p).sum()
    opt = optim.SGD([p], lr=0.1)
    set_grad(p, [1.0, 1.0])
    opt.step()
    with pytest.raises(RuntimeError):
        y.backward()


def test_closure_and_add_param_group():
    a, b = leaf([1.0]), leaf([1.0])
    opt = optim.SGD([a], lr=0.1)
    opt.add_param_group({"params": b, "lr": 1.0})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 1.0]
    assert opt.param_groups[1]["momentum"] == 0.0

    def closure():
        opt.zero_grad()
        loss = (a + b).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 2.0
    assert (a.data[0], b.data[0]) == (pytest.approx(0.9), pytest.approx(0.0))


@pytest.mark.parametrize("name,kwargs", CONFIGS[1:4] + CONFIGS[6:8] + CONFIGS[-2:],
                         ids=lambda v: str(v))
def test_state_dict_round_trip_continues_identically(name, kwargs):
    init, grads = random_problem(seed=1, steps=6)

    def make():
        ps = [leaf(a) for a in init]
        return ps, getattr(optim, name)([{"params": [ps[0]]}, {"params": ps[1:]}], **kwargs)

    ps, opt = make()
    for i, step_grads in enumerate(grads):
        if i == 3:
            saved = opt.state_dict()
            saved_params = [p.data.copy() for p in ps]
        for p, g in zip(ps, step_grads):
            set_grad(p, g)
        opt.step()
    # the state dict is a snapshot: JSON-able apart from arrays, unaffected by later steps
    json.dumps(saved["param_groups"])
    ps2, opt2 = make()
    for p, v in zip(ps2, saved_params):
        p.data[...] = v
    opt2.load_state_dict(json.loads(json.dumps({"param_groups": saved["param_groups"]}))
                         | {"state": saved["state"]})
    for step_grads in grads[3:]:
        for p, g in zip(ps2, step_grads):
            set_grad(p, g)
        opt2.step()
    for a, b in zip(ps, ps2):
        np.testing.assert_array_equal(a.data, b.data)


def test_load_state_dict_checks_groups_and_shapes():
    p = leaf(np.zeros(3))
    opt = optim.Adam([p])
    set_grad(p, [1.0, 1.0, 1.0])
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="param groups"):
        optim.Adam([{"params": [leaf([1.0])]}, {"params": [leaf([1.0])]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="shape"):
        optim.Adam([leaf(np.zeros(4))]).load_state_dict(sd)


# ----------------------------------------------------------------- errors
def test_bad_params_are_refused():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam(iter([]))
    p = leaf([1.0])
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="does not require grad"):
        optim.SGD([tt.tensor([1.0])], lr=0.1)
    with pytest.raises(TypeError, match="Tensors"):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match="iterable"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


@pytest.mark.parametrize("make", [
    lambda p: optim.SGD([p], lr=-0.1),
    lambda p: optim.SGD([p], lr=0.1, momentum=-0.5),
    lambda p: optim.SGD([p], lr=0.1, weight_decay=-1),
    lambda p: optim.SGD([p], lr=0.1, nesterov=True),
    lambda p: optim.Adam([p], lr=float("nan")),
    lambda p: optim.Adam([p], betas=(1.0, 0.999)),
    lambda p: optim.Adam([p], betas=(0.9, -0.1)),
    lambda p: optim.Adam([p], betas=(0.9,)),
    lambda p: optim.AdamW([p], eps=-1e-8),
    lambda p: optim.RMSprop([p], alpha=1.5),
    lambda p: optim.SGD([{"params": [p], "lr": -1.0}], lr=0.1),
])
def test_bad_hyper_parameters_raise_value_error(make):
    with pytest.raises(ValueError):
        make(leaf([1.0]))


def test_non_numeric_lr_is_a_type_error():
    with pytest.raises(TypeError, match="lr must be a number"):
        optim.SGD([leaf([1.0])], lr="0.1")


# ----------------------------------------------------------------- schedulers
def one_param_sgd(lr=1.0, momentum=0.9):
    return optim.SGD([leaf([0.0])], lr=lr, momentum=momentum)


def lrs_of(make_sched, opt, steps):
    s = make_sched(opt)
    out = []
    for _ in range(steps):
        out.append(s.get_last_lr()[0])
        opt.step()
        s.step()
    return out


SCHEDULES = [
    ("StepLR", dict(step_size=3, gamma=0.5), lambda e: 0.5 ** (e // 3)),
    ("MultiStepLR", dict(milestones=[7, 2, 5], gamma=0.1),
     lambda e: 0.1 ** sum(e >= m for m in (2, 5, 7))),
    ("ExponentialLR", dict(gamma=0.9), lambda e: 0.9**e),
    ("CosineAnnealingLR", dict(T_max=10, eta_min=0.1),
     lambda e: 0.1 + 0.9 * (1 + math.cos(math.pi * e / 10)) / 2),
    ("LinearLR", dict(start_factor=0.25, total_iters=4),
     lambda e: 0.25 + 0.75 * min(e, 4) / 4),
]


@pytest.mark.parametrize("name,kwargs,formula", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_scheduler_closed_form(name, kwargs, formula):
    got = lrs_of(lambda o: getattr(sched, name)(o, **kwargs), one_param_sgd(), 10)
    np.testing.assert_allclose(got, [formula(e) for e in range(10)], rtol=1e-12)


def one_cycle_formula(step, total, max_lr, pct=0.3, div=25.0, final=1e4):
    lo, end = max_lr / div, max_lr / div / final
    p1 = pct * total - 1
    if step <= p1:
        return lo + (max_lr - lo) * (1 - math.cos(math.pi * step / p1)) / 2
    pct2 = (step - p1) / (total - 1 - p1)
    return end + (max_lr - end) * (1 + math.cos(math.pi * pct2)) / 2


def test_one_cycle_closed_form_and_momentum():
    opt = one_param_sgd()
    s = sched.OneCycleLR(opt, max_lr=0.5, total_steps=20)
    assert opt.param_groups[0]["momentum"] == 0.95
    got = [s.get_last_lr()[0]]
    for _ in range(19):
        opt.step()
        s.step()
        got.append(s.get_last_lr()[0])
    np.testing.assert_allclose(got, [one_cycle_formula(e, 20, 0.5) for e in range(20)])
    assert got[-1] == pytest.approx(0.5 / 25 / 1e4)
    s.step()  # step == total_steps is still allowed, as in PyTorch
    with pytest.raises(ValueError, match="total_steps"):
        s.step()


TORCH_SCHEDULES = [
    *[(n, k) for n, k, _ in SCHEDULES],
    ("CosineAnnealingLR", dict(T_max=7)),
    ("LinearLR", dict(start_factor=0.5, end_factor=0.9, total_iters=6)),
    ("OneCycleLR", dict(max_lr=0.4, total_steps=25)),
    ("OneCycleLR", dict(max_lr=0.4, total_steps=25, anneal_strategy="linear",
                        three_phase=True, pct_start=0.4)),
    ("OneCycleLR", dict(max_lr=[0.4, 0.2], epochs=3, steps_per_epoch=8)),
]


@needs_torch
@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
@pytest.mark.parametrize("name,kwargs", TORCH_SCHEDULES, ids=[s[0] for s in TORCH_SCHEDULES])
def test_scheduler_matches_torch(name, kwargs, opt_name):
    steps = 24
    okw = dict(lr=0.3, momentum=0.9) if opt_name == "SGD" else dict(lr=0.3)

    def trace(lib, make_param):
        params = [{"params": [make_param()]}, {"params": [make_param()], "lr": 0.1}]
        opt = getattr(lib.optim, opt_name)(params, **okw)
        s = getattr(lib.optim.lr_scheduler, name)(opt, **kwargs)
        out = []
        for _ in range(steps):
            key = "momentum" if opt_name == "SGD" else "betas"
            out.append((s.get_last_lr(), [g.get(key) for g in opt.param_groups]))
            opt.step()
            s.step()
        return out

    ours = trace(tt, lambda: leaf([0.0]))
    ref = trace(torch, lambda: torch.zeros(1, requires_grad=True))
    for (lr_a, m_a), (lr_b, m_b) in zip(ours, ref):
        np.testing.assert_allclose(lr_a, lr_b, rtol=1e-9)
        np.testing.assert_allclose(np.array(m_a, float), np.array(m_b, float), rtol=1e-9)


@pytest.mark.parametrize("make", [
    lambda o: sched.StepLR(o, step_size=2, gamma=0.5),
    lambda o: sched.CosineAnnealingLR(o, T_max=8),
    lambda o: sched.OneCycleLR(o, max_lr=1.0, total_steps=12),
])
def test_scheduler_state_dict_resumes(make):
    opt_a = one_param_sgd()
    a = make(opt_a)
    for _ in range(5):
        opt_a.step()
        a.step()
    state = json.loads(json.dumps(a.state_dict()))  # JSON-able
    opt_state = opt_a.state_dict()
    opt_b = one_param_sgd()
    b = make(opt_b)
    opt_b.load_state_dict(opt_state)
    b.load_state_dict(state)
    for _ in range(5):
        for o, s in ((opt_a, a), (opt_b, b)):
            o.step()
            s.step()
        assert a.get_last_lr() == b.get_last_lr()
        assert opt_a.param_groups[0]["lr"] == opt_b.param_groups[0]["lr"]


def test_scheduler_errors():
    opt = one_param_sgd()
    with pytest.raises(TypeError, match="Optimizer"):
        sched.StepLR("not an optimizer", step_size=1)
    with pytest.raises(ValueError):
        sched.StepLR(opt, step_size=0)
    with pytest.raises(ValueError):
        sched.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="cycle_momentum"):
        sched.OneCycleLR(_no_momentum_opt(), max_lr=1.0, total_steps=5)
    with pytest.raises(KeyError, match="initial_lr"):
        sched.ExponentialLR(one_param_sgd(), gamma=0.5, last_epoch=3)


def _no_momentum_opt():
    class Plain(optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, dict(lr=0.1))

    return Plain([leaf([0.0])])
