"""bipart: split 3D assets into named semantic parts.

The public Python API is imported lazily so that ``import bipart_cli`` (and
``bipart --help``) stays free of torch and transformers.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_asset": ("bipart_cli.io", "load_asset"),
    "segment": ("bipart_cli.segmentation", "segment"),
    "build_index": ("bipart_cli.index", "build_index"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'bipart_cli' has no attribute {name!r}")
