"""Lazily exported names: a package's ``__getattr__`` that imports a name's module on first use.

``import bipart_cli`` and ``bipart --help`` stay free of torch and transformers, and the
command line's start does not load the training loops, because packages export their
names through :func:`lazy_getattr` instead of importing them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, names: dict[str, tuple[str, str]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``names`` maps an exported name to the
    (module, attribute) it comes from; any other name is an AttributeError."""

    def __getattr__(name: str) -> Any:
        if name in names:
            import importlib

            module, attr = names[name]
            return getattr(importlib.import_module(module), attr)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
