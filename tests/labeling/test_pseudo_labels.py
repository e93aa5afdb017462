"""PseudoLabels persistence, teacher vote, and the label_asset cache."""

from __future__ import annotations

import numpy as np
import pytest

from bipart_cli.labeling.pseudo_labels import PseudoLabels


def _random_pseudo(num_boxes=7, num_points=37, num_parts=3, seed=0) -> PseudoLabels:
    rng = np.random.default_rng(seed)
    return PseudoLabels(
        masks=rng.random((num_boxes, num_points)) < 0.3,
        part_index=rng.integers(0, num_parts, num_boxes),
        scores=rng.uniform(0.5, 1.0, num_boxes).astype(np.float32),
        part_names=["back", "seat", "leg"][:num_parts],
        view_index=rng.integers(0, 10, num_boxes),
        boxes=rng.uniform(0, 64, (num_boxes, 4)).astype(np.float32),
        provenance={"labeler": "simulated", "simulated": True, "render": {"image_size": 64}},
    )


@pytest.mark.parametrize("num_boxes", [0, 1, 7])
def test_save_load_round_trip(tmp_path, num_boxes):
    pseudo = _random_pseudo(num_boxes=num_boxes)
    loaded = PseudoLabels.load(pseudo.save(tmp_path / "x.pseudo.safetensors"))
    np.testing.assert_array_equal(loaded.masks, pseudo.masks)
    assert loaded.masks.shape == (num_boxes, 37)
    np.testing.assert_array_equal(loaded.part_index, pseudo.part_index)
    np.testing.assert_array_equal(loaded.scores, pseudo.scores)
    np.testing.assert_array_equal(loaded.view_index, pseudo.view_index)
    np.testing.assert_array_equal(loaded.boxes, pseudo.boxes)
    assert loaded.part_names == pseudo.part_names
    assert loaded.provenance == pseudo.provenance


def test_teacher_vote_matches_naive_loop():
    pseudo = _random_pseudo(num_boxes=12, num_points=50)
    expected = []
    for n in range(50):
        votes = [0.0] * 3
        for d in range(12):
            if pseudo.masks[d, n]:
                votes[pseudo.part_index[d]] += float(pseudo.scores[d])
        expected.append(int(np.argmax(votes)) if max(votes) > 0 else -1)
    np.testing.assert_array_equal(pseudo.teacher_labels(), expected)


def test_label_asset_caches_by_key(tmp_path):
    pytest.importorskip("torch")
    from bipart_cli.io import load_asset
    from bipart_cli.labeling import label_asset
    from bipart_cli.procedural import make_shape
    from bipart_cli.render import RenderSettings

    path = tmp_path / "chair.glb"
    make_shape("chair", seed=1).export(path)
    asset = load_asset(path)
    options = {
        "render_settings": RenderSettings(image_size=64),
        "n_dense": 2000,
        "cache_dir": tmp_path / "cache",
    }
    first = label_asset(asset, ["back", "seat", "leg"], "simulated", **options)
    assert first.rendering is not None
    assert len(list((tmp_path / "cache").glob("*.pseudo.safetensors"))) == 1
    second = label_asset(asset, ["back", "seat", "leg"], "simulated", **options)
    assert second.rendering is None  # served from the cache
    np.testing.assert_array_equal(second.pseudo_labels.masks, first.pseudo_labels.masks)
    label_asset(asset, ["back", "seat", "leg"], "simulated", swap_rate=0.5, **options)
    assert len(list((tmp_path / "cache").glob("*.pseudo.safetensors"))) == 2  # new config, new key


def test_select_boxes_keeps_repeats_and_replaces_parts():
    from bipart_cli.labeling.pseudo_labels import PseudoLabels

    labels = PseudoLabels(
        masks=np.array([[1, 0, 1], [0, 1, 0]], bool),
        part_index=np.array([0, 1]),
        scores=np.array([0.9, 0.6]),
        part_names=["seat", "leg"],
        view_index=np.array([3, 4]),
    )
    repeated = labels.select_boxes(np.array([1, 1, 0]))
    assert repeated.masks.tolist() == [[0, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert repeated.part_index.tolist() == [1, 1, 0]
    assert repeated.view_index.tolist() == [4, 4, 3]
    np.testing.assert_allclose(repeated.scores, [0.6, 0.6, 0.9])
    renamed = labels.select_boxes(
        np.array([False, True]), part_index=np.array([2]), part_names=["a", "b", "leg"]
    )
    assert renamed.part_index.tolist() == [2] and renamed.part_names == ["a", "b", "leg"]
    assert renamed.masks.tolist() == [[False, True, False]]
