"""The Tensor: a NumPy array plus what autograd needs to know about it.

Operators and methods delegate to the op table in ``tinytorch.ops``; this file
holds only construction, conversion, bookkeeping (grad, version, hooks) and the
in-place protocol.
"""

from __future__ import annotations

import builtins
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

_ndarray = np.ndarray
_new = object.__new__

# Kinds of NumPy dtype a Tensor may hold: builtins.float, signed/unsigned int, bool.
_ALLOWED_KINDS = frozenset("fiub")


class _Size(int):
    """``t.size`` is the element count (NumPy/TinyTorch); ``t.size()`` and
    ``t.size(dim)`` give the shape as in PyTorch."""

    _shape: tuple[int, ...]

    def __new__(cls, shape: tuple[int, ...]) -> _Size:
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        obj = int.__new__(cls, n)
        obj._shape = shape
        return obj

    def __call__(self, dim: builtins.int | None = None) -> Any:
        return self._shape if dim is None else self._shape[dim]


def _as_array(data: Any, dtype: Any) -> np.ndarray:
    """Convert constructor input to an owned ndarray following tinytorch's dtype rules."""
    if isinstance(data, Tensor):
        arr = np.array(data.data, dtype=dtype)
    elif isinstance(data, (np.ndarray, np.generic)):
        arr = np.array(data, dtype=dtype)
    else:
        # Python numbers and (nested) lists: float32 unless told otherwise.
        try:
            arr = np.array(data, dtype=np.float32 if dtype is None else dtype)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"Tensor: cannot build a tensor from {type(data).__name__} {data!r:.80}: {exc}"
            ) from None
    if arr.dtype.kind not in _ALLOWED_KINDS:
        raise TypeError(
            f"Tensor: unsupported dtype {arr.dtype} (from {type(data).__name__}); "
            f"expected a float, integer or bool array"
        )
    return arr


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    >>> import tinytorch as tt
    >>> x = tt.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    tensor([[2., 4.],
            [6., 8.]])
    """

    # Hot attributes are slots; rarely used ones live in the lazily created
    # __dict__ and default to the class attributes below.
    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "__dict__", "__weakref__")
    _vc: list[int] | None = None  # version counter, shared with views; made on first need
    _base: Tensor | None = None  # the tensor this one is a view of
    _hooks: list[Callable[..., Any]] | None = None  # gradient hooks of a leaf
    _fw_grad: Any = None  # forward-mode tangent (see autograd.forward_ad)
    _fw_level: builtins.int = 0

    # Let NumPy defer to Tensor's reflected operators and route np.* calls here.
    __array_priority__ = 1000

    def __init__(
        self, data: Any, requires_grad: builtins.bool = False, *, dtype: Any = None
    ) -> None:
        if not isinstance(requires_grad, (bool, np.bool_)):
            raise TypeError(
                f"Tensor: requires_grad must be a bool, got {requires_grad!r}; "
                f"pass the dtype by keyword (dtype=...)"
            )
        arr = _as_array(data, dtype)
        self.data: np.ndarray = arr
        self.grad: Tensor | None = None
        self.grad_fn: Any = None
        self.requires_grad: builtins.bool = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _from_op(data: Any, node: Any) -> Tensor:
        """Wrap an op's result (no copy); ``node`` is its grad_fn or None."""
        if type(data) is not _ndarray:
            data = np.asarray(data)
        t = _new(Tensor)
        t.data = data
        t.grad = None
        if node is None:
            t.requires_grad = False
            t.grad_fn = None
        else:
            t.requires_grad = True
            t.grad_fn = node
            meta = (data.shape, data.dtype)
            node._meta = _METAS.get(meta) or _shared_meta(meta)
            if node.saves_output:
                vals = node._vals
                node._vals = vals + (data,) if vals else (data,)
            if node._special:
                return _finish_special(t, node)
        return t

    def _counter(self) -> list[int]:
        """The version counter, created on first use (most tensors never need one)."""
        vc = self._vc
        if vc is None:
            vc = self._vc = [0]
        return vc

    # ----------------------------------------------------------- properties
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> builtins.int:
        return self.data.ndim

    @property
    def size(self) -> _Size:
        return _Size(self.data.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.data.dtype

    @property
    def is_leaf(self) -> builtins.bool:
        return self.grad_fn is None

    @property
    def _grad_fn(self) -> Any:
        return self.grad_fn

    @property
    def T(self) -> Tensor:
        """All dimensions reversed (NumPy's and PyTorch's ``.T``)."""
        return _ops.permute(self, *range(self.data.ndim - 1, -1, -1))

    @property
    def retains_grad(self) -> builtins.bool:
        fn = self.grad_fn
        return fn is not None and fn._hooks is not None and any(
            isinstance(h, _RetainGrad) for h in fn._hooks
        )

    # ----------------------------------------------------------- conversion
    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self) -> Any:
        if self.data.size != 1:
            raise ValueError(
                f"item: only a one-element tensor can be converted to a Python scalar, "
                f"got shape {self.shape}"
            )
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if dtype is None or dtype == self.data.dtype:
            return self.data.copy() if copy else self.data
        return self.data.astype(dtype)

    def __len__(self) -> builtins.int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __bool__(self) -> builtins.bool:
        if self.data.size != 1:
            raise RuntimeError(
                f"bool: the truth value of a tensor with {self.data.size} elements is "
                f"ambiguous; use .any() or .all()"
            )
        return bool(self.data)

    def __float__(self) -> builtins.float:
        return float(self.item())

    def __int__(self) -> builtins.int:
        return int(self.item())

    def __index__(self) -> builtins.int:
        if self.data.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors can be used as an index, got {self.dtype}")
        return int(self.item())

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(", precision=4)
        extra = []
        if self.data.dtype != np.float32:
            extra.append(f"dtype={self.data.dtype}")
        if self.grad_fn is not None:
            extra.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    # ----------------------------------------------------------- autograd
    def backward(
        self,
        gradient: Any = None,
        retain_graph: builtins.bool | None = None,
        create_graph: builtins.bool = False,
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        With no ``gradient`` a non-scalar tensor is seeded with ones, as if
        ``.sum()`` had been called first.

        >>> import tinytorch as tt
        >>> x = tt.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> (x ** 2).backward()
        >>> x.grad
        tensor([2., 4., 6.])
        """
        _engine.backward(self, gradient, retain_graph, create_graph)

    def detach(self) -> Tensor:
        """A tensor sharing this one's data, cut off from the graph."""
        t = Tensor._from_op(self.data, None)
        t._vc = self._counter()
        t._base = self
        return t

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad: builtins.bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"requires_grad: only floating-point tensors can require gradients, "
                f"got dtype {self.data.dtype}; convert with .float() first"
            )
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError(
                "requires_grad_(False) on a non-leaf tensor; use .detach() instead"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad`` becomes None)."""
        self.grad = None

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: the tensor does not require grad")
        if self.grad_fn is None or self.retains_grad:
            return
        self.grad_fn.register_hook(_RetainGrad(self))

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> Any:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned
        Tensor replaces the gradient. Returns a handle with ``.remove()``.

        >>> import tinytorch as tt
        >>> x = tt.tensor([1.0, 2.0], requires_grad=True)
        >>> h = x.register_hook(lambda g: g * 10)
        >>> (x * 3).sum().backward()
        >>> x.grad
        tensor([30., 30.])
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that "
                               "does not require grad")
        if self.grad_fn is not None:
            return self.grad_fn.register_hook(hook)
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return _RemovableHandle(self._hooks, hook)

    def clone(self) -> Tensor:
        """A differentiable copy with its own memory."""
        return _ops.clone(self)

    def copy(self) -> Tensor:
        """Same as ``clone()`` (NumPy's spelling)."""
        return _ops.clone(self)

    # ----------------------------------------------------------- dtype casts
    def astype(self, dtype: Any) -> Tensor:
        return _ops.cast(self, dtype)

    def float(self) -> Tensor:
        return _ops.cast(self, np.float32)

    def double(self) -> Tensor:
        return _ops.cast(self, np.float64)

    def long(self) -> Tensor:
        return _ops.cast(self, np.int64)

    def int(self) -> Tensor:
        return _ops.cast(self, np.int32)

    def bool(self) -> Tensor:
        return _ops.cast(self, np.bool_)

    # ----------------------------------------------------------- arithmetic
    def __add__(self, other: Any) -> Tensor:
        return _ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _ops.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _ops.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _ops.pow(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return _ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ops.abs(self)

    # comparisons: not differentiable, return bool tensors
    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _ops.eq(self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _ops.ne(self, other)

    def __lt__(self, other: Any) -> Tensor:
        return _ops.lt(self, other)

    def __le__(self, other: Any) -> Tensor:
        return _ops.le(self, other)

    def __gt__(self, other: Any) -> Tensor:
        return _ops.gt(self, other)

    def __ge__(self, other: Any) -> Tensor:
        return _ops.ge(self, other)

    # ----------------------------------------------------------- in place
    def _inplace(self, op: Callable[..., Tensor], *args: Any, name: str) -> Tensor:
        """Run ``op(self, *args)`` and write the result into this tensor's memory.

        Outside the graph this is a plain NumPy in-place write. Inside it, the op is
        recorded against a snapshot of the old value and this tensor takes over the
        result's grad_fn; the version counter tells saved-tensor users it changed.
        """
        recording = _grad_mode.enabled and (
            self.requires_grad or any(isinstance(a, Tensor) and a.requires_grad for a in args)
        )
        if recording:
            if self.requires_grad and self.grad_fn is None:
                raise RuntimeError(
                    f"{name}: a leaf tensor that requires grad is being used in an in-place "
                    f"operation; wrap it in tinytorch.no_grad() or operate on a clone()"
                )
            if self._base is not None:
                raise RuntimeError(
                    f"{name}: in-place operation on a view of another tensor while autograd "
                    f"is recording is not supported; use .clone() first"
                )
            old = Tensor._from_op(self.data.copy(), None)
            old.requires_grad = self.requires_grad
            old.grad_fn = self.grad_fn
            if _grad_mode.extras:
                _forward_ad.copy_tangent(self, old)
            result = op(old, *args)
        else:
            with _grad_mode.no_grad():
                old = self.detach()
                if _grad_mode.extras:
                    _forward_ad.copy_tangent(self, old)
                result = op(old, *args)
        if result.shape != self.shape:
            raise RuntimeError(
                f"{name}: the result has shape {result.shape}, which cannot be written into a "
                f"tensor of shape {self.shape} in place"
            )
        if result.dtype != self.dtype and not np.can_cast(result.dtype, self.dtype, "same_kind"):
            raise TypeError(
                f"{name}: result dtype {result.dtype} cannot be stored in place into a "
                f"{self.dtype} tensor"
            )
        self.data[...] = result.data
        self._bump_version()
        if _grad_mode.extras:  # forward mode: the tensor now carries the result's tangent
            _forward_ad.copy_tangent(result, self)
        if recording:
            node = result.grad_fn
            node._meta = _shared_meta((self.data.shape, self.data.dtype))
            if node.saves_output:  # the output now lives in self.data
                node._vals = (*node._vals[:-1], self.data)
            self.grad_fn = node
            self.requires_grad = True
        return self

    def _bump_version(self) -> None:
        self._counter()[0] += 1
        _output_modified(self)

    def __iadd__(self, other: Any) -> Tensor:
        return self._inplace(_ops.add, other, name="add_ (+=)")

    def __isub__(self, other: Any) -> Tensor:
        return self._inplace(_ops.sub, other, name="sub_ (-=)")

    def __imul__(self, other: Any) -> Tensor:
        return self._inplace(_ops.mul, other, name="mul_ (*=)")

    def __itruediv__(self, other: Any) -> Tensor:
        return self._inplace(_ops.div, other, name="div_ (/=)")

    def add_(self, other: Any) -> Tensor:
        return self._inplace(_ops.add, other, name="add_")

    def sub_(self, other: Any) -> Tensor:
        return self._inplace(_ops.sub, other, name="sub_")

    def mul_(self, other: Any) -> Tensor:
        return self._inplace(_ops.mul, other, name="mul_")

    def div_(self, other: Any) -> Tensor:
        return self._inplace(_ops.div, other, name="div_")

    def zero_(self) -> Tensor:
        return self._inplace(_ops.index_put, ..., 0.0, name="zero_")

    def fill_(self, value: Any) -> Tensor:
        return self._inplace(_ops.index_put, ..., value, name="fill_")

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        self._inplace(_ops.index_put, index, value, name="__setitem__")

    # ----------------------------------------------------------- NumPy protocol
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        fn = _ops.UFUNCS.get(ufunc) if method == "__call__" and not kwargs else None
        if fn is not None:
            return fn(*inputs)
        return _ops.numpy_fallback(getattr(ufunc, method), inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        fn = _ops.FUNCTIONS.get(func)
        if fn is not None:
            return fn(*args, **kwargs)
        return _ops.numpy_fallback(func, args, kwargs)

    # ----------------------------------------------------------- methods from the op table
    def reshape(self, *shape: Any) -> Tensor:
        return _ops.reshape(self, *shape)

    def view(self, *shape: Any) -> Tensor:
        return _ops.reshape(self, *shape)

    def flatten(self, start_dim: builtins.int = 0, end_dim: builtins.int = -1) -> Tensor:
        return _ops.flatten(self, start_dim, end_dim)

    def transpose(self, *axes: Any) -> Tensor:
        return _ops.transpose(self, *axes)

    def permute(self, *dims: Any) -> Tensor:
        return _ops.permute(self, *dims)

    def swapaxes(self, axis1: builtins.int, axis2: builtins.int) -> Tensor:
        return _ops.swapaxes(self, axis1, axis2)

    def squeeze(self, dim: Any = None) -> Tensor:
        return _ops.squeeze(self, dim)

    def unsqueeze(self, dim: builtins.int) -> Tensor:
        return _ops.unsqueeze(self, dim)

    def expand(self, *shape: Any) -> Tensor:
        return _ops.expand(self, *shape)

    def broadcast_to(self, shape: Sequence[builtins.int]) -> Tensor:
        return _ops.broadcast_to(self, shape)

    def repeat(self, *repeats: Any) -> Tensor:
        return _ops.tile(self, *repeats)

    def tile(self, *reps: Any) -> Tensor:
        return _ops.tile(self, *reps)

    def split(self, split_size_or_sections: Any, dim: builtins.int = 0) -> list[Tensor]:
        return _ops.split(self, split_size_or_sections, dim)

    def chunk(self, chunks: builtins.int, dim: builtins.int = 0) -> list[Tensor]:
        return _ops.chunk(self, chunks, dim)

    def matmul(self, other: Any) -> Tensor:
        return _ops.matmul(self, other)

    def dot(self, other: Any) -> Tensor:
        return _ops.dot(self, other)

    def exp(self) -> Tensor:
        return _ops.exp(self)

    def log(self) -> Tensor:
        return _ops.log(self)

    def sqrt(self) -> Tensor:
        return _ops.sqrt(self)

    def sin(self) -> Tensor:
        return _ops.sin(self)

    def cos(self) -> Tensor:
        return _ops.cos(self)

    def tanh(self) -> Tensor:
        return _ops.tanh(self)

    def sigmoid(self) -> Tensor:
        return _ops.sigmoid(self)

    def relu(self) -> Tensor:
        return _ops.relu(self)

    def abs(self) -> Tensor:
        return _ops.abs(self)

    def neg(self) -> Tensor:
        return _ops.neg(self)

    def clip(self, min: Any = None, max: Any = None) -> Tensor:
        return _ops.clip(self, min, max)

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:
        return _ops.clip(self, min, max)

    def sum(self, axis: Any = None, keepdims: builtins.bool = False, *, dim: Any = None,
            keepdim: builtins.bool | None = None) -> Tensor:
        return _ops.sum(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def mean(self, axis: Any = None, keepdims: builtins.bool = False, *, dim: Any = None,
             keepdim: builtins.bool | None = None) -> Tensor:
        return _ops.mean(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def max(self, axis: Any = None, keepdims: builtins.bool = False, *, dim: Any = None,
            keepdim: builtins.bool | None = None) -> Tensor:
        return _ops.max(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def min(self, axis: Any = None, keepdims: builtins.bool = False, *, dim: Any = None,
            keepdim: builtins.bool | None = None) -> Tensor:
        return _ops.min(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def var(self, axis: Any = None, keepdims: builtins.bool = False, *, dim: Any = None,
            keepdim: builtins.bool | None = None, ddof: builtins.int = 0,
            correction: builtins.int | None = None) -> Tensor:
        return _ops.var(self, axis, keepdims, dim=dim, keepdim=keepdim, ddof=ddof,
                        correction=correction)

    def std(self, axis: Any = None, keepdims: builtins.bool = False, *, dim: Any = None,
            keepdim: builtins.bool | None = None, ddof: builtins.int = 0,
            correction: builtins.int | None = None) -> Tensor:
        return _ops.std(self, axis, keepdims, dim=dim, keepdim=keepdim, ddof=ddof,
                        correction=correction)

    def logsumexp(self, axis: Any = None, keepdims: builtins.bool = False, *, dim: Any = None,
                  keepdim: builtins.bool | None = None) -> Tensor:
        return _ops.logsumexp(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def softmax(self, dim: builtins.int = -1) -> Tensor:
        return _ops.softmax(self, dim)

    def log_softmax(self, dim: builtins.int = -1) -> Tensor:
        return _ops.log_softmax(self, dim)

    def argmax(self, axis: Any = None, keepdims: builtins.bool = False, *, dim: Any = None,
               keepdim: builtins.bool | None = None) -> Tensor:
        return _ops.argmax(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def argmin(self, axis: Any = None, keepdims: builtins.bool = False, *, dim: Any = None,
               keepdim: builtins.bool | None = None) -> Tensor:
        return _ops.argmin(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def all(self) -> builtins.bool:
        return builtins.bool(self.data.all())

    def any(self) -> builtins.bool:
        return builtins.bool(self.data.any())


class _RetainGrad:
    """Node hook that stores the gradient on a non-leaf tensor (weakly held)."""

    __slots__ = ("ref",)

    def __init__(self, tensor: Tensor) -> None:
        self.ref = weakref.ref(tensor)

    def __call__(self, grad: Tensor) -> None:
        t = self.ref()
        if t is None:
            return
        if t.grad is None:
            t.grad = grad if grad.requires_grad else Tensor._from_op(grad.data.copy(), None)
        else:
            t.grad = t.grad + grad
        return None


def tensor(data: Any, dtype: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    """Build a Tensor (PyTorch's ``torch.tensor`` signature).

    >>> import tinytorch as tt
    >>> tt.tensor([1, 2, 3]).dtype
    dtype('float32')
    >>> tt.tensor([1, 2], dtype="int64").dtype
    dtype('int64')
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """Wrap ``array`` without copying (changes to one show in the other)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected an ndarray, got {type(array).__name__}")
    if array.dtype.kind not in _ALLOWED_KINDS:
        raise TypeError(f"from_numpy: unsupported dtype {array.dtype}")
    return Tensor._from_op(array, None)


from tinytorch import ops as _ops  # noqa: E402  (ops import Tensor from this module)
from tinytorch.autograd import engine as _engine  # noqa: E402
from tinytorch.autograd import forward_ad as _forward_ad  # noqa: E402
from tinytorch.autograd import grad_mode as _grad_mode  # noqa: E402
from tinytorch.autograd.node import _METAS, _RemovableHandle  # noqa: E402
from tinytorch.autograd.node import finish_special as _finish_special  # noqa: E402
from tinytorch.autograd.node import output_modified as _output_modified  # noqa: E402
from tinytorch.autograd.node import shared_meta as _shared_meta  # noqa: E402
