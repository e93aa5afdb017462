"""A mesh's pieces named for a requested part take it (bipart_cli.io.piece_names)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from bipart_cli.io import load_asset
from bipart_cli.io.piece_names import (
    OBJECT,
    UNNAMED,
    NamedPiece,
    face_parts_from_names,
    labels_following_names,
    mentions,
    name_words,
    named_pieces_json,
    piece_parts,
    without,
)

PARTS = ["body", "door", "drawer"]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("Mesh doorLeft.001", ["door", "left"]),
        ("kitchenCabinetDrawer.002_558018", ["kitchen", "cabinet", "drawer"]),
        ("Door_L", ["door", "l"]),
        ("HTMLPanel", ["html", "panel"]),
        ("Tür.003", ["tür"]),
        ("门_2", ["门"]),
        ("Cube.001", []),
        ("Object_3", []),
        ("door_facade", ["door", "facade"]),  # a word of hex letters is no trimesh suffix
    ],
)
def test_name_words(name, words):
    assert name_words(name) == words


@pytest.mark.parametrize(
    ("name", "part", "expected"),
    [
        ("Mesh door.008", "door", True),
        ("doors", "door", True),
        ("Mesh washerDoor", "door", True),
        ("boxes", "box", True),
        ("Tabletop", "top", False),  # no part of a word
        ("Armature", "arm", False),
        ("BackRest", "back rest", True),
        ("backrest", "back_rest", True),  # the part's words run together
        ("back", "back rest", False),
        ("RestBack", "back rest", False),  # in order
        ("Tür_links", "Tür", True),
    ],
)
def test_mentions(name, part, expected):
    assert mentions(name_words(name), name_words(part)) is expected


def test_without_takes_out_every_run():
    words = ["kitchen", "cabinet", "drawer", "handle", "kitchen", "cabinet", "drawer"]
    assert without(words, ["kitchen", "cabinet", "drawer"]) == ["handle"]
    assert without(["drawer"], ["kitchen", "cabinet", "drawer"]) == ["drawer"]
    assert without(["a", "b"], []) == ["a", "b"]


def _box(center, size=(0.2, 0.2, 0.2)):
    return trimesh.creation.box(
        extents=size, transform=trimesh.transformations.translation_matrix(center)
    )


def cabinet_glb(
    path: Path, pieces: dict[str, tuple[str, list]], root: str | None = "cabinet"
) -> Path:
    """A GLB of boxes: ``pieces`` maps a node name to (its mesh's name, its centre); under one
    root node ``root`` (None: every node at the top)."""
    scene = trimesh.Scene()
    if root is not None:
        scene.graph.update(frame_to=root, frame_from=scene.graph.base_frame)
    for node, (mesh_name, center) in pieces.items():
        scene.add_geometry(_box(center), node_name=node, geom_name=mesh_name, parent_node_name=root)
    path.write_bytes(scene.export(file_type="glb"))
    return path


@pytest.fixture
def kitchen_cabinet(tmp_path) -> Path:
    """Kenney's naming: the nodes carry the object's name, the meshes the parts'."""
    return cabinet_glb(
        tmp_path / "kitchenCabinetDrawer.glb",
        {
            "kitchenCabinetDrawer.000": ("Mesh kitchenCabinetDrawer", [0, 0, 0]),
            "kitchenCabinetDrawer.001": ("Mesh door.008", [0, 0, 0.5]),
            "kitchenCabinetDrawer.002": ("Mesh drawer.004", [0, 0.5, 0.5]),
            "kitchenCabinetDrawer.003": ("Cube.007", [0.5, 0, 0]),
        },
        root="kitchenCabinetDrawer",
    )


def _by_mesh(asset, given):
    return {
        asset.scene.graph[node][1]: int(g)
        for node, g in zip(asset.geometry_nodes, given, strict=True)
    }


def test_pieces_take_the_part_their_mesh_names(kitchen_cabinet):
    asset = load_asset(kitchen_cabinet)
    given, named = piece_parts(asset, PARTS)
    assert _by_mesh(asset, given) == {
        "Mesh kitchenCabinetDrawer": OBJECT,  # the object's own name, not its drawer
        "Mesh door.008": 1,
        "Mesh drawer.004": 2,
        "Cube.007": UNNAMED,
    }
    assert sorted((piece.name, piece.part) for piece in named) == [
        ("Mesh door.008", 1),
        ("Mesh drawer.004", 2),
    ]


def test_the_one_root_is_the_object_even_when_the_file_is_renamed(kitchen_cabinet, tmp_path):
    renamed = tmp_path / "cab.glb"
    renamed.write_bytes(kitchen_cabinet.read_bytes())
    asset = load_asset(renamed)
    given, _ = piece_parts(asset, PARTS)
    assert _by_mesh(asset, given)["Mesh kitchenCabinetDrawer"] == OBJECT


def test_top_level_nodes_named_for_parts_name_them(tmp_path):
    """A flat hierarchy (a CAD export's): each top node is a piece, and its name counts."""
    path = cabinet_glb(
        tmp_path / "assembly.glb",
        {"Body_Shell": ("mesh_0", [0, 0, 0]), "Door_L": ("mesh_1", [0, 0, 0.5])},
        root=None,
    )
    face_parts, named = face_parts_from_names(load_asset(path), PARTS)
    assert sorted(piece.part for piece in named) == [0, 1]
    assert set(np.unique(face_parts)) == {0, 1}


def test_a_piece_named_for_two_parts_is_left_to_the_points(tmp_path):
    path = cabinet_glb(
        tmp_path / "c.glb",
        {"a": ("door_drawer", [0, 0, 0]), "b": ("drawer", [0, 0, 1]), "c": ("x", [1, 0, 0])},
    )
    asset = load_asset(path)
    assert _by_mesh(asset, piece_parts(asset, PARTS)[0]) == {
        "door_drawer": UNNAMED,
        "drawer": 2,
        "x": UNNAMED,
    }


def test_names_that_put_every_face_in_one_part_name_the_object(tmp_path):
    path = cabinet_glb(tmp_path / "c.glb", {"a": ("door.1", [0, 0, 0]), "b": ("door.2", [0, 0, 1])})
    face_parts, named = face_parts_from_names(load_asset(path), PARTS)
    assert named == [] and (face_parts == UNNAMED).all()


def test_one_piece_meshes_and_clouds_have_no_piece_names(tmp_path):
    mesh = tmp_path / "door.ply"
    _box([0, 0, 0]).export(mesh)
    asset = load_asset(mesh)
    assert piece_parts(asset, PARTS)[1] == []
    labels, scores = np.zeros(5, np.int64), np.ones(5, np.float32)
    out = labels_following_names(asset, None, np.zeros((5, 3)), labels, scores, PARTS)
    assert out[0] is labels and out[2] == []


def test_labels_follow_the_names_and_the_object_keeps_no_named_part(kitchen_cabinet):
    """Named pieces' points take their part (score 1); the object's own piece gives the
    points the model called door (a part a piece is named for) its other points' label; an
    unnamed piece keeps the model's labels whatever they are."""
    from bipart_cli.io import sample_dense

    asset = load_asset(kitchen_cabinet)
    dense = sample_dense(asset, n_points=4000, seed=0)
    given, _ = piece_parts(asset, PARTS)
    point_given = given[asset.face_geometry[dense.face_index]]  # (n,)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, len(dense.points))  # the model: any part anywhere
    scores = rng.uniform(0.3, 0.9, len(dense.points)).astype(np.float32)
    out, out_scores, named = labels_following_names(
        asset, dense.face_index, dense.points, labels, scores, PARTS
    )
    assert len(named) == 2
    for part in (1, 2):
        assert (out[point_given == part] == part).all()
        assert (out_scores[point_given == part] == 1.0).all()
    rest = point_given == OBJECT
    assert set(np.unique(out[rest])) == {0}  # door and drawer are named elsewhere
    kept = rest & (labels == 0)
    np.testing.assert_array_equal(out_scores[kept], scores[kept])
    unnamed = point_given == UNNAMED
    np.testing.assert_array_equal(out[unnamed], labels[unnamed])


def _segment(run_bipart, target: Path, support: Path, out: Path, *extra: str) -> dict:
    """``bipart segment --json -q`` of one target: its record."""
    done = run_bipart(
        "segment", str(target), "--parts", ",".join(PARTS), "--support", str(support),
        "--labeler", "none", "--weights", "random", "--points", "3000", "--steps", "5",
        "--out-dir", str(out), "--json", "-q", *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_segment_reads_the_names_and_no_names_does_not(run_bipart, tmp_path, kitchen_cabinet):
    """End to end: the sidecar lists the named pieces, the GLB's door node holds exactly the
    door piece's faces, and ``--no-names`` leaves every piece to the model."""
    support = tmp_path / "support"
    support.mkdir()
    for seed in range(2):  # labeled cabinets: node names are their parts (parts.json)
        pieces = {"body": ("body", [0, 0, 0]), "door": ("door", [0, 0, 0.3 + seed / 10])}
        cabinet_glb(support / f"cabinet_{seed}.glb", pieces, root=None)
    (support / "parts.json").write_text(json.dumps({"parts": PARTS}))
    named = _segment(run_bipart, kitchen_cabinet, support, tmp_path / "named")
    plain = _segment(run_bipart, kitchen_cabinet, support, tmp_path / "plain", "--no-names")
    assert {(p["name"], p["part"]) for p in named["named_pieces"]} == {
        ("Mesh door.008", "door"),
        ("Mesh drawer.004", "drawer"),
    }
    assert named["settings"]["names"] is True and plain["settings"]["names"] is False
    assert plain["named_pieces"] == []
    # a file labeled in bipart's format (nodes named for the parts: a benchmark's, say): its
    # names are its ground truth, never read as evidence; it is segmented anew
    labeled = tmp_path / "labeled" / "cabinet.glb"
    labeled.parent.mkdir()
    labeled.write_bytes((support / "cabinet_0.glb").read_bytes())
    assert _segment(run_bipart, labeled, support, tmp_path / "own")["named_pieces"] == []
    sidecar = json.loads((tmp_path / "named" / "kitchenCabinetDrawer.parts.json").read_text())
    assert len(sidecar["named_pieces"]) == 2
    # the output GLB: each box's 12 faces under the node of its part (the object's own box:
    # body, a part no piece is named for; the unnamed cube's part is the model's)
    glb = trimesh.load(tmp_path / "named" / "kitchenCabinetDrawer.parts.glb")
    centres = {part: [] for part in PARTS}
    for node in glb.graph.nodes_geometry:
        transform, geometry = glb.graph[node]
        mesh = glb.geometry[geometry].copy().apply_transform(transform)
        centres[node.split(".")[0].split("_")[0]].append(mesh.triangles_center)
    for part, box_centre in (("body", [0, 0, 0]), ("door", [0, 0, 0.5]), ("drawer", [0, 0.5, 0.5])):
        inside = np.concatenate(centres[part]) if centres[part] else np.zeros((0, 3))
        near = np.abs(inside - box_centre).max(axis=1) < 0.11
        assert near.sum() == 12, (part, near.sum())


def test_info_says_which_pieces_their_names_give(run_bipart, kitchen_cabinet):
    """``bipart info --parts`` shows what ``segment`` will read from the names, before it runs."""
    done = run_bipart("info", str(kitchen_cabinet), "--parts", ",".join(PARTS), "--json")
    assert done.returncode == 0, done.stderr
    named = json.loads(done.stdout)["named_pieces"]
    assert sorted((p["name"], p["part"]) for p in named) == [
        ("Mesh door.008", "door"),
        ("Mesh drawer.004", "drawer"),
    ]
    text = run_bipart("info", str(kitchen_cabinet), "--parts", ",".join(PARTS)).stdout
    assert "named pieces: door 1, drawer 1 (segment gives them" in text
    plain = json.loads(run_bipart("info", str(kitchen_cabinet), "--json").stdout)
    assert plain["named_pieces"] is None  # no request, nothing to match


def test_the_sidecar_lists_a_name_once_per_part():
    """A mesh used by two nodes (two drawers) is one entry, with its pieces and faces summed."""
    named = [NamedPiece("Mesh drawerTop", 2, 38), NamedPiece("Mesh door", 1, 10)]
    named.append(NamedPiece("Mesh drawerTop", 2, 38))
    assert named_pieces_json(named, PARTS) == [
        {"name": "Mesh drawerTop", "part": "drawer", "pieces": 2, "faces": 76},
        {"name": "Mesh door", "part": "door", "pieces": 1, "faces": 10},
    ]


def test_a_primitive_is_listed_under_its_mesh_s_name():
    from bipart_cli.io.piece_names import _primitive_of

    meshes = {"Mesh door.008", "Mesh door.008_1", "wheel_1"}
    assert _primitive_of("Mesh door.008_1", meshes) == "Mesh door.008"
    assert _primitive_of("wheel_1", meshes) == "wheel_1"  # no mesh "wheel": its own name
    assert _primitive_of("Mesh door.008", meshes) == "Mesh door.008"


def test_hostile_names_and_hierarchies_stay_linear():
    """A 20,000-word name and a 3,000-node chain above a piece are read in one pass each:
    the matching stops a run of words once it is longer than the part, the object's top node
    is found with each path walked once, and only the 8 nodes above a piece are read."""
    from bipart_cli.io import asset_from_scene

    words = ["x"] * 20_000
    assert mentions(words + ["door"], ["door"])
    assert not mentions(words, ["back", "rest"])
    scene = trimesh.Scene()
    parent = scene.graph.base_frame
    for depth in range(3000):
        scene.graph.update(
            frame_from=parent, frame_to=f"door_{depth}" if depth < 5 else f"g{depth}"
        )
        parent = f"door_{depth}" if depth < 5 else f"g{depth}"
    scene.add_geometry(
        _box([0, 0, 0]), node_name="leaf", geom_name="panel", parent_node_name=parent
    )
    scene.add_geometry(_box([1, 0, 0]), node_name="drawer", geom_name="d", parent_node_name=parent)
    given, named = piece_parts(asset_from_scene(scene), PARTS)
    assert given.tolist() == [UNNAMED, 2]  # "door_*" lie 2,995 nodes above: not read


def test_a_file_labeled_in_bipart_s_format_is_never_read_by_its_names(tmp_path):
    """Nodes named ``<part>`` are the file's ground truth (eval, --labeler given): a target
    so labeled for the request is segmented anew; the same names beside no request, or for
    other parts, leave it unlabeled for that request and are evidence."""
    path = cabinet_glb(
        tmp_path / "c.glb", {"body": ("m0", [0, 0, 0]), "door.001": ("m1", [0, 0, 1])}, root=None
    )
    asset = load_asset(path)
    assert face_parts_from_names(asset, PARTS)[1] == []  # labeled for body, door
    _, named = face_parts_from_names(asset, ["frame", "doors"])  # not labeled for these
    assert [(piece.name, piece.part) for piece in named] == [("door.001", 1)]
