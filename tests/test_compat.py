"""TinyTorch code must run unchanged: the contract in shared/DESIGN.md."""

import numpy as np
import pytest

from tinytorch.core.autograd import (
    AddBackward,
    BCEBackward,
    CrossEntropyBackward,
    DivBackward,
    Function,
    MatmulBackward,
    MSEBackward,
    MulBackward,
    ReLUBackward,
    SigmoidBackward,
    SubBackward,
    SumBackward,
    Variable,
    add,
    divide,
    enable_autograd,
    matmul,
    multiply,
    power,
    subtract,
    to_numpy,
)
from tinytorch.core.tensor import Tensor


def test_tensor_basics_follow_tinytorch():
    t = Tensor([1, 2, 3])
    assert t.dtype == np.float32 and isinstance(t.data, np.ndarray)
    assert t.size == 3 and t.shape == (3,) and t.grad is None and not t.requires_grad
    assert Tensor(5).dtype == np.float32
    x = Tensor([1.0], requires_grad=True)
    z = x * 3 + 1
    assert z._grad_fn is z.grad_fn and z.grad_fn is not None
    z.backward()
    assert isinstance(x.grad, Tensor)
    assert np.allclose(x.grad, [3.0]) and np.allclose(x.grad.data, [3.0])


def test_checkpoint_08_nonscalar_backward_and_grad_copy():
    x = Tensor([[2.0, 3.0]], requires_grad=True)
    y = x * x + 2 * x + 1
    y.backward()
    assert np.allclose(x.grad.data, [[6.0, 8.0]])
    saved = x.grad.data.copy()
    assert np.allclose(saved, [[6.0, 8.0]])


def test_matmul_module_examples():
    a = Tensor([[1.0, 2.0]], requires_grad=True)
    b = Tensor([[3.0], [4.0]], requires_grad=True)
    a.matmul(b).backward()
    assert np.allclose(a.grad, [[3.0, 4.0]]) and np.allclose(b.grad, [[1.0], [2.0]])
    x = Tensor(np.random.default_rng(0).standard_normal((4, 2)), requires_grad=True)
    w1 = Tensor(np.ones((2, 3)), requires_grad=True)
    b1 = Tensor(np.zeros((1, 3)), requires_grad=True)
    h1 = x.matmul(w1) + b1
    assert h1.requires_grad
    h1.sum().backward()
    assert w1.grad.shape == w1.shape and b1.grad.shape == b1.shape


def test_accumulation_with_grad_copy():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    first_grad = x.grad.copy()
    (x * 5).sum().backward()
    assert np.allclose(x.grad, first_grad + 5.0)
    x.zero_grad()
    assert x.grad is None


def test_nodes_can_be_built_directly_and_applied():
    a = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = Tensor([4.0, 5.0, 6.0], requires_grad=True)
    g = np.ones(3, dtype=np.float32)
    ga, gb = AddBackward(a, b).apply(g)
    assert np.allclose(ga, g) and np.allclose(gb, g)
    ga, gb = MulBackward(a, b).apply(g)
    assert np.allclose(ga, g * b.data) and np.allclose(gb, g * a.data)
    ga, gb = SubBackward(a, b).apply(g)
    assert np.allclose(gb, -g)
    ga, gb = DivBackward(a, b).apply(g)
    assert np.allclose(ga, 1 / b.data) and np.allclose(gb, -a.data / b.data**2)
    m = Tensor(np.ones((2, 3)), requires_grad=True)
    n = Tensor(np.ones((3, 4)), requires_grad=True)
    gm, gn = MatmulBackward(m, n).apply(np.ones((2, 4)))
    assert gm.shape == m.shape and gn.shape == n.shape
    (gs,) = SumBackward(a).apply(np.array(2.0))
    assert np.allclose(gs, [2.0, 2.0, 2.0])
    x = Tensor([-1.0, 2.0], requires_grad=True)
    (gr,) = ReLUBackward(x).apply(np.ones(2))
    assert np.allclose(gr, [0.0, 1.0])
    s = Tensor(1 / (1 + np.exp(-x.data)))
    (gsig,) = SigmoidBackward(x, s).apply(np.ones(2))
    assert np.allclose(gsig, s.data * (1 - s.data))
    (gsig,) = SigmoidBackward(x, 0.5).apply(np.ones(2))  # the output as a plain number
    assert np.allclose(gsig, [0.25, 0.25])


def test_nodes_carry_saved_tensors_and_next_functions():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0, 4.0], requires_grad=True)
    c = a * b
    d = c + a
    node = MulBackward(a, b)
    assert len(node.saved_tensors) == 2
    assert all(isinstance(t, Tensor) for t in node.saved_tensors)
    assert isinstance(d.grad_fn, Function)
    fns = [fn for fn, _ in d.grad_fn.next_functions]
    assert fns[0] is c.grad_fn and fns[1].name() == "AccumulateGrad"
    assert fns[1].variable is a


def test_loss_nodes():
    p = Tensor([0.2, 0.7], requires_grad=True)
    t = Tensor([0.0, 1.0])
    gp, _ = MSEBackward(p, t).apply(np.array(1.0))
    assert np.allclose(gp, 2 * (p.data - t.data) / 2)
    gp, _ = BCEBackward(p, t).apply(np.array(1.0))
    assert np.allclose(gp, (p.data - t.data) / (p.data * (1 - p.data) * 2))
    logits = Tensor([[1.0, 2.0, 0.5]], requires_grad=True)
    (gl,) = CrossEntropyBackward(logits, Tensor([1], dtype="int64")).apply(np.array(1.0))
    sm = np.exp(logits.data) / np.exp(logits.data).sum()
    assert np.allclose(gl, sm - np.array([0, 1, 0]))


def test_functional_helpers_variable_and_enable_autograd():
    enable_autograd()
    v = Variable([2.0, 3.0])
    assert v.requires_grad and not Variable([1.0], requires_grad=False).requires_grad
    w = Variable([4.0, 5.0])
    out = add(multiply(v, w), subtract(divide(v, w), power(v, 2)))
    out.sum().backward()
    expected = w.data + 1 / w.data - 2 * v.data
    assert np.allclose(v.grad, expected)
    assert np.allclose(matmul(Tensor([[1.0, 2.0]]), Tensor([[1.0], [1.0]])).data, [[3.0]])
    assert isinstance(to_numpy(v), np.ndarray)


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(np.array([1, 2]), requires_grad=True)
    labels = Tensor(np.array([1, 2]))
    assert labels.dtype == np.int64
