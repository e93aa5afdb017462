"""Labels from support shapes laid onto the target per axis (bipart_cli.registration),
against slow references, and the support shapes the prediction lets them come from."""

from __future__ import annotations

import dataclasses

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

from bipart_cli.adapt import AdaptSettings
from bipart_cli.errors import UsageError
from bipart_cli.model import BiPartModel
from bipart_cli.orientation import standardised
from bipart_cli.predict import FeatureCache, adapt_and_predict
from bipart_cli.registration import register_per_axis, registered_transfer
from bipart_cli.support import SupportShape


def _register_slow(source: np.ndarray, target: np.ndarray, steps: int, stride: int = 1):
    """The per-axis ICP step by step on every ``stride``-th point: brute-force nearest
    points, lstsq per axis; the fit then moves every source point."""
    fit_source, fit_target = source[::stride], target[::stride]
    scale, shift = np.ones(3), np.zeros(3)
    for _ in range(steps):
        laid = fit_source * scale + shift
        d = ((laid[:, None, :] - fit_target[None, :, :]) ** 2).sum(-1)  # (n, m)
        to_target, to_source = d.argmin(1), d.argmin(0)
        x = np.concatenate([fit_source, fit_source[to_source]])
        y = np.concatenate([fit_target[to_target], fit_target])
        for axis in range(3):
            design = np.stack([x[:, axis], np.ones(len(x))], axis=1)
            (scale[axis], shift[axis]), *_ = np.linalg.lstsq(design, y[:, axis], rcond=None)
    return source * scale + shift


def test_register_per_axis_against_a_slow_reference():
    rng = np.random.default_rng(0)
    target = standardised(rng.normal(size=(150, 3)))
    source = standardised(rng.normal(size=(120, 3)) * [1.0, 2.0, 0.5] + [0.3, 0.0, -0.2])
    for steps in (1, 3, 10):
        np.testing.assert_allclose(
            register_per_axis(source, target, steps),
            _register_slow(source, target, steps),
            atol=1e-5,
        )
    # the fit on every 3rd point of each cloud (at most 50 of 150 and 40 of 120)
    np.testing.assert_allclose(
        register_per_axis(source, target, 10, points=50),
        _register_slow(source, target, 10, stride=3),
        atol=1e-5,
    )


def test_a_copy_stretched_and_shifted_per_axis_is_laid_back_exactly():
    rng = np.random.default_rng(1)
    target = rng.normal(size=(300, 3))
    order = rng.permutation(300)
    copy = target[order] * [2.0, 0.5, 1.5] + [1.0, -3.0, 0.25]
    laid = register_per_axis(standardised(copy), standardised(target))
    np.testing.assert_allclose(laid, standardised(target)[order], atol=1e-6)


def _transfer_slow(target, support_points, support_targets, k):
    reference, distributions = [], []
    target = standardised(target)
    for points, targets in zip(support_points, support_targets, strict=True):
        labeled = targets.sum(-1) > 0
        laid = _register_slow(standardised(points), target, 10)
        reference.append(laid[labeled])
        distributions.append(targets[labeled] / targets[labeled].sum(-1, keepdims=True))
    reference, distributions = np.concatenate(reference), np.concatenate(distributions)
    out = np.empty((len(target), distributions.shape[1]))
    for i, point in enumerate(target):
        nearest = np.argsort(((reference - point) ** 2).sum(-1), kind="stable")[:k]
        out[i] = distributions[nearest].mean(0)
    return out


def test_registered_transfer_against_a_slow_reference():
    rng = np.random.default_rng(2)
    target = rng.normal(size=(100, 3))
    support_points = [rng.normal(size=(80, 3)) * [1.2, 0.8, 1.0] for _ in range(2)]
    support_targets = [rng.uniform(size=(80, 3)) for _ in range(2)]
    support_targets[1][:30] = 0  # unlabeled points are never read
    found = registered_transfer(target, support_points, support_targets, k=4)
    assert found.dtype == np.float32 and found.shape == (100, 3)
    np.testing.assert_allclose(found.sum(-1), 1, atol=1e-5)
    np.testing.assert_allclose(
        found, _transfer_slow(target, support_points, support_targets, 4), atol=1e-5
    )


def test_labels_reach_a_stretched_copy_and_nothing_comes_from_unlabeled_shapes():
    rng = np.random.default_rng(3)
    source = unit_cloud(rng)
    labels = half_space_labels(source)[0]  # (n,) 0/1 by one half-space
    targets = np.eye(2)[labels]
    target = source * np.array([1.5, 0.7, 1.1], dtype=np.float32)
    found = registered_transfer(target, [source], [targets], k=1)
    np.testing.assert_array_equal(found.argmax(-1), labels)
    assert registered_transfer(target, [source], [np.zeros_like(targets)]) is None


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return BiPartModel(tiny_config()).eval()


@pytest.mark.parametrize("copy_as_given, follows_the_copy", [(True, True), (False, False)])
def test_labels_are_laid_on_from_shapes_that_lie_as_given_only(
    model, copy_as_given, follows_the_copy
):
    """The target's own copy carries its labels, six noisy copies the opposite ones. Only
    the shapes that lie as given lend labels: the copy, or the six."""
    rng = np.random.default_rng(4)
    target = unit_cloud(rng)
    copy, *flipped = copy_and_flipped_copies(rng, target, 6)
    support = [dataclasses.replace(copy, as_given=copy_as_given)]
    support += [dataclasses.replace(shape, as_given=not copy_as_given) for shape in flipped]
    agreement = agreement_with_half_space(
        model, target, support, knn_weight=0.0, registered_weight=1.0, knn_shapes=0
    )
    assert agreement > 0.9 if follows_the_copy else agreement < 0.1


def test_turned_and_principal_axes_shapes_do_not_lie_as_given():
    rng = np.random.default_rng(5)
    points = unit_cloud(rng)
    shape = SupportShape("s", points, half_space_labels(points)[1])
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert shape.as_given and shape.turned(np.eye(3)).as_given
    assert not shape.turned(turn).as_given
    assert not shape.principal_aligned().as_given


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_registered_weight_out_of_range_is_a_usage_error(value):
    with pytest.raises(UsageError, match="registered_weight"):
        AdaptSettings(registered_weight=value)


def test_stored_labels_follow_which_shapes_lie_as_given(model, tmp_path):
    """The same points, once as given and once not (a shape laid on its principal axes by
    an identity): the store keeps two predictions, each what an empty store computes."""
    rng = np.random.default_rng(6)
    target = unit_cloud(rng)
    copy, *flipped = copy_and_flipped_copies(rng, target, 3)
    settings = AdaptSettings(
        knn_weight=0.0, registered_weight=1.0, knn_shapes=0, smooth=0, self_training_steps=0,
        presence=0.0, match_pose=False, descriptors="none",
    )  # fmt: skip

    def predicted(as_given: bool, store) -> np.ndarray:
        support = [dataclasses.replace(copy, as_given=as_given), *flipped]
        cache = FeatureCache(model, torch.device("cpu"), settings, store=store)
        return adapt_and_predict(model, target, target, None, support, 2, settings, cache)[0]

    store = tmp_path / "store"
    as_given, turned = predicted(True, store), predicted(False, store)
    assert not np.array_equal(as_given, turned)
    np.testing.assert_array_equal(as_given, predicted(True, None))
    np.testing.assert_array_equal(turned, predicted(False, None))
