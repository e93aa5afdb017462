"""Which parts the target has: the support's part shares, how much of each part the target
keeps, and the end to end effect on a target that lacks a part its support has."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tiny import tiny_config, unit_cloud

from bipart_cli.adapt import AdaptSettings
from bipart_cli.errors import UsageError
from bipart_cli.labeling.pseudo_labels import PseudoLabels
from bipart_cli.model import BiPartModel
from bipart_cli.predict import FeatureCache, adapt_and_predict
from bipart_cli.presence import (
    PRESENCE_POWER,
    presence_factors,
    support_part_shares,
    weigh_parts_by_presence,
)
from bipart_cli.support import SupportShape


def test_support_shares_against_a_loop():
    rng = np.random.default_rng(0)
    targets = rng.random((4, 50, 3))
    targets[1, :, 2] = 0.0  # shape 1 has no part 2
    targets[:, :, 1] = 0.0  # no shape has part 1
    found = support_part_shares(torch.from_numpy(targets)).numpy()
    expected = []
    for part in range(3):
        shares = [t[:, part].sum() / t.sum() for t in targets if t[:, part].sum() > 0]
        expected.append(min(shares) if shares else 0.0)
    np.testing.assert_allclose(found, expected)


def one_hot(labels: np.ndarray, parts: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.as_tensor(labels), parts).double()


def presence_factors_by_loop(probs, shares, ratio):
    """The slow reference of :func:`presence_factors`: one part at a time."""
    winners = probs.argmax(-1).tolist()
    shown = [winners.count(part) / len(winners) for part in range(probs.shape[1])]
    below = [shown[r] < ratio * float(shares[r]) for r in range(len(shown))]
    if all(below) or not any(below):
        return [1.0] * len(shown)
    return [
        (shown[r] / (ratio * float(shares[r]))) ** PRESENCE_POWER if below[r] else 1.0
        for r in range(len(shown))
    ]


def test_presence_factors_against_a_loop():
    rng = np.random.default_rng(1)
    for _ in range(20):
        parts = int(rng.integers(2, 6))
        probs = torch.from_numpy(rng.dirichlet(np.ones(parts) * 0.3, size=200))
        shares = torch.from_numpy(rng.random(parts) * 0.6)
        shares[rng.random(parts) < 0.2] = 0.0  # parts no support shape has
        ratio = float(rng.choice([0.0, 0.5, 1.0]))
        found = presence_factors(probs, shares, ratio).tolist()
        np.testing.assert_allclose(found, presence_factors_by_loop(probs, shares, ratio))


def test_a_part_shown_far_less_than_in_any_support_shape_is_scaled_down():
    # support: part 1 takes 10-30% of a shape, part 2 30%
    support = torch.stack(
        [
            one_hot(np.repeat([0, 1, 2], [60, 10, 30]), 3),
            one_hot(np.repeat([0, 1, 2], [40, 30, 30]), 3),
        ]
    )
    shares = support_part_shares(support)
    np.testing.assert_allclose(shares.numpy(), [0.4, 0.1, 0.3])
    # the target calls 4% part 1 (under half of 10%) and 20% part 2 (over half of 30%)
    probs = one_hot(np.repeat([0, 1, 2], [76, 4, 20]), 3) * 0.7 + 0.1
    factors = presence_factors(probs, shares, 0.5)
    np.testing.assert_allclose(factors.numpy(), [1.0, (0.04 / 0.05) ** PRESENCE_POWER, 1.0])
    assert presence_factors(probs, shares, 0.0).tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(
        presence_factors(probs, shares, 1.0).numpy(),
        [1.0, 0.4**PRESENCE_POWER, (0.2 / 0.3) ** PRESENCE_POWER],
    )
    # a part no support shape has (share 0) keeps all: only the target may show it
    assert presence_factors(probs, torch.tensor([0.4, 0.0, 0.3]), 1.0)[1] == 1.0
    # a part no point calls most likely is gone
    none_of_1 = one_hot(np.repeat([0, 2], [80, 20]), 3) * 0.7 + 0.1
    assert presence_factors(none_of_1, shares, 0.5)[1] == 0.0


def test_every_part_is_never_scaled_down():
    probs = one_hot(np.repeat([0, 1], [50, 50]), 2) * 0.5 + 0.25
    assert presence_factors(probs, torch.tensor([0.9, 0.9]), 1.0).tolist() == [1.0, 1.0]


def test_a_part_just_under_the_threshold_keeps_its_points():
    """No cliff: a part the target shows at 0.98 of the threshold loses none of its
    confidently labeled points (a hard cut took them all)."""
    support = one_hot(np.repeat([0, 1], [50, 50]), 2)[None]  # smallest share of part 1: 0.5
    probs = one_hot(np.repeat([0, 1], [755, 245]), 2) * 0.6 + 0.2  # 24.5% against 25%
    weighed = weigh_parts_by_presence(probs, support, 0.5)
    assert weighed.argmax(-1).tolist() == probs.argmax(-1).tolist()
    assert (weighed[:, 1] < probs[:, 1]).all()


def test_an_absent_part_s_points_go_to_their_next_likeliest_part():
    support = one_hot(np.repeat([0, 1, 2], [50, 25, 25]), 3)[None]
    rows = [[0.6, 0.3, 0.1]] * 75 + [[0.2, 0.7, 0.1]] * 20 + [[0.1, 0.3, 0.6]] * 5
    probs = torch.tensor(rows, dtype=torch.float64)
    weighed = weigh_parts_by_presence(probs, support, 0.5)  # part 2: 5% < half of 25%
    torch.testing.assert_close(weighed.sum(-1), torch.ones(100, dtype=probs.dtype))
    assert weighed.argmax(-1).tolist() == [0] * 75 + [1] * 25
    assert weigh_parts_by_presence(probs, support, 0.0) is probs


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_presence_out_of_range_is_a_usage_error(value):
    with pytest.raises(UsageError, match="--presence"):
        AdaptSettings(presence=value)


def test_segmenting_scales_down_the_part_the_target_shows_least_of_its_support_share():
    """End to end through :func:`adapt_and_predict`: at a ``presence`` between the two parts'
    ratios (target share / smallest support share), the lower one loses points to the other
    part and every other point keeps its label; under both ratios nothing changes."""
    torch.manual_seed(0)
    model = BiPartModel(tiny_config()).eval()
    rng = np.random.default_rng(5)
    support = []
    for i in range(4):
        points = unit_cloud(rng)
        top = points[:, 1] > np.quantile(points[:, 1], 0.6)
        masks = np.stack([~top, top])
        labels = PseudoLabels(masks, np.array([0, 1]), np.ones(2), ["body", "top"])
        support.append(SupportShape(f"s{i}", points, labels))
    target = unit_cloud(rng)

    def labels_at(presence: float) -> np.ndarray:
        settings = AdaptSettings(presence=presence, match_pose=False)
        cache = FeatureCache(model, torch.device("cpu"), settings)
        labels, _ = adapt_and_predict(model, target, target, None, support, 2, settings, cache)
        return labels

    kept = labels_at(0.0)
    ratios = np.bincount(kept, minlength=2) / len(kept) / np.array([0.6, 0.4])
    lower = int(np.argmin(ratios))
    assert ratios[lower] < 1.0 and ratios[lower] < ratios[1 - lower]
    presence = min(1.0, (ratios[lower] + ratios[1 - lower]) / 2)
    weighed = labels_at(presence)
    assert (weighed == lower).sum() < (kept == lower).sum()
    np.testing.assert_array_equal(weighed[kept != lower], kept[kept != lower])
    np.testing.assert_array_equal(labels_at(ratios[lower] * 0.9), kept)


def test_zero_shot_keeps_every_part():
    """With the target its own support (its pseudo labels, no support shapes) no part is
    dropped: presence reads how large a part is from support shapes alone."""
    torch.manual_seed(0)
    model = BiPartModel(tiny_config()).eval()
    target = unit_cloud(np.random.default_rng(6))
    top = target[:, 1] > np.quantile(target[:, 1], 0.7)  # 30% of the points
    labels = PseudoLabels(np.stack([~top, top]), np.array([0, 1]), np.ones(2), ["a", "b"])
    found = {}
    for presence in (0.0, 1.0):
        settings = AdaptSettings(presence=presence, match_pose=False)
        cache = FeatureCache(model, torch.device("cpu"), settings)
        found[presence], _ = adapt_and_predict(
            model, target, target, labels, [], 2, settings, cache
        )
    assert 0 < (found[0.0] == 1).mean() < top.mean()  # fewer than its labels: would be dropped
    np.testing.assert_array_equal(found[0.0], found[1.0])


def test_a_part_only_the_target_s_pseudo_labels_show_is_kept():
    """Support shapes without part "b", a target whose detector labels show it: presence has
    no support share to compare with, so "b" stays."""
    torch.manual_seed(0)
    model = BiPartModel(tiny_config()).eval()
    rng = np.random.default_rng(7)
    target = unit_cloud(rng)
    top = target[:, 1] > np.quantile(target[:, 1], 0.7)
    target_labels = PseudoLabels(np.stack([~top, top]), np.array([0, 1]), np.ones(2), ["a", "b"])
    support = []
    for i in range(2):
        points = unit_cloud(rng)
        only_a = PseudoLabels(np.ones((1, len(points)), bool), np.array([0]), np.ones(1), ["a"])
        support.append(SupportShape(f"s{i}", points, only_a))
    found = {}
    for presence in (0.0, 0.5):
        settings = AdaptSettings(presence=presence, match_pose=False)
        cache = FeatureCache(model, torch.device("cpu"), settings)
        found[presence], _ = adapt_and_predict(
            model, target, target, target_labels, support, 2, settings, cache
        )
    assert (found[0.0] == 1).any()
    np.testing.assert_array_equal(found[0.0], found[0.5])
