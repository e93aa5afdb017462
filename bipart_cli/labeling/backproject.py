"""2D boxes -> 3D point masks ``M^d`` (PartSLIP's bbox-to-points rule).

A point belongs to box ``d`` of view ``v`` when its projection lies strictly
inside the box and it is visible in ``v`` (it wins a pixel of the z-buffer). A box
that holds at least ``whole_object_fraction`` (98%) of all the points projected into
its view is the "whole object" and is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..render import Rendering

WHOLE_OBJECT_FRACTION = 0.98


@dataclass
class BoxMasks:
    """Back-projected boxes, in the order given, whole-object boxes removed.

    masks : (D, n) bool
        ``M^d`` over the rendered points.
    box_index : (D,) int64
        Position of each kept box in the concatenation of the input boxes.
    view_index : (D,) int64
        View each kept box came from.
    """

    masks: np.ndarray
    box_index: np.ndarray
    view_index: np.ndarray


def backproject_boxes(
    rendering: Rendering,
    boxes_per_view: Sequence[np.ndarray],
    num_points: int | None = None,
    whole_object_fraction: float = WHOLE_OBJECT_FRACTION,
    chunk: int = 32,
) -> BoxMasks:
    """Point masks of boxes, vectorised over boxes and views (chunks of ``chunk`` boxes).

    rendering : Rendering of n points in V views
    boxes_per_view : V arrays (k_v, 4) float, ``x0, y0, x1, y1`` in pixels, top-left origin
    num_points : n, checked against the rendering when given
    Returns :class:`BoxMasks`.
    """
    import torch

    n = rendering.num_points
    if num_points is not None and num_points != n:
        raise ValueError(f"rendering has {n} points, not {num_points}")
    if len(boxes_per_view) != rendering.num_views:
        raise ValueError(f"{len(boxes_per_view)} box lists for {rendering.num_views} views")
    boxes, view_of_box = _concat_boxes(boxes_per_view)  # (D, 4), (D,)

    pixel_xy = torch.as_tensor(rendering.pixel_xy)  # (V, n, 2)
    visible = torch.as_tensor(rendering.visible)  # (V, n)
    projected = torch.as_tensor(rendering.in_image())  # (V, n)
    projected_count = projected.sum(1).clamp(min=1)  # (V,)
    boxes_t = torch.as_tensor(boxes)
    views_t = torch.as_tensor(view_of_box)

    masks, keep = [], []
    for start in range(0, len(boxes), chunk):
        box = boxes_t[start : start + chunk]  # (c, 4)
        view = views_t[start : start + chunk]  # (c,)
        x = pixel_xy[view, :, 0]  # (c, n)
        y = pixel_xy[view, :, 1]
        inside = (
            (x > box[:, 0:1]) & (x < box[:, 2:3]) & (y > box[:, 1:2]) & (y < box[:, 3:4])
        ) & projected[view]  # (c, n)
        whole = inside.sum(1) >= whole_object_fraction * projected_count[view]  # (c,)
        masks.append((inside & visible[view]).numpy())
        keep.append((~whole).numpy())
    if not masks:
        return BoxMasks(np.zeros((0, n), bool), np.zeros(0, np.int64), np.zeros(0, np.int64))
    all_masks = np.concatenate(masks)
    kept = np.concatenate(keep)
    return BoxMasks(
        masks=all_masks[kept],
        box_index=np.flatnonzero(kept).astype(np.int64),
        view_index=view_of_box[kept],
    )


def _concat_boxes(boxes_per_view: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """V arrays (k_v, 4) -> boxes (D, 4) float32 and their views (D,) int64."""
    boxes = [np.asarray(b, dtype=np.float32).reshape(-1, 4) for b in boxes_per_view]
    views = [np.full(len(b), v, dtype=np.int64) for v, b in enumerate(boxes)]
    return np.concatenate(boxes), np.concatenate(views)
