"""The posed creatures: parts, seeding, pose variety, size and up conventions, and the
defaults that leave them out."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import trimesh

from bipart_cli.procedural import (
    CATEGORIES,
    DEFAULT_CATEGORIES,
    make_pieces,
    write_support_sets,
)
from bipart_cli.procedural.primitives import tube

SEEDS = range(6)

# category -> (part, instances) in every shape
INSTANCES = {
    "humanoid": {"head": 1, "torso": 1, "arm": 2, "leg": 2},
    "quadruped": {"head": 1, "torso": 1, "leg": 4, "tail": 1},
    "bird": {"head": 1, "body": 1, "wing": 2, "tail": 1, "leg": 2},
    "fish": {"body": 1, "tail": 1},  # fins: 3 or 4, below
    "hand": {"palm": 1, "finger": 4, "thumb": 1},
    "octopus": {"head": 1, "tentacle": 8},
}
CREATURES = list(INSTANCES)

# category -> (anchor part, posed part): the direction from the one to the other moves
# with the pose (an arm raised or lowered, a tail held high or low, a wing folded or
# spread, a body bent, a finger curled, a tentacle curling)
POSED = {
    "humanoid": ("torso", "arm"),
    "quadruped": ("torso", "tail"),
    "bird": ("body", "wing"),
    "fish": ("body", "tail"),
    "hand": ("palm", "finger"),
    "octopus": ("head", "tentacle"),
}

# category -> parts from top to bottom (centroid heights): the shape is upright
UPRIGHT = {
    "humanoid": ["head", "torso", "leg"],
    "quadruped": ["torso", "leg"],
    "bird": ["head", "body", "leg"],
    "hand": ["finger", "palm"],
    "octopus": ["head", "tentacle"],
}


def _vertices(pieces) -> np.ndarray:
    return np.concatenate([p.mesh.vertices for p in pieces])


def _centroid(pieces, part) -> np.ndarray:
    return _vertices([p for p in pieces if p.part == part]).mean(axis=0)


def test_the_creatures_are_registered_but_not_defaults():
    assert set(CREATURES) <= set(CATEGORIES)
    assert not set(CREATURES) & set(DEFAULT_CATEGORIES)
    assert set(DEFAULT_CATEGORIES) <= set(CATEGORIES)
    assert len(DEFAULT_CATEGORIES) == 14  # what the README and the shipped weights promise
    for category in CREATURES:
        assert set(INSTANCES[category]) <= set(CATEGORIES[category])


@pytest.mark.parametrize("category", CREATURES)
def test_every_shape_has_all_its_parts_once_per_instance(category):
    for seed in SEEDS:
        pieces = make_pieces(category, seed)
        counts = {part: sum(p.part == part for p in pieces) for part in CATEGORIES[category]}
        assert set(p.part for p in pieces) == set(CATEGORIES[category])
        for part, n in INSTANCES[category].items():
            assert counts[part] == n, (seed, part, counts)
        if category == "fish":
            assert counts["fin"] in (3, 4)


@pytest.mark.parametrize("category", CREATURES)
def test_same_seed_same_shape_other_seed_other_shape(category):
    a, b = _vertices(make_pieces(category, 5)), _vertices(make_pieces(category, 5))
    np.testing.assert_array_equal(a, b)
    c = _vertices(make_pieces(category, 6))
    assert a.shape != c.shape or not np.allclose(a, c)


@pytest.mark.parametrize("category", CREATURES)
def test_the_pose_varies_with_the_seed(category):
    anchor, posed = POSED[category]
    directions = []
    for seed in SEEDS:
        pieces = make_pieces(category, seed)
        limb = next(p for p in pieces if p.part == posed)  # the first instance
        offset = limb.mesh.vertices.mean(axis=0) - _centroid(pieces, anchor)
        directions.append(offset / np.linalg.norm(offset))
    widest = max(np.arccos(np.clip(u @ v, -1, 1)) for u, v in itertools.combinations(directions, 2))
    assert widest > 0.5, f"{posed} always lies the same way from the {anchor}"


@pytest.mark.parametrize("category", CREATURES)
def test_size_ground_and_up(category):
    for seed in SEEDS:
        pieces = make_pieces(category, seed)
        points = _vertices(pieces)
        assert np.isfinite(points).all()
        low, high = points.min(axis=0), points.max(axis=0)
        assert (high - low).max() == pytest.approx(1.0)  # one unit tall or long
        assert low[1] == pytest.approx(0.0, abs=1e-9)  # resting on y = 0
        np.testing.assert_allclose([low[0] + high[0], low[2] + high[2]], 0.0, atol=1e-9)
        heights = [_centroid(pieces, part)[1] for part in UPRIGHT.get(category, [])]
        assert heights == sorted(heights, reverse=True), (seed, heights)
        if category == "fish":  # long along x, as the vehicles are, however bent
            assert high[0] - low[0] == pytest.approx(1.0)


@pytest.mark.parametrize("category", CREATURES)
def test_low_poly_closed_meshes(category):
    for seed in SEEDS:
        pieces = make_pieces(category, seed)
        faces = sum(len(p.mesh.faces) for p in pieces)
        assert 300 <= faces <= 2500, faces
        for piece in pieces:
            assert len(piece.mesh.faces) > 0 and piece.mesh.area > 0
            assert piece.mesh.is_watertight and piece.mesh.volume > 0  # faces wind outwards


def test_tube_is_closed_tapered_and_wound_outwards():
    path = np.array([[0, 0, 0], [0, 1, 0], [1, 2, 0.5], [2, 2, 1]], float)
    mesh = tube(path, [0.2, 0.15, 0.1, 0.05], sections=6)
    assert len(mesh.vertices) == 4 * 6 + 2 and len(mesh.faces) == 3 * 12 + 12
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    rings = mesh.vertices[:24].reshape(4, 6, 3)
    radii = np.linalg.norm(rings - path[:, None], axis=2)
    np.testing.assert_allclose(radii.mean(axis=1), [0.2, 0.15, 0.1, 0.05], rtol=0.2)
    straight = tube([[0, 0, 0], [0, 0, 2]], 0.5, sections=32)
    cylinder = trimesh.creation.cylinder(radius=0.5, height=2, sections=32)
    assert straight.volume == pytest.approx(cylinder.volume, rel=1e-6)


def test_support_sets_default_to_the_default_categories(tmp_path, monkeypatch):
    # write_corpus is the slow part; its category list is what matters here
    import bipart_cli.procedural.writers as writers

    seen = {}
    monkeypatch.setattr(
        writers, "write_corpus", lambda out, n, chosen, **kw: seen.setdefault("c", chosen)
    )
    folders = write_support_sets(tmp_path)
    assert seen["c"] == list(DEFAULT_CATEGORIES) == list(folders)


def test_bend_keeps_lengths_and_is_exact_when_straight():
    from bipart_cli.procedural.sea_creatures import bend

    line = np.stack([np.linspace(0.5, -0.5, 11), np.zeros(11), np.zeros(11)], 1)
    np.testing.assert_allclose(bend(line, 0.0, 0.5), line, atol=1e-12)
    bent = bend(line, 1.2, 0.5)
    steps = np.linalg.norm(np.diff(bent, axis=0), axis=1)
    assert abs(bent[-1, 2]) > 0.3  # the tail swings aside
    assert steps.sum() == pytest.approx(1.0, rel=0.01)  # the chord of each 0.1 arc
