"""Anomaly detection: the first NaN/Inf in forward or backward raises ``AnomalyError``
naming the op and the line of this file where the op was created; off, nothing is
recorded."""

from __future__ import annotations

import inspect
import os
from typing import Any

import numpy as np
import pytest

import tinytorch as tt
from tinytorch.autograd import AnomalyError, Function, detect_anomaly, grad_mode
from tinytorch.autograd.anomaly import is_anomaly_enabled, set_detect_anomaly

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's own 0/0 notes
HERE = os.path.basename(__file__)


def here() -> int:
    """The caller's line number."""
    return inspect.currentframe().f_back.f_lineno  # type: ignore[union-attr]


def assert_points_at(err: AnomalyError, op: str, bad: str, line: int, stage: str) -> None:
    msg = str(err)
    assert msg.startswith(f"{op} "), msg
    assert bad in msg and stage in msg, msg
    assert f'{HERE}", line {line}' in msg, msg


def test_forward_nan_names_the_op_and_line() -> None:
    x = tt.tensor([-1.0, 4.0], requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError) as info:
        y = x * 2.0
        line = here() + 1
        z = tt.sqrt(y)  # sqrt(-2) = nan
        z.sum()
    assert_points_at(info.value, "SqrtBackward", "nan", line, "forward output")


def test_forward_inf_names_the_op_and_line() -> None:
    x = tt.tensor([1.0, 1000.0], requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError) as info:
        line = here() + 1
        tt.exp(x).sum()
    assert_points_at(info.value, "ExpBackward", "inf", line, "forward output")
    assert "shape (2,)" in str(info.value)


def test_backward_nan_names_the_op_and_its_forward_line() -> None:
    x = tt.tensor([0.0, 1.0], requires_grad=True)
    with detect_anomaly():
        a = x * 1.0
        line = here() + 1
        y = tt.sqrt(a)  # forward is fine (0, 1); backward divides by 2 * sqrt(0)
        loss = (y * 0.0).sum()  # gradient 0 reaching sqrt: 0 / 0 = nan
        with pytest.raises(AnomalyError) as info:
            loss.backward()
    assert_points_at(info.value, "SqrtBackward", "nan", line, "backward gradient for input 0")


def test_backward_inf_from_a_custom_function() -> None:
    class Recip(Function):
        @staticmethod
        def forward(ctx: Any, x: tt.Tensor) -> tt.Tensor:
            ctx.save_for_backward(x)
            return x * 0.0 + 1.0

        @staticmethod
        def backward(ctx: Any, g: tt.Tensor) -> tt.Tensor:
            (x,) = ctx.saved_tensors
            return g / x  # inf at x = 0

    x = tt.tensor([0.0, 2.0], requires_grad=True)
    with detect_anomaly():
        line = here() + 1
        y = Recip.apply(x)
        with pytest.raises(AnomalyError) as info:
            y.sum().backward()
    assert_points_at(info.value, "RecipBackward", "inf", line, "backward gradient")


def test_the_first_bad_op_is_reported_not_a_later_one() -> None:
    x = tt.tensor([-1.0], requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError, match="^LogBackward"):
        tt.exp(tt.log(x))  # log(-1) = nan: exp(nan) would be nan too


def test_ops_recorded_before_anomaly_mode_have_no_trace() -> None:
    x = tt.tensor([0.0], requires_grad=True)
    y = tt.sqrt(x * 1.0)
    with detect_anomaly(), pytest.raises(AnomalyError, match="no creation trace"):
        (y * 0.0).sum().backward()


def test_switches_decorator_and_restoring() -> None:
    assert not is_anomaly_enabled()
    extras = grad_mode.extras
    with detect_anomaly():
        assert is_anomaly_enabled()
        with detect_anomaly():
            assert is_anomaly_enabled()
        assert is_anomaly_enabled()
    assert not is_anomaly_enabled() and grad_mode.extras == extras
    set_detect_anomaly(True)
    try:
        set_detect_anomaly(True)  # idempotent: extras counted once
        assert grad_mode.extras == extras + 1
    finally:
        set_detect_anomaly(False)
    assert grad_mode.extras == extras

    @detect_anomaly()
    def bad(x: tt.Tensor) -> tt.Tensor:
        return tt.log(x)

    with pytest.raises(AnomalyError, match="LogBackward"):
        bad(tt.tensor([-1.0], requires_grad=True))
    assert not is_anomaly_enabled()
    # an error inside the context still switches it off
    with pytest.raises(AnomalyError), detect_anomaly():
        tt.log(tt.tensor([-1.0], requires_grad=True))
    assert not is_anomaly_enabled()


def test_off_mode_records_no_traces_and_raises_nothing() -> None:
    assert grad_mode.extras == 0
    x = tt.tensor([-1.0, 0.0], requires_grad=True)
    y = tt.log(x) * 2.0  # nan and -inf, silently
    node = y.grad_fn
    for n in (node, node.next_functions[0][0]):
        assert "_trace" not in n.__dict__ and not n._special
    y.sum().backward()
    assert np.isinf(x.grad.numpy()[1])  # 2 / 0
    with detect_anomaly():
        z = tt.exp(x * 1.0)
    assert "_trace" in z.grad_fn.__dict__  # on: each node keeps where it was made
