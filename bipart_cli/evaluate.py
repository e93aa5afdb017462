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

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .adapt import AdaptSettings


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


# --- evaluating a labeled index ----------------------------------------------------


@dataclass
class ShapeScore:
    shape_id: str
    category: str
    miou: float
    part_ious: list[float]
    seconds: float
    support: list[str] = field(default_factory=list)  # ids of the support shapes used


@dataclass
class EvalReport:
    """Per-shape scores plus the summary of :func:`summarize`."""

    shapes: list[ShapeScore]
    summary: dict
    settings: dict

    def to_json(self) -> dict:
        return {
            "summary": self.summary,
            "settings": self.settings,
            "shapes": [s.__dict__ for s in self.shapes],
        }


def category_part_names(entries) -> dict[str, list[str]]:
    """Each category's part names: the union over its entries, in order of first appearance.

    A shape scores over all parts of its category (an armless chair still has "arm",
    IoU 1 when it is neither labeled nor predicted), not only the parts it shows.
    """
    names: dict[str, dict[str, None]] = defaultdict(dict)
    for entry in entries:
        for name in entry.part_names:
            names[entry.category].setdefault(name, None)
    return {category: list(parts) for category, parts in names.items()}


def remap_labels(labels: np.ndarray, names: list[str], new_names: list[str]) -> np.ndarray:
    """(n,) labels indexing ``names`` -> (n,) labels indexing ``new_names`` (-1 stays -1)."""
    lookup = np.array([new_names.index(name) for name in names] + [-1], dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    return lookup[np.where(labels >= 0, labels, len(names))]


def evaluate_index(
    test_index: str,
    support_index: str | None = None,
    *,
    labeler: str = "index",
    weights: str | None = None,
    weights_revision: str | None = None,
    adapt: AdaptSettings | None = None,
    up: str = "y",
    device: str = "auto",
    seed: int = 0,
    limit: int | None = None,
    every: int = 1,
    zero_shot: bool = False,
    quiet: bool = True,
    **adapt_overrides,
) -> EvalReport:
    """Segment every shape of ``test_index`` that has ground truth, with the code path of ``segment``.

    The support comes from ``support_index`` (default: the test index itself,
    never including the target), restricted to the target's category. With
    ``labeler="index"`` the target's own pseudo labels from the index join the
    support set (VLM mode); with ``"none"`` they do not (few-shot mode).
    ``zero_shot`` (with ``labeler="index"`` and no ``support_index``) adapts on the
    target's own pseudo labels alone, repeated ``support_size`` times: the support
    set of Sec. 5.1 for a category without other shapes, as ``segment`` does
    without an index. Each shape's score lists the ids of the support shapes used.
    Predictions are made on the 2048 indexed points of each shape; ``every`` keeps
    every n-th shape (a quicker validation run), ``limit`` the first ones. ``adapt`` (the
    defaults of :class:`AdaptSettings` when None) may be changed field by field
    through ``adapt_overrides`` (``steps=10, lr=0.3, ...``).
    """
    import time

    from .errors import UsageError
    from .index import ShapeIndex, encoder_identity
    from .runtime import progress
    from .segmentation import Segmenter, SegmentOptions
    from .support import remap_pseudo_labels

    if labeler not in ("index", "none"):
        raise UsageError("eval --labeler must be 'index' (the index's pseudo labels) or 'none'")
    if zero_shot and labeler != "index":
        raise UsageError(
            "eval --zero-shot adapts on the targets' own pseudo labels: use --labeler index"
        )
    if zero_shot and support_index is not None:
        raise UsageError(
            "eval --zero-shot takes no --support-index: the support set is the target itself"
        )
    adapt = dataclasses.replace(adapt or AdaptSettings(), **adapt_overrides)
    index = ShapeIndex.open(test_index)
    options = SegmentOptions(
        index=support_index or test_index,  # unused when zero_shot
        weights=weights,
        weights_revision=weights_revision,
        labeler="none",
        adapt=adapt,
        up=up,
        device=device,
        seed=seed,
        write=False,
        zero_shot=zero_shot,
    )
    segmenter = Segmenter(None, options)
    segmenter.load_network()
    # the test index's cache is used only if it matches (hashed once: the segmenter's, if any)
    encoder = segmenter.encoder or encoder_identity(segmenter.model)
    rows = [i for i, entry in enumerate(index.entries) if entry.has_ground_truth][::every][:limit]
    category_parts = category_part_names(index.entries)
    scores = []
    with progress(quiet) as bar:
        task = bar.add_task("evaluating", total=len(rows))
        for row in rows:
            record = index.record(row)
            started = time.perf_counter()
            part_names = category_parts[record.category]
            target_labels = None
            if labeler == "index":
                target_labels = remap_pseudo_labels(record.pseudo_labels, part_names)
            predicted, _, support_ids = segmenter.segment_points(
                part_names,
                record.points,
                record.points,
                target_labels,
                exclude_sha256=record.sha256,
                category=record.category,
                target_encoder_features=index.encoder_features(row, expected=encoder),
                target_descriptors=record.descriptors,
            )
            gt = remap_labels(record.gt_labels, record.part_names, part_names)
            ious = part_ious(predicted, gt, len(part_names))
            scores.append(
                ShapeScore(
                    record.id,
                    record.category,
                    float(np.mean(ious)),
                    [float(x) for x in ious],
                    time.perf_counter() - started,
                    list(support_ids),
                )
            )
            bar.advance(task)
    summary = summarize([(s.category, s.miou) for s in scores])
    settings = {
        "test_index": test_index,
        "support_index": None if zero_shot else support_index or test_index,
        "labeler": labeler,
        "mode": "zero-shot" if zero_shot else "vlm" if labeler == "index" else "few-shot",
        "weights": segmenter.weights_info.to_dict(),
        **dataclasses.asdict(adapt),
        "seed": seed,
    }
    return EvalReport(scores, summary, settings)
