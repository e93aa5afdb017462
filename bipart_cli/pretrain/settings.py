"""What a pre-training run is given; saved as ``RUN_DIR/pretrain_settings.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import UsageError
from .corpus import ROTATIONS


@dataclass
class PretrainSettings:
    """Point-M2AE's recipe where it fits a CPU: AdamW, cosine decay after a linear warm-up,
    80% masking. ``data`` are folders or indexes; ``procedural`` generated shapes join them."""

    data: list[str] = field(default_factory=list)
    procedural: int = 0
    steps: int = 2000
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    mask_ratio: float = 0.8
    rotation: str = "so3"
    decoder_depth: int = 1
    save_every: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rotation not in ROTATIONS:
            raise UsageError(f"--rotation must be one of {', '.join(ROTATIONS)}")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise UsageError(f"--mask-ratio must be in [0, 1), not {self.mask_ratio}")

    def learning_rate(self, step: int) -> float:
        """Step ``step`` (0-based): linear warm-up to ``lr``, then cosine decay to 1% of it.

        The warm-up is ``warmup_steps``, or a tenth of a shorter run.
        """
        import math

        warmup = min(self.warmup_steps, max(1, self.steps // 10))
        if step < warmup:
            return self.lr * (step + 1) / warmup
        span = max(1, self.steps - warmup)
        progress = min(1.0, (step - warmup) / span)
        return self.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
