"""Seedable randomness: one NumPy Generator behind ``tinytorch.manual_seed``.

Everything random in tinytorch (initialisation, dropout, shuffling) draws from
``default_generator()`` unless given its own ``np.random.Generator``.

>>> import tinytorch as tt
>>> _ = tt.manual_seed(0)
>>> a = tt.random.default_generator().random()
>>> _ = tt.manual_seed(0)
>>> a == tt.random.default_generator().random()
True
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator and return it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def default_generator() -> np.random.Generator:
    """The generator used when no other is given."""
    return _generator


def get_rng_state() -> dict:  # type: ignore[type-arg]
    """The default generator's state (a JSON-friendly dict), for checkpoints."""
    return dict(_generator.bit_generator.state)


def set_rng_state(state: dict) -> None:
    """Restore a state from ``get_rng_state``."""
    _generator.bit_generator.state = state
