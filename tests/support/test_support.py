"""BPS features and support selection on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from bipart_cli.errors import UsageError
from bipart_cli.labeling.pseudo_labels import PseudoLabels
from bipart_cli.support import (
    BPSBasis,
    bps_features,
    centered_cosine_similarity,
    is_part_perfect,
    part_ratios,
    select_support,
    surviving_part_count,
    surviving_parts,
)


def test_basis_is_seeded_and_uniform_in_the_ball(tmp_path):
    basis = BPSBasis.generate(seed=3)
    assert basis.points.shape == (1024, 3) and basis.points.dtype == np.float32
    assert np.array_equal(basis.points, BPSBasis.generate(seed=3).points)
    assert not np.array_equal(basis.points, BPSBasis.generate(seed=4).points)
    radii = np.linalg.norm(basis.points, axis=1)
    assert radii.max() <= 1.5
    # uniform in volume: a fraction (r/R)^3 lies within radius r
    for fraction in (0.5, 0.8):
        inside = np.mean(radii <= 1.5 * fraction)
        assert abs(inside - fraction**3) < 0.05
    # directions are not biased towards any axis
    assert np.abs(basis.points.mean(0)).max() < 0.1
    loaded = BPSBasis.load(basis.save(tmp_path / "basis.safetensors"))
    assert np.array_equal(loaded.points, basis.points)
    assert (loaded.seed, loaded.radius) == (3, 1.5)


def test_bps_feature_is_the_distance_to_the_nearest_normalised_point():
    rng = np.random.default_rng(0)
    cloud = rng.normal(size=(50, 3)) * [1.0, 2.0, 0.5] + [3.0, -1.0, 2.0]
    basis = BPSBasis.generate(num_points=64, seed=1)
    feature = bps_features(cloud, basis)
    centred = cloud - cloud.mean(0)
    unit = centred / np.linalg.norm(centred, axis=1).max()
    for p, value in zip(basis.points, feature, strict=True):
        assert value == pytest.approx(min(np.linalg.norm(q - p) for q in unit), rel=1e-5)
    # translation and scale are normalised away; a batch gives one row per cloud
    moved = bps_features(cloud * 7.0 - 4.0, basis)
    np.testing.assert_allclose(moved, feature, rtol=1e-5, atol=1e-6)
    batch = bps_features(np.stack([cloud, cloud[::-1]]), basis)
    assert batch.shape == (2, 64)
    np.testing.assert_allclose(batch[1], feature, rtol=1e-6)


def test_centred_cosine_against_the_formula():
    rng = np.random.default_rng(1)
    bank = rng.random((6, 5)) + 10.0  # all positive, like BPS distances
    query = rng.random((2, 5)) + 10.0
    mean = bank.mean(0)
    result = centered_cosine_similarity(query, bank, mean)
    for i in range(2):
        for j in range(6):
            a, b = query[i] - mean, bank[j] - mean
            assert result[i, j] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    raw = (query / np.linalg.norm(query, axis=1, keepdims=True)) @ (
        bank / np.linalg.norm(bank, axis=1, keepdims=True)
    ).T
    assert raw.min() > 0.99  # why we centre: raw cosines are all near 1
    assert result.max() - result.min() > 0.5


def test_part_ratios_of_hand_made_votes():
    votes = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0], [0.0, 0.0]])  # W (N=4, R=2)
    # part 0 wins row 0 (2) and ties row 1 (1); part 1 ties row 1 (1) and wins row 2 (3)
    np.testing.assert_allclose(part_ratios(votes), [3 / 7, 4 / 7])
    np.testing.assert_array_equal(surviving_parts([0.5, 0.495, 0.005]), [True, True, False])
    assert surviving_parts([0.01])[0]  # 0.01 itself survives


def test_part_ratios_from_pseudo_labels():
    masks = np.zeros((3, 200), bool)
    masks[0, :120] = True  # part 0, score 0.9
    masks[1, 100:199] = True  # part 1, score 0.5: wins points 120..198 only
    masks[2, 199] = True  # part 2, score 0.4: one point, below 1 %
    labels = PseudoLabels(masks, [0, 1, 2], [0.9, 0.5, 0.4], ["a", "b", "c"])
    expected = np.array([120 * 0.9, 79 * 0.5, 0.4])
    np.testing.assert_allclose(part_ratios(labels), expected / expected.sum(), rtol=1e-6)
    assert surviving_part_count(labels) == 2


def test_part_perfect_flags_the_category_maximum():
    np.testing.assert_array_equal(is_part_perfect([3, 4, 4, 2]), [False, True, True, False])


def ranked_features():
    """Candidates whose centred similarity to the target falls with the index."""
    target = np.array([1.0, 0.0])
    angles = np.linspace(0.0, np.pi * 0.9, 6)
    candidates = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (6, 2)
    return target, candidates


def test_similarity_picks_the_most_similar():
    target, candidates = ranked_features()
    picked = select_support(target, candidates, m=3, strategy="similarity", mean=np.zeros(2))
    assert picked.tolist() == [0, 1, 2]
    picked = select_support(
        target, candidates, m=3, strategy="similarity", mean=np.zeros(2), exclude=[1]
    )
    assert picked.tolist() == [0, 2, 3]


def test_part_perfect_prefers_complete_shapes_then_fills_by_similarity():
    target, candidates = ranked_features()
    counts = np.array([3, 2, 4, 3, 4, 2])  # perfect: 2 and 4
    kwargs = dict(strategy="part-perfect", mean=np.zeros(2))
    assert select_support(target, candidates, counts, m=2, **kwargs).tolist() == [2, 4]
    assert select_support(target, candidates, counts, m=4, **kwargs).tolist() == [2, 4, 0, 1]
    # the target itself comes first and counts towards m
    assert select_support(target, candidates, counts, m=3, target_index=0, **kwargs).tolist() == [
        0,
        2,
        4,
    ]
    # more slots than candidates: everything once
    assert sorted(select_support(target, candidates, counts, m=10, **kwargs)) == list(range(6))


def test_random_is_seeded_and_respects_exclusions():
    target, candidates = ranked_features()
    first = select_support(target, candidates, m=4, strategy="random", rng=5, exclude=[0])
    again = select_support(target, candidates, m=4, strategy="random", rng=5, exclude=[0])
    assert first.tolist() == again.tolist()
    assert len(set(first.tolist())) == 4 and 0 not in first
    draws = {
        tuple(select_support(target, candidates, m=2, strategy="random", rng=s)) for s in range(20)
    }
    assert len(draws) > 1


def test_unknown_strategy_is_a_usage_error():
    target, candidates = ranked_features()
    with pytest.raises(UsageError, match="unknown support strategy"):
        select_support(target, candidates, strategy="best")


def test_support_folder_caches_the_encoders_features_and_a_new_encoder_replaces_them(tmp_path):
    """``segment --support DIR``: the index caches this model's encoder features; another
    encoder gets its own (re-encoded), never the stale ones."""
    import torch
    from _tiny import tiny_config

    from bipart_cli.index import ShapeIndex, encoder_identity
    from bipart_cli.model import BiPartModel
    from bipart_cli.procedural import make_shape
    from bipart_cli.support import SupportBank

    folder = tmp_path / "support"
    folder.mkdir()
    for seed in (1, 2):
        (folder / f"chair_{seed}.glb").write_bytes(
            make_shape("chair", seed).export(file_type="glb")
        )
    cache = tmp_path / "cache"
    first_shape = {}
    for encoder_seed in (1, 2, 1):
        torch.manual_seed(0)
        model = BiPartModel(tiny_config(encoder_seed=encoder_seed)).eval()
        bank = SupportBank.from_folder(folder, cache, model=model)
        assert ShapeIndex.open(cache).encoder == encoder_identity(model)
        for row in range(len(bank)):
            shape = bank.shape(row, ["back", "seat", "leg", "arm"])
            with torch.no_grad():
                fresh = model.encode(torch.from_numpy(shape.points)[None])[0].numpy()
            assert shape.encoder_features is not None
            np.testing.assert_allclose(shape.encoder_features, fresh, rtol=1e-2, atol=1e-2)
            if row == 0:
                first_shape.setdefault(encoder_seed, fresh)
    # the two encoders really differ, so stale features would have failed above
    assert np.abs(first_shape[1] - first_shape[2]).max() > 0.1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_most_similar_is_the_stable_sort_prefix(seed):
    from bipart_cli.support.selection import most_similar

    rng = np.random.default_rng(seed)
    similarity = rng.integers(0, 6, size=200).astype(np.float32)  # many ties
    pool = np.sort(rng.choice(200, size=120, replace=False))
    for k in (0, 1, 5, 37, 119, 120, 500):
        expected = pool[np.argsort(-similarity[pool], kind="stable")][:k]
        np.testing.assert_array_equal(most_similar(pool, similarity, k), expected)


def test_posed_like_turns_a_lying_support_shape_and_keeps_a_standing_one():
    from bipart_cli.orientation import Z_UP_TO_Y_UP
    from bipart_cli.support import SupportShape

    rng = np.random.default_rng(0)
    standing = np.concatenate(  # a post with a foot to one side: no symmetry to confuse
        [
            rng.uniform([-0.1, -1, -0.1], [0.1, 1, 0.1], (600, 3)),
            rng.uniform([0.1, -1, -0.1], [0.6, -0.8, 0.3], (200, 3)),
        ]
    ).astype(np.float32)
    labels = PseudoLabels(np.ones((1, 800), bool), [0], [1.0], ["post"])
    descriptors = rng.normal(size=(800, 4)).astype(np.float32)
    lying = SupportShape("s", standing @ Z_UP_TO_Y_UP.T, labels, np.ones((800, 2)), descriptors)
    turned = lying.posed_like(standing)
    assert turned.shape_id.startswith("s#turned-") and turned.shape_id != lying.shape_id
    # turned about its own centroid, which stays where it was
    assert np.allclose(turned.points.mean(0), lying.points.mean(0), atol=1e-5)
    centred = turned.points - turned.points.mean(0)
    assert np.abs(centred - (standing - standing.mean(0))).max() < 1e-5
    assert turned.encoder_features is None  # computed in the stored frame
    assert turned.descriptors is descriptors and turned.pseudo_labels is labels
    upright = SupportShape("u", standing, labels, np.ones((800, 2)), descriptors)
    assert upright.posed_like(standing + 0.01) is upright


def test_turned_bps_features_against_turning_the_cloud():
    from bipart_cli.orientation import AXIS_ROTATIONS
    from bipart_cli.signatures import turned_bps_features

    rng = np.random.default_rng(3)
    points = rng.normal(size=(500, 3)) * [1.0, 2.0, 0.5] + [0.3, -0.2, 0.1]
    basis = rng.uniform(-1, 1, (64, 3))
    turns = AXIS_ROTATIONS[[0, 5, 17]]
    fast = turned_bps_features(points, basis, turns)
    centre = points.mean(0)
    for turn, row in zip(turns, fast, strict=True):
        slow = bps_features((points - centre) @ turn.T + centre, basis)
        assert np.allclose(row, slow, atol=1e-5)


def test_any_turn_retrieval_finds_a_shape_lying_in_another_pose(tmp_path):
    from _training import write_tiny_index

    from bipart_cli.index.shape import default_basis
    from bipart_cli.orientation import AXIS_ROTATIONS
    from bipart_cli.support import SupportBank

    write_tiny_index(tmp_path / "index", default_basis().points, count=12)
    bank = SupportBank.from_index(str(tmp_path / "index"))
    record = bank.index.record(4)
    names = list(record.part_names)
    turned = record.points @ AXIS_ROTATIONS[7].T  # the same shape, on its side
    found = bank.select(turned, names, m=1, strategy="similarity", any_turn=True)
    assert found == [4]
    assert bank.select(turned, names, m=1, strategy="similarity") != [4]  # missed as given
    # as given, the upright copy is found too, and any_turn keeps it first
    assert bank.select(record.points, names, m=1, strategy="similarity") == [4]
    assert bank.select(record.points, names, m=1, strategy="similarity", any_turn=True) == [4]


class _BpsOnlyIndex:
    """What SupportBank reads of an index to choose (entries, BPS matrix, basis), in memory:
    thousands of shapes without writing their records (and nothing kept on disk)."""

    def __init__(self, bps: np.ndarray, basis: np.ndarray, part_sets: list[list[str]]) -> None:
        from types import SimpleNamespace

        from bipart_cli.index.format import IndexEntry

        self.entries = [
            IndexEntry(
                id=f"s{i}",
                category=f"c{i % 7}",
                part_names=names,
                source=f"s{i}.ply",
                sha256=f"{i:064x}",
                has_ground_truth=True,
                num_boxes=len(names),
                part_ratio=[1.0 / len(names)] * len(names),
                surviving_parts=len(names),
            )
            for i, names in enumerate(part_sets)
        ]
        self._bps = bps
        self.basis = SimpleNamespace(points=basis)

    def bps_matrix(self, keep: bool = True) -> np.ndarray:
        return self._bps

    def derived_store(self) -> None:
        return None


@pytest.mark.parametrize("strategy", ["part-perfect", "similarity"])
@pytest.mark.parametrize("any_turn", [False, True])
def test_pruned_retrieval_picks_what_scoring_every_shape_picks(monkeypatch, strategy, any_turn):
    """Over many candidates the bank bounds similarities on a projection of the BPS and
    scores only the rows still in the running: the picks (and their order) are those of
    the float64 cosines of every candidate at the target's best turn."""
    import bipart_cli.support.bank as bank_module
    import bipart_cli.support.selection as selection
    from bipart_cli.orientation import AXIS_ROTATIONS
    from bipart_cli.signatures import turned_bps_features
    from bipart_cli.support import SupportBank

    rng = np.random.default_rng(7)
    basis = rng.uniform(-1, 1, (96, 3))
    # shapes near a few templates, as real categories are: a low-rank matrix plus noise
    templates = rng.normal(size=(6, 2048, 3)) * [1.0, 0.6, 0.3]
    stretches = np.exp(0.3 * rng.normal(size=(900, 3)))  # each shape its own proportions
    shapes = [
        templates[i % 6][:256] * stretches[i] + 0.05 * rng.normal(size=(256, 3)) for i in range(900)
    ]
    bps = np.stack([bps_features(s, basis) for s in shapes]).astype(np.float32)
    part_sets = [["a", "b", "c"] if i % 3 else ["a", "b"] for i in range(900)]
    bank = SupportBank(_BpsOnlyIndex(bps, basis, part_sets))
    monkeypatch.setattr(bank_module, "PROJECTED_MIN_ROWS", 100)
    monkeypatch.setattr(bank_module, "PROJECTED_RANK", 12)
    scored = []  # how many rows each query scores on the full BPS (a spy, not a stand-in)
    bounded = selection.rows_that_may_be_picked

    def spy(*args):
        may = bounded(*args)
        scored.append(int(may.sum()))
        return may

    monkeypatch.setattr(selection, "rows_that_may_be_picked", spy)
    for trial in range(6):
        target = templates[trial % 6][:512] + 0.05 * rng.normal(size=(512, 3))
        parts = ["a", "b", "c"]
        rows = np.asarray(bank.candidates(parts))
        if any_turn:
            features = turned_bps_features(target, basis, AXIS_ROTATIONS)
        else:
            features = bps_features(target, basis)[None]
        cosines = centered_cosine_similarity(features, bps[rows], bank.bps_mean).max(0)
        expected = select_support(
            None, None, bank.part_counts(list(rows), parts), m=8, strategy=strategy,
            similarity=cosines,
        )  # fmt: skip
        found = bank.select(target, parts, m=8, strategy=strategy, any_turn=any_turn)
        assert found == [int(rows[k]) for k in expected]
    assert bank._projected[1].shape == (900, 12)
    assert max(scored) < 0.5 * len(rows)  # it did prune: most rows never scored in full


def test_centred_unit_rows_in_blocks_equal_the_whole_matrix_formula():
    from bipart_cli.support.bank import centred_unit_rows
    from bipart_cli.support.selection import unit_rows

    bps = np.random.default_rng(0).normal(size=(1000, 64)).astype(np.float32)
    bps[7] = 0.0
    mean = bps.mean(0, dtype=np.float64)
    whole = unit_rows((bps - mean).astype(np.float32))
    np.testing.assert_array_equal(centred_unit_rows(bps, mean, block=128), whole)
