"""The one place that checks optional dependencies."""

from __future__ import annotations

import importlib.util


def is_available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    return importlib.util.find_spec(module) is not None


def has_pytorch3d() -> bool:
    """pytorch3d is an optional rendering backend; the pure-PyTorch path is the default."""
    return is_available("pytorch3d")
