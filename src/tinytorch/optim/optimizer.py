"""The Optimizer base: parameter groups, per-parameter state, zero_grad, state_dict.

Subclasses implement ``_update(p, grad, state, group)`` for one parameter; the base
loops over groups, skips parameters without a gradient and bumps each updated
parameter's version counter (so a graph that saved the old value refuses to backward).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from tinytorch.autograd.grad_mode import enable_grad
from tinytorch.tensor import Tensor

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


def check_hparam(owner: str, name: str, value: Any, low: float = 0.0,
                 high: float | None = None, high_open: bool = False) -> None:
    """Raise TypeError/ValueError unless ``low <= value (<|<=) high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    ok = not math.isnan(value) and value >= low
    if high is not None:
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        bound = "" if high is None else f" and {'<' if high_open else '<='} {high}"
        raise ValueError(f"{owner}: invalid {name} {value!r}; expected >= {low}{bound}")


def _jsonable(value: Any) -> Any:
    """Tuples become lists so a state dict equals its JSON round trip."""
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class Optimizer:
    """Base class: holds ``param_groups`` (dicts with ``'params'`` and hyper-parameters)
    and ``state`` (per-parameter dicts of arrays and step counts).

    >>> import tinytorch as tt
    >>> w = tt.tensor([1.0, 2.0], requires_grad=True)
    >>> opt = tt.optim.SGD([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    tensor([0.8, 1.6], requires_grad=True)
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(params, (Tensor, dict, set, frozenset)):
            raise TypeError(
                f"{name}: params must be an ordered iterable (e.g. a list) of Tensors or "
                f"of param-group dicts, got {type(params).__name__}"
            )
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        groups: list[Any] = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate a group's hyper-parameters (subclasses extend this)."""
        check_hparam(type(self).__name__, "lr", group["lr"])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a dict with ``'params'``; missing hyper-parameters take the defaults."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a param group must be a dict, got "
                            f"{type(param_group).__name__}")
        params = param_group.get("params")
        if params is None:
            raise ValueError(f"{name}: a param group needs a 'params' entry")
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{name}: got a param group with an empty parameter list")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, but param {i} is a "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (param {i} was "
                                 f"made by {p.grad_fn.name()}); use .detach() and "
                                 f"requires_grad_() to make a leaf")
            if not p.requires_grad:
                raise ValueError(f"{name}: param {i} (shape {p.shape}) does not require "
                                 f"grad; create it with requires_grad=True")
            if id(p) in seen:
                raise ValueError(f"{name}: param {i} (shape {p.shape}) appears more than "
                                 f"once among the optimizer's parameters")
            seen.add(id(p))
        group = {**self.defaults, **param_group, "params": params}
        self._check_group(group)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (default) or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.data[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                if group.get("maximize", False):
                    grad = -grad
                self._update(p, grad, self.state.setdefault(p, {}), group)
                p._bump_version()
        return loss

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ state dict
    def state_dict(self) -> dict[str, Any]:
        """``{'state': {'0': {...}}, 'param_groups': [...]}`` with parameters numbered in
        order across groups; arrays are copies and everything else is JSON-able, so
        ``tinytorch.save`` stores it as is."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({k: _jsonable(v) for k, v in group.items() if k != "params"}
                          | {"params": ids})
        state = {
            str(index[id(p)]): {k: v.copy() if isinstance(v, np.ndarray) else _jsonable(v)
                                for k, v in s.items()}
            for p, s in self.state.items() if id(p) in index
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and state saved by ``state_dict()`` (arrays are copied
        and cast to each parameter's dtype)."""
        name = type(self).__name__
        try:
            saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        except (KeyError, TypeError):
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and "
                             f"'param_groups'") from None
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state has {len(saved_groups)} "
                             f"param groups, the optimizer has {len(self.param_groups)}")
        by_index: dict[int, Tensor] = {}
        new_groups = []
        for i, (g, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(g["params"]):
                raise ValueError(f"{name}.load_state_dict: param group {i} has "
                                 f"{len(saved['params'])} params in the state, "
                                 f"{len(g['params'])} in the optimizer")
            by_index.update(zip((int(k) for k in saved["params"]), g["params"]))
            new = {**saved, "params": g["params"]}
            self._check_group(new)
            new_groups.append(new)
        state: dict[Tensor, dict[str, Any]] = {}
        for key, s in saved_state.items():
            p = by_index.get(int(key))
            if p is None:
                raise ValueError(f"{name}.load_state_dict: state for unknown param {key}")
            state[p] = {k: self._load_value(p, k, v) for k, v in s.items()}
        self.param_groups, self.state = new_groups, state

    def _load_value(self, p: Tensor, key: str, value: Any) -> Any:
        if isinstance(value, Tensor):
            value = value.data
        if not isinstance(value, np.ndarray):
            return value
        if value.shape != p.shape:
            raise ValueError(f"{type(self).__name__}.load_state_dict: state '{key}' has "
                             f"shape {value.shape}, its parameter has shape {p.shape}")
        return np.array(value, dtype=p.dtype)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines + [")"])
