"""``bipart pretrain``: Point-M2AE masked-autoencoder pre-training of the frozen encoder.

- :mod:`.corpus`: unlabeled shapes (folders, indexes, the procedural generator) and seeded batches;
- :mod:`.masked_autoencoder`: multi-scale masking, the visible-token encoder pass, the light
  decoder and the Chamfer loss;
- :mod:`.settings`: the run's options and learning-rate schedule;
- :mod:`.loop`: steps, log, checkpoints, resume, and the exported ``RUN_DIR/encoder``.
"""

from .loop import ENCODER_FOLDER, PretrainReport, pretrain
from .settings import PretrainSettings

__all__ = ["ENCODER_FOLDER", "PretrainReport", "PretrainSettings", "pretrain"]
