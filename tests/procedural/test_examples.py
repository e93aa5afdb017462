"""The procedural example generator and the committed example GLBs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from bipart_cli.io import asset_from_scene, load_asset
from bipart_cli.procedural import (
    CATEGORIES,
    make_pieces,
    make_shape,
    node_names,
    write_corpus,
    write_examples,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _vertices(scene) -> np.ndarray:
    return np.concatenate([g.vertices for g in scene.geometry.values()])


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_every_category_is_seeded_and_varies(category):
    a, b, c = make_shape(category, 11), make_shape(category, 11), make_shape(category, 12)
    np.testing.assert_array_equal(_vertices(a), _vertices(b))
    va, vc = _vertices(a), _vertices(c)
    assert va.shape != vc.shape or not np.allclose(va, vc)


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_every_category_loads_back_with_its_parts(category):
    for seed in range(3):
        pieces = make_pieces(category, seed)
        asset = asset_from_scene(make_shape(category, seed))
        assert set(asset.part_names) <= set(CATEGORIES[category])
        assert asset.part_names == list(dict.fromkeys(p.part for p in pieces))
        assert (asset.labels >= 0).all()
        sizes = [len(p.mesh.faces) for p in pieces]
        expected = np.repeat([asset.part_names.index(p.part) for p in pieces], sizes)
        np.testing.assert_array_equal(asset.labels, expected)
        assert all(p.mesh.area > 0 for p in pieces)


def test_chair_parts_and_optional_arms():
    """Back and seat first, then what holds the seat up (four legs, rails, or one office
    pedestal: all ``leg``), then two arms or none."""
    with_arms = 0
    for seed in range(12):
        names = node_names(make_pieces("chair", seed))
        assert names[:2] == ["back", "seat"]
        legs = [n for n in names[2:] if n.startswith("leg")]
        assert legs in (["leg"], [f"leg.{i}" for i in range(4)], [f"leg.{i}" for i in range(5)])
        assert names[2 + len(legs) :] in ([], ["arm.0", "arm.1"])
        with_arms += len(names) > 2 + len(legs)
    assert 0 < with_arms < 12


def test_colour_modes():
    grey = make_shape("mug", 0, colors="grey")
    assert all((g.visual.vertex_colors[:, :3] == 160).all() for g in grey.geometry.values())
    parts = make_shape("mug", 0, colors="parts")
    body = parts.geometry["body"].visual.vertex_colors[0, :3]
    handle = parts.geometry["handle"].visual.vertex_colors[0, :3]
    assert not np.array_equal(body, handle)
    with pytest.raises(ValueError):
        make_shape("mug", 0, colors="rainbow")
    with pytest.raises(ValueError, match="unknown category"):
        make_shape("spaceship")


def test_write_examples(tmp_path):
    paths = write_examples(tmp_path, ["table"], n_chairs=2)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "table.glb",
        "chairs/chair_0.glb",
        "chairs/chair_1.glb",
        "chairs/parts.json",
    ]
    assert load_asset(paths[0]).part_names == ["top", "leg"]
    assert not list(tmp_path.rglob("*.tmp"))


def test_the_example_chairs_can_be_indexed(tmp_path):
    """Node names are part labels for ``bipart index`` only when a parts.json names them
    (issue #32 item 3): the example chairs, written or bundled, carry one."""
    from bipart_cli.index import ShapeIndex, build_index

    write_examples(tmp_path, categories=(), n_chairs=2)
    for folder in (tmp_path / "chairs", EXAMPLES / "chairs"):
        out = tmp_path / f"index-{folder.parent.name}"
        build_index(folder, out, no_cache_features=True, progress=False, n_dense=4096)
        chairs = len(list(folder.glob("*.glb")))
        assert len(ShapeIndex.open(out).entries) == chairs


def test_committed_examples_are_small_and_labeled():
    files = sorted(EXAMPLES.glob("*.glb")) + sorted((EXAMPLES / "chairs").glob("*.glb"))
    names = {p.relative_to(EXAMPLES).as_posix() for p in files}
    assert {"chair.glb", "table.glb", "mug.glb", "lamp.glb"} <= names
    assert len(list((EXAMPLES / "chairs").glob("*.glb"))) >= 5
    total = sum(p.stat().st_size for p in EXAMPLES.rglob("*") if p.is_file())
    assert total < 1_000_000
    for path in files:
        asset = load_asset(path)
        assert asset.has_labels and (asset.labels >= 0).all()
    chairs = [load_asset(p) for p in sorted((EXAMPLES / "chairs").glob("*.glb"))]
    assert all(c.part_names[:3] == ["back", "seat", "leg"] for c in chairs)


def test_write_corpus_is_per_category_with_parts_json_and_resumes(tmp_path):
    paths = write_corpus(tmp_path, 3, ["mug", "chair"])
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "mug/mug_0000.glb",
        "mug/mug_0001.glb",
        "mug/mug_0002.glb",
        "chair/chair_0000.glb",
        "chair/chair_0001.glb",
        "chair/chair_0002.glb",
    ]
    assert json.loads((tmp_path / "chair" / "parts.json").read_text()) == {
        "parts": CATEGORIES["chair"]
    }
    digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    assert len(set(digests.values())) == 6  # every shape differs
    bundled = hashlib.sha256(make_shape("chair", 1).export(file_type="glb")).hexdigest()
    assert bundled not in digests.values()  # never one of the bundled example chairs
    (tmp_path / "chair" / "chair_0001.glb").unlink()
    again = write_corpus(tmp_path, 3, ["mug", "chair"])  # re-run: fills the gap, same bytes
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in again} == digests
    with pytest.raises(ValueError, match="unknown categories spaceship"):
        write_corpus(tmp_path, 1, ["spaceship"])


def _lamp_heights(pieces) -> dict[str, float]:
    """Height of each lamp part (y extent), by part name."""
    return {p.part: float(np.ptp(p.mesh.vertices[:, 1])) for p in pieces}


def _part_extents(path: Path, axis: int) -> dict[str, float]:
    """Extent along ``axis`` of each part of the labeled asset at ``path`` (labels per face)."""
    asset = load_asset(path)
    return {
        name: float(np.ptp(asset.vertices[asset.faces[asset.labels == i]][..., axis]))
        for i, name in enumerate(asset.part_names)
    }


def test_lamp_styles_and_the_corpus_draws_no_column():
    """A column lamp's shade is taller than its stem (a table or floor lamp's pole is taller
    than its shade); left to chance, the builder makes table and floor lamps only."""
    for seed in range(8):
        column = _lamp_heights(make_pieces("lamp", seed, style="column"))
        assert column["shade"] > 0.6 and column["shade"] > 2 * column["pole"]
        floor = _lamp_heights(make_pieces("lamp", seed, style="floor"))
        assert floor["pole"] > 1.2 and floor["pole"] > floor["shade"]
        drawn = _lamp_heights(make_pieces("lamp", seed))
        assert drawn["pole"] > drawn["shade"]
    with pytest.raises(ValueError, match="unknown lamp style 'tripod'; known: table, floor"):
        make_pieces("lamp", 0, style="tripod")
    with pytest.raises(ValueError, match="unknown chair style 'column'; known: none"):
        make_pieces("chair", 0, style="column")


def test_ready_made_lamps_hold_every_style(tmp_path):
    """`bipart examples` lamps take the styles in turn (table, floor, column, ...)."""
    from bipart_cli.procedural import write_support_sets

    folder = write_support_sets(tmp_path, ["lamp"], per_category=3)["lamp"]
    heights = [_part_extents(path, axis=1) for path in sorted(folder.glob("*.glb"))]
    assert [h["shade"] > h["pole"] for h in heights] == [False, False, True]
    assert heights[1]["pole"] > heights[0]["pole"]  # the floor lamp's pole is the long one


def test_sofa_chaise_runs_out_in_front_as_seat(tmp_path):
    """A chaise sofa is the straight sofa of its seed plus a seat block in front of the seat
    at one end and two legs under it; ready-made sofas alternate straight and chaise."""
    from bipart_cli.procedural import write_support_sets

    for seed in range(6):
        straight, chaise = make_pieces("sofa", seed), make_pieces("sofa", seed, style="chaise")
        assert [p.part for p in chaise] == [p.part for p in straight] + ["seat", "leg", "leg"]
        front = [float(p.mesh.vertices[:, 2].max()) for p in straight if p.part == "seat"][0]
        assert chaise[-3].mesh.vertices[:, 2].max() > front + 0.45  # reaches out in front
        assert chaise[-3].mesh.bounds[0][0] * chaise[-3].mesh.bounds[1][0] >= 0  # one end
    folder = write_support_sets(tmp_path, ["sofa"], per_category=2)["sofa"]
    depths = [_part_extents(path, axis=2)["seat"] for path in sorted(folder.glob("*.glb"))]
    assert depths[1] > depths[0] + 0.45  # the second is the chaise sofa


def test_low_bookshelf_is_no_taller_than_wide_with_two_or_three_boards():
    for seed in range(8):
        low = make_pieces("bookshelf", seed, style="low")
        extents = np.ptp(np.concatenate([p.mesh.vertices for p in low]), axis=0)
        assert extents[1] <= extents[0] * 1.001
        assert sum(p.part == "shelf" for p in low) in (2, 3)
        drawn = make_pieces("bookshelf", seed)  # left to chance: a tall one, 3-6 boards
        assert np.ptp(np.concatenate([p.mesh.vertices for p in drawn]), axis=0)[1] >= 0.8
        assert 3 <= sum(p.part == "shelf" for p in drawn) <= 6
