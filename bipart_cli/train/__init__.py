"""Bi-level training, Algorithm 1 of the paper (Sec. 3.3.1): ``bipart train``.

- :mod:`.settings`: the run's settings, its shapes, an epoch's report;
- :mod:`.steps`: one outer step (support sets, the inner loop on the head, the outer loss);
- :mod:`.distributed`: torchrun ranks, summed gradients and losses;
- :mod:`.checkpoints`: safetensors and JSON checkpoints, resume;
- :mod:`.loop`: epochs, validation, the JSONL log, and :func:`train`, the entry point.
"""

from .checkpoints import CHECKPOINT_FILES, recover_checkpoint, save_checkpoint
from .loop import load_training_shapes, read_model_config, train, train_model
from .settings import EpochReport, TrainSettings, TrainShape
from .steps import fill_encoder_features, naive_outer_loss, outer_loss, training_supports

__all__ = [
    "CHECKPOINT_FILES",
    "EpochReport",
    "TrainSettings",
    "TrainShape",
    "fill_encoder_features",
    "load_training_shapes",
    "naive_outer_loss",
    "outer_loss",
    "read_model_config",
    "recover_checkpoint",
    "save_checkpoint",
    "train",
    "train_model",
    "training_supports",
]
