"""How well the support fits the target (``bipart_cli.fit``): the measures, the warning and
the scores, on small clouds whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
from _tiny import half_space_labels

from bipart_cli.fit import (
    AGREEMENT_LIMIT,
    DISTANCE_LIMIT,
    SupportFit,
    calibrated_scores,
    fit_probability,
    label_agreement,
    measure_fit,
    transferred_labels,
)
from bipart_cli.support import SupportShape


def _box(size: tuple[float, float, float], seed: int, n: int = 2048) -> np.ndarray:
    """n points (n, 3) float32 on the surface of a centred box of ``size``, a seeded draw."""
    import trimesh

    points, _ = trimesh.sample.sample_surface(trimesh.creation.box(size), n, seed=seed)
    return points.astype(np.float32)


def _support(clouds: list[np.ndarray]) -> list[SupportShape]:
    """Each cloud labeled ``x > 0 -> right`` (the ``given`` form of :func:`half_space_labels`)."""
    return [SupportShape(f"s{i}", c, half_space_labels(c)[1]) for i, c in enumerate(clouds)]


def test_like_shapes_are_near_and_unlike_ones_far():
    """Boxes of one shape (new draws) lie well within the limit; a flat plate or a pole is
    far beyond it from a cube. The distance is of the support as it lies (posed)."""
    cube = _box((1, 1, 1), seed=0)
    cubes = _support([_box((1, 1, 1), seed=s) for s in (1, 2, 3)])
    plates = _support([_box((1, 0.05, 1), seed=s) for s in (1, 2, 3)])
    poles = _support([_box((0.1, 1, 0.1), seed=s) for s in (1, 2, 3)])
    labels = half_space_labels(cube)[0]
    near = measure_fit(cube, cube, labels, cubes)
    assert near.distance < DISTANCE_LIMIT / 2 and not near.poor
    for unlike in (plates, poles):
        far = measure_fit(cube, cube, labels, unlike)
        assert far.distance > DISTANCE_LIMIT and far.poor
        assert far.probability < near.probability


def test_distance_is_the_mean_of_the_three_nearest_shapes():
    fit = SupportFit([0.9, 0.1, 0.3, 0.2, 0.8], agreement=1.0)
    assert fit.distance == pytest.approx(0.2)


def test_transfer_takes_the_nearest_labeled_support_point_whatever_the_scale():
    """A target twice the support's size, shifted: each cloud is centred and scaled to unit
    RMS radius first, so the left half still gets the left label."""
    support = _support([_box((1, 1, 1), seed=1)])
    target = 2 * _box((1, 1, 1), seed=5) + np.float32(3)
    truth = (target[:, 0] > 3).astype(np.int64)
    transferred = transferred_labels(target, support)
    assert np.mean(transferred == truth) > 0.97


def test_agreement_is_the_share_of_labels_the_transfer_gives():
    cube = _box((1, 1, 1), seed=0, n=2000)
    support = _support([_box((1, 1, 1), seed=s) for s in (1, 2)])
    truth = half_space_labels(cube)[0]
    assert label_agreement(cube, truth, support) > 0.97
    assert label_agreement(cube, 1 - truth, support) < 0.03
    swapped = np.where(cube[:, 1] > 0, 1 - truth, truth)  # the upper half labeled wrong
    assert label_agreement(cube, swapped, support) == pytest.approx(0.5, abs=0.05)


def test_poor_fit_warns_once_naming_the_ways_out():
    good = SupportFit([0.2, 0.25, 0.3], agreement=0.9)
    assert not good.poor and good.warning("the shapes in chairs") is None
    far = SupportFit([0.5, 0.55, 0.6], agreement=0.9)
    disagreeing = SupportFit([0.2, 0.25, 0.3], agreement=AGREEMENT_LIMIT - 0.1)
    for fit, reason in ((far, "Chamfer distance 0.55"), (disagreeing, "agrees with 55%")):
        warning = fit.warning("the shapes in chairs")
        assert fit.poor and reason in warning
        for way_out in ("the shapes in chairs", "--support DIR", "bipart examples", "--index"):
            assert way_out in warning


def test_sidecar_record_names_each_shape_and_the_limits():
    record = SupportFit([0.3, 0.5], agreement=0.8).to_json(["a.glb", "b.glb"])
    assert record["shapes"] == [{"id": "a.glb", "distance": 0.3}, {"id": "b.glb", "distance": 0.5}]
    assert record["distance"] == pytest.approx(0.4) and record["agreement"] == 0.8
    assert (
        record["distance_limit"] == DISTANCE_LIMIT and record["agreement_limit"] == AGREEMENT_LIMIT
    )
    assert record["poor"] is False and 0 < record["probability"] < 1


def test_scores_are_the_probability_times_the_support_being_of_the_kind():
    scores = np.array([0.9, 0.5, 1.0], dtype=np.float32)
    close, far = SupportFit([0.2] * 3, 0.9), SupportFit([0.6] * 3, 0.6)
    assert close.probability > 0.9 and far.probability < 0.01
    for fit in (close, far):
        calibrated = calibrated_scores(scores, fit)
        assert calibrated.dtype == np.float32
        assert np.allclose(calibrated, scores * fit.probability)
    assert calibrated_scores(scores, None) is scores  # no support: nothing to weigh it by
    # less likely the further the support and the less its transfer agrees
    assert fit_probability(0.3, 0.9) > fit_probability(0.35, 0.9) > fit_probability(0.35, 0.7)
