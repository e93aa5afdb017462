"""Pose matching (``orientation.matching_rotation``) against a slow reference, and on turned
clouds; the up axis a file is read with (``orientation.settle_up``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from bipart_cli.orientation import (
    AXIS_ROTATIONS,
    MATCH_CLOUDS_KEPT,
    POSE_MARGIN,
    PROPORTION_FREE_MARGIN,
    UP_MARGIN,
    Z_UP_TO_Y_UP,
    apply_rotation,
    best_turn,
    candidate_rotations,
    chamfer_distance,
    clear_match_clouds,
    match_cloud,
    matching_rotation,
    matching_rotations,
    pose_costs,
    proportion_free_gain,
    settle_up,
    standardised,
    up_distances,
    up_rotation,
)


def _lopsided_cloud(seed: int = 0, n: int = 1500, foot: tuple = (-1.0, -0.7)) -> np.ndarray:
    """A cloud with no rotational symmetry: three boxes of different sizes off the centre,
    the foot between heights ``foot``. At the bar's end (the default), one turn swaps the
    foot and the arm, told apart by their proportions only (:func:`proportion_free_gain`)."""
    rng = np.random.default_rng(seed)
    parts = [
        rng.uniform([-0.2, -1.0, -0.1], [0.2, 1.0, 0.1], (n // 2, 3)),
        rng.uniform([0.2, 0.6, -0.1], [0.9, 1.0, 0.1], (n // 4, 3)),
        rng.uniform([-0.2, foot[0], 0.1], [0.2, foot[1], 0.6], (n - n // 2 - n // 4, 3)),
    ]
    return np.concatenate(parts)


def _unit(points: np.ndarray) -> np.ndarray:
    centred = points - points.mean(0)
    return centred / np.sqrt((centred**2).sum(1).mean())


def test_axis_rotations_are_the_24_proper_ones():
    assert AXIS_ROTATIONS.shape == (24, 3, 3)
    assert np.allclose(AXIS_ROTATIONS[0], np.eye(3))
    assert np.allclose(np.linalg.det(AXIS_ROTATIONS), 1.0)
    assert len({r.tobytes() for r in AXIS_ROTATIONS}) == 24


def test_pose_costs_against_a_loop_over_candidates():
    """Small clouds (under MATCH_POINTS, so no draw): each cost is the Chamfer distance
    of the turned unit-RMS source to the unit-RMS target, computed one candidate at a time."""
    target = _lopsided_cloud(0, 300)
    source = _lopsided_cloud(1, 280) @ AXIS_ROTATIONS[5].T + 3.0
    rotations, costs = pose_costs(target, source)
    unit_target, unit_source = _unit(target), _unit(source)
    assert np.allclose(rotations, candidate_rotations(unit_target, unit_source))
    for rotation, cost in zip(rotations, costs, strict=True):
        turned = unit_source @ rotation.T
        expected = (
            cKDTree(unit_target).query(turned)[0].mean()
            + cKDTree(turned).query(unit_target)[0].mean()
        )
        assert cost == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("index", range(24))
def test_every_axis_rotation_is_undone(index):
    # the foot halfway up: no turn gives another shape only its proportions tell apart
    target = _lopsided_cloud(0, foot=(-0.6, -0.3))
    source = _lopsided_cloud(1, foot=(-0.6, -0.3)) @ AXIS_ROTATIONS[index].T  # another draw, turned
    found = matching_rotation(target, source)
    assert np.allclose(found @ AXIS_ROTATIONS[index], np.eye(3))


def test_any_rotation_is_undone_through_the_principal_axes():
    target = _lopsided_cloud(0)
    turn = Rotation.from_euler("xyz", [35, 70, -20], degrees=True).as_matrix()
    source = _lopsided_cloud(1) * 1.7 @ turn.T  # scale does not matter either
    found = matching_rotation(target, source)
    assert np.degrees(Rotation.from_matrix(found @ turn).magnitude()) < 10


def test_a_shape_in_the_same_pose_stays_as_given():
    target = _lopsided_cloud(0)
    nudged = _lopsided_cloud(1) @ Rotation.from_euler("y", 5, degrees=True).as_matrix().T
    assert np.array_equal(matching_rotation(target, nudged), np.eye(3))


def test_matching_is_deterministic():
    target, source = _lopsided_cloud(0, 4000), _lopsided_cloud(1, 4000) @ AXIS_ROTATIONS[9].T
    first = pose_costs(target, source)[1]
    assert np.array_equal(first, pose_costs(target, source)[1])


def test_the_margin_is_what_a_turn_must_gain():
    target = _lopsided_cloud(0)
    source = _lopsided_cloud(1) @ AXIS_ROTATIONS[3].T
    rotations, costs = pose_costs(target, source)
    gain = 1 - costs.min() / costs[0]
    assert np.allclose(
        matching_rotation(target, source, margin=gain * 0.99) @ AXIS_ROTATIONS[3], np.eye(3)
    )
    assert np.array_equal(matching_rotation(target, source, margin=gain * 1.01), np.eye(3))


def _full_search_rotation(target, source, margin=POSE_MARGIN):
    """The slow reference: every candidate scored on every matched point."""
    rotations, costs = pose_costs(target, source)
    best = int(np.argmin(costs))
    return rotations[best] if costs[best] < (1.0 - margin) * costs[0] else np.eye(3)


@pytest.mark.parametrize("seed", range(12))
def test_the_shortlist_picks_what_a_full_search_picks(seed):
    """Coarse-to-fine scoring chooses the rotation that scoring all 48 candidates on
    all matched points chooses: axis turns, arbitrary turns and no turn at all."""
    rng = np.random.default_rng(seed)
    target = _lopsided_cloud(seed, 3000)
    turn = [np.eye(3), AXIS_ROTATIONS[seed % 24], Rotation.random(random_state=seed).as_matrix()]
    source = _lopsided_cloud(seed + 100, 2500) @ turn[seed % 3].T + rng.normal(size=3)
    assert np.array_equal(matching_rotation(target, source), _full_search_rotation(target, source))


def test_a_set_of_sources_is_matched_as_a_set():
    """Three sources as the target lies and one turned: an aligned collection. Within it a
    turn must gain ``aligned_margin`` (1: never); with the margin alike, each source is
    matched on its own. Three sources turned alike: not aligned, each is turned back."""
    target = _lopsided_cloud(0)
    as_given = [_lopsided_cloud(seed) for seed in (1, 2, 3)]
    turned = _lopsided_cloud(4) @ AXIS_ROTATIONS[3].T
    gain = best_turn(target, turned)[1]
    assert gain > POSE_MARGIN
    sources = [*as_given, turned]
    on_their_own = [matching_rotation(target, s) for s in sources]
    np.testing.assert_array_equal(
        matching_rotations(target, sources, aligned_margin=POSE_MARGIN), on_their_own
    )
    kept = matching_rotations(target, sources, aligned_margin=1.0)
    np.testing.assert_array_equal(kept, np.broadcast_to(np.eye(3), (4, 3, 3)))
    assert np.allclose(
        matching_rotations(target, sources, aligned_margin=gain * 0.99)[3] @ AXIS_ROTATIONS[3],
        np.eye(3),
    )
    all_turned = [s @ AXIS_ROTATIONS[3].T for s in as_given]
    for rotation in matching_rotations(target, all_turned, aligned_margin=1.0):
        assert np.allclose(rotation @ AXIS_ROTATIONS[3], np.eye(3))
    assert matching_rotations(target, []).shape == (0, 3, 3)


def test_best_turn_s_gain_is_the_share_of_the_identity_s_distance_it_saves():
    target = _lopsided_cloud(0)
    source = _lopsided_cloud(1) @ AXIS_ROTATIONS[3].T
    rotation, gain = best_turn(target, source)
    _, costs = pose_costs(target, source)
    assert np.allclose(rotation @ AXIS_ROTATIONS[3], np.eye(3))
    assert gain == pytest.approx(1 - costs.min() / costs[0], rel=1e-9)
    assert best_turn(target, target)[1] == pytest.approx(0.0)


def _cabinet(width: float, height: float, shelves: int, seed: int, n: int = 3000) -> np.ndarray:
    """(n, 3) points of a Y-up open cabinet 0.5 deep: back, sides, top, bottom, ``shelves``
    shelves and a door on the left half of the front (+Z), thin boxes sampled by area."""
    rng = np.random.default_rng(seed)
    w, h, d, t = width / 2, height / 2, 0.25, 0.03
    boxes = [
        ([-w, -h, -d], [w, h, -d + t]),
        ([-w, -h, -d], [-w + t, h, d]),
        ([w - t, -h, -d], [w, h, d]),
        ([-w, h - t, -d], [w, h, d]),
        ([-w, -h, -d], [w, -h + t, d]),
        ([-w, -h, d - t], [0.0, h, d]),
    ]
    for k in range(shelves):
        y = -h + height * (k + 1) / (shelves + 1)
        boxes.append(([-w, y, -d], [w, y + t, 0.8 * d]))
    areas = np.array([np.prod(np.sort(np.subtract(hi, lo))[1:]) for lo, hi in boxes])
    counts = np.maximum(1, np.round(n * areas / areas.sum()).astype(int))
    return np.concatenate(
        [rng.uniform(lo, hi, (c, 3)) for (lo, hi), c in zip(boxes, counts, strict=True)]
    )


def test_a_turn_that_only_trades_proportions_is_not_taken():
    """A tall cabinet and a low one, both upright: laying the low one on its side fits the
    tall one better on the plain Chamfer distance (a gain well over the margin), not once
    each cloud is standardised per axis, so it stays upright. The tall cabinet laid on
    its side is still stood up again."""
    tall, low = _cabinet(0.5, 2.0, 4, seed=0), _cabinet(1.6, 0.7, 1, seed=1)
    rotations, costs = pose_costs(tall, low)
    best = int(np.argmin(costs))
    assert 1 - costs[best] / costs[0] > 2 * POSE_MARGIN
    assert proportion_free_gain(tall, low, rotations[best]) <= PROPORTION_FREE_MARGIN
    np.testing.assert_array_equal(matching_rotation(tall, low), np.eye(3))

    laid = _cabinet(0.5, 2.0, 4, seed=2) @ AXIS_ROTATIONS[7].T
    assert np.allclose(matching_rotation(tall, laid) @ AXIS_ROTATIONS[7], np.eye(3))


def test_the_proportion_free_gain_against_a_slow_reference():
    """Small clouds (no draw): the gain is 1 - d(turned) / d(as given), d the symmetric
    Chamfer distance of the clouds at unit RMS radius, then standardised per axis, with
    every distance computed in full."""
    target = _lopsided_cloud(0, 300)
    source = _lopsided_cloud(1, 280) * [1.0, 2.5, 0.5] + 3.0
    rotation = AXIS_ROTATIONS[5]

    def chamfer(a: np.ndarray, b: np.ndarray) -> float:
        distances = np.linalg.norm(a[:, None] - b[None], axis=-1)
        return distances.min(1).mean() + distances.min(0).mean()

    unit_target, unit_source = standardised(_unit(target)), _unit(source)
    expected = 1 - chamfer(unit_target, standardised(unit_source @ rotation.T)) / chamfer(
        unit_target, standardised(unit_source)
    )
    assert proportion_free_gain(target, source, rotation) == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(standardised(source).mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(standardised(source).std(0), 1, rtol=1e-3)


_VERTICAL = [r for r in AXIS_ROTATIONS if r[1, 1] == 1]  # the 4 quarter turns about Y


def _chair_points(seed: int, n: int = 2048) -> np.ndarray:
    """(n, 3) surface samples of a generated Y-up chair."""
    from bipart_cli.procedural import make_shape

    mesh = make_shape("chair", seed).to_geometry()
    return np.asarray(mesh.sample(n, seed=seed), dtype=np.float64)


@pytest.fixture(scope="module")
def chairs():
    """A target chair, its Z-up copy (as a Y-up exporter's +90 degree turn about X writes it),
    and five support chairs, Y-up and facing every which way."""
    target = _chair_points(11)
    support = [_chair_points(seed) @ _VERTICAL[seed % 4].T for seed in (1, 2, 3, 4, 5)]
    return target, target @ Z_UP_TO_Y_UP, support


def test_auto_reads_a_file_of_no_specified_axis_as_the_support_fits_it(chairs):
    """Issue 32 item 2: a Z-up OBJ was read lying on its back. ``auto`` reads it Z-up, the
    Y-up original Y-up, both without a warning; each reading lands on the same points."""
    target, z_up, support = chairs
    original = settle_up(target, "auto", support, "obj")
    copy = settle_up(z_up, "auto", support, "obj")
    assert (original.axis, copy.axis) == ("y", "z")
    assert original.warning is None and copy.warning is None
    assert 1 - copy.distances["z"] / copy.distances["y"] > UP_MARGIN
    np.testing.assert_allclose(z_up @ up_rotation(z_up, copy.axis).T, target, atol=1e-12)


def test_gltf_stays_y_up_as_specified_and_a_much_better_axis_is_named(chairs):
    target, z_up, support = chairs
    assert settle_up(target, "auto", support, "glb").warning is None
    reading = settle_up(z_up, "auto", support, "glb")
    assert reading.axis == "y" and "GLB" in reading.reason
    assert "closer to it read Z-up" in reading.warning and "--up z" in reading.warning


def test_an_asked_axis_is_kept_and_warned_about_only_when_the_other_fits_much_better(chairs):
    target, z_up, support = chairs
    asked_y = settle_up(z_up, "y", support, "obj")
    assert asked_y.axis == "y" and "--up z" in asked_y.warning
    assert settle_up(z_up, "z", support, "obj").warning is None
    asked_z = settle_up(target, "z", support, "obj")
    assert asked_z.axis == "z" and "--up y" in asked_z.warning
    assert settle_up(target, "y", support, "obj").warning is None


def test_without_support_auto_reads_y_up_and_pca_and_none_are_not_measured(chairs):
    target, z_up, support = chairs
    alone = settle_up(z_up, "auto", [], "obj")
    assert (alone.axis, alone.distances, alone.warning) == ("y", {}, None)
    for up in ("pca", "none"):
        reading = settle_up(z_up, up, support, "obj")
        assert (reading.axis, reading.distances, reading.warning) == (up, {}, None)
    with pytest.raises(ValueError, match="auto"):
        up_rotation(target, "auto")


def test_up_distances_do_not_depend_on_where_a_support_shape_faces(chairs):
    """A support shape turned about the vertical fits as well: the distance takes its best
    quarter turn about Y."""
    target, _, support = chairs
    turned = [s @ _VERTICAL[k % 4].T for k, s in enumerate(support, start=1)]
    assert up_distances(target, turned) == pytest.approx(up_distances(target, support), rel=1e-9)


def _up_pose_fit(target: np.ndarray, support: list[np.ndarray], fresh: bool) -> list:
    """What the segmenter's stages ask for, in their order: ``--up auto``'s reading, the
    poses and the fit's distances (to the support as posed). ``fresh``: every call from
    scratch, nothing kept from an earlier one."""
    clear = clear_match_clouds if fresh else (lambda: None)
    clear()
    reading = settle_up(target, "auto", support, "obj")
    target = apply_rotation(target, up_rotation(target, reading.axis))
    clear()
    rotations = matching_rotations(target, support)
    posed = [
        s if np.array_equal(r, np.eye(3)) else s @ r.T
        for s, r in zip(support, rotations, strict=True)
    ]
    distances = []
    for shape in posed:
        clear()
        distances.append(chamfer_distance(target, shape))
    return [reading.axis, reading.distances, rotations, distances]


@pytest.mark.parametrize("z_up", [False, True])
def test_the_work_the_stages_share_gives_what_each_computes_alone(chairs, z_up):
    """Issue 33: the up reading, pose matching and the support fit prepare each cloud once
    and read back the costs another scored (the fit's identity, the Y reading's quarter
    turns); every number is the one each computes from scratch, bit for bit."""
    target, z_up_target, support = chairs
    support = [*support[:3], support[3] @ AXIS_ROTATIONS[3].T]  # one lies on its side
    target = z_up_target if z_up else target
    shared = _up_pose_fit(target, support, fresh=False)
    alone = _up_pose_fit(target, support, fresh=True)
    assert shared[:2] == alone[:2] and shared[0] == ("z" if z_up else "y")
    np.testing.assert_array_equal(shared[2], alone[2])
    assert not np.array_equal(shared[2][3], np.eye(3))  # the lying shape was turned
    assert shared[3] == alone[3]


def test_the_fit_reads_the_distance_pose_matching_scored(chairs):
    """After pose matching, the distance of a shape left as it lies is scored already:
    the fit queries no tree, and the cloud of the same points is the one kept."""
    target, _, support = chairs
    clear_match_clouds()
    matching_rotations(target, support)
    kept = match_cloud(target)
    assert match_cloud(target.copy()) is kept and match_cloud(target.astype(np.float32)) is not kept
    scored = {key: dict(costs) for key, costs in kept.costs.items()}
    distance = chamfer_distance(target, support[0])
    assert kept.costs == scored
    assert distance == scored[match_cloud(support[0]).key][np.eye(3).tobytes()]


def test_the_kept_clouds_are_bounded():
    rng = np.random.default_rng(0)
    clouds = [rng.normal(size=(8, 3)) for _ in range(MATCH_CLOUDS_KEPT + 1)]
    clear_match_clouds()
    first = match_cloud(clouds[0])
    for cloud in clouds[1:]:
        match_cloud(cloud)
    assert match_cloud(clouds[-1]) is match_cloud(clouds[-1])
    assert match_cloud(clouds[0]) is not first
