"""Tensor construction, dtype rules, attributes and the NumPy protocol."""

import numpy as np
import pytest

import tinytorch as tt


@pytest.mark.parametrize(
    ("data", "kwargs", "dtype"),
    [
        (3, {}, np.float32),
        (2.5, {}, np.float32),
        ([1, 2], {}, np.float32),
        ([[1.0, 2.0]], {}, np.float32),
        (np.ones(2, np.float64), {}, np.float64),
        (np.ones(2, np.float32), {}, np.float32),
        (np.arange(3), {}, np.int64),
        (np.array([True, False]), {}, np.bool_),
        ([1, 2], {"dtype": tt.float64}, np.float64),
        ([1, 2], {"dtype": "int64"}, np.int64),
        (np.ones(2), {"dtype": np.float32}, np.float32),
    ],
)
def test_dtype_rules(data, kwargs, dtype):
    assert tt.tensor(data, **kwargs).dtype == dtype


def test_construction_from_tensor_copies():
    a = tt.tensor([1.0, 2.0])
    b = tt.Tensor(a)
    b.data[0] = 9
    assert a.data[0] == 1.0
    shared = tt.from_numpy(a.data)
    shared.data[1] = 7
    assert a.data[1] == 7


@pytest.mark.parametrize("bad", ["text", [1, "a"], np.array([1 + 2j]), {"a": 1}, [[1, 2], [3]]])
def test_unsupported_data_is_a_clear_type_error(bad):
    with pytest.raises(TypeError, match="Tensor"):
        tt.tensor(bad)


def test_requires_grad_must_be_a_bool():
    with pytest.raises(TypeError, match="dtype by keyword"):
        tt.Tensor([1.0], np.float64)


def test_attributes():
    t = tt.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and t.size() == (2, 3)
    assert t.size(1) == 3 and len(t) == 2 and t.is_leaf
    assert t.T.shape == (3, 2) and t.T.grad_fn is not None
    assert t[1, 2].item() == 6.0 and t.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert t.numpy() is t.data and np.asarray(t) is t.data
    assert [row.shape for row in t] == [(3,), (3,)]
    d = t.detach()
    assert not d.requires_grad and d.data is t.data
    c = t.clone()
    assert c.data is not t.data and c.grad_fn.name() == "CloneBackward"
    assert float(tt.tensor(2.5)) == 2.5 and int(tt.tensor(3.0)) == 3
    with pytest.raises(ValueError, match="one-element"):
        t.item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t)


def test_repr_looks_like_pytorch():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert repr(x * 2) == "tensor([2., 4.], grad_fn=<MulBackward>)"
    assert repr(tt.tensor([1], dtype="int64")) == "tensor([1], dtype=int64)"


def test_requires_grad_and_casts():
    t = tt.tensor([1.0, 2.0]).requires_grad_()
    assert t.requires_grad
    y = t.double() * 2
    assert y.dtype == np.float64
    y.sum().backward()
    assert t.grad.dtype == np.float32
    assert t.long().dtype == np.int64 and not t.long().requires_grad
    assert t.float().dtype == np.float32


def test_numpy_functions_dispatch_to_the_op_table():
    x = tt.tensor([0.5, 1.0], dtype=tt.float64, requires_grad=True)
    y = np.exp(x) + np.sum(x * x)
    assert isinstance(y, tt.Tensor) and y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, np.exp(x.data) + 2 * 2 * x.data)
    arr = np.array([1.0, 2.0])
    assert isinstance(arr * x, tt.Tensor)
    assert np.allclose(x, [0.5, 1.0])  # not differentiable: plain NumPy answer
    assert isinstance(np.linalg.norm(x), float)


def test_comparisons_return_bool_tensors():
    x = tt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for r in (x == 2, x != 2, x < 2, x <= 2, x > 2, x >= 2):
        assert r.dtype == np.bool_ and not r.requires_grad
    assert (x > 1.5).tolist() == [False, True, True]
    assert {x: 1}[x] == 1  # hashable by identity


def test_scalars_on_either_side():
    x = tt.tensor([1.0, 2.0], dtype=tt.float64, requires_grad=True)
    y = 2 * x + (1 - x) + 1 / x + 2**x - x / 2
    y.sum().backward()
    expected = 2 - 1 - 1 / x.data**2 + np.log(2) * 2**x.data - 0.5
    np.testing.assert_allclose(x.grad.data, expected)


def test_matmul_shape_error_names_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not align"):
        tt.tensor(np.ones((2, 3))) @ tt.tensor(np.ones((4, 5)))


def test_broadcast_error_is_clear():
    with pytest.raises(ValueError):
        tt.tensor(np.ones((2, 3))) + tt.tensor(np.ones((4,)))
