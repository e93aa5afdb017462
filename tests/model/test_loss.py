"""Eq. 2 against a literal triple loop over boxes, points and parts (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bipart_cli.labeling.pseudo_labels import PseudoLabels
from bipart_cli.model.loss import (
    distillation_loss,
    distillation_loss_from_targets,
    pack_pseudo_labels,
    point_targets,
)


def literal_eq2(logits, num_parts, masks, box_part, box_score, box_valid) -> list[float]:
    """-Σ_d 1/|M^d| Σ_n Σ_r M^d_n H^d_n Z^d_{n,r} log Ŷ_{n,r}, one shape at a time."""
    losses = []
    for b in range(logits.shape[0]):
        parts = int(num_parts[b])
        total = 0.0
        for d in range(masks.shape[1]):
            if not box_valid[b, d]:
                continue
            size = int(masks[b, d].sum())
            box_total = 0.0
            for n in range(logits.shape[1]):
                row = [float(v) for v in logits[b, n, :parts]]
                log_norm = math.log(sum(math.exp(v) for v in row))
                for r in range(parts):
                    m = float(masks[b, d, n])
                    h = float(box_score[b, d])
                    z = 1.0 if r == int(box_part[b, d]) else 0.0
                    box_total += m * h * z * (row[r] - log_norm)
            total += box_total / size if size else 0.0
        losses.append(-total)
    return losses


def random_batch(seed: int):
    generator = torch.Generator().manual_seed(seed)
    batch, boxes, points, r_max = 4, 5, 12, 6
    num_parts = torch.tensor([3, 6, 2, 4])
    logits = torch.randn(batch, points, r_max, generator=generator, dtype=torch.float64) * 3
    masks = torch.rand(batch, boxes, points, generator=generator) < 0.4
    masks[0, 1] = False  # an empty box
    box_part = (torch.rand(batch, boxes, generator=generator) * num_parts[:, None]).long()
    box_score = torch.rand(batch, boxes, generator=generator, dtype=torch.float64)
    box_valid = torch.ones(batch, boxes, dtype=torch.bool)
    box_valid[1, 3:] = False  # padding
    masks[1, 3:] = True  # padding content must be ignored
    box_valid[2] = False  # a shape with no boxes
    return logits, num_parts, masks, box_part, box_score, box_valid


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_literal_triple_loop(seed):
    inputs = random_batch(seed)
    result = distillation_loss(*inputs)
    expected = torch.tensor(literal_eq2(*inputs), dtype=torch.float64)
    assert result.shape == (4,)
    assert result[2] == 0  # no boxes
    relative = ((result - expected).abs() / expected.abs().clamp_min(1e-300))[[0, 1, 3]]
    assert relative.max() < 1e-9


def test_logits_beyond_the_shape_parts_do_not_matter():
    logits, num_parts, *rest = random_batch(3)
    changed = logits.clone()
    changed[0, :, 3:] += 100.0  # shape 0 has 3 parts
    torch.testing.assert_close(
        distillation_loss(logits, num_parts, *rest), distillation_loss(changed, num_parts, *rest)
    )


def test_gradient_flows_to_the_used_logits_only():
    logits, num_parts, masks, box_part, box_score, box_valid = random_batch(4)
    logits.requires_grad_(True)
    distillation_loss(logits, num_parts, masks, box_part, box_score, box_valid).sum().backward()
    grad = logits.grad
    assert torch.isfinite(grad).all()
    assert grad[0, :, :3].abs().sum() > 0
    assert grad[0, :, 3:].abs().sum() == 0  # beyond R = 3
    assert grad[2].abs().sum() == 0  # no boxes
    # matches a finite difference on one used logit
    index = (0, int(masks[0].any(0).nonzero()[0]), int(box_part[0, 0]))
    step = 1e-6
    plus, minus = logits.detach().clone(), logits.detach().clone()
    plus[index] += step
    minus[index] -= step
    args = (num_parts, masks, box_part, box_score, box_valid)
    numeric = (distillation_loss(plus, *args)[0] - distillation_loss(minus, *args)[0]) / (2 * step)
    assert abs(numeric.item() - grad[index].item()) < 1e-6


def test_a_box_naming_a_missing_part_is_an_error():
    logits, num_parts, masks, box_part, box_score, box_valid = random_batch(5)
    box_part[0, 0] = 3  # shape 0 has parts 0..2
    with pytest.raises(ValueError, match="part index"):
        distillation_loss(logits, num_parts, masks, box_part, box_score, box_valid)


def test_packing_pseudo_labels_gives_the_per_shape_loss():
    rng = np.random.default_rng(0)
    labels = [
        PseudoLabels(rng.random((3, 10)) < 0.5, [0, 2, 1], [0.9, 0.6, 0.7], ["a", "b", "c"]),
        PseudoLabels(np.zeros((1, 10), bool), [0], [0.5], ["a", "b"]),  # an empty box
        PseudoLabels(rng.random((1, 10)) < 0.5, [1], [0.8], ["a", "b"]),
    ]
    masks, box_part, box_score, box_valid = pack_pseudo_labels(labels)
    assert masks.shape == (3, 3, 10) and box_valid.sum(1).tolist() == [3, 1, 1]
    num_parts = torch.tensor([3, 2, 2])
    logits = torch.randn(3, 10, 4, dtype=torch.float64)
    result = distillation_loss(logits, num_parts, masks, box_part, box_score, box_valid)
    assert result[1] == 0
    for row, shape_labels in enumerate(labels):
        single = literal_eq2(
            logits[row : row + 1],
            [shape_labels.num_parts],
            shape_labels.masks[None],
            shape_labels.part_index[None],
            shape_labels.scores[None],
            np.ones((1, shape_labels.num_boxes), bool),
        )[0]
        assert result[row].item() == pytest.approx(single, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("seed", [0, 4])
def test_point_targets_form_equals_eq2_and_its_gradient(seed, reduction):
    logits, num_parts, masks, box_part, box_score, box_valid = random_batch(seed)
    logits.requires_grad_(True)
    boxes = distillation_loss(
        logits, num_parts, masks, box_part, box_score, box_valid, box_reduction=reduction
    )
    targets = point_targets(masks, box_part, box_score, box_valid, int(num_parts.max()))
    folded = distillation_loss_from_targets(
        logits, num_parts, targets.double(), box_valid.sum(-1), box_reduction=reduction
    )
    torch.testing.assert_close(folded, boxes, rtol=1e-6, atol=1e-9)
    (grad_boxes,) = torch.autograd.grad(boxes.sum(), logits)
    (grad_folded,) = torch.autograd.grad(folded.sum(), logits)
    torch.testing.assert_close(grad_folded, grad_boxes, rtol=1e-6, atol=1e-9)
    assert torch.isfinite(grad_folded).all()


def literal_point_targets(masks, box_part, box_score, box_valid, columns) -> np.ndarray:
    """PartDistill's weighting, one point at a time: the point's boxes share its weight 1/N."""
    batch, boxes, points = masks.shape
    targets = np.zeros((batch, points, columns))
    for b in range(batch):
        for n in range(points):
            covering = [d for d in range(boxes) if box_valid[b, d] and masks[b, d, n]]
            for d in covering:
                targets[b, n, int(box_part[b, d])] += float(box_score[b, d]) / (
                    len(covering) * points
                )
    return targets


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_point_normalised_targets_against_a_loop(seed):
    _, num_parts, masks, box_part, box_score, box_valid = random_batch(seed)
    columns = int(num_parts.max())
    targets = point_targets(masks, box_part, box_score, box_valid, columns, normalise="point")
    expected = literal_point_targets(masks, box_part, box_score, box_valid, columns)
    np.testing.assert_allclose(targets.numpy(), expected, rtol=1e-5, atol=1e-7)
    # exact labels (one box per part, scores 1): every labeled point weighs 1/N, whatever its part
    exact = torch.zeros(1, 3, 10, dtype=torch.bool)
    exact[0, 0, :7], exact[0, 1, 7:9] = True, True  # a large part, a small one, 1 point unlabeled
    weights = point_targets(
        exact,
        torch.tensor([[0, 1, 2]]),
        torch.ones(1, 3),
        torch.ones(1, 3, dtype=torch.bool),
        3,
        normalise="point",
    )
    assert weights.sum(-1)[0].tolist() == pytest.approx([0.1] * 9 + [0.0])
    with pytest.raises(ValueError, match="normalise"):
        point_targets(masks, box_part, box_score, box_valid, columns, normalise="part")
