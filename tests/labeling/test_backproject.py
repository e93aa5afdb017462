"""Back-projection of boxes against a naive loop over views, boxes and points."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from bipart_cli.labeling.backproject import backproject_boxes  # noqa: E402
from bipart_cli.render import RenderSettings, render_views  # noqa: E402


def _naive(rendering, boxes_per_view, fraction=0.98):
    size = rendering.settings.image_size
    masks, kept, views = [], [], []
    position = 0
    for v, boxes in enumerate(boxes_per_view):
        for box in boxes:
            x0, y0, x1, y1 = box
            projected, inside_all, mask = 0, 0, np.zeros(rendering.num_points, bool)
            for n in range(rendering.num_points):
                x, y = rendering.pixel_xy[v, n]
                if rendering.depth[v, n] > 0 and 0 <= x < size and 0 <= y < size:
                    projected += 1
                    if x0 < x < x1 and y0 < y < y1:
                        inside_all += 1
                        mask[n] = rendering.visible[v, n]
            if inside_all < fraction * max(projected, 1):
                masks.append(mask)
                kept.append(position)
                views.append(v)
            position += 1
    return np.array(masks).reshape(-1, rendering.num_points), kept, views


def test_backprojection_matches_naive_loop():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(400, 3)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1).max()
    rendering = render_views(
        points, np.full((400, 3), 150, np.uint8), settings=RenderSettings(image_size=40)
    )
    boxes_per_view = []
    for v in range(rendering.num_views):
        corners = rng.uniform(0, 40, (rng.integers(0, 5), 2, 2))
        boxes = np.concatenate([corners.min(1), corners.max(1)], axis=1)
        if v % 3 == 0:  # a whole-image box is the whole object: dropped
            boxes = np.concatenate([boxes, [[0, 0, 40, 40]]])
        boxes_per_view.append(boxes)
    result = backproject_boxes(rendering, boxes_per_view, 400, chunk=3)
    masks, kept, views = _naive(rendering, boxes_per_view)
    np.testing.assert_array_equal(result.masks, masks)
    np.testing.assert_array_equal(result.box_index, kept)
    np.testing.assert_array_equal(result.view_index, views)
    total = sum(len(b) for b in boxes_per_view)
    assert len(kept) < total  # the whole-object boxes were dropped
    assert result.masks.any()


def test_no_boxes_gives_empty_masks():
    points = np.random.default_rng(1).uniform(-0.5, 0.5, (50, 3)).astype(np.float32)
    rendering = render_views(
        points, np.zeros((50, 3), np.uint8), settings=RenderSettings(image_size=16)
    )
    result = backproject_boxes(rendering, [np.zeros((0, 4))] * rendering.num_views, 50)
    assert result.masks.shape == (0, 50)
