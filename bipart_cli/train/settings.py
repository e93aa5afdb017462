"""What a training run is given: its settings, its shapes, and what an epoch reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..labeling.pseudo_labels import PseudoLabels


@dataclass
class TrainSettings:
    """Every number of Algorithm 1 is an option; defaults are the paper's (Sec. 4.1)."""

    epochs: int = 10
    batch_size: int = 8
    support_size: int = 8
    inner_steps: int = 5
    inner_lr: float = 0.1
    outer_lr: float = 1e-4
    first_order: bool = False
    bilevel: bool = True
    use_extractor: bool = True
    support_strategy: str = "part-perfect"
    box_reduction: str = "mean"
    categories: list[str] | None = None
    val_fraction: float = 0.1
    val_inner_steps: int = 10
    val_inner_lr: float = 0.3
    seed: int = 0
    max_steps: int | None = None
    checkpoint_activations: bool = True

    def __post_init__(self) -> None:
        from ..adapt import check_box_reduction

        check_box_reduction(self.box_reduction)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainShape:
    """One training shape. points (N, 3) float32; encoder_features (N, F) or None;
    pseudo_labels over the N points; gt_labels (N,) int64 or None; bps (F_bps,)."""

    shape_id: str
    category: str
    part_names: list[str]
    points: np.ndarray
    pseudo_labels: PseudoLabels
    bps: np.ndarray
    part_count: int
    encoder_features: np.ndarray | None = None
    gt_labels: np.ndarray | None = None


@dataclass
class EpochReport:
    epoch: int
    mean_loss: float
    val_miou: float | None
    seconds: float
    steps: int = 0
    losses: list[float] = field(default_factory=list)
