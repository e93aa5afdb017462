"""The given and simulated labelers on a generated chair."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from bipart_cli.evaluate import shape_miou  # noqa: E402
from bipart_cli.io import load_asset, sample_dense  # noqa: E402
from bipart_cli.labeling import make_labeler  # noqa: E402
from bipart_cli.labeling.simulated import NoiseModel  # noqa: E402
from bipart_cli.procedural import make_shape  # noqa: E402
from bipart_cli.render import RenderSettings  # noqa: E402

SMALL = RenderSettings(image_size=96)


@pytest.fixture(scope="module")
def chair(tmp_path_factory):
    path = tmp_path_factory.mktemp("chair") / "chair.glb"
    make_shape("chair", seed=4).export(path)  # four legs, no arms
    asset = load_asset(path)
    return asset, sample_dense(asset, 4000, seed=0)


def _simulate(dense, names, seed=0, **noise):
    labeler = make_labeler("simulated", render_settings=SMALL, **noise)
    return labeler.label(dense, names, seed=seed)


def test_given_is_one_full_box_per_part(chair):
    asset, dense = chair
    pseudo = make_labeler("given").label(dense, asset.part_names)
    present = np.unique(dense.labels[dense.labels >= 0])
    np.testing.assert_array_equal(pseudo.part_index, present)
    for mask, part in zip(pseudo.masks, pseudo.part_index, strict=True):
        np.testing.assert_array_equal(mask, dense.labels == part)
    assert (pseudo.scores == 1).all()
    np.testing.assert_array_equal(pseudo.teacher_labels(), dense.labels)


def test_simulated_is_deterministic_per_seed_and_marked(chair):
    asset, dense = chair
    first = _simulate(dense, asset.part_names, seed=3)
    again = _simulate(dense, asset.part_names, seed=3)
    other = _simulate(dense, asset.part_names, seed=4)
    np.testing.assert_array_equal(first.masks, again.masks)
    np.testing.assert_array_equal(first.scores, again.scores)
    assert first.scores.shape != other.scores.shape or not np.array_equal(
        first.scores, other.scores
    )
    assert first.provenance["simulated"] is True and first.provenance["labeler"] == "simulated"
    assert ((first.scores >= 0.5) & (first.scores <= 0.95)).all()


def test_without_noise_boxes_name_their_parts(chair):
    asset, dense = chair
    clean = _simulate(
        dense,
        asset.part_names,
        miss_rate=0,
        small_part_miss=0,
        jitter=0,
        swap_rate=0,
        false_positive_rate=0,
    )
    assert clean.num_boxes >= len(asset.part_names)
    for mask, part in zip(clean.masks, clean.part_index, strict=True):
        # the box is tight around the part's visible pixels: all its visible points are in it
        assert (dense.labels[mask] == part).mean() > 0.3
    assert shape_miou(clean.teacher_labels(), dense.labels, len(asset.part_names)) > 0.5


def test_noise_knobs_have_effect(chair):
    asset, dense = chair
    names = asset.part_names
    none_found = _simulate(dense, names, miss_rate=1.0, false_positive_rate=0)
    assert none_found.num_boxes == 0
    clean = _simulate(
        dense, names, miss_rate=0, small_part_miss=0, jitter=0, swap_rate=0, false_positive_rate=0
    )
    swapped = _simulate(
        dense, names, miss_rate=0, small_part_miss=0, jitter=0, swap_rate=1.0, false_positive_rate=0
    )
    assert swapped.num_boxes == clean.num_boxes
    np.testing.assert_array_equal(swapped.masks, clean.masks)
    assert (swapped.part_index != clean.part_index).all()
    extra = _simulate(
        dense, names, miss_rate=0, small_part_miss=0, jitter=0, swap_rate=0, false_positive_rate=5.0
    )
    assert extra.num_boxes > clean.num_boxes


def test_miss_probability_rises_as_area_falls():
    noise = NoiseModel()
    probability = noise.miss_probability(np.array([0.5, 0.1, 0.01]))
    assert probability[0] < probability[1] < probability[2] <= 1
    assert NoiseModel(miss_rate=0.2, small_part_miss=0).miss_probability(np.array([0.01]))[
        0
    ] == pytest.approx(0.2)
    with pytest.raises(ValueError):
        NoiseModel(swap_rate=2.0)
