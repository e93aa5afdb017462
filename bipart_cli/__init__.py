"""bipart: split 3D assets into named semantic parts.

The public Python API is imported lazily so that ``import bipart_cli`` (and
``bipart --help``) stays free of torch and transformers.
"""

from __future__ import annotations

from .lazy import lazy_getattr

__version__ = "0.1.0"

_LAZY = {
    "load_asset": ("bipart_cli.io", "load_asset"),
    "segment": ("bipart_cli.segmentation", "segment"),
    "build_index": ("bipart_cli.index", "build_index"),
}

__all__ = ["__version__", *_LAZY]


__getattr__ = lazy_getattr(__name__, _LAZY)
