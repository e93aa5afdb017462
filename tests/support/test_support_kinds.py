"""Issue #32 item 4: ``segment --index`` must not mix kinds of object. A shape whose labels
name fewer than half the requested parts is never support (fewer shapes rather than wrong
ones), and one warning says which requested parts the support lacks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import trimesh
from _synthetic_index import synthetic_basis, synthetic_record, write_index

from bipart_cli.labeling.pseudo_labels import PseudoLabels
from bipart_cli.procedural import make_shape
from bipart_cli.support import SupportBank, SupportShape, bps_features

CHAIR_PARTS = ["back", "seat", "leg"]


def _points(category: str, seed: int, n: int = 2048) -> np.ndarray:
    """(n, 3) float32 surface points of a procedural shape."""
    mesh = make_shape(category, seed).to_geometry()
    points, _ = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return np.asarray(points, dtype=np.float32)


def _record(i: int, category: str, part_names: list[str], points: np.ndarray, basis: np.ndarray):
    """A synthetic index record of ``category`` with ``part_names`` on real shape points."""
    record = synthetic_record(i)
    labels = PseudoLabels(
        masks=np.stack([np.arange(len(points)) % len(part_names) == k for k in range(3)]),
        part_index=np.arange(3) % len(part_names),
        scores=np.ones(3, np.float32),
        part_names=part_names,
    )
    return dataclasses.replace(
        record,
        id=f"{category}/{category}_{i}.glb",
        source=f"{category}/{category}_{i}.glb",
        category=category,
        part_names=part_names,
        points=points,
        bps=bps_features(points, basis).astype(np.float32),
        pseudo_labels=labels,
        gt_labels=None,
        dense_gt_labels=None,
    )


@pytest.fixture(scope="module")
def chairs_and_tables(tmp_path_factory):
    """An index of 6 chairs (back, seat, leg) and 6 tables (top, leg), and a chair target."""
    basis = synthetic_basis().points
    records = [_record(i, "chair", CHAIR_PARTS, _points("chair", i), basis) for i in range(6)] + [
        _record(6 + i, "table", ["top", "leg"], _points("table", i), basis) for i in range(6)
    ]
    folder = tmp_path_factory.mktemp("kinds") / "index"
    write_index(folder, records)
    return folder, _points("chair", 40)


@pytest.mark.parametrize("strategy", ["part-perfect", "similarity", "random"])
def test_a_chairs_support_from_chairs_and_tables_holds_only_chairs(chairs_and_tables, strategy):
    folder, target = chairs_and_tables
    bank = SupportBank.from_index(str(folder))
    support = bank.retrieve(target, CHAIR_PARTS, m=8, strategy=strategy)
    # fewer than M=8 rather than a table: tables name 1 of the 3 parts (leg)
    assert [shape.shape_id.split("/")[0] for shape in support] == ["chair"] * 6


def test_half_the_parts_is_enough_and_fewer_is_never_support(chairs_and_tables):
    folder, target = chairs_and_tables
    bank = SupportBank.from_index(str(folder))
    # for top and leg a chair names one of two, half: it stays a candidate (its legs teach
    # legs), after the tables, which name both
    picks = bank.select(target, ["top", "leg"], m=8)
    assert [bank.entries[row].category for row in picks] == ["table"] * 6 + ["chair"] * 2
    assert len(bank.candidates(["top", "leg"])) == 12
    assert bank.candidates(["top", "leg", "drawer"]) == list(range(6, 12))  # 2 of 3: tables
    assert bank.candidates(["top", "drawer", "door"]) == []  # 1 of 3 at most: none


@pytest.mark.parametrize("strategy", ["part-perfect", "similarity", "random"])
def test_the_rule_changes_no_pick_when_every_candidate_names_the_requested_parts(
    monkeypatch, chairs_and_tables, strategy, tmp_path
):
    """Few-shot benchmarks go through this selection: where every candidate's labels name
    the requested parts (a category's shapes, each listing its parts), the picks are those
    of the selection without the rule, shape for shape and in order."""
    import bipart_cli.support.selection as selection

    basis = synthetic_basis().points
    records = [
        _record(i, "chair", ["back", "seat", "leg", "arm"], _points("chair", i), basis)
        for i in range(10)
    ]
    write_index(tmp_path / "index", records)
    bank = SupportBank.from_index(str(tmp_path / "index"))
    targets = [_points("chair", 50 + k) for k in range(3)]
    requests = [["back", "seat", "leg", "arm"], ["back", "seat"], ["arm"]]
    with_rule = [
        bank.select(t, parts, m=4, strategy=strategy, rng=np.random.default_rng(1))
        for t in targets
        for parts in requests
    ]
    monkeypatch.setattr(selection, "MIN_NAMED_SHARE", 0.0)  # the selection before the rule
    without_rule = [
        bank.select(t, parts, m=4, strategy=strategy, rng=np.random.default_rng(1))
        for t in targets
        for parts in requests
    ]
    assert with_rule == without_rule
    assert all(len(picks) == 4 for picks in with_rule)


def _shape(names: list[str], labeled: list[str]) -> SupportShape:
    """A 30-point support shape whose labels cover only the parts ``labeled``."""
    masks = np.zeros((len(labeled), 30), bool)
    for k in range(len(labeled)):
        masks[k, 10 * k : 10 * k + 10] = True
    index = [names.index(name) for name in labeled]
    labels = PseudoLabels(masks, index, np.ones(len(labeled), np.float32), names)
    return SupportShape("s", np.zeros((30, 3), np.float32), labels)


def test_one_warning_names_the_parts_the_support_lacks_even_when_boxes_cover_them():
    from bipart_cli.support import support_gap_warning

    parts = ["back", "seat", "leg", "arm", "cushion"]
    support = [_shape(parts, ["back", "seat", "leg"]) for _ in range(3)]
    boxes = _shape(parts, ["back", "arm"]).pseudo_labels  # the target's detector boxes
    warning = support_gap_warning(parts, support, boxes)
    assert warning.startswith("none of the 3 support shapes has the parts 'arm', 'cushion'")
    assert "only the detector's boxes teach the part 'arm'" in warning
    assert "nothing teaches the part 'cushion'" in warning
    assert support_gap_warning(parts, support, None) == (
        "none of the 3 support shapes has the parts 'arm', 'cushion'; nothing teaches them: "
        "add labeled shapes that have them to the support"
    )
    assert support_gap_warning(parts[:3], support, None) is None
    assert support_gap_warning(parts, [], boxes, zero_shot=True).startswith(
        "no detector box finds the parts 'seat', 'leg', 'cushion'"
    )


def test_a_part_every_support_shape_has_and_the_target_was_not_given_is_named():
    from bipart_cli.support import unfound_parts_warning

    parts = ["back", "seat", "leg", "arm"]
    support = [
        _shape(parts, ["back", "seat", "leg"]),
        _shape(parts, ["back", "seat", "leg", "arm"]),
    ]
    no_leg = np.array([0, 0, 1, 1, 3, -1])  # back, seat and arm; no leg
    assert unfound_parts_warning(parts, support, no_leg) == (
        "every one of the 2 support shapes has the part 'leg', but no point of this shape was "
        "called so: it lacks it or holds it otherwise (folded, hidden, of another form); "
        "support shapes like this one would label it"
    )
    # 'arm' is absent from the target too, but not every support shape has it
    only_back_and_seat = unfound_parts_warning(parts, support, np.array([0, 1]))
    assert "has the part 'leg'," in only_back_and_seat and "'arm'" not in only_back_and_seat
    assert unfound_parts_warning(parts, support, np.array([0, 1, 2])) is None
    assert unfound_parts_warning(parts, support[:1], no_leg) is None  # one shape: no "every"
    assert unfound_parts_warning(parts, [], np.array([-1, -1])) is None
