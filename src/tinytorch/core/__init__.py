"""TinyTorch-compatible import paths (``tinytorch.core.tensor``, ``.autograd``, ...).

Thin re-exports plus the few legacy names; no logic of its own.
"""
