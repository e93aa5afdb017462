"""What the head's probabilities of a target go through: the kNN transfer from the support
shapes nearest it, edge-aware smoothing, and the refit on the target's confident labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tiny import (
    agreement_with_half_space,
    copy_and_flipped_copies,
    half_space_labels,
    tiny_config,
    unit_cloud,
)

from bipart_cli.adapt import AdaptSettings, adapt_head, fit_head, labeled_points, pack_labels
from bipart_cli.errors import UsageError
from bipart_cli.model import BiPartModel
from bipart_cli.predict import FeatureCache, adapt_and_predict
from bipart_cli.refine import (
    SELF_TRAINING_CONFIDENCE,
    nearest_shapes,
    self_training_targets,
    smooth_probabilities,
)
from bipart_cli.support import SupportShape


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return BiPartModel(tiny_config()).eval()


def _chamfer_slow(a: np.ndarray, b: np.ndarray) -> float:
    a = (a - a.mean(0)) / (a.std(0) + 1e-5)
    b = (b - b.mean(0)) / (b.std(0) + 1e-5)
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    return d.min(1).mean() + d.min(0).mean()


def test_nearest_shapes_against_a_loop():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(60, 3))
    shapes = [rng.normal(size=(40 + 5 * i, 3)) * rng.uniform(0.5, 2, 3) for i in range(6)]
    shapes[3] = target[::2] + rng.normal(scale=0.05, size=(30, 3))
    expected = np.argsort([_chamfer_slow(target, s) for s in shapes], kind="stable")
    np.testing.assert_array_equal(nearest_shapes(target, shapes, 4), expected[:4])
    assert nearest_shapes(target, shapes, 4)[0] == 3
    np.testing.assert_array_equal(nearest_shapes(target, shapes, 10), expected)


def test_a_stretched_copy_is_nearer_than_another_shape():
    """Proportions aside: a cabinet twice as wide is nearer than a ball of its size."""
    rng = np.random.default_rng(1)
    box = rng.uniform(-1, 1, size=(300, 3)) * np.array([0.5, 1.0, 0.3])
    box[:, 2] = np.sign(box[:, 2]) * 0.3  # two panels
    ball = rng.normal(size=(300, 3))
    stretched = box * np.array([2.0, 1.0, 1.0]) + 5.0
    assert list(nearest_shapes(box, [ball, stretched], 2)) == [1, 0]


def _edge_smooth_slow(points, probs, features, rounds, k, scale):
    n = len(points)
    neighbours = [np.argsort(((points - points[i]) ** 2).sum(1))[:k] for i in range(n)]
    squared = np.array(
        [((features[nb] - features[i]) ** 2).sum(1) for i, nb in enumerate(neighbours)]
    )
    lower_median = np.sort(squared.ravel())[(squared.size - 1) // 2]  # torch.median's
    weights = np.exp(-squared / (scale**2 * lower_median))
    weights /= weights.sum(1, keepdims=True)
    out = probs.copy()
    for _ in range(rounds):
        previous = out.copy()
        for i, nb in enumerate(neighbours):
            out[i] = 0.5 * previous[i] + 0.5 * (weights[i][:, None] * previous[nb]).sum(0)
    return out


def test_edge_aware_smoothing_against_a_loop():
    rng = np.random.default_rng(2)
    points = rng.normal(size=(50, 3))
    features = rng.normal(size=(50, 4))
    probs = rng.dirichlet(np.ones(3), size=50)
    fast = smooth_probabilities(
        points, torch.from_numpy(probs), 3, k=5, features=torch.from_numpy(features), edge_scale=0.7
    )
    expected = _edge_smooth_slow(points, probs, features, 3, 5, 0.7)
    np.testing.assert_allclose(fast.numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(fast.sum(1).numpy(), 1.0, rtol=1e-12)


def test_labels_stop_at_a_seam_where_the_features_change():
    """Two panels side by side, one part each: plain smoothing carries a wrong label across
    the seam; weighed by the features, which change there, it stays on its side."""
    x = np.linspace(0, 1, 40)
    points = np.stack([x, np.zeros(40), np.zeros(40)], 1)
    features = torch.from_numpy(np.where(x[:, None] < 0.5, 0.0, 5.0) * np.ones((1, 4)))
    # the head is unsure of the right panel's first points, sure of the left panel's
    probs = np.where(x[:, None] < 0.5, [0.95, 0.05], [0.3, 0.7])
    plain = smooth_probabilities(points, torch.from_numpy(probs), 4, k=10)
    edges = smooth_probabilities(
        points, torch.from_numpy(probs), 4, k=10, features=features, edge_scale=1.0
    )
    right = x >= 0.5
    assert (plain.argmax(1).numpy()[right] == 0).any()  # the left panel's label leaked
    assert (edges.argmax(1).numpy()[right] == 1).all()
    plain_again = smooth_probabilities(
        points, torch.from_numpy(probs), 4, k=10, features=features, edge_scale=0.0
    )
    assert torch.equal(plain_again, plain)


def test_self_training_targets_take_the_confident_points_at_one_shape_s_weight():
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.05, 0.95]], dtype=torch.float64)
    rows, targets, mask = self_training_targets(
        probs, torch.tensor(12.0, dtype=torch.float64), 4, 5
    )
    confident = (probs.max(1).values > SELF_TRAINING_CONFIDENCE).nonzero().flatten()
    assert rows.tolist() == confident.tolist() == [0, 2, 3]
    assert targets.shape == mask.shape == (3, 5)
    assert targets.argmax(1).tolist() == [0, 1, 1]
    assert float(targets.sum()) == pytest.approx(12.0 / 4)
    assert (mask[:, :2] == 0).all() and torch.isinf(mask[:, 2:]).all()


def test_fit_head_is_adapt_head_on_the_labeled_points(model):
    rng = np.random.default_rng(3)
    shapes = [unit_cloud(rng) for _ in range(2)]
    labels = pack_labels([half_space_labels(p)[1] for p in shapes], 2)
    features = torch.randn(2, len(shapes[0]), model.config.feature_dim)
    head = model.head_params()
    kwargs = dict(steps=5, lr=0.02, optimizer="adam", batch_points=64, seed=3)
    whole = adapt_head(features, labels, head, box_reduction="sum", **kwargs)
    points, targets, mask = labeled_points(features, labels, head, "sum")
    parts = fit_head(points, targets, mask, head, **kwargs)
    for name in whole:
        assert torch.equal(whole[name], parts[name])


@pytest.mark.parametrize("knn_shapes, follows_the_copy", [(1, True), (0, False)])
def test_the_knn_transfer_reads_the_shapes_nearest_the_target(model, knn_shapes, follows_the_copy):
    """One support shape is the target itself, six noisy copies carry the opposite labels:
    reading the nearest shape only, the transfer gives the copy's labels; reading all, the
    majority's."""
    rng = np.random.default_rng(4)
    target = unit_cloud(rng)
    support = copy_and_flipped_copies(rng, target, 6)
    agreement = agreement_with_half_space(
        model, target, support, knn_weight=1.0, knn_k=8, knn_shapes=knn_shapes
    )
    assert agreement > 0.9 if follows_the_copy else agreement < 0.3


def test_self_training_sharpens_the_target_s_own_labels_and_is_seeded(model):
    rng = np.random.default_rng(5)
    support = []
    for i in range(4):
        points = unit_cloud(rng)
        support.append(SupportShape(f"s{i}", points, half_space_labels(points)[1]))
    target = unit_cloud(rng)
    truth = half_space_labels(target)[0]
    runs = {}
    for steps in (0, 50, 50):
        settings = AdaptSettings(self_training_steps=steps, descriptors="none")
        cache = FeatureCache(model, torch.device("cpu"), settings)
        runs.setdefault(steps, []).append(
            adapt_and_predict(model, target, target, None, support, 2, settings, cache)
        )
    (before, before_scores), [(after, after_scores), (again, again_scores)] = runs[0][0], runs[50]
    np.testing.assert_array_equal(after, again)
    np.testing.assert_array_equal(after_scores, again_scores)
    # fitted on its own confident labels as well, the head is surer of them
    assert after_scores.mean() > before_scores.mean()
    assert (after == truth).mean() >= (before == truth).mean() - 0.02


@pytest.mark.parametrize(
    "field, value",
    [
        ("knn_shapes", -1),
        ("edge_scale", -0.5),
        ("edge_scale", float("nan")),
        ("self_training_steps", -2),
    ],
)
def test_refinement_settings_out_of_range_are_usage_errors(field, value):
    with pytest.raises(UsageError, match=field):
        AdaptSettings(**{field: value})
