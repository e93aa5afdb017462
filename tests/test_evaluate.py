"""mIoU in the ShapeNetPart convention, against literal hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from bipart_cli.evaluate import part_ious, shape_miou, summarize


def test_part_ious_hand_example():
    gt = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, -1, 2])
    # part 0: inter 2, union 3; part 1: inter 1, union 3; part 2: 1/1; part 3 absent in both -> 1
    np.testing.assert_allclose(part_ious(pred, gt, 4), [2 / 3, 1 / 3, 1.0, 1.0])
    assert shape_miou(pred, gt, 4) == pytest.approx((2 / 3 + 1 / 3 + 1 + 1) / 4)


def test_unassigned_predictions_count_as_wrong():
    gt = np.array([0, 0, 1, 1])
    assert shape_miou(np.array([0, 0, 1, 1]), gt, 2) == 1.0
    assert shape_miou(np.array([-1, 0, 1, 1]), gt, 2) == pytest.approx((0.5 + 1.0) / 2)
    assert shape_miou(np.full(4, -1), gt, 2) == 0.0


def test_part_predicted_but_absent_in_gt_scores_zero():
    np.testing.assert_allclose(part_ious(np.array([1, 1]), np.array([0, 0]), 2), [0.0, 0.0])


def test_summarize_category_and_instance_means():
    summary = summarize([("a", 1.0), ("a", 0.0), ("b", 0.5)])
    assert summary["per_category"] == {"a": 0.5, "b": 0.5}
    assert summary["category_mean"] == pytest.approx(0.5)
    assert summary["instance_mean"] == pytest.approx(0.5)
    uneven = summarize([("a", 1.0), ("a", 1.0), ("a", 1.0), ("b", 0.0)])
    assert uneven["category_mean"] == pytest.approx(0.5)
    assert uneven["instance_mean"] == pytest.approx(0.75)
    assert uneven["num_shapes"] == 4
