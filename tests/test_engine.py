"""The backward engine: ordering, depth, memory, retain/create graph, versions, modes."""

import gc
import weakref

import numpy as np
import pytest

import tinytorch as tt
from tinytorch.autograd import grad


def leaf(values, dtype=np.float64):
    return tt.tensor(values, dtype=dtype, requires_grad=True)


# ----------------------------------------------------------------- order and depth


def test_chain_of_100k_ops_backwards_without_recursion():
    x = leaf([0.5, -0.25])
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0])


def test_reused_tensor_is_linear_not_exponential():
    # y = y + y a hundred times: 2**100 paths. A traversal that follows paths
    # instead of nodes would never finish.
    x = leaf(1.0)
    y = x
    for _ in range(100):
        y = y + y
    y.backward()
    assert x.grad.item() == 2.0**100


def test_diamond_accumulates_every_path():
    x = leaf(3.0)
    a = x * 2
    b = x * x
    (a * b + a + b).backward()  # d/dx (2x^3 + 2x + x^2) = 6x^2 + 2 + 2x
    assert x.grad.item() == pytest.approx(6 * 9 + 2 + 6)


def test_multiple_roots_and_shared_subgraph_in_grad():
    x = leaf([1.0, 2.0])
    y = x * x
    z = y * 3
    gy, gz = grad([y.sum(), z.sum()], [x, y])
    np.testing.assert_allclose(gy.data, 2 * x.data * 4)  # through y directly and via z
    np.testing.assert_allclose(gz.data, [4.0, 4.0])  # 1 from y.sum() + 3 from z


def test_a_node_waits_for_a_newer_consumer_that_is_still_pending():
    # loss = tanh(a) + 5a with a = 2x: a's node is handed a gradient by tanh's while
    # 5a (made after tanh) has yet to run; it must wait for both.
    x = leaf([0.3, -1.2])
    a = x * 2.0
    b = tt.tanh(a)
    d = a * 5.0
    (b + d).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * (1 - np.tanh(2 * x.data) ** 2) + 10)


def test_chain_hand_off_is_deferred_behind_a_newer_pending_node():
    # loss = tanh(3a) + exp(a), a = 2x: exp(a) is newer than the tanh chain, so the
    # chain waits; a then gets both contributions before running once.
    x = leaf([0.1, 0.4])
    a = x * 2.0
    c = tt.tanh(a * 3.0)
    d = tt.exp(a)
    (c + d).sum().backward()
    want = 2 * (3 * (1 - np.tanh(6 * x.data) ** 2) + np.exp(2 * x.data))
    np.testing.assert_allclose(x.grad.data, want)


def test_nodes_run_newest_first_each_exactly_once():
    calls = []

    class Recorded(tt.autograd.Function):
        @staticmethod
        def forward(ctx, t, name):
            ctx.name = name
            return t * 1.0

        @staticmethod
        def backward(ctx, g):
            calls.append(ctx.name)
            return g, None

    x = leaf([1.0, 2.0])
    a = Recorded.apply(x, "a")
    b = Recorded.apply(a * 2.0, "b")
    c = Recorded.apply(a * b, "c")
    d = Recorded.apply(b + c, "d")
    d.sum().backward()
    assert calls == ["d", "c", "b", "a"]
    np.testing.assert_allclose(x.grad.data, 2 + 4 * x.data)  # d = 2x + 2x^2


# ----------------------------------------------------------------- memory


def test_saved_arrays_are_freed_by_backward_without_gc():
    gc.disable()
    try:
        x = leaf(np.linspace(-1, 1, 8))
        h = tt.tanh(x)
        saved = weakref.ref(h.grad_fn._vals[-1])  # tanh saves its output
        loss = (h * 2 + tt.exp(x)).sum()
        del h
        assert saved() is not None, "the graph holds what backward needs"
        loss.backward()
        assert saved() is None, "backward must release saved arrays"
        node = weakref.ref(loss.grad_fn)
        del loss
        assert node() is None, "the graph must be freed by refcounting alone"
    finally:
        gc.enable()


def objects_tracked_after(build):
    """``build()``'s result and how many more objects the garbage collector tracks."""
    gc.disable()
    try:
        gc.collect()
        before = len(gc.get_objects())
        out = build()
        return out, len(gc.get_objects()) - before
    finally:
        gc.enable()


def test_a_recorded_chain_costs_the_collector_one_object_per_op():
    # Every object the garbage collector tracks is scanned again and again while the
    # graph lives: a chain's node is the only one (its edge and saved number are not
    # wrapped in new containers, the intermediate Tensors are freed).
    x = leaf(np.ones(4), dtype=np.float32)
    n = 3000

    def chain():
        y = x
        for _ in range(n // 2):
            y = y * 1.0001
            y = y + 0.001
        return y

    y, made = objects_tracked_after(chain)
    assert n <= made <= n + 50
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 1.0001 ** (n // 2), rtol=1e-3)


def test_a_two_input_op_costs_the_collector_its_node_and_edge_pair_only():
    # tensor + tensor: the node and the tuple of its two edges; the output's
    # (shape, dtype) record is shared with every node of that shape and dtype.
    x = leaf(np.ones(4), dtype=np.float32)
    w = leaf(np.ones(4), dtype=np.float32)
    n = 2000

    def chain():
        y = x
        for _ in range(n):
            y = y + w
        return y

    y, made = objects_tracked_after(chain)
    assert 2 * n <= made <= 2 * n + 50
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.data, np.full(4, float(n)))


def test_graph_is_freed_when_output_is_deleted_without_backward():
    gc.disable()
    try:
        x = leaf(np.ones(4))
        y = tt.exp(x * 3)
        ref = weakref.ref(y.grad_fn)
        del y
        assert ref() is None
    finally:
        gc.enable()


# ----------------------------------------------------------------- retain / create graph


def test_second_backward_through_freed_graph_says_retain_graph():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_repeat_and_accumulates():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * 2 * x.data)


def test_create_graph_gives_second_and_third_derivatives():
    x = leaf(2.0)
    y = x**4
    (d1,) = grad(y, x, create_graph=True)
    (d2,) = grad(d1, x, create_graph=True)
    (d3,) = grad(d2, x)
    assert (d1.item(), d2.item(), d3.item()) == pytest.approx((32.0, 48.0, 48.0))


def test_backward_create_graph_puts_a_differentiable_grad_on_the_leaf():
    x = leaf([1.0, 2.0])
    (x**3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    (g2,) = grad(x.grad.sum(), x)
    np.testing.assert_allclose(g2.data, 6 * x.data)


def test_grad_does_not_touch_dot_grad_and_checks_unused_inputs():
    x, unused = leaf([1.0]), leaf([2.0])
    y = (x * 5).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        grad(y, [x, unused], retain_graph=True)
    gx, gu = grad(y, [x, unused], allow_unused=True)
    assert gx.item() == 5.0 and gu is None
    assert x.grad is None


def test_grad_with_grad_outputs_and_nonleaf_input():
    x = leaf([1.0, 2.0, 3.0])
    h = x * 2
    y = h * h
    (gh,) = grad(y, h, grad_outputs=tt.tensor([1.0, 0.0, 2.0], dtype=tt.float64))
    np.testing.assert_allclose(gh.data, [4.0, 0.0, 24.0])


def test_backward_seeds_nonscalar_with_ones_and_checks_gradient_shape():
    x = leaf([[2.0, 3.0]])
    y = x * x + 2 * x + 1
    y.backward()
    np.testing.assert_allclose(x.grad.data, [[6.0, 8.0]])
    with pytest.raises(RuntimeError, match=r"gradient has shape \(3,\).*\(1, 2\)"):
        (x * 2).backward(np.ones(3))


def test_backward_on_tensor_without_grad_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tt.tensor([1.0]).sum().backward()


# ----------------------------------------------------------------- leaves, non-leaves, hooks


def test_gradients_accumulate_until_zero_grad():
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    first = x.grad.copy()
    (x * 5).sum().backward()
    np.testing.assert_allclose(x.grad, first + 5.0)
    x.zero_grad()
    assert x.grad is None


def test_nonleaf_grad_is_kept_only_with_retain_grad():
    x = leaf([1.0, 2.0])
    h = x * 2
    k = x * 3
    h.retain_grad()
    assert h.retains_grad and not k.retains_grad
    (h * k).sum().backward()
    np.testing.assert_allclose(h.grad.data, k.data)
    assert k.grad is None and not k.is_leaf and x.is_leaf


def test_leaf_grads_are_not_aliased():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    a.grad.data *= 10  # e.g. gradient clipping in place
    np.testing.assert_array_equal(b.grad.data, [1.0, 1.0])


def test_hooks_see_and_replace_gradients_and_can_be_removed():
    x = leaf([1.0, 2.0])
    seen = []
    h = x * 2
    handle_h = h.register_hook(lambda g: seen.append(g.data.copy()))
    handle_x = x.register_hook(lambda g: g * 10)
    (h * 3).sum().backward()
    np.testing.assert_allclose(seen[0], [3.0, 3.0])
    np.testing.assert_allclose(x.grad.data, [60.0, 60.0])
    handle_h.remove()
    handle_x.remove()
    x.zero_grad()
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 2.0])


# ----------------------------------------------------------------- version counter


def test_inplace_change_of_saved_input_is_detected_and_names_the_op():
    x = leaf([1.0, 2.0])
    w = leaf([3.0, 4.0])
    y = (x * w).sum()
    with tt.no_grad():
        w += 1.0
    with pytest.raises(RuntimeError, match="MulBackward.*modified by an in-place"):
        y.backward()


def test_inplace_change_of_saved_output_is_detected():
    x = leaf([1.0, 2.0])
    e = tt.exp(x)
    y = e.sum()
    e.data  # noqa: B018
    with tt.no_grad():
        e *= 2
    with pytest.raises(RuntimeError, match="ExpBackward"):
        y.backward()


@pytest.mark.parametrize("alias", ["view", "detach", "itself"])
def test_saved_output_modified_through_an_alias_is_detected(alias):
    x = leaf([1.0, 2.0, 3.0])
    y = tt.tanh(x)
    loss = y.sum()
    with tt.no_grad():
        target = {"view": lambda: y[1:], "detach": y.detach, "itself": lambda: y}[alias]()
        target += 1.0
    with pytest.raises(RuntimeError, match="TanhBackward: its output.*modified"):
        loss.backward()


def test_a_copy_of_a_saved_output_may_be_modified():
    x = leaf([1.0, 2.0])
    y = tt.exp(x)
    loss = y.sum()
    z = y.clone()
    with tt.no_grad():
        z += 1.0
    loss.backward()
    np.testing.assert_allclose(x.grad.data, np.exp(x.data))


def test_inplace_through_a_view_bumps_the_base_version():
    x = leaf([1.0, 2.0, 3.0])
    w = tt.tensor([1.0, 2.0, 3.0], dtype=tt.float64)
    y = (x * w).sum()
    view = w[1:]
    view[0] = 7.0  # writes into w's memory
    assert w.data[1] == 7.0
    with pytest.raises(RuntimeError, match="MulBackward"):
        y.backward()


def test_inplace_on_nonleaf_is_recorded():
    x = leaf([1.0, 2.0])
    y = x * 1.0
    y *= x  # y = x * x
    y += 3.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * x.data)
    assert y.grad_fn.name() == "AddBackward"


def test_setitem_is_tracked():
    x = leaf([1.0, 2.0, 3.0])
    v = leaf(5.0)
    y = x * 2
    y[1] = v * v
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 0.0, 2.0])
    assert v.grad.item() == 10.0


def test_inplace_on_leaf_that_requires_grad_is_refused_while_recording():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        x += 1
    with tt.no_grad():
        x += 1  # fine: an optimizer step
    assert x.item() == 2.0


# ----------------------------------------------------------------- grad modes


def test_no_grad_builds_no_graph():
    x = leaf([1.0])
    with tt.no_grad():
        y = x * 2
        assert not tt.is_grad_enabled()
    assert tt.is_grad_enabled()
    assert y.grad_fn is None and not y.requires_grad


def test_grad_mode_decorators_and_nesting():
    x = leaf([1.0])

    @tt.no_grad()
    def frozen(t):
        return t * 2

    @tt.enable_grad()
    def tracked(t):
        return t * 2

    assert not frozen(x).requires_grad
    with tt.no_grad():
        assert tracked(x).requires_grad
        with tt.set_grad_enabled(True):
            assert (x * 1).requires_grad
        assert not (x * 1).requires_grad
    tt.set_grad_enabled(False)
    assert not tt.is_grad_enabled()
    tt.set_grad_enabled(True)
    assert tt.is_grad_enabled()


def test_grad_mode_restored_after_exception():
    with pytest.raises(ValueError), tt.no_grad():
        raise ValueError
    assert tt.is_grad_enabled()


# ----------------------------------------------------------------- dtypes


def test_float32_parameter_gets_float32_grad_from_float64_math():
    w = tt.tensor([1.0, 2.0], requires_grad=True)  # float32
    x = tt.tensor([0.5, 0.25], dtype=tt.float64)
    (w * x).sum().backward()
    assert w.grad.dtype == np.float32
    assert w.grad.shape == w.shape


def test_broadcast_gradient_is_summed_to_input_shape():
    a = leaf(np.ones((3, 1)))
    b = leaf(np.ones((1, 4)))
    s = leaf(2.0)
    ((a * b) * s).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (1, 4) and s.grad.shape == ()
    np.testing.assert_allclose(a.grad.data, 8.0)
    assert s.grad.item() == 12.0


def test_bad_rule_output_shape_is_reported_with_the_op_name():
    from tinytorch.autograd.node import Node

    class BrokenBackward(Node):
        def backward(self, g):
            return np.ones(7)

    x = leaf([1.0, 2.0])
    y = tt.Tensor._from_op(x.data * 2, BrokenBackward(x))
    with pytest.raises(RuntimeError, match=r"BrokenBackward.*\(7,\).*\(2,\)"):
        y.sum().backward()


def test_nodes_sharing_a_creation_number_still_run():
    import copy

    x = leaf([1.0, 2.0])
    y = x.exp() * 2.0
    y2 = copy.deepcopy(y)  # copies the graph (leaf included) and its creation numbers
    ((x * 1.0 + y) + y2).sum().backward()
    np.testing.assert_allclose(x.grad.data, 1 + 2 * np.exp(x.data))  # y2 has its own x


def test_tanh_gradient_keeps_precision_near_saturation():
    x = tt.tensor([7.5, 8.0, 8.3], requires_grad=True)
    y = tt.tanh(x)
    y.backward(tt.tensor([0.7, 0.7, 0.7]))
    want = 0.7 * (1 - y.data.astype(np.float64) ** 2)
    np.testing.assert_allclose(x.grad.data, want, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("op", ["tanh", "sigmoid"])
def test_constants_in_backward_rules_give_numpys_bits(op, dtype):
    # The rules write 1 as a cached 0-d array of the output's dtype (cheaper for NumPy
    # than a Python 1); the gradient must be bit for bit NumPy's with the Python 1.
    x = leaf(np.linspace(-9, 9, 37), dtype=dtype)
    y = getattr(tt, op)(x)
    g = np.linspace(0.1, 2.0, 37).astype(dtype)
    y.backward(tt.tensor(g, dtype=dtype))
    yd = y.data
    want = g * (1 - yd * yd) if op == "tanh" else g * yd * (1 - yd)
    assert x.grad.dtype == dtype
    np.testing.assert_array_equal(x.grad.data, want)


def test_node_records_its_own_output_dtype_when_numpy_changes_byte_order():
    # NumPy ufuncs return native byte order: exp of a big-endian tensor is little-endian,
    # and the gradients kept along the chain must have the tensors' own dtypes.
    x = tt.tensor(np.array([0.5, 1.0, 2.0], dtype=">f4"), requires_grad=True)
    w = tt.exp(x.reshape(3))  # reshape keeps the byte order, exp does not
    w.retain_grad()
    z = w * 2.0
    z.retain_grad()
    z.sum().backward()
    assert w.grad.dtype == w.dtype and z.grad.dtype == z.dtype
    assert w.grad_fn._meta == (w.shape, w.dtype)
    np.testing.assert_allclose(x.grad.data, 2 * np.exp(x.data.astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize(
    ("grad_shape", "shape"),
    [((2, 3), (4,)), ((2, 3), (3, 2)), ((2, 3, 4, 3), (1, 3, 4)), ((3,), (1, 3)), ((6,), (2, 3))],
)
def test_unbroadcast_refuses_shapes_that_do_not_broadcast(grad_shape, shape):
    with pytest.raises(ValueError, match=r"does not broadcast"):
        tt.autograd.unbroadcast(np.ones(grad_shape), shape)


def test_a_gradient_of_the_right_size_but_wrong_shape_is_an_error():
    class Transposed(tt.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t * 1.0

        @staticmethod
        def backward(ctx, g):
            return g.T  # (2, 3) for a (3, 2) input: same size, wrong shape

    x = leaf(np.ones((3, 2)))
    with pytest.raises(RuntimeError, match=r"shape \(2, 3\).*shape \(3, 2\)"):
        Transposed.apply(x).sum().backward()
