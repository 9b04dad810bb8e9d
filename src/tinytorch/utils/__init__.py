"""Utilities around the engine: gradient checkpointing (``tinytorch.utils.checkpoint``)."""

from tinytorch.utils.checkpoint import checkpoint, checkpoint_sequential

__all__ = ["checkpoint", "checkpoint_sequential"]
