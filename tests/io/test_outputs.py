"""Labeled outputs: the PLY/GLB/JSON round trip, face-label transfer and atomic writes."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import trimesh
from plyfile import PlyData

from bipart_cli import __version__
from bipart_cli.errors import BipartError
from bipart_cli.io import face_labels_from_points, load_asset, sample_dense, write_outputs
from bipart_cli.io.labels import parse_ply_comment_parts, ply_comment_parts
from bipart_cli.parts import part_colors


@pytest.fixture(scope="module")
def chair_outputs(chair_asset, tmp_path_factory):
    """The armchair's ground-truth labels written out (scores = 0.9)."""
    dense = sample_dense(chair_asset, 20_000, seed=0)
    out_dir = tmp_path_factory.mktemp("out")
    metadata = {
        "seed": 0,
        "device": "cpu",
        "weights": {"id": "test", "revision": "abc"},
        "timings": {"total": np.float32(1.5)},
    }
    paths = write_outputs(
        chair_asset,
        dense,
        dense.labels,
        np.full(len(dense), 0.9),
        chair_asset.part_names,
        out_dir,
        metadata=metadata,
    )
    return dense, paths


def test_outputs_are_named_after_the_stem(chair_outputs):
    _, paths = chair_outputs
    assert [paths.ply.name, paths.glb.name, paths.json.name] == [
        "chair.parts.ply",
        "chair.parts.glb",
        "chair.parts.json",
    ]
    assert sorted(p.name for p in paths.ply.parent.iterdir()) == sorted(
        [paths.ply.name, paths.glb.name, paths.json.name]
    )


def test_ply_round_trip(chair_asset, chair_outputs):
    dense, paths = chair_outputs
    ply = PlyData.read(str(paths.ply))
    assert not ply.text and ply.byte_order == "<"
    assert [p.name for p in ply["vertex"].properties] == [
        "x",
        "y",
        "z",
        "red",
        "green",
        "blue",
        "label",
    ]
    assert f"parts: {','.join(chair_asset.part_names)}" in ply.comments
    np.testing.assert_array_equal(ply["vertex"]["label"], dense.labels + 1)
    xyz = np.stack([ply["vertex"][c] for c in "xyz"], 1)
    np.testing.assert_allclose(xyz, chair_asset.denormalize(dense.points), atol=1e-5)
    rgb = np.stack([ply["vertex"][c] for c in ("red", "green", "blue")], 1)
    np.testing.assert_array_equal(rgb, part_colors(4)[dense.labels])
    back = load_asset(paths.ply)
    assert back.part_names == chair_asset.part_names
    np.testing.assert_array_equal(back.labels, dense.labels)
    assert len(trimesh.load(paths.ply).vertices) == len(dense)


def test_glb_round_trip(chair_asset, chair_outputs):
    _, paths = chair_outputs
    scene = trimesh.load_scene(paths.glb)
    part_nodes = [n for n in scene.graph.nodes_geometry]
    assert sorted(part_nodes) == sorted(chair_asset.part_names)
    back = load_asset(paths.glb)
    assert back.part_names == chair_asset.part_names
    # the same faces per part: compare counts and each part's surface area
    np.testing.assert_array_equal(
        np.bincount(back.labels + 1, minlength=5), np.bincount(chair_asset.labels + 1, minlength=5)
    )
    for part in range(4):
        area_in = trimesh.Trimesh(
            chair_asset.vertices, chair_asset.faces[chair_asset.labels == part]
        ).area
        area_out = trimesh.Trimesh(back.vertices, back.faces[back.labels == part]).area
        assert area_out == pytest.approx(area_in, rel=1e-6)
    raw = json.loads(
        paths.glb.read_bytes()[20 : 20 + int.from_bytes(paths.glb.read_bytes()[12:16], "little")]
    )
    extras = {node["name"]: node.get("extras") for node in raw["nodes"]}
    assert extras["seat"]["label"] == 2 and extras["seat"]["mean_score"] == pytest.approx(0.9)


def test_json_summary(chair_asset, chair_outputs):
    dense, paths = chair_outputs
    summary = json.loads(paths.json.read_text())
    assert summary["schema_version"] == 1
    assert summary["tool"] == {"name": "bipart", "version": __version__}
    assert summary["input"]["sha256"] == chair_asset.sha256
    assert summary["weights"] == {"id": "test", "revision": "abc"} and summary["seed"] == 0
    assert summary["timings"] == {"total": 1.5}
    assert [p["name"] for p in summary["parts"]] == chair_asset.part_names
    for i, part in enumerate(summary["parts"]):
        mask = dense.labels == i
        assert part["id"] == i + 1
        assert part["points"] == int(mask.sum())
        assert part["faces"] == int((chair_asset.labels == i).sum())
        assert part["mean_score"] == pytest.approx(0.9)
        xyz = chair_asset.denormalize(dense.points[mask])
        np.testing.assert_allclose(part["bbox"]["min"], xyz.min(0))
    assert summary["unassigned"] == {"points": 0, "faces": 0}


def test_face_vote_recovers_ground_truth_faces(chair_asset):
    dense = sample_dense(chair_asset, 20_000, seed=1)
    faces = face_labels_from_points(chair_asset, dense, dense.labels)
    np.testing.assert_array_equal(faces, chair_asset.labels)


def test_face_vote_majority_and_unassigned():
    from bipart_cli.io import Asset, PointSample

    # one triangle, five samples on it: three say part 1, two say unassigned
    asset = Asset(
        vertices=np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0.0]]), faces=np.array([[0, 1, 2]])
    )
    points = np.array(
        [[0.2, 0.2, 0], [0.3, 0.1, 0], [0.1, 0.3, 0], [0.25, 0.25, 0], [0.3, 0.3, 0]], np.float32
    )
    dense = PointSample(
        points=points, colors=np.zeros((5, 3), np.uint8), face_index=np.zeros(5, np.int64)
    )
    assert face_labels_from_points(asset, dense, np.array([1, 1, 1, -1, -1])).tolist() == [1]
    assert face_labels_from_points(asset, dense, np.array([-1, -1, -1, -1, 0])).tolist() == [-1]


def test_face_smoothing_against_a_loop():
    from bipart_cli.io.faces import smooth_over_faces

    # a strip of 4 triangles (0-1, 1-2, 2-3 share edges) and one lone triangle (4)
    faces = np.array([[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [6, 7, 8]])
    neighbours = {0: [1], 1: [0, 2], 2: [1, 3], 3: [2], 4: []}
    rng = np.random.default_rng(11)
    vertices = rng.normal(size=(9, 3))
    shares = rng.dirichlet(np.ones(3), size=5)
    fast = smooth_over_faces(vertices, faces, shares, rounds=3)
    expected = shares.copy()
    for _ in range(3):
        previous = expected.copy()
        for face, around in neighbours.items():
            mean = previous[around].mean(0) if around else previous[face]
            expected[face] = 0.5 * previous[face] + 0.5 * mean
    np.testing.assert_allclose(fast, expected, rtol=1e-12)
    np.testing.assert_array_equal(smooth_over_faces(vertices, faces, shares, rounds=0), shares)
    # the same strip with every face on its own copies of its vertices (a flat-shaded export)
    split = vertices[faces].reshape(-1, 3)
    alone = np.arange(15).reshape(5, 3)
    np.testing.assert_allclose(smooth_over_faces(split, alone, shares, rounds=3), expected)


def test_face_smoothing_flips_a_stray_face_and_keeps_ground_truth(chair_asset, tmp_path):
    dense = sample_dense(chair_asset, 20_000, seed=1)
    labels = dense.labels.copy()
    stray = int(np.bincount(dense.face_index[labels == 1]).argmax())  # a seat face
    labels[dense.face_index == stray] = 0  # every sample on it says "back"
    assert face_labels_from_points(chair_asset, dense, labels)[stray] == 0
    smoothed = face_labels_from_points(chair_asset, dense, labels, smooth=4)
    assert smoothed[stray] == 1
    clean = face_labels_from_points(chair_asset, dense, dense.labels, smooth=4)
    np.testing.assert_array_equal(clean, chair_asset.labels)

    # write_outputs passes its face_smooth on (segment gives it --smooth)
    for rounds, stray_part in ((0, "back"), (4, "seat")):
        paths = write_outputs(
            chair_asset,
            dense,
            labels,
            np.ones(len(labels)),
            chair_asset.part_names,
            tmp_path / str(rounds),
            face_smooth=rounds,
        )
        parts = {p["name"]: p["faces"] for p in json.loads(paths.json.read_text())["parts"]}
        truth = int((chair_asset.labels == chair_asset.part_names.index(stray_part)).sum())
        assert parts[stray_part] == truth + (1 if stray_part == "back" else 0)


def test_unassigned_points_and_sanitised_names_round_trip(chair_asset, tmp_path):
    dense = sample_dense(chair_asset, 5000, seed=2)
    labels = dense.labels.copy()
    labels[labels == 3] = -1  # arms unassigned
    names = ["back rest", "seat", "leg", "arm"]
    paths = write_outputs(chair_asset, dense, labels, np.ones(len(dense)), names, tmp_path)
    nodes = set(trimesh.load_scene(paths.glb).graph.nodes_geometry)
    assert nodes == {"back_rest", "seat", "leg", "unassigned"}
    back = load_asset(paths.glb)  # names come back from the JSON sidecar
    assert back.part_names == names
    assert (back.labels == -1).sum() == (chair_asset.labels == 3).sum()
    ply = load_asset(paths.ply)
    np.testing.assert_array_equal(ply.labels, labels)
    summary = json.loads(paths.json.read_text())
    assert summary["parts"][3]["points"] == 0 and summary["parts"][3]["bbox"] is None
    assert summary["unassigned"]["points"] == int((labels == -1).sum())


@pytest.mark.parametrize(
    "names",
    [
        ["dossier", "siège", "pied"],
        ["Rückenlehne", "Sitz"],
        ["靠背", "座位"],
        ["背もたれ", "座面"],
    ],
)
def test_part_names_in_any_language_round_trip(chair_asset, tmp_path, names):
    """Issue 31: a non-ASCII part name failed the PLY ("non-ASCII character in comment")
    and nothing was written. The PLY, the GLB (a node per part) and the JSON now carry the
    exact names, each read back alone (no sidecar beside the PLY or the GLB)."""
    dense = sample_dense(chair_asset, 2000, seed=3)
    labels = np.where(dense.labels < len(names), dense.labels, -1)  # the armchair's others
    paths = write_outputs(chair_asset, dense, labels, np.ones(len(dense)), names, tmp_path)
    summary = json.loads(paths.json.read_text(encoding="utf-8"))
    assert [part["name"] for part in summary["parts"]] == names
    assert [part["node"] for part in summary["parts"]] == names  # nothing to sanitise
    nodes = set(trimesh.load_scene(paths.glb).graph.nodes_geometry)
    assert nodes == {*names, "unassigned"}
    comments = PlyData.read(str(paths.ply)).comments
    assert any(c.startswith("parts-json: ") for c in comments) and all(
        c.isascii() for c in comments
    )
    for path in (paths.ply, paths.glb):
        back = load_asset(path)
        assert back.part_names == names, path.name
        alone = tmp_path / "alone" / path.name
        alone.parent.mkdir(exist_ok=True)
        alone.write_bytes(path.read_bytes())
        assert load_asset(alone).part_names == names, path.name
    np.testing.assert_array_equal(load_asset(paths.ply).labels, labels)
    glb = load_asset(paths.glb)
    faces = face_labels_from_points(chair_asset, dense, labels)  # what the GLB's nodes hold
    assert np.bincount(glb.labels + 1).tolist() == np.bincount(faces + 1).tolist()


@pytest.mark.parametrize(
    "names",
    [["back rest", "seat"], ["a,b", "c"], [" padded", "x"], ["tab\there", "y"], ["é", "e"]],
)
def test_ply_comment_keeps_exact_names(names):
    """``parts: a,b`` for plain ASCII names (what other tools read), else ``parts-json``:
    ASCII either way, and the exact names back."""
    comment = ply_comment_parts(names)
    assert comment.isascii() and comment.isprintable()
    plain = names == ["back rest", "seat"]
    assert comment.startswith("parts: " if plain else "parts-json: ")
    assert parse_ply_comment_parts(["generator: x", comment]) == [n.strip() for n in names]


def test_point_cloud_input_gets_a_glb_of_points(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(300, 3))
    np.save(tmp_path / "cloud.npy", points)
    asset = load_asset(tmp_path / "cloud.npy")
    dense = sample_dense(asset)
    labels = (points[:, 0] > 0).astype(np.int64)
    paths = write_outputs(asset, dense, labels, np.ones(300), ["left", "right"], tmp_path / "out")
    scene = trimesh.load_scene(paths.glb)
    assert all(isinstance(g, trimesh.PointCloud) for g in scene.geometry.values())
    back = load_asset(paths.glb)
    assert back.part_names == ["left", "right"] and not back.is_mesh
    assert np.bincount(back.labels).tolist() == np.bincount(labels).tolist()


def test_textured_mesh_keeps_uvs_and_material(tmp_path):
    from PIL import Image

    box = trimesh.creation.box()
    uv = np.random.default_rng(0).random((len(box.vertices), 2))
    image = Image.fromarray(np.full((4, 4, 3), 90, np.uint8))
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=image)
    box.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    scene = trimesh.Scene()
    scene.add_geometry(box, node_name="lid", geom_name="lid")
    scene.add_geometry(
        box.copy(),
        node_name="body",
        geom_name="body",
        transform=trimesh.transformations.translation_matrix([0, -1, 0]),
    )
    scene.export(tmp_path / "crate.glb")
    asset = load_asset(tmp_path / "crate.glb")
    dense = sample_dense(asset, 4000)
    paths = write_outputs(
        asset, dense, dense.labels, np.ones(len(dense)), asset.part_names, tmp_path / "out"
    )
    out = trimesh.load_scene(paths.glb)
    lid = out.geometry[out.graph["lid"][1]]
    assert lid.visual.kind == "texture" and lid.visual.uv is not None
    assert lid.visual.material.baseColorFactor is None  # the asset's own look by default
    colorized = write_outputs(
        asset,
        dense,
        dense.labels,
        np.ones(len(dense)),
        asset.part_names,
        tmp_path / "colorized",
        colorize=True,
    )
    lid = trimesh.load_scene(colorized.glb).geometry[out.graph["lid"][1]]
    np.testing.assert_array_equal(
        lid.visual.material.baseColorFactor[:3], part_colors(2)[asset.part_names.index("lid")]
    )


def _gltf_json(path) -> dict:
    """The JSON chunk of a GLB."""
    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    return json.loads(data[20 : 20 + length])


def test_textured_glb_keeps_textures_per_part_with_shared_images(tmp_path):
    """Issue #14, defect 4: parts that cut across two textured geometries keep their
    materials and UVs, and the one texture image is written once, not once per part."""
    from PIL import Image

    pixels = np.random.default_rng(1).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    wood = trimesh.visual.material.PBRMaterial(
        name="wood", baseColorTexture=Image.fromarray(pixels), roughnessFactor=0.7
    )
    scene = trimesh.Scene()
    for k, x in enumerate((-1.0, 1.0)):
        box = trimesh.creation.box(extents=(1.5, 1.0, 1.0))
        uv = np.random.default_rng(k).random((len(box.vertices), 2))
        box.visual = trimesh.visual.TextureVisuals(uv=uv, material=wood)
        scene.add_geometry(
            box,
            node_name=f"box{k}",
            geom_name=f"box{k}",
            transform=trimesh.transformations.translation_matrix([x, 0, 0]),
        )
    scene.export(tmp_path / "crates.glb")
    source = _gltf_json(tmp_path / "crates.glb")
    assert len(source["images"]) == 1

    asset = load_asset(tmp_path / "crates.glb")
    dense = sample_dense(asset, 4000)
    labels = (dense.points[:, 2] > 0).astype(np.int64)  # front/back: each part in both boxes
    paths = write_outputs(
        asset, dense, labels, np.ones(len(dense)), ["back", "front"], tmp_path / "out"
    )
    written = _gltf_json(paths.glb)
    assert len(written["images"]) == len(source["images"])
    assert len(written["textures"]) == 1
    out = trimesh.load_scene(paths.glb)
    for part in ("back", "front"):
        children = [n for n in out.graph.nodes_geometry if n.startswith(f"{part}__")]
        assert len(children) == 2, out.graph.nodes_geometry  # a piece of each box
        for node in children:
            mesh = out.geometry[out.graph[node][1]]
            assert mesh.visual.kind == "texture" and mesh.visual.uv is not None
            material = mesh.visual.material
            assert material.name == "wood" and material.baseColorFactor is None
            assert material.roughnessFactor == pytest.approx(0.7)
            np.testing.assert_array_equal(np.asarray(material.baseColorTexture)[..., :3], pixels)


def test_failed_json_leaves_no_file(chair_asset, tmp_path):
    dense = sample_dense(chair_asset, 2000)
    with pytest.raises(TypeError):
        write_outputs(
            chair_asset,
            dense,
            dense.labels,
            np.ones(2000),
            chair_asset.part_names,
            tmp_path,
            metadata={"bad": object()},
        )
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_leaves_no_file(chair_asset, tmp_path):
    dense = sample_dense(chair_asset, 2000)
    (
        tmp_path / "chair.parts.ply"
    ).mkdir()  # the rename onto it fails after the other files are staged
    with pytest.raises(BipartError, match="cannot write outputs"):
        write_outputs(
            chair_asset, dense, dense.labels, np.ones(2000), chair_asset.part_names, tmp_path
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chair.parts.ply"]
    assert list((tmp_path / "chair.parts.ply").iterdir()) == []


def test_bad_arguments_write_nothing(chair_asset, tmp_path):
    dense = sample_dense(chair_asset, 100)
    with pytest.raises(ValueError, match="labels must lie"):
        write_outputs(chair_asset, dense, np.full(100, 7), np.ones(100), ["a", "b"], tmp_path)
    with pytest.raises(ValueError, match="100 points"):
        write_outputs(chair_asset, dense, np.zeros(99, int), np.ones(99), ["a"], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_atomic_outputs_get_the_umask_mode_even_when_the_writer_recreates_the_file(tmp_path):
    """mkstemp makes 0600 files, and safetensors' save_file writes a new 0600 file over the
    path: outputs must still get the usual umask mode (0644 under umask 022)."""
    import os

    import torch
    from safetensors.torch import save_file

    from bipart_cli.io.atomic import atomic_path

    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "weights.safetensors") as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp))
        with atomic_path(tmp_path / "notes.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    for name in ("weights.safetensors", "notes.txt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


def test_a_failure_on_the_last_rename_leaves_no_file_either(chair_asset, tmp_path):
    """Issue 15 item 6: with ``chair.parts.json`` renamed last, its failure left the
    ``.ply`` and ``.glb`` behind."""
    dense = sample_dense(chair_asset, 2000)
    (tmp_path / "chair.parts.json").mkdir()
    with pytest.raises(BipartError, match="cannot write outputs"):
        write_outputs(
            chair_asset, dense, dense.labels, np.ones(2000), chair_asset.part_names, tmp_path
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chair.parts.json"]


def _mixed_material_scene() -> trimesh.Scene:
    """A table: a textured top ("wood") and two legs in plain colours ("red", "blue"),
    materials with a base colour and no UVs, as glTF exporters write untextured parts."""
    from PIL import Image

    pixels = np.random.default_rng(1).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    top = trimesh.creation.box(extents=(2.0, 0.3, 2.0))
    top.visual = trimesh.visual.TextureVisuals(
        uv=np.random.default_rng(0).random((len(top.vertices), 2)),
        material=trimesh.visual.material.PBRMaterial(
            name="wood", baseColorTexture=Image.fromarray(pixels)
        ),
    )
    scene = trimesh.Scene()
    scene.add_geometry(top, node_name="top", geom_name="top")
    for k, (name, rgba) in enumerate((("red", [200, 30, 30, 255]), ("blue", [30, 30, 200, 255]))):
        leg = trimesh.creation.box(extents=(0.3, 1.5, 0.3))
        leg.visual = trimesh.visual.TextureVisuals(
            material=trimesh.visual.material.PBRMaterial(name=name, baseColorFactor=rgba)
        )
        scene.add_geometry(
            leg,
            node_name=f"leg{k}",
            geom_name=f"leg{k}",
            transform=trimesh.transformations.translation_matrix([1.6 * k - 0.8, -0.9, 0]),
        )
    return scene


def test_every_primitive_keeps_its_own_material(tmp_path):
    """Issue #32 item 5: a textured primitive beside plain-coloured ones. Each part cuts the
    textured top and holds one leg; every written primitive keeps its source material (the
    plain ones used to lose theirs and render white)."""
    _mixed_material_scene().export(tmp_path / "table.glb")
    asset = load_asset(tmp_path / "table.glb")
    dense = sample_dense(asset, 4000)
    labels = (dense.points[:, 0] > 0).astype(np.int64)  # left: the red leg, right: the blue
    paths = write_outputs(
        asset, dense, labels, np.ones(len(dense)), ["left", "right"], tmp_path / "out"
    )
    written = _gltf_json(paths.glb)
    assert sorted(m["name"] for m in written["materials"]) == ["blue", "red", "wood"]
    primitives = [p for mesh in written["meshes"] for p in mesh["primitives"]]
    assert all("material" in p for p in primitives), primitives
    out = trimesh.load_scene(paths.glb)
    for part, leg_name, rgba in (
        ("left", "red", [200, 30, 30, 255]),
        ("right", "blue", [30, 30, 200, 255]),
    ):
        pieces = [
            out.geometry[out.graph[n][1]] for n in out.graph.nodes_geometry if n.startswith(part)
        ]
        names = sorted(mesh.visual.material.name for mesh in pieces)
        assert names == sorted([leg_name, "wood"]), names
        for mesh in pieces:
            material = mesh.visual.material
            if material.name == "wood":
                assert mesh.visual.uv is not None and material.baseColorTexture is not None
            else:
                np.testing.assert_array_equal(material.baseColorFactor, rgba)


def _with_animation_and_skin(glb: bytes) -> bytes:
    """``glb`` with one animation (node 0 moves up over one second) and one skin added to
    its JSON, their keyframes appended to its binary chunk: trimesh writes neither."""
    json_length = struct.unpack_from("<I", glb, 12)[0]
    header = json.loads(glb[20 : 20 + json_length])
    binary = bytearray(glb[20 + json_length + 8 :])
    times = np.array([0.0, 1.0], np.float32)
    moves = np.array([[0, 0, 0], [0, 1, 0]], np.float32)
    views = header["bufferViews"]
    accessors = header["accessors"]
    for values, kind in ((times, "SCALAR"), (moves, "VEC3")):
        views.append({"buffer": 0, "byteOffset": len(binary), "byteLength": values.nbytes})
        accessors.append(
            {
                "bufferView": len(views) - 1,
                "componentType": 5126,
                "count": len(values),
                "type": kind,
                "min": np.atleast_1d(values.min(0)).tolist(),
                "max": np.atleast_1d(values.max(0)).tolist(),
            }
        )
        binary += values.tobytes()
    header["buffers"][0]["byteLength"] = len(binary)
    n = len(accessors)
    header["animations"] = [
        {
            "samplers": [{"input": n - 2, "output": n - 1}],
            "channels": [{"sampler": 0, "target": {"node": 0, "path": "translation"}}],
        }
    ]
    header["skins"] = [{"joints": [0]}]
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 4)
    body = struct.pack("<I4s", len(text), b"JSON") + text
    body += struct.pack("<I4s", len(binary), b"BIN\x00") + bytes(binary)
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def test_animations_and_skins_are_counted_and_named_in_one_warning(chair_glb, tmp_path):
    """Issue #32 item 5: the loader counts a glTF's animations and skins from its JSON
    (trimesh reads neither), and one warning names what the labeled GLB leaves out."""
    from bipart_cli.io.write import dropped_features

    target = tmp_path / "walking_chair.glb"
    target.write_bytes(_with_animation_and_skin(chair_glb.read_bytes()))
    asset = load_asset(target)
    assert (asset.animations, asset.skins) == (1, 1)
    assert dropped_features(asset) == (
        "walking_chair.parts.glb leaves out the file's 1 animation and 1 skin: "
        "its parts are static meshes in world space"
    )
    assert dropped_features(load_asset(chair_glb)) is None


@pytest.mark.slow
def test_dropped_animations_warn_once_in_the_log_and_the_sidecar(chair_glb, tmp_path, caplog):
    """Issue #32 item 5, end to end: ``segment`` logs the warning once and keeps it in the
    sidecar's ``warnings``."""
    from bipart_cli import segment

    target = tmp_path / "walking_chair.glb"
    target.write_bytes(_with_animation_and_skin(chair_glb.read_bytes()))
    parts = load_asset(target).part_names
    caplog.set_level("WARNING")
    (result,) = segment(
        str(target), parts, labeler="given", weights="random", n_dense=2048, n_points=512, steps=1
    )
    assert result.ok, result.error
    sidecar = json.loads((tmp_path / "walking_chair.parts.json").read_text())
    dropped = [w for w in sidecar["warnings"] if "leaves out the file's" in w]
    assert dropped == [
        "walking_chair.parts.glb leaves out the file's 1 animation and 1 skin: "
        "its parts are static meshes in world space"
    ]
    assert sum("leaves out the file's" in r.getMessage() for r in caplog.records) == 1
