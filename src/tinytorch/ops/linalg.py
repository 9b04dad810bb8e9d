"""Matrix products. One BLAS call forward, one per needed input backward."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch.ops.common import Node, data_of, result, tangent_sum, tracked


class MatmulBackward(Node):
    def __init__(self, a: Any, b: Any) -> None:
        Node.__init__(self, a, b)
        need_a, need_b = self.needs_input_grad
        self.save_for_backward(a if need_b else np.asarray(data_of(a)).ndim,
                               b if need_a else np.asarray(data_of(b)).ndim)

    def backward(self, g: Any, a: Any, b: Any) -> Any:
        need_a, need_b = self.needs_input_grad
        # NOTE: 1-D operands act as a row (left) or a column (right) vector whose
        # extra axis is dropped from the result; put it back before the products.
        a_nd = a if isinstance(a, int) else a.ndim
        b_nd = b if isinstance(b, int) else b.ndim
        if a_nd > 2 and b_nd == 2:
            return self._stacked_times_matrix(g, a, b, need_a, need_b)
        a_vec, b_vec = a_nd == 1, b_nd == 1
        if a_vec and b_vec:
            g = g[..., None, None]
        elif a_vec:
            g = g[..., None, :]
        elif b_vec:
            g = g[..., None]
        ga = gb = None
        if need_a:
            b2 = b[:, None] if b_vec else b
            ga = g @ b2.swapaxes(-1, -2)
            if a_vec:
                ga = ga[..., 0, :]
        if need_b:
            a2 = a[None, :] if a_vec else a
            gb = a2.swapaxes(-1, -2) @ g
            if b_vec:
                gb = gb[..., 0]
        return ga, gb

    @staticmethod
    def _stacked_times_matrix(g: Any, a: Any, b: Any, need_a: bool, need_b: bool) -> Any:
        """(..., n, k) @ (k, m), e.g. a batch through a weight: fold the batch into the
        rows so each gradient is one 2-D BLAS product (NumPy's stacked matmul with a
        transposed operand does not reach BLAS)."""
        m = g.shape[-1]
        g2 = g.reshape(-1, m)
        ga = (g2 @ b.swapaxes(0, 1)).reshape(g.shape[:-1] + (b.shape[0],)) if need_a else None
        gb = a.reshape(-1, a.shape[-1]).swapaxes(0, 1) @ g2 if need_b else None
        return ga, gb

    def jvp(self, primals: Any, tangents: Any, out: Any) -> Any:
        (a, b), (ta, tb) = primals, tangents
        return tangent_sum(None if ta is None else matmul(ta, b),
                           None if tb is None else matmul(a, tb))


def matmul(a: Any, b: Any) -> Any:
    """Matrix product with NumPy's rules: 1-D vectors, 2-D matrices, and stacks of
    matrices whose batch dimensions broadcast.

    >>> import tinytorch as tt
    >>> tt.matmul(tt.tensor([[1.0, 2.0]]), tt.tensor([[3.0], [4.0]]))
    tensor([[11.]])
    """
    ad, bd = np.asarray(data_of(a)), np.asarray(data_of(b))
    sa, sb = ad.shape, bd.shape
    if not sa or not sb:
        raise ValueError(
            f"matmul: both operands need at least 1 dimension, got shapes {sa} and {sb}"
        )
    k_a, k_b = sa[-1], sb[-2] if len(sb) > 1 else sb[0]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {sa} and {sb} do not align ({k_a} != {k_b})")
    try:
        out = np.matmul(ad, bd)
    except ValueError:
        raise ValueError(
            f"matmul: batch dimensions of shapes {sa} and {sb} do not broadcast"
        ) from None
    return result(out, MatmulBackward(a, b) if tracked(a, b) else None)


def dot(a: Any, b: Any) -> Any:
    """Inner product of two 1-D tensors (matrix product for 2-D, as ``np.dot``)."""
    na, nb = np.ndim(data_of(a)), np.ndim(data_of(b))
    if na > 2 or nb > 2 or na == 0 or nb == 0:
        raise ValueError(
            f"dot: expected 1-D or 2-D operands, got shapes {np.shape(data_of(a))} and "
            f"{np.shape(data_of(b))}; use matmul for batches"
        )
    return matmul(a, b)
