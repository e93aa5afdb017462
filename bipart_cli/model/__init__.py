"""The BiPart part-segmentation model (Sec. 3.2): frozen Point-M2AE encoder π,
Point Transformer extractor θ, adaptable head φ, and the Eq. 2 loss.

Names are exported lazily: importing :class:`BiPartConfig` does not import torch.
"""

from __future__ import annotations

from ..lazy import lazy_getattr

_LAZY = {
    "BiPartConfig": ("bipart_cli.model.config", "BiPartConfig"),
    "BiPartModel": ("bipart_cli.model.bipart", "BiPartModel"),
    "distillation_loss": ("bipart_cli.model.loss", "distillation_loss"),
    "pack_pseudo_labels": ("bipart_cli.model.loss", "pack_pseudo_labels"),
    "load_point_m2ae_checkpoint": ("bipart_cli.model.checkpoint", "load_point_m2ae_checkpoint"),
    "convert_point_m2ae_checkpoint": (
        "bipart_cli.model.checkpoint",
        "convert_point_m2ae_checkpoint",
    ),
}

__all__ = list(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY)
