"""Part segmentation metrics: per-part IoU and mIoU in the ShapeNetPart convention.

Convention (as in PointNet/PartSLIP/PartDistill evaluation code):

- a shape's mIoU is the mean over all ``num_parts`` parts of its category of the
  part IoU ``|pred = r and gt = r| / |pred = r or gt = r|``;
- a part absent from both the ground truth and the prediction counts IoU 1;
- unassigned predictions (``-1``) match no part, so they count as wrong for the
  ground-truth part of that point (they lower its IoU); points with ground truth
  ``-1`` are still counted in the union of whatever part was predicted there;
- the instance mean averages over shapes, the category mean averages the
  per-category means.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np


def part_ious(pred: np.ndarray, gt: np.ndarray, num_parts: int) -> np.ndarray:
    """IoU of each part. pred, gt : (n,) int (-1 unassigned)  ->  (num_parts,) float64."""
    pred = np.asarray(pred, dtype=np.int64).reshape(-1)
    gt = np.asarray(gt, dtype=np.int64).reshape(-1)
    if pred.shape != gt.shape:
        raise ValueError(f"pred has {pred.shape[0]} labels but gt has {gt.shape[0]}")
    parts = np.arange(num_parts)[:, None]  # (R, 1)
    pred_is = pred[None] == parts  # (R, n)
    gt_is = gt[None] == parts
    intersection = (pred_is & gt_is).sum(1)
    union = (pred_is | gt_is).sum(1)
    return np.where(union == 0, 1.0, intersection / np.maximum(union, 1))


def shape_miou(pred: np.ndarray, gt: np.ndarray, num_parts: int) -> float:
    """Mean of :func:`part_ious` over the category's parts."""
    return float(part_ious(pred, gt, num_parts).mean())


def summarize(per_shape: Iterable[tuple[str, float]]) -> dict:
    """Aggregate ``(category, shape mIoU)`` pairs.

    Returns ``{"per_category": {name: mean}, "category_mean": float,
    "instance_mean": float, "num_shapes": int}`` (means in the units given, NaN when empty).
    """
    by_category: dict[str, list[float]] = defaultdict(list)
    for category, miou in per_shape:
        by_category[category].append(float(miou))
    per_category = {name: float(np.mean(values)) for name, values in by_category.items()}
    all_values = [value for values in by_category.values() for value in values]
    return {
        "per_category": per_category,
        "category_mean": float(np.mean(list(per_category.values())))
        if per_category
        else float("nan"),
        "instance_mean": float(np.mean(all_values)) if all_values else float("nan"),
        "num_shapes": len(all_values),
    }
