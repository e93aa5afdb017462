"""Facts about the installation, for ``bipart info`` and bug reports."""

from __future__ import annotations

import os
import platform
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
    }
