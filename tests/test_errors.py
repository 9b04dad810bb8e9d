"""Bad input gets a specific exception and a message naming the op, what was given and
what was expected. One table; each row is (id, action, exception type, message regex)."""

import numpy as np
import pytest

import tinytorch as tt
from tinytorch import nn
from tinytorch.data import DataLoader, TensorDataset


def T(*shape, dtype=np.float32, rg=False):
    return tt.tensor(np.ones(shape, dtype=dtype), requires_grad=rg)


def _backward_twice():
    x = T(3, rg=True)
    y = (x * x).sum()
    y.backward()
    y.backward()


def _inplace_saved():
    x, w = T(3, rg=True), T(3)
    y = (x * w).sum()
    w += 1
    y.backward()


def _inplace_leaf():
    x = T(3, rg=True)
    x *= 2


def _optimizer(params):
    return lambda: tt.optim.SGD(params, lr=0.1)


def _load_state(model, state):
    return lambda: model.load_state_dict(state)


_lin = nn.Linear(3, 2)
_bad_shape_state = {"weight": np.ones((2, 3), np.float32), "bias": np.ones(2, np.float32)}
_missing_state = {"weight": np.ones((3, 2), np.float32)}
_extra_state = {**{k: v.copy() for k, v in _lin.state_dict().items()}, "extra": np.ones(1)}

BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "pow": lambda a, b: a**b, "maximum": tt.maximum,
    "minimum": tt.minimum, "where": lambda a, b: tt.where(np.ones(3, bool), a, b),
}

CASES = [
    # --- shapes of binary ops: every op names itself and both shapes
    *[(f"{name}_shapes", (lambda f=f: f(T(2, 3), T(4))), ValueError, r"\(2, 3\).*\(4,\)")
      for name, f in BINARY.items()],
    *[(f"{name}_shapes_3d", (lambda f=f: f(T(2, 3, 4), T(3, 3))), ValueError, r"\(3, 3\)")
      for name, f in BINARY.items()],
    ("matmul_inner", lambda: T(2, 3) @ T(4, 5), ValueError,
     r"matmul: shapes \(2, 3\) and \(4, 5\) do not align \(3 != 4\)"),
    ("matmul_batch", lambda: T(2, 2, 3) @ T(3, 3, 4), ValueError, r"matmul.*batch"),
    ("matmul_scalar", lambda: T() @ T(3), ValueError, r"matmul.*at least 1 dimension"),
    ("matmul_vec", lambda: T(3) @ T(4), ValueError, r"matmul.*\(3,\).*\(4,\)"),
    ("dot_3d", lambda: tt.dot(T(2, 2, 2), T(2)), ValueError, r"dot: expected 1-D or 2-D"),
    # --- shape ops
    ("reshape", lambda: T(2, 3).reshape(4, 2), ValueError, r"reshape.*\(2, 3\).*\(4, 2\)"),
    ("permute", lambda: T(2, 3).permute(0, 0), ValueError, r"permute"),
    ("swapaxes", lambda: T(2, 3).swapaxes(0, 5), ValueError, r"swapaxes"),
    ("squeeze_dim", lambda: T(2, 1).squeeze(3), ValueError, r"squeeze"),
    ("unsqueeze_dim", lambda: T(2).unsqueeze(5), ValueError, r"unsqueeze"),
    ("flatten_dim", lambda: T(2, 3, 4).flatten(5), ValueError, r"flatten"),
    ("expand", lambda: T(2, 3).expand(4, 3), ValueError, r"broadcast_to.*\(2, 3\).*\(4, 3\)"),
    ("expand_fewer", lambda: T(2, 3).expand(3), ValueError, r"expand"),
    ("cat_shapes", lambda: tt.cat([T(2, 3), T(3, 2)], 0), ValueError, r"cat.*\(2, 3\)"),
    ("cat_empty", lambda: tt.cat([]), ValueError, r"cat: expected a non-empty"),
    ("cat_dim", lambda: tt.cat([T(2), T(2)], 3), ValueError, r"cat: dim 3"),
    ("stack_shapes", lambda: tt.stack([T(2), T(3)]), ValueError, r"stack.*same shape"),
    ("split_sizes", lambda: T(5).split([2, 2]), ValueError, r"split.*do not add up"),
    ("split_zero", lambda: T(5).split(0), ValueError, r"split size must be positive"),
    ("chunk_zero", lambda: T(5).chunk(0), ValueError, r"chunk"),
    ("pad_negative", lambda: tt.pad(T(2), (-1, 0)), ValueError, r"pad.*negative"),
    ("pad_odd", lambda: tt.pad(T(2, 2), (1, 2, 3)), ValueError, r"pad.*even"),
    ("tile_negative", lambda: T(2).repeat(-1), ValueError, r"tile"),
    ("getitem_range", lambda: T(2, 3)[5], IndexError, r"getitem.*\(2, 3\)"),
    ("getitem_mask", lambda: T(2, 3)[np.ones(4, bool)], IndexError, r"getitem"),
    ("setitem_shape", lambda: T(2, 3).__setitem__(0, T(4)), ValueError, r"setitem.*\(4,\)"),
    # --- reductions
    ("sum_axis_range", lambda: T(2, 3).sum(axis=2), ValueError, r"sum: axis 2 is out of range"),
    ("sum_axis_type", lambda: T(2, 3).sum(axis=1.0), TypeError, r"sum: axis must be an int"),
    ("sum_axis_both", lambda: T(2, 3).sum(axis=0, dim=1), TypeError, r"sum: give either"),
    ("mean_repeat", lambda: T(2, 3).mean(axis=(0, 0)), ValueError, r"mean: repeated axis"),
    ("mean_empty", lambda: T(0, 3).mean(axis=0), ValueError, r"mean"),
    ("max_empty", lambda: T(0).max(), ValueError, r"max.*empty"),
    ("var_dof", lambda: T(1).var(ddof=1), ValueError, r"var"),
    ("argmax_tuple", lambda: T(2, 3).argmax(axis=(0, 1)), TypeError, r"argmax"),
    ("softmax_dim", lambda: T(2, 3).softmax(dim=2), ValueError, r"softmax: dim 2"),
    ("log_softmax_dim", lambda: T(2, 3).log_softmax(dim=-3), ValueError, r"log_softmax"),
    ("clip_nothing", lambda: tt.clip(T(2)), ValueError, r"clip: give at least one"),
    ("gelu_mode", lambda: tt.gelu(T(2), approximate="fast"), ValueError, r"gelu"),
    # --- dtypes and construction
    ("string_data", lambda: tt.tensor("abc"), TypeError, r"Tensor.*str"),
    ("object_array", lambda: tt.tensor(np.array([object()])), TypeError, r"Tensor.*object"),
    ("complex_array", lambda: tt.tensor(np.array([1j])), TypeError, r"Tensor.*complex"),
    ("ragged_list", lambda: tt.tensor([[1, 2], [3]]), TypeError, r"Tensor"),
    ("int_requires_grad", lambda: tt.tensor(np.arange(3), requires_grad=True), TypeError,
     r"floating-point.*int64"),
    ("bool_requires_grad", lambda: T(2, dtype=bool).requires_grad_(), TypeError, r"bool"),
    ("requires_grad_dtype", lambda: tt.Tensor([1.0], np.float64), TypeError, r"dtype by keyword"),
    ("item_many", lambda: T(2).item(), ValueError, r"item: only a one-element"),
    ("bool_many", lambda: bool(T(2)), RuntimeError, r"ambiguous"),
    ("len_0d", lambda: len(T()), TypeError, r"0-d"),
    ("from_numpy_list", lambda: tt.from_numpy([1.0]), TypeError, r"from_numpy"),
    # --- autograd misuse
    ("backward_twice", _backward_twice, RuntimeError, r"retain_graph=True"),
    ("backward_no_grad", lambda: T(3).sum().backward(), RuntimeError, r"does not require grad"),
    ("backward_bad_seed", lambda: (T(3, rg=True) * 2).backward(np.ones(4)), RuntimeError,
     r"gradient has shape \(4,\).*\(3,\)"),
    ("inplace_saved", _inplace_saved, RuntimeError, r"MulBackward.*in-place"),
    ("inplace_leaf", _inplace_leaf, RuntimeError, r"leaf tensor that requires grad"),
    ("inplace_shape", lambda: T(3).__iadd__(T(2, 3)), RuntimeError, r"add_.*\(2, 3\).*\(3,\)"),
    ("grad_unused", lambda: tt.autograd.grad((T(2, rg=True) * 2).sum(), [T(2, rg=True)]),
     RuntimeError, r"allow_unused"),
    ("grad_no_grad_input", lambda: tt.autograd.grad(T(2, rg=True).sum(), [T(2)]),
     RuntimeError, r"input 0 does not require grad"),
    ("retain_grad_no_grad", lambda: T(2).retain_grad(), RuntimeError, r"retain_grad"),
    ("hook_no_grad", lambda: T(2).register_hook(lambda g: g), RuntimeError, r"register_hook"),
    # --- losses
    ("mse_shapes", lambda: tt.mse_loss(T(4, 1), T(4)), ValueError,
     r"mse_loss.*\(4, 1\).*\(4,\)"),
    ("l1_shapes", lambda: nn.L1Loss()(T(4, 1), T(4)), ValueError, r"l1_loss.*\(4, 1\)"),
    ("bce_shapes", lambda: nn.BCELoss()(T(4, 1) * 0.5, T(4)), ValueError,
     r"binary_cross_entropy.*\(4, 1\)"),
    ("bce_logits_shapes", lambda: nn.BCEWithLogitsLoss()(T(4, 1), T(4)), ValueError,
     r"binary_cross_entropy_with_logits.*\(4, 1\)"),
    ("ce_class_range", lambda: tt.cross_entropy(T(2, 3), tt.tensor([0, 3], dtype="int64")),
     IndexError, r"cross_entropy: target class 3 is out of range for 3 classes"),
    ("ce_negative_class", lambda: tt.cross_entropy(T(2, 3), tt.tensor([-1, 0], dtype="int64")),
     IndexError, r"cross_entropy: target class -1"),
    ("ce_target_shape", lambda: tt.cross_entropy(T(2, 3), tt.tensor([0, 1, 2], dtype="int64")),
     ValueError, r"cross_entropy.*\(2, 3\).*\(3,\)"),
    ("ce_float_targets", lambda: tt.cross_entropy(T(2, 3), tt.tensor([0.5, 1.0])), TypeError,
     r"cross_entropy.*integers"),
    ("ce_smoothing", lambda: nn.CrossEntropyLoss(label_smoothing=2.0)(
        T(2, 3), tt.tensor([0, 1], dtype="int64")), ValueError, r"label_smoothing"),
    ("nll_range", lambda: nn.NLLLoss()(T(2, 3), tt.tensor([0, 7], dtype="int64")), IndexError,
     r"nll_loss.*7"),
    ("loss_reduction", lambda: nn.MSELoss(reduction="avg"), ValueError, r"reduction"),
    # --- layers
    ("linear_in", lambda: nn.Linear(3, 2)(T(4, 5)), ValueError, r"linear.*\(4, 5\).*\(3, 2\)"),
    ("conv_channels", lambda: nn.Conv2d(3, 4, 3)(T(1, 2, 8, 8)), ValueError,
     r"conv2d.*\(1, 2, 8, 8\).*\(4, 3, 3, 3\)"),
    ("conv_rank", lambda: nn.Conv2d(1, 4, 3)(T(8, 8)), ValueError, r"conv2d"),
    ("conv_kernel_big", lambda: nn.Conv2d(1, 1, 5)(T(1, 1, 3, 3)), ValueError, r"conv2d"),
    ("conv_groups", lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, r"groups"),
    ("maxpool_rank", lambda: nn.MaxPool2d(2)(T(4)), ValueError, r"max_pool2d"),
    ("avgpool_big", lambda: nn.AvgPool2d(5)(T(1, 1, 3, 3)), ValueError, r"avg_pool2d"),
    ("batchnorm_features", lambda: nn.BatchNorm1d(3)(T(4, 5)), ValueError, r"batch_norm.*3"),
    ("batchnorm_single", lambda: nn.BatchNorm1d(3)(T(1, 3)), ValueError, r"batch"),
    ("layernorm_shape", lambda: nn.LayerNorm(4)(T(2, 3)), ValueError, r"layer_norm.*\(4,\)"),
    ("embedding_range", lambda: nn.Embedding(5, 2)(tt.tensor([7], dtype="int64")), IndexError,
     r"embedding.*7"),
    ("embedding_float", lambda: nn.Embedding(5, 2)(T(2)), TypeError, r"embedding"),
    ("dropout_p", lambda: nn.Dropout(1.5), ValueError, r"Dropout: p must be in \[0, 1\]"),
    ("load_state_shape", _load_state(_lin, _bad_shape_state), ValueError,
     r"weight.*\(2, 3\).*\(3, 2\)"),
    ("load_state_missing", _load_state(_lin, _missing_state), KeyError, r"bias"),
    ("load_state_extra", _load_state(_lin, _extra_state), KeyError, r"extra"),
    # --- optimizers
    ("optim_empty", _optimizer([]), ValueError, r"empty"),
    ("optim_nonleaf", _optimizer([T(2, rg=True) * 2]), ValueError, r"leaf"),
    ("optim_no_grad", _optimizer([T(2)]), ValueError, r"require"),
    ("optim_lr", lambda: tt.optim.Adam([T(2, rg=True)], lr=-1), ValueError, r"lr"),
    ("optim_betas", lambda: tt.optim.Adam([T(2, rg=True)], betas=(1.5, 0.9)), ValueError,
     r"beta"),
    # --- data
    ("loader_batch_zero", lambda: DataLoader(TensorDataset(np.ones(4)), batch_size=0),
     ValueError, r"batch_size"),
    ("dataset_lengths", lambda: TensorDataset(np.ones(4), np.ones(3)), ValueError,
     r"TensorDataset"),
]


@pytest.mark.parametrize(("action", "exc", "pattern"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(action, exc, pattern):
    with pytest.raises(exc, match=pattern):
        action()


def test_the_table_is_big_enough():
    assert len(CASES) >= 80
    assert len({c[0] for c in CASES}) == len(CASES)


def test_nan_inputs_are_not_an_error_but_anomaly_mode_names_the_op():
    x = tt.tensor([np.nan, 1.0], requires_grad=True)
    y = (x * 2).sum()  # NaN propagates like NumPy, silently, unless asked
    assert np.isnan(y.item())
    with pytest.raises(tt.autograd.AnomalyError, match="MulBackward"), \
            tt.autograd.detect_anomaly():
        tt.tensor([0.0], requires_grad=True) * np.inf
