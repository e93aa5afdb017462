"""Facts about the installation, for ``bipart info`` and bug reports."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from . import __version__
from .deps import has_pytorch3d


def collect_info(device_spec: str = "auto") -> dict[str, Any]:
    """Versions, the resolved device and cache locations."""
    import huggingface_hub
    import numpy
    import torch
    import trimesh
    from huggingface_hub import constants as hf_constants

    from .runtime import resolve_device

    resolved = resolve_device(device_spec)
    return {
        "bipart": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "trimesh": trimesh.__version__,
        "huggingface_hub": huggingface_hub.__version__,
        "device": str(resolved),
        "cuda_available": torch.cuda.is_available(),
        "pytorch3d": has_pytorch3d(),
        "hf_home": os.environ.get("HF_HOME", hf_constants.HF_HOME),
        "hf_hub_offline": bool(hf_constants.HF_HUB_OFFLINE),
        **cache_facts(),
    }


def cache_facts() -> dict[str, Any]:
    """bipart's own cache (``$BIPART_CACHE``): where it is, the megabytes each of its
    folders takes (``support``, ``features``, ``bps``) and the limit of the stores."""
    from .segmentation.inputs import cache_root
    from .store import feature_cache_bytes

    root = cache_root()
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return {
        "bipart_cache": str(root),
        "bipart_cache_mb": {
            folder.name: round(_bytes_under(folder) / 2**20, 1) for folder in folders
        },
        "bipart_cache_limit_mb": round(feature_cache_bytes() / 2**20, 1),
    }


def _bytes_under(folder: Path) -> int:
    """The bytes of every file under ``folder`` (links not followed; vanished files skipped)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:  # removed by a concurrent trim
                continue
    return total


def format_info(facts: dict[str, Any]) -> list[str]:
    """``bipart info``'s lines for :func:`collect_info`'s facts."""
    lines = []
    for key, value in facts.items():
        if key == "bipart_cache_mb":
            total = sum(value.values())
            parts = ", ".join(f"{name} {mb:g} MB" for name, mb in value.items())
            value = f"{total:.1f} MB" + (f" ({parts})" if parts else "")
        elif key == "bipart_cache_limit_mb":
            value = f"{value:g} MB per store ($BIPART_FEATURE_CACHE_MB), least recently used go"
        lines.append(f"{key:>21}: {value}")
    return lines
