"""mIoU in the ShapeNetPart convention, against literal hand-worked examples."""

from __future__ import annotations

import json

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


# --- evaluate_index on a tiny index: support ids and zero-shot ---------------------------


@pytest.fixture(scope="module")
def tiny_eval(tmp_path_factory):
    """A 12-shape index over two categories (mug: 3 parts, lamp: 4) and a tiny model folder."""
    from _tiny import tiny_config
    from _training import write_tiny_index

    from bipart_cli.index.shape import default_basis
    from bipart_cli.model import BiPartModel
    from bipart_cli.runtime import seed_everything

    root = tmp_path_factory.mktemp("tiny_eval")
    write_tiny_index(root / "index", default_basis().points)
    seed_everything(0)
    BiPartModel(tiny_config()).save_pretrained(root / "model")
    return root


def run_eval(tiny_eval, **options):
    from bipart_cli.evaluate import evaluate_index

    options = {"weights": str(tiny_eval / "model"), "device": "cpu", "steps": 3, **options}
    return evaluate_index(str(tiny_eval / "index"), **options)


@pytest.mark.slow
def test_report_lists_each_targets_support_shapes(tiny_eval):
    from bipart_cli.index import ShapeIndex

    report = run_eval(tiny_eval, labeler="none", support_size=3, limit=6)
    category = {e.id: e.category for e in ShapeIndex.open(tiny_eval / "index").entries}
    assert report.settings["mode"] == "few-shot" and len(report.shapes) == 6
    for shape in report.shapes:
        assert len(shape.support) == 3 and shape.shape_id not in shape.support
        assert {category[s] for s in shape.support} == {shape.category}
    assert report.to_json()["shapes"][0]["support"] == report.shapes[0].support


def test_zero_shot_adapts_on_the_target_repeated_m_times(tiny_eval, tmp_path):
    import torch

    from bipart_cli.adapt import AdaptSettings
    from bipart_cli.index import ShapeIndex
    from bipart_cli.model import BiPartModel
    from bipart_cli.predict import FeatureCache, adapt_and_predict

    report = run_eval(tiny_eval, labeler="index", zero_shot=True, support_size=4, limit=4)
    assert report.settings["mode"] == "zero-shot" and report.settings["support_index"] is None
    assert len(report.shapes) == 4 and all(s.support == [] for s in report.shapes)

    model = BiPartModel.from_pretrained(tiny_eval / "model").eval()
    index = ShapeIndex.open(tiny_eval / "index")
    settings = AdaptSettings(steps=3, support_size=4)
    for row, shape in enumerate(report.shapes):
        record = index.record(row)
        labels = record.pseudo_labels
        repeated = labels.select_boxes(np.repeat(np.arange(labels.num_boxes), 4))
        predicted, _ = adapt_and_predict(
            model,
            record.points,
            record.points,
            repeated,
            [],
            len(record.part_names),
            settings,
            # with a store, as the evaluation's: network features rounded to float16
            FeatureCache(model, torch.device("cpu"), store=tmp_path / "features"),
        )
        expected = shape_miou(predicted, record.gt_labels, len(record.part_names))
        assert shape.shape_id == record.id and shape.miou == pytest.approx(expected)
        assert shape.miou != pytest.approx(1.0)  # a real prediction, not the labels echoed


def test_zero_shot_needs_the_index_labels_and_no_support_index(tiny_eval):
    from bipart_cli.errors import UsageError

    with pytest.raises(UsageError, match="--labeler index"):
        run_eval(tiny_eval, labeler="none", zero_shot=True)
    with pytest.raises(UsageError, match="no --support-index"):
        run_eval(tiny_eval, zero_shot=True, support_index=str(tiny_eval / "index"))


def test_cli_eval_zero_shot_flag(tiny_eval, run_bipart):
    done = run_bipart(
        "eval",
        "--index",
        str(tiny_eval / "index"),
        "--weights",
        str(tiny_eval / "model"),
        "--zero-shot",
        "--steps",
        "2",
        "--limit",
        "2",
        "--device",
        "cpu",
        "--json",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["settings"]["mode"] == "zero-shot"
    assert [s["support"] for s in report["shapes"]] == [[], []]


def test_support_candidates_equal_a_literal_filter_over_entries(tiny_eval):
    from bipart_cli.support import SupportBank

    bank = SupportBank.from_index(str(tiny_eval / "index"))
    entries = bank.entries
    excluded = entries[3].sha256
    for category in ("mug", "LAMP", "absent"):
        expected = [i for i, e in enumerate(entries) if e.category.lower() == category.lower()]
        assert bool(expected) == (category != "absent")
        assert bank.candidates([], category) == expected
        kept = [i for i in expected if entries[i].sha256 != excluded]
        assert bank.candidates([], category, exclude_sha256=excluded) == kept
    for names in ([entries[0].part_names[0].upper()], entries[-1].part_names, ["nothing"]):
        wanted = {n.lower() for n in names}
        expected = [i for i, e in enumerate(entries) if {n.lower() for n in e.part_names} & wanted]
        assert bank.candidates(names) == expected
    counts = bank.part_counts(list(range(len(entries))), entries[0].part_names)
    wanted = {n.lower() for n in entries[0].part_names}
    assert counts.tolist() == [
        len({n.lower() for n in e.surviving_part_names} & wanted) for e in entries
    ]
