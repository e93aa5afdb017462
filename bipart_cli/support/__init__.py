"""The support set (Sec. 3.4): what it holds, how it is chosen, where it comes from.

- :mod:`.shapes`: a support shape and its labels in the target's part names;
- :mod:`.selection`: BPS features and the random / similarity / part-perfect rules
  (NumPy and SciPy only);
- :mod:`.bank`: the candidates of an opened index, and retrieval for a target.

Imports run one way: segmentation -> support -> index, labeling, io.
"""

from .bank import SupportBank
from .selection import (
    BPS_POINTS,
    BPS_RADIUS,
    MIN_PART_RATIO,
    STRATEGIES,
    BPSBasis,
    bps_features,
    centered_cosine_similarity,
    is_part_perfect,
    normalize_to_unit_sphere,
    part_ratios,
    select_support,
    surviving_part_count,
    surviving_parts,
)
from .shapes import (
    SupportShape,
    remap_pseudo_labels,
    support_gap_warning,
    unfound_parts_warning,
    unprovided_parts,
)

__all__ = [
    "BPS_POINTS",
    "BPS_RADIUS",
    "MIN_PART_RATIO",
    "STRATEGIES",
    "BPSBasis",
    "SupportBank",
    "SupportShape",
    "bps_features",
    "centered_cosine_similarity",
    "is_part_perfect",
    "normalize_to_unit_sphere",
    "part_ratios",
    "remap_pseudo_labels",
    "select_support",
    "surviving_part_count",
    "support_gap_warning",
    "unfound_parts_warning",
    "surviving_parts",
    "unprovided_parts",
]
