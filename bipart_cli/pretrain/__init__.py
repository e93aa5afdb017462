"""``bipart pretrain``: Point-M2AE masked-autoencoder pre-training of the frozen encoder.

- :mod:`.corpus`: unlabeled shapes (folders, indexes, the procedural generator) and seeded batches;
- :mod:`.masked_autoencoder`: multi-scale masking, the visible-token encoder pass, the light
  decoder and the Chamfer loss;
- :mod:`.settings`: the run's options and learning-rate schedule;
- :mod:`.loop`: steps, log, checkpoints, resume, and the exported ``RUN_DIR/encoder``.

Names are exported lazily: the command line reads :data:`.corpus.ROTATIONS` for its
options at every start, and the loop would bring the training package with it.
"""

from __future__ import annotations

from ..lazy import lazy_getattr

_LAZY = {
    "ENCODER_FOLDER": ("bipart_cli.pretrain.loop", "ENCODER_FOLDER"),
    "PretrainReport": ("bipart_cli.pretrain.loop", "PretrainReport"),
    "pretrain": ("bipart_cli.pretrain.loop", "pretrain"),
    "PretrainSettings": ("bipart_cli.pretrain.settings", "PretrainSettings"),
}

__all__ = list(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY)
