"""tinytorch.nn: the Module registry, containers, layers, init and clipping.

Every layer's gradients are checked against float64 central differences; outputs and
gradients are compared with PyTorch when it is installed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

import numeric
import tinytorch as tt
import tinytorch.nn.functional as F
from tinytorch import nn

RNG = np.random.default_rng(1234)


def t64(shape: Sequence[int], requires_grad: bool = True, scale: float = 1.0) -> tt.Tensor:
    return tt.Tensor(RNG.standard_normal(shape) * scale, requires_grad=requires_grad)


# ----------------------------------------------------------------- central differences


def check_grads(fn: Callable[[], tt.Tensor], tensors: Sequence[tt.Tensor], eps: float = 1e-6,
                rtol: float = 1e-5, atol: float = 1e-7, record: bool = False) -> None:
    """float64 central differences of ``sum(fn() * R)`` (see tests/numeric.py)."""
    for t in tensors:
        assert t.dtype == np.float64, "gradient checks run in float64"
    numeric.check_grads(fn, tensors, RNG, eps, rtol, atol, record)


def module_grads(module: nn.Module, *inputs: tt.Tensor, **kw: Any) -> None:
    module.double()
    check_grads(lambda: module(*inputs), [*inputs, *module.parameters()], **kw)


GRAD_CASES: list[tuple[str, Callable[[], nn.Module], list[tuple[int, ...]]]] = [
    ("linear", lambda: nn.Linear(4, 3), [(5, 4)]),
    ("linear-3d", lambda: nn.Linear(3, 2), [(2, 3, 3)]),
    ("linear-nobias", lambda: nn.Linear(3, 2, bias=False), [(4, 3)]),
    ("conv", lambda: nn.Conv2d(2, 3, 3, padding=1), [(2, 2, 5, 5)]),
    ("conv-stride-dil", lambda: nn.Conv2d(2, 2, (3, 2), stride=(2, 1), padding=(1, 2),
                                          dilation=(1, 2)), [(1, 2, 6, 5)]),
    ("conv-groups", lambda: nn.Conv2d(4, 6, 2, groups=2, bias=False), [(2, 4, 4, 3)]),
    ("conv-same", lambda: nn.Conv2d(1, 2, (2, 3), padding="same"), [(1, 1, 4, 4)]),
    ("maxpool", lambda: nn.MaxPool2d(2), [(2, 2, 4, 5)]),
    ("maxpool-overlap", lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
     [(1, 2, 6, 5)]),
    ("maxpool-dil", lambda: nn.MaxPool2d((2, 2), stride=1, dilation=2), [(1, 1, 5, 5)]),
    ("avgpool", lambda: nn.AvgPool2d(2), [(2, 2, 4, 4)]),
    ("avgpool-pad", lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
     [(1, 2, 6, 5)]),
    ("batchnorm1d", lambda: nn.BatchNorm1d(3), [(6, 3)]),
    ("batchnorm1d-3d", lambda: nn.BatchNorm1d(2), [(3, 2, 4)]),
    ("batchnorm2d", lambda: nn.BatchNorm2d(2), [(3, 2, 2, 3)]),
    ("batchnorm2d-eval", lambda: _ran(nn.BatchNorm2d(2)).eval(), [(2, 2, 2, 2)]),
    ("layernorm", lambda: nn.LayerNorm(4), [(3, 4)]),
    ("layernorm-2d", lambda: nn.LayerNorm((2, 3)), [(2, 2, 3)]),
    ("relu", nn.ReLU, [(3, 4)]),
    ("leaky_relu", lambda: nn.LeakyReLU(0.2), [(3, 4)]),
    ("sigmoid", nn.Sigmoid, [(3, 4)]),
    ("tanh", nn.Tanh, [(3, 4)]),
    ("gelu", nn.GELU, [(3, 4)]),
    ("gelu-tanh", lambda: nn.GELU("tanh"), [(3, 4)]),
    ("silu", nn.SiLU, [(3, 4)]),
    ("softplus", nn.Softplus, [(3, 4)]),
    ("softmax", lambda: nn.Softmax(dim=0), [(3, 4)]),
    ("log_softmax", nn.LogSoftmax, [(3, 4)]),
    ("flatten", nn.Flatten, [(2, 3, 2)]),
    ("identity", nn.Identity, [(2, 3)]),
    ("mlp", lambda: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)), [(5, 3)]),
]


def _ran(bn: nn.Module) -> nn.Module:
    """A BatchNorm whose running statistics are not the defaults."""
    bn.running_mean.data[...] = RNG.standard_normal(bn.running_mean.shape)
    bn.running_var.data[...] = RNG.uniform(0.5, 2.0, bn.running_var.shape)
    bn.weight.data[...] = RNG.uniform(0.5, 2.0, bn.weight.shape)
    return bn


@pytest.mark.parametrize("name,make,shapes", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_layer_gradients_match_central_differences(name: str, make: Any, shapes: Any) -> None:
    tt.manual_seed(0)
    module = make()
    module_grads(module, *[t64(s) for s in shapes])


def test_embedding_gradient_and_padding_idx() -> None:
    emb = nn.Embedding(5, 3).double()
    idx = tt.tensor([[0, 1, 4], [4, 4, 1]], dtype="int64")
    check_grads(lambda: emb(idx), [emb.weight])  # repeated indices add up
    assert np.all(emb.weight.grad.data[2:4] == 0)
    full = emb.weight.grad.data.copy()
    padded = nn.Embedding(5, 3, padding_idx=1).double()
    padded.weight.data = emb.weight.data.copy()
    out = padded(idx)
    np.testing.assert_array_equal(out.data, emb(idx).data)
    (out * tt.Tensor(np.ones(out.shape))).sum().backward()
    emb.weight.grad = None
    emb(idx).sum().backward()
    expected = emb.weight.grad.data.copy()
    expected[1] = 0  # the padding row gets no gradient
    np.testing.assert_allclose(padded.weight.grad.data, expected)
    assert full.shape == expected.shape


def test_dropout_gradient_with_fixed_generator() -> None:
    x = t64((4, 5))
    check_grads(lambda: F.dropout(x, 0.3, True, np.random.default_rng(3)), [x])


def test_conv_pool_batchnorm_double_backward_match_central_differences() -> None:
    x, w, gamma = t64((2, 2, 5, 4)), t64((2, 1, 2, 2)), t64((2,))

    def first_grad_norm() -> tt.Tensor:
        y = F.conv2d(x, w, None, stride=(1, 2), padding=1, groups=2)
        y = F.batch_norm(y, None, None, gamma, None, training=True)
        z = (F.max_pool2d(y.tanh(), 2) ** 2).sum() + (F.avg_pool2d(y, 2, padding=1) ** 3).sum()
        gx, gw, gg = tt.autograd.grad(z, [x, w, gamma], create_graph=True)
        return (gx * gx).sum() + (gw * gw).sum() + (gg * gg).sum()

    check_grads(first_grad_norm, [x, w, gamma], rtol=1e-4, atol=1e-6, record=True)


# ----------------------------------------------------------------- the registry


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.scale = nn.Parameter(np.ones(4))
        self.note = "not registered"

    def forward(self, x: Any) -> Any:
        return self.bn(self.fc(x)) * self.scale


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(4, 2)
        self.tied = self.head  # the same module twice: listed once


def test_setattr_files_parameters_modules_and_plain_attributes() -> None:
    net = Net()
    assert list(net._modules) == ["block", "head", "tied"]
    assert list(net.block._parameters) == ["scale"]
    assert "note" in net.block.__dict__ and "note" not in net.block._parameters
    assert [n for n, _ in net.named_parameters()] == [
        "block.scale", "block.fc.weight", "block.fc.bias", "block.bn.weight", "block.bn.bias",
        "head.weight", "head.bias",
    ]
    assert len(list(net.parameters())) == 7
    assert [n for n, _ in net.named_modules()] == ["", "block", "block.fc", "block.bn", "head"]
    assert [n for n, _ in net.named_children()] == ["block", "head"]
    assert list(net.children()) == [net.block, net.head]
    assert [n for n, _ in net.named_buffers()] == [
        "block.bn.running_mean", "block.bn.running_var", "block.bn.num_batches_tracked"]
    assert net.get_submodule("block.fc") is net.block.fc
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        net.missing  # noqa: B018
    with pytest.raises(TypeError, match="parameter 'scale'"):
        net.block.scale = tt.tensor([1.0])
    assert list(net.state_dict())[-4:] == ["head.weight", "head.bias", "tied.weight",
                                           "tied.bias"]  # shared: saved under both names
    net.load_state_dict(net.state_dict())
    del net.head
    assert "head" not in net._modules


def test_parameter_is_a_tensor_sharing_memory() -> None:
    arr = np.zeros(3, dtype=np.float32)
    p = nn.Parameter(arr)
    assert isinstance(p, tt.Tensor) and p.requires_grad and p.is_leaf
    p.data[0] = 5
    assert arr[0] == 5
    assert repr(p).startswith("Parameter containing:\ntensor(")
    assert not nn.Parameter(arr, requires_grad=False).requires_grad


def test_assigning_before_init_is_a_clear_error() -> None:
    class Broken(nn.Module):
        def __init__(self) -> None:
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(AttributeError, match="Module.__init__"):
        Broken()


def test_state_dict_round_trip_and_copies() -> None:
    tt.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    x = tt.Tensor(RNG.standard_normal((4, 1, 4, 4)).astype(np.float32))
    a(x)  # move the running statistics
    state = a.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                           "1.running_var", "1.num_batches_tracked", "3.weight", "3.bias"]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert state["1.num_batches_tracked"] == 1
    state["3.bias"][...] = 100.0  # a copy: the model is untouched
    assert not np.any(a[3].bias.data == 100.0)
    state = a.state_dict()

    tt.manual_seed(1)
    b = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    w_obj = b[0].weight
    result = b.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert b[0].weight is w_obj  # loaded in place
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, state[k])
    a.eval()
    b.eval()
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_load_state_dict_names_every_problem() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    before = model.state_dict()
    bad = dict(before)
    del bad["0.bias"], bad["1.weight"]
    bad["extra.weight"] = np.zeros(1)
    bad["2.bias"] = np.zeros(1)
    with pytest.raises(KeyError) as info:
        model.load_state_dict(bad)
    msg = str(info.value)
    for name in ("0.bias", "1.weight", "extra.weight", "2.bias"):
        assert name in msg

    shapes = dict(before)
    shapes["0.weight"] = np.zeros((3, 2))
    shapes["1.bias"] = np.zeros((2,))
    shapes["1.weight"] = shapes["1.weight"] + 1  # valid, but must not be applied
    with pytest.raises(ValueError) as info2:
        model.load_state_dict(shapes)
    assert "0.weight" in str(info2.value) and "1.bias" in str(info2.value)
    assert "(3, 2)" in str(info2.value) and "(2, 3)" in str(info2.value)
    np.testing.assert_array_equal(model[1].weight.data, before["1.weight"])  # nothing changed

    partial = {"0.weight": np.ones((2, 3)), "junk": np.zeros(2)}
    result = model.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["0.bias", "1.weight", "1.bias"]
    assert result.unexpected_keys == ["junk"]
    np.testing.assert_array_equal(model[0].weight.data, np.ones((2, 3)))


def test_load_state_dict_accepts_tensors_and_casts() -> None:
    lin = nn.Linear(2, 2)
    lin.load_state_dict({"weight": tt.tensor([[1.0, 2.0], [3.0, 4.0]], dtype="float64"),
                         "bias": [0.5, 0.5]})
    assert lin.weight.dtype == np.float32
    np.testing.assert_array_equal(lin.weight.data, [[1, 2], [3, 4]])


def test_non_persistent_buffers_are_not_saved() -> None:
    m = nn.Module()
    m.register_buffer("kept", np.zeros(2))
    m.register_buffer("scratch", np.zeros(2), persistent=False)
    assert list(m.state_dict()) == ["kept"]
    assert [n for n, _ in m.named_buffers()] == ["kept", "scratch"]


def test_train_eval_and_apply() -> None:
    net = Net()
    assert net.training and net.block.bn.training
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    seen: list[str] = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "BatchNorm1d", "Block", "Linear", "Net"]


def test_zero_grad() -> None:
    lin = nn.Linear(3, 2)
    lin(tt.Tensor(np.ones((1, 3)))).sum().backward()
    lin.zero_grad(set_to_none=False)
    assert np.all(lin.weight.grad.data == 0) and lin.weight.grad.shape == (3, 2)
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None


def test_repr_is_nested_like_pytorch() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.ModuleDict({"head": nn.Linear(4, 2)}), nn.Dropout(0.25),
    )
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)\n"
        "  (1): ReLU()\n"
        "  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (3): ModuleDict(\n"
        "    (head): Linear(in_features=4, out_features=2, bias=True)\n"
        "  )\n"
        "  (4): Dropout(p=0.25)\n"
        ")"
    )
    assert repr(nn.BatchNorm1d(3)) == (
        "BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)")
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"


def test_containers() -> None:
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    seq.append(nn.Sigmoid())
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear", "Sigmoid"]
    with pytest.raises(IndexError):
        seq[4]  # noqa: B018
    from collections import OrderedDict

    named = nn.Sequential(OrderedDict([("enc", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert [n for n, _ in named.named_parameters()] == ["enc.weight", "enc.bias"]

    ml = nn.ModuleList([nn.Linear(1, 1)])
    ml.append(nn.Linear(1, 2))
    ml += [nn.ReLU()]
    ml.insert(0, nn.Identity())
    assert [type(m).__name__ for m in ml] == ["Identity", "Linear", "Linear", "ReLU"]
    assert [n for n, _ in ml.named_parameters()] == ["1.weight", "1.bias", "2.weight", "2.bias"]
    del ml[0]
    assert list(ml._modules) == ["0", "1", "2"]

    md = nn.ModuleDict({"a": nn.Linear(1, 1)})
    md["b"] = nn.ReLU()
    assert "b" in md and list(md) == ["a", "b"] and len(md) == 2
    assert md.pop("a").in_features == 1 and list(md.keys()) == ["b"]
    with pytest.raises(KeyError, match="no module named 'zz'"):
        md["zz"]  # noqa: B018


def test_deepcopy_gives_independent_parameters() -> None:
    a = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    b = copy.deepcopy(a)
    assert isinstance(b[0].weight, nn.Parameter)
    b[0].weight.data[...] = 7
    assert not np.any(a[0].weight.data == 7)
    assert b.state_dict().keys() == a.state_dict().keys()


def test_double_keeps_parameter_identity() -> None:
    lin = nn.Linear(2, 2)
    w = lin.weight
    lin.double()
    assert lin.weight is w and w.dtype == np.float64
    assert lin(tt.tensor(np.ones((1, 2)))).dtype == np.float64


# ----------------------------------------------------------------- layer behaviour


def test_linear_layout_and_init() -> None:
    tt.manual_seed(0)
    lin = nn.Linear(100, 7)
    assert lin.weight.shape == (100, 7) and lin.bias.shape == (7,)
    assert np.abs(lin.weight.data).max() <= 0.1 and np.abs(lin.weight.data).max() > 0.09
    x = RNG.standard_normal((5, 100)).astype(np.float32)
    np.testing.assert_allclose(lin(tt.tensor(x)).data, x @ lin.weight.data + lin.bias.data,
                               rtol=1e-5)
    with pytest.raises(ValueError, match=r"linear: input of shape \(5, 3\)"):
        lin(tt.tensor(np.zeros((5, 3))))


def test_dropout_train_and_eval() -> None:
    drop = nn.Dropout(0.25)
    x = tt.tensor(np.ones((200, 100)), requires_grad=True)
    tt.manual_seed(5)
    y = drop(x)
    kept = y.data != 0
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_allclose(y.data[kept], 1 / 0.75)
    tt.manual_seed(5)
    np.testing.assert_array_equal(drop(x).data, y.data)  # seeded: the same mask
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, kept / 0.75)
    drop.eval()
    assert drop(x) is x
    assert np.all(nn.Dropout(1.0)(x).data == 0)
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.5)


def test_batchnorm_running_statistics_and_eval() -> None:
    bn = nn.BatchNorm1d(3, momentum=0.2)
    batches = [RNG.normal(2.0, 3.0, (8, 3)) for _ in range(3)]
    rm, rv = np.zeros(3), np.ones(3)
    for b in batches:
        y = bn(tt.tensor(b))
        np.testing.assert_allclose(y.data.mean(0), 0, atol=1e-5)
        rm = 0.8 * rm + 0.2 * b.mean(0)
        rv = 0.8 * rv + 0.2 * b.var(0, ddof=1)
    np.testing.assert_allclose(bn.running_mean.data, rm, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.data, rv, rtol=1e-5)
    assert int(bn.num_batches_tracked.data) == 3
    bn.eval()
    x = RNG.standard_normal((4, 3))
    np.testing.assert_allclose(bn(tt.tensor(x)).data, (x - rm) / np.sqrt(rv + 1e-5), rtol=1e-4)
    assert int(bn.num_batches_tracked.data) == 3  # eval does not count

    cma = nn.BatchNorm1d(2, momentum=None)
    b1, b2 = RNG.standard_normal((5, 2)), RNG.standard_normal((5, 2))
    cma(tt.tensor(b1))
    cma(tt.tensor(b2))
    np.testing.assert_allclose(cma.running_mean.data, (b1.mean(0) + b2.mean(0)) / 2, rtol=1e-5)

    free = nn.BatchNorm2d(2, track_running_stats=False, affine=False).eval()
    assert free.state_dict() == {} and list(free.parameters()) == []
    np.testing.assert_allclose(free(tt.tensor(RNG.normal(3, 1, (2, 2, 3, 3)))).data.mean(),
                               0, atol=1e-6)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(2)(tt.tensor(np.ones((1, 2))))
    with pytest.raises(ValueError, match="expected a 4-D input"):
        nn.BatchNorm2d(2)(tt.tensor(np.ones((3, 2))))


def test_embedding_lookup_and_errors() -> None:
    tt.manual_seed(0)
    emb = nn.Embedding(10, 4, padding_idx=0)
    assert np.all(emb.weight.data[0] == 0)
    idx = tt.tensor([[1, 2], [0, 9]], dtype="int64")
    np.testing.assert_array_equal(emb(idx).data, emb.weight.data[idx.data])
    with pytest.raises(IndexError, match="index 10 is out of range for 10"):
        emb(tt.tensor([10], dtype="int64"))
    with pytest.raises(TypeError, match="integers"):
        emb(tt.tensor([1.5]))


def test_conv_argument_errors() -> None:
    x = tt.tensor(np.zeros((1, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"conv2d: input of shape \(1, 3, 5, 5\) and weight"):
        F.conv2d(x, tt.tensor(np.zeros((2, 2, 3, 3))))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        F.conv2d(x, tt.tensor(np.zeros((2, 3, 7, 7))))
    with pytest.raises(ValueError, match="4-D input"):
        F.max_pool2d(tt.tensor(np.zeros((5, 5))), 2)
    with pytest.raises(ValueError, match="must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    # unbatched input (C, H, W) works as in PyTorch
    assert F.conv2d(tt.tensor(np.zeros((3, 5, 5))), tt.tensor(np.zeros((2, 3, 3, 3)))).shape \
        == (2, 3, 3)


def test_conv_keeps_float32() -> None:
    conv = nn.Conv2d(2, 3, 3)
    x = tt.tensor(RNG.standard_normal((2, 2, 5, 5)), dtype="float32", requires_grad=True)
    y = conv(x)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    assert conv.weight.grad.dtype == np.float32


# ----------------------------------------------------------------- init and clipping


@pytest.mark.parametrize("fn", [nn.init.xavier_uniform_, nn.init.xavier_normal_,
                                nn.init.kaiming_uniform_, nn.init.kaiming_normal_,
                                lambda t: nn.init.normal_(t, 1.0, 2.0),
                                lambda t: nn.init.uniform_(t, -3, 3)])
def test_init_is_deterministic_under_manual_seed(fn: Any) -> None:
    w = nn.Parameter(np.zeros((20, 30), dtype=np.float32))
    tt.manual_seed(42)
    a = fn(w).data.copy()
    tt.manual_seed(42)
    b = fn(w).data.copy()
    np.testing.assert_array_equal(a, b)
    c = fn(w).data.copy()
    assert not np.array_equal(a, c)


def test_init_accepts_a_generator() -> None:
    w = nn.Parameter(np.zeros((4, 5)))
    a = nn.init.kaiming_uniform_(w, generator=np.random.default_rng(7)).data.copy()
    tt.manual_seed(0)  # the default generator is not used
    b = nn.init.kaiming_uniform_(w, generator=np.random.default_rng(7)).data.copy()
    np.testing.assert_array_equal(a, b)


def test_init_scales_and_fans() -> None:
    tt.manual_seed(0)
    w = nn.Parameter(np.zeros((400, 100), dtype=np.float32))  # Linear layout (in, out)
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.data.std() - np.sqrt(2 / 400)) < 0.003
    nn.init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu")
    assert abs(np.abs(w.data).max() - np.sqrt(6 / 100)) < 0.005
    nn.init.xavier_uniform_(w, gain=2.0)
    assert abs(np.abs(w.data).max() - 2 * np.sqrt(6 / 500)) < 0.005
    conv = nn.Parameter(np.zeros((64, 8, 3, 3)))
    nn.init.xavier_normal_(conv)
    assert abs(conv.data.std() - np.sqrt(2 / (8 * 9 + 64 * 9))) < 0.003
    nn.init.zeros_(conv)
    assert np.all(conv.data == 0)
    nn.init.ones_(conv)
    assert np.all(conv.data == 1)
    nn.init.constant_(conv, 0.5)
    assert np.all(conv.data == 0.5)
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(np.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(nn.Parameter(np.zeros(3)))


def test_init_does_not_record_and_bumps_version() -> None:
    w = nn.Parameter(np.zeros((3, 3)))
    nn.init.normal_(w)
    assert w.is_leaf and w.grad_fn is None and w.requires_grad


def test_module_init_is_seeded() -> None:
    tt.manual_seed(3)
    a = nn.Sequential(nn.Linear(3, 4), nn.Conv2d(1, 2, 3), nn.Embedding(4, 2))
    tt.manual_seed(3)
    b = nn.Sequential(nn.Linear(3, 4), nn.Conv2d(1, 2, 3), nn.Embedding(4, 2))
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va, vb)


def test_clip_grad_norm() -> None:
    p1 = tt.tensor(np.zeros(2), requires_grad=True)
    p2 = tt.tensor(np.zeros((2, 2)), requires_grad=True)
    p3 = tt.tensor(np.zeros(1), requires_grad=True)  # no grad: skipped
    p1.grad = tt.tensor(np.array([3.0, 4.0]))
    p2.grad = tt.tensor(np.array([[12.0, 0.0], [0.0, 0.0]]))
    total = nn.utils.clip_grad_norm_([p1, p2, p3], 6.5)
    assert total.item() == pytest.approx(13.0)
    np.testing.assert_allclose(p1.grad.data, [1.5, 2.0], rtol=1e-6)
    np.testing.assert_allclose(p2.grad.data[0, 0], 6.0, rtol=1e-6)
    assert nn.utils.clip_grad_norm_([p1, p2], 100.0).item() == pytest.approx(6.5, rel=1e-6)
    np.testing.assert_allclose(p1.grad.data, [1.5, 2.0], rtol=1e-6)  # under the limit
    inf = nn.utils.clip_grad_norm_(p2, 3.0, norm_type="inf")
    assert inf.item() == pytest.approx(6.0, rel=1e-6)
    np.testing.assert_allclose(p2.grad.data[0, 0], 3.0, rtol=1e-5)
    p1.grad = tt.tensor(np.array([np.inf, 1.0]))
    with pytest.raises(RuntimeError, match="total norm"):
        nn.utils.clip_grad_norm_([p1], 1.0, error_if_nonfinite=True)


def test_clip_grad_value() -> None:
    p = tt.tensor(np.zeros(3), requires_grad=True)
    p.grad = tt.tensor(np.array([-5.0, 0.5, 2.0]))
    nn.utils.clip_grad_value_([p], 1.0)
    np.testing.assert_array_equal(p.grad.data, [-1.0, 0.5, 1.0])


# ----------------------------------------------------------------- against PyTorch


def _torch() -> Any:
    return pytest.importorskip("torch")


def _close(ours: Any, theirs: Any, tol: float = 1e-9) -> None:
    np.testing.assert_allclose(np.asarray(ours.data if isinstance(ours, tt.Tensor) else ours),
                               theirs.detach().numpy(), rtol=tol, atol=tol)


def _compare(ours: nn.Module, theirs: Any, x: np.ndarray, params: list[tuple[Any, Any, bool]],
             tol: float = 1e-9) -> None:
    """Same input and weights in both; compare outputs, input grads and parameter grads.
    ``params`` lists (our param, torch param, transposed)."""
    T = _torch()
    X = tt.Tensor(x, requires_grad=True)
    TX = T.tensor(x, requires_grad=True)
    y, ty = ours(X), theirs(TX)
    _close(y, ty, tol)
    r = RNG.standard_normal(y.shape)
    (y * tt.Tensor(r)).sum().backward()
    (ty * T.tensor(r)).sum().backward()
    _close(X.grad, TX.grad, tol)
    for p, tp, transposed in params:
        g = tp.grad.T if transposed else tp.grad
        _close(p.grad, g, tol)


def _copy_into(ours: nn.Module, theirs: Any, transpose: Sequence[str] = ()) -> list[Any]:
    params = dict(ours.named_parameters())
    pairs = []
    for name, tp in theirs.named_parameters():
        value = tp.detach().numpy()
        params[name].data = (value.T if name in transpose else value).astype(np.float64)
        pairs.append((params[name], tp, name in transpose))
    return pairs


def test_linear_matches_torch() -> None:
    T = _torch()
    ours, theirs = nn.Linear(5, 3).double(), T.nn.Linear(5, 3).double()
    pairs = _copy_into(ours, theirs, transpose=["weight"])
    _compare(ours, theirs, RNG.standard_normal((4, 5)), pairs)
    _compare(ours, theirs, RNG.standard_normal((2, 3, 5)), pairs)


CONV_CASES = [
    dict(in_channels=3, out_channels=4, kernel_size=3),
    dict(in_channels=2, out_channels=4, kernel_size=3, stride=2, padding=1),
    dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(2, 1), padding=(2, 1),
         dilation=(2, 1), groups=2),
    dict(in_channels=4, out_channels=4, kernel_size=3, padding=1, groups=4, bias=False),
    dict(in_channels=2, out_channels=3, kernel_size=(2, 4), padding="same", dilation=2),
]


@pytest.mark.parametrize("cfg", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
def test_conv2d_matches_torch(cfg: dict[str, Any]) -> None:
    T = _torch()
    ours, theirs = nn.Conv2d(**cfg).double(), T.nn.Conv2d(**cfg).double()
    pairs = _copy_into(ours, theirs)
    _compare(ours, theirs, RNG.standard_normal((2, cfg["in_channels"], 9, 8)), pairs)


POOL_CASES = [
    ("max", dict(kernel_size=2)),
    ("max", dict(kernel_size=3, stride=2, padding=1)),
    ("max", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("max", dict(kernel_size=(2, 3), stride=(1, 2), dilation=(2, 1))),
    ("avg", dict(kernel_size=2)),
    ("avg", dict(kernel_size=3, stride=2, padding=1)),
    ("avg", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg", dict(kernel_size=(2, 3), stride=1, divisor_override=4)),
]


@pytest.mark.parametrize("kind,cfg", POOL_CASES, ids=[str(i) for i in range(len(POOL_CASES))])
def test_pools_match_torch(kind: str, cfg: dict[str, Any]) -> None:
    T = _torch()
    ours = nn.MaxPool2d(**cfg) if kind == "max" else nn.AvgPool2d(**cfg)
    theirs = T.nn.MaxPool2d(**cfg) if kind == "max" else T.nn.AvgPool2d(**cfg)
    _compare(ours, theirs, RNG.standard_normal((2, 3, 9, 8)), [])


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5), (3, 3, 4, 4)])
def test_batchnorm_matches_torch_in_train_and_eval(shape: tuple[int, ...]) -> None:
    T = _torch()
    cls, tcls = ((nn.BatchNorm2d, T.nn.BatchNorm2d) if len(shape) == 4
                 else (nn.BatchNorm1d, T.nn.BatchNorm1d))
    ours, theirs = cls(3, momentum=0.3).double(), tcls(3, momentum=0.3).double()
    with T.no_grad():
        theirs.weight.copy_(T.tensor(RNG.uniform(0.5, 2, 3)))
        theirs.bias.copy_(T.tensor(RNG.standard_normal(3)))
    pairs = _copy_into(ours, theirs)
    for _ in range(2):
        _compare(ours, theirs, RNG.normal(1.0, 2.0, shape), pairs, tol=1e-8)
        for p, _, _ in pairs:
            p.grad = None
        theirs.zero_grad()
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        _close(getattr(ours, name), getattr(theirs, name), 1e-10)
    ours.eval()
    theirs.eval()
    _compare(ours, theirs, RNG.normal(1.0, 2.0, shape), pairs, tol=1e-8)
    # the state dicts line up key for key
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_layernorm_matches_torch() -> None:
    T = _torch()
    ours, theirs = nn.LayerNorm((3, 4)).double(), T.nn.LayerNorm((3, 4)).double()
    with T.no_grad():
        theirs.weight.copy_(T.tensor(RNG.standard_normal((3, 4))))
        theirs.bias.copy_(T.tensor(RNG.standard_normal((3, 4))))
    pairs = _copy_into(ours, theirs)
    _compare(ours, theirs, RNG.normal(2.0, 3.0, (2, 5, 3, 4)), pairs, tol=1e-8)


def test_embedding_matches_torch() -> None:
    T = _torch()
    ours = nn.Embedding(6, 3, padding_idx=2).double()
    theirs = T.nn.Embedding(6, 3, padding_idx=2).double()
    pairs = _copy_into(ours, theirs)
    idx = np.array([[0, 2, 5], [5, 5, 1]])
    y, ty = ours(tt.tensor(idx, dtype="int64")), theirs(T.tensor(idx))
    _close(y, ty)
    r = RNG.standard_normal(y.shape)
    (y * tt.Tensor(r)).sum().backward()
    (ty * T.tensor(r)).sum().backward()
    _close(pairs[0][0].grad, pairs[0][1].grad)


ACTIVATIONS = [
    ("ReLU", {}), ("LeakyReLU", {"negative_slope": 0.1}), ("Sigmoid", {}), ("Tanh", {}),
    ("GELU", {}), ("GELU", {"approximate": "tanh"}), ("SiLU", {}), ("Softplus", {}),
    ("Softmax", {"dim": 1}), ("LogSoftmax", {"dim": 1}),
]


@pytest.mark.parametrize("name,kw", ACTIVATIONS, ids=[a[0] + str(a[1]) for a in ACTIVATIONS])
def test_activations_match_torch(name: str, kw: dict[str, Any]) -> None:
    T = _torch()
    _compare(getattr(nn, name)(**kw), getattr(T.nn, name)(**kw),
             RNG.standard_normal((4, 5)) * 3, [])


def test_conv_double_backward_matches_torch() -> None:
    T = _torch()
    x, w, b = (RNG.standard_normal(s) for s in ((2, 4, 6, 7), (6, 2, 3, 2), (6,)))
    X, W, B = (tt.Tensor(a, requires_grad=True) for a in (x, w, b))
    TX, TW, TB = (T.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.batch_norm(F.conv2d(X, W, B, (2, 1), 1, (1, 2), 2), None, None, training=True)
    ty = T.nn.functional.batch_norm(T.nn.functional.conv2d(TX, TW, TB, (2, 1), 1, (1, 2), 2),
                                    None, None, training=True)
    z = (F.max_pool2d(y.tanh(), 2) ** 2).sum() + (F.avg_pool2d(y, 2, padding=1) ** 2).sum()
    tz = ((T.nn.functional.max_pool2d(ty.tanh(), 2) ** 2).sum()
          + (T.nn.functional.avg_pool2d(ty, 2, padding=1) ** 2).sum())
    gx, gw = tt.autograd.grad(z, [X, W], create_graph=True)
    tgx, tgw = T.autograd.grad(tz, [TX, TW], create_graph=True)
    ((gx * gx).sum() + (gw * gw).sum()).backward()
    ((tgx * tgx).sum() + (tgw * tgw).sum()).backward()
    for ours, theirs in ((gx, tgx), (gw, tgw), (X.grad, TX.grad), (W.grad, TW.grad),
                         (B.grad, TB.grad)):
        _close(ours, theirs, 1e-8)


def test_clip_grad_norm_matches_torch() -> None:
    T = _torch()
    grads = [RNG.standard_normal((3, 4)), RNG.standard_normal(5)]
    for norm_type in (2.0, 1.0, 3.0, float("inf")):
        ps = [tt.tensor(np.zeros_like(g), requires_grad=True) for g in grads]
        tps = [T.zeros(g.shape, dtype=T.float64, requires_grad=True) for g in grads]
        for p, tp, g in zip(ps, tps, grads):
            p.grad = tt.tensor(g.copy())
            tp.grad = T.tensor(g.copy())
        total = nn.utils.clip_grad_norm_(ps, 1.5, norm_type)
        ttotal = T.nn.utils.clip_grad_norm_(tps, 1.5, norm_type)
        assert total.item() == pytest.approx(ttotal.item(), rel=1e-12)
        for p, tp in zip(ps, tps):
            _close(p.grad, tp.grad, 1e-12)
