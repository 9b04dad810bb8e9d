"""``Module`` and ``Parameter``: PyTorch's registry.

Assigning a ``Parameter`` or a ``Module`` to an attribute files it into ``_parameters``
or ``_modules``; ``register_buffer`` files state that is saved but not trained (such
as BatchNorm's running statistics) into ``_buffers``. Everything else --
``parameters()``, ``state_dict()``, ``train()``, ``repr`` -- walks those three dicts.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from tinytorch.autograd import grad_mode
from tinytorch.autograd.function import Function
from tinytorch.autograd.grad_mode import no_grad
from tinytorch.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a ``Module`` registers as trainable (``requires_grad=True``).

    Wrapping a Tensor or a float ndarray shares its memory, as in PyTorch.

    >>> import numpy as np
    >>> from tinytorch import nn
    >>> p = nn.Parameter(np.zeros(2, dtype=np.float32))
    >>> p.requires_grad, type(p).__name__
    (True, 'Parameter')
    """

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        shared = data.data if isinstance(data, Tensor) else data
        super().__init__(shared, requires_grad=requires_grad)
        if isinstance(shared, np.ndarray) and shared.dtype == self.data.dtype:
            self.data = shared

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo: dict[int, Any]) -> Parameter:
        p = Parameter(self.data.copy(), self.requires_grad)
        memo[id(self)] = p
        return p


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` could not match."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _as_buffer(name: str, value: Any) -> Tensor | None:
    if value is None or isinstance(value, Tensor):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        return Tensor._from_op(np.array(value), None)
    raise TypeError(f"buffer {name!r} must be a Tensor, an ndarray or None, "
                    f"got {type(value).__name__}")


class Module:
    """Base class of every layer and model.

    Subclasses call ``super().__init__()``, assign their ``Parameter``s and sub-modules
    as attributes, and define ``forward``; calling the module runs ``forward``.

    >>> import tinytorch as tt
    >>> from tinytorch import nn
    >>> class Affine(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.scale = nn.Parameter(tt.tensor([1.0, 1.0, 1.0]))
    ...     def forward(self, x):
    ...         return x * self.scale
    >>> m = Affine()
    >>> [name for name, _ in m.named_parameters()]
    ['scale']
    >>> m(tt.tensor([1.0, 1.0, 1.0])).tolist()
    [1.0, 1.0, 1.0]
    """

    training: bool
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _non_persistent: set[str]
    _modules: dict[str, Module | None]

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    # Hooks by registration order: id -> (kind, fn). An immutable empty default until
    # the first registration, so calling a module without hooks costs one truthiness check.
    _hooks: Mapping[int, tuple[str, Callable[..., Any]]] = MappingProxyType({})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._hooks:
            return _call_with_hooks(self, args, kwargs)
        return self.forward(*args, **kwargs)

    # ----------------------------------------------------------- hooks
    def register_forward_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, args)`` before each ``forward``; a returned value (a tuple,
        or a single value) replaces the positional arguments.

        >>> import tinytorch as tt
        >>> from tinytorch import nn
        >>> m = nn.Linear(2, 1)
        >>> h = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
        >>> m(tt.tensor([[1.0, 1.0]])).tolist() == [m.bias.tolist()]
        True
        >>> h.remove()
        """
        return self._add_hook("forward_pre", hook)

    def register_forward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after each ``forward``; a returned value
        replaces the output.

        >>> import tinytorch as tt
        >>> from tinytorch import nn
        >>> m = nn.Linear(2, 1)
        >>> h = m.register_forward_hook(lambda mod, args, out: out * 0)
        >>> m(tt.tensor([[1.0, 1.0]])).tolist()
        [[0.0]]
        >>> h.remove()
        """
        return self._add_hook("forward", hook)

    def register_full_backward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` once the gradients with respect
        to the module's Tensor arguments are computed: ``grad_input`` has one entry per
        positional Tensor argument (None where it does not require grad), ``grad_output``
        one for the output. A returned tuple replaces ``grad_input``. Only modules that
        return a single Tensor are supported.

        >>> import tinytorch as tt
        >>> from tinytorch import nn
        >>> m = nn.Linear(2, 1)
        >>> h = m.register_full_backward_hook(lambda mod, gin, gout: (gin[0] * 0,))
        >>> x = tt.tensor([[1.0, 1.0]], requires_grad=True)
        >>> m(x).sum().backward()
        >>> x.grad.tolist()
        [[0.0, 0.0]]
        >>> h.remove()
        """
        return self._add_hook("backward", hook)

    def _add_hook(self, kind: str, hook: Callable[..., Any]) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"register_{kind}_hook: expected a callable, got "
                            f"{type(hook).__name__}")
        hooks = self.__dict__.get("_hooks")
        if hooks is None:
            hooks = OrderedDict()
            object.__setattr__(self, "_hooks", hooks)
        key = next(_hook_ids)
        hooks[key] = (kind, hook)
        return RemovableHandle(hooks, key)

    # ----------------------------------------------------------- the registry
    def _registry(self, name: str) -> Any:
        d = self.__dict__.get(name)
        if d is None:
            raise AttributeError(
                f"cannot assign to {type(self).__name__} before Module.__init__() is called"
            )
        return d

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            self._discard(name)
            self._registry("_parameters")[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                f"(a Parameter or None is expected)")
            params[name] = None
        elif isinstance(value, Module):
            self._discard(name)
            self._registry("_modules")[name] = value
        elif name in self.__dict__.get("_modules", ()):
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module "
                                f"{name!r} (a Module or None is expected)")
            self._modules[name] = None
        elif name in self.__dict__.get("_buffers", ()):
            self._buffers[name] = _as_buffer(name, value)
        else:
            object.__setattr__(self, name, value)

    def _discard(self, name: str) -> None:
        self.__dict__.pop(name, None)
        for key in ("_parameters", "_buffers", "_modules"):
            d = self.__dict__.get(key)
            if d is not None and name in d:
                del d[name]
        self.__dict__.get("_non_persistent", set()).discard(name)

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails.
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            registry = d.get(key)
            if registry is not None and name in registry:
                return registry[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for key in ("_parameters", "_buffers", "_modules"):
            registry = self.__dict__.get(key)
            if registry is not None and name in registry:
                del registry[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, "
                            f"got {type(param).__name__}")
        self._check_name("register_parameter", name)
        self._discard(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Add state that is saved in ``state_dict`` (if persistent) but not trained."""
        self._check_name("register_buffer", name)
        self._discard(name)
        self._buffers[name] = _as_buffer(name, tensor)
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, "
                            f"got {type(module).__name__}")
        self._check_name("add_module", name)
        self._discard(name)
        self._modules[name] = module

    register_module = add_module

    def _check_name(self, op: str, name: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{op}: call Module.__init__() first")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{op}: name must be a non-empty string without '.', got {name!r}")
        if name in self.__dict__ and name not in self._parameters:
            raise KeyError(f"{op}: attribute {name!r} already exists")

    # ----------------------------------------------------------- walking the tree
    def named_modules(self, memo: set[int] | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """``(name, module)`` for this module and every descendant; a module reached
        twice (shared) is listed once unless ``remove_duplicate=False``."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                               remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, key: str, prefix: str, recurse: bool,
                       remove_duplicate: bool = True) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix=prefix) if recurse else iter([(prefix, self)])
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, key).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(dotted.name, parameter)`` pairs; a shared parameter is listed once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> Module:
        """The descendant at dotted path ``target`` (``''`` is this module)."""
        mod: Module = self
        for part in target.split(".") if target else []:
            child = mod._modules.get(part)
            if child is None:
                raise AttributeError(f"get_submodule: {type(mod).__name__} has no submodule "
                                     f"{part!r} (in {target!r})")
            mod = child
        return mod

    # ----------------------------------------------------------- modes and grads
    def train(self, mode: bool = True) -> Module:
        """Set training mode (Dropout active, BatchNorm uses batch statistics) here and
        in every descendant; returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be a bool, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode; same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (or fill it with zeros)."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            elif p.grad.requires_grad:
                p.grad = Tensor._from_op(np.zeros_like(p.grad.data), None)
            else:
                p.grad.data[...] = 0

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every descendant, then on this module (as in PyTorch)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to(self, dtype: Any) -> Module:
        """Cast floating-point parameters and buffers to ``dtype`` in place (the
        Parameter objects stay the same, so optimizers keep working)."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"to: only floating-point dtypes are supported, got {dtype}")
        for t in (*self.parameters(), *self.buffers()):
            if t.data.dtype.kind == "f" and t.data.dtype != dtype:
                t.data = t.data.astype(dtype)
                if t.grad is not None:
                    t.grad = Tensor._from_op(t.grad.data.astype(dtype), None)
        return self

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    # ----------------------------------------------------------- state
    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> OrderedDict[str, Any]:
        """Parameters and persistent buffers by dotted name, as NumPy copies (the
        Tensors themselves with ``keep_vars=True``). A shared module or parameter
        appears under each of its names, as in PyTorch."""
        out: OrderedDict[str, Any] = OrderedDict()
        for mod_prefix, mod in self.named_modules(prefix=prefix.rstrip("."),
                                                  remove_duplicate=False):
            lead = f"{mod_prefix}." if mod_prefix else ""
            for name, p in mod._parameters.items():
                if p is not None:
                    out[lead + name] = p if keep_vars else p.data.copy()
            for name, b in mod._buffers.items():
                if b is not None and name not in mod._non_persistent:
                    out[lead + name] = b if keep_vars else b.data.copy()
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any],
                        strict: bool = True) -> IncompatibleKeys:
        """Copy values into the parameters and buffers, in place.

        Raises ``KeyError`` listing every missing and unexpected key (``strict=True``)
        and ``ValueError`` listing every shape mismatch; nothing is changed unless
        every check passes. Values may be arrays, Tensors or anything ``np.asarray``
        accepts.
        """
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        arrays: dict[str, np.ndarray] = {}
        mismatched = []
        for k, target in own.items():
            if k not in state_dict:
                continue
            value = state_dict[k]
            arr = np.asarray(value.data if isinstance(value, Tensor) else value)
            if arr.shape != target.shape:
                mismatched.append(f"{k}: checkpoint {arr.shape}, model {target.shape}")
            arrays[k] = arr
        name = type(self).__name__
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            if mismatched:
                parts.append(f"shape mismatches [{'; '.join(mismatched)}]")
            raise KeyError(f"load_state_dict: the state does not fit {name}: "
                           + ", ".join(parts))
        if mismatched:
            raise ValueError(f"load_state_dict: shape mismatch for {name}: "
                             + "; ".join(mismatched))
        with no_grad():
            for k, arr in arrays.items():
                own[k][...] = arr  # in place: optimizers keep their references
        return IncompatibleKeys(missing, unexpected)

    # ----------------------------------------------------------- repr
    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr``; subclasses override."""
        return ""

    def __repr__(self) -> str:
        lines = [line for line in self.extra_repr().split("\n") if line]
        for name, child in self._modules.items():
            text = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {text}")
        head = type(self).__name__ + "("
        if not lines:
            return head + ")"
        if len(lines) == 1 and not self._modules:
            return head + lines[0] + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


# ----------------------------------------------------------------- hooks

_hook_ids = itertools.count()


class RemovableHandle:
    """Returned by ``register_*_hook``; ``.remove()`` takes the hook out again."""

    def __init__(self, hooks: dict[int, Any], key: int) -> None:
        self._hooks = hooks
        self.id = key

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


def _call_with_hooks(module: Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``module(*args, **kwargs)`` with its hooks, in registration order (as PyTorch)."""
    hooks = list(module._hooks.values())
    for kind, hook in hooks:
        if kind == "forward_pre":
            new = hook(module, args)
            if new is not None:
                args = new if isinstance(new, tuple) else (new,)
    backward = [hook for kind, hook in hooks if kind == "backward"]
    state = None
    if backward and grad_mode.enabled:
        state = _BackwardHookState(module, backward, args)
        args = state.wrap_inputs(args)
    out = module.forward(*args, **kwargs)
    for kind, hook in hooks:
        if kind == "forward":
            new = hook(module, args, out)
            if new is not None:
                out = new
    if state is not None:
        out = state.wrap_output(out)
    return out


class _BackwardHookState:
    """One call's worth of full backward hooks.

    NOTE: the Tensor arguments that require grad pass through one identity node
    (``_PackInputs``: flattened and concatenated, then sliced back for ``forward``), so
    its backward receives every input gradient at once, after the output's gradient
    has been caught by the identity node ``_CatchOutputGrad``.
    """

    def __init__(self, module: Module, hooks: list[Callable[..., Any]],
                 args: tuple[Any, ...]) -> None:
        self.module = module
        self.hooks = hooks
        # positions (among the Tensor arguments) of those that require grad
        tensors = [a for a in args if isinstance(a, Tensor)]
        self.n_tensors = len(tensors)
        self.slots = [i for i, t in enumerate(tensors) if t.requires_grad]
        self.grad_output: tuple[Any, ...] = (None,)

    def wrap_inputs(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        diff = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
        if not diff:
            return args
        packed = _PackInputs.apply(self, *diff)
        pieces = iter(_unpack(packed, diff))
        return tuple(next(pieces) if isinstance(a, Tensor) and a.requires_grad else a
                     for a in args)

    def wrap_output(self, out: Any) -> Any:
        if not isinstance(out, Tensor):
            raise TypeError(
                f"register_full_backward_hook: {type(self.module).__name__}.forward returned "
                f"{type(out).__name__}; full backward hooks support modules that return a "
                f"single Tensor"
            )
        if not out.requires_grad:
            return out
        return _CatchOutputGrad.apply(self, out)

    def run_hooks(self, grads: list[Any]) -> list[Any]:
        """Call the hooks with ``grads`` (one per input that requires grad) and return
        the (possibly replaced) gradients."""
        grad_input: list[Any] = [None] * self.n_tensors
        for slot, g in zip(self.slots, grads):
            grad_input[slot] = g
        for hook in self.hooks:
            new = hook(self.module, tuple(grad_input), self.grad_output)
            if new is None:
                continue
            new = tuple(new) if isinstance(new, (tuple, list)) else (new,)
            if len(new) != self.n_tensors:
                raise RuntimeError(
                    f"backward hook on {type(self.module).__name__} returned {len(new)} "
                    f"gradients, expected {self.n_tensors} (one per Tensor argument)"
                )
            grad_input = list(new)
        return [grad_input[slot] for slot in self.slots]


def _unpack(packed: Tensor, like: list[Tensor]) -> list[Tensor]:
    if len(like) == 1:
        return [packed]
    pieces, start = [], 0
    for t in like:
        piece = packed[start:start + t.size].reshape(t.shape)
        pieces.append(piece if piece.dtype == t.dtype else piece.astype(t.dtype))
        start += t.size
    return pieces


class _PackInputs(Function):
    """Identity on the inputs (concatenated when there are several); its backward runs
    the module's backward hooks on all input gradients."""

    @staticmethod
    def forward(ctx: Any, state: _BackwardHookState, *xs: Tensor) -> Tensor:
        ctx.state = state
        ctx.like = [(x.shape, x.dtype) for x in xs]
        if len(xs) == 1:
            return xs[0]
        return Tensor(np.concatenate([np.ravel(x.data) for x in xs]))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:
        if len(ctx.like) == 1:
            grads = [grad]
        else:
            grads, start = [], 0
            for shape, dtype in ctx.like:
                n = int(np.prod(shape))
                grads.append(grad[start:start + n].reshape(shape).astype(dtype))
                start += n
        return (None, *ctx.state.run_hooks(grads))

    @staticmethod
    def jvp(ctx: Any, _: Any, *tangents: Any) -> Any:
        if len(ctx.like) == 1:
            return tangents[0]
        from tinytorch import cat

        return cat([Tensor(np.zeros(int(np.prod(shape)), dtype=dtype)) if t is None
                    else t.reshape(-1) for t, (shape, dtype) in zip(tangents, ctx.like)])


class _CatchOutputGrad(Function):
    """Identity on the output; its backward records the output's gradient (and runs the
    hooks itself when no input requires grad)."""

    @staticmethod
    def forward(ctx: Any, state: _BackwardHookState, y: Tensor) -> Tensor:
        ctx.state = state
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:
        state = ctx.state
        state.grad_output = (grad,)
        if not state.slots:
            state.run_hooks([])
        return None, grad

    @staticmethod
    def jvp(ctx: Any, _: Any, tangent: Any) -> Any:
        return tangent
