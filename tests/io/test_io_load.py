"""Loading meshes and point clouds: formats, transforms, colours, labels, normalisation."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import trimesh
from PIL import Image
from plyfile import PlyData, PlyElement

from bipart_cli.errors import InvalidInputError
from bipart_cli.io import load_asset, sample_dense, sha256_file
from bipart_cli.io.labels import part_from_name, sanitize_node_name
from bipart_cli.procedural import node_names


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("seat", "seat"),
        ("leg.2", "leg"),
        ("leg__L", "leg"),
        ("leg__front.left", "leg"),
        ("back rest.10", "back rest"),
        ("Object_3", None),
        ("Cube.001", None),
        ("geometry_0", None),
        ("", None),
    ],
)
def test_part_from_name_rules(name, part):
    assert part_from_name(name) == part


def test_sanitized_node_names_are_safe_for_threejs_and_blender():
    assert sanitize_node_name("back rest") == "back_rest"
    assert sanitize_node_name("leg.front/left[0]") == "leg_front_left_0"
    assert sanitize_node_name("a__b") == "a_b"
    assert len(sanitize_node_name("x" * 100).encode()) <= 63


def test_glb_node_names_give_ground_truth_face_labels(chair_asset, chair_pieces):
    pieces = chair_pieces
    assert chair_asset.part_names == ["back", "seat", "leg", "arm"]
    assert chair_asset.geometry_nodes == node_names(pieces)
    expected = np.concatenate(
        [np.full(len(p.mesh.faces), chair_asset.part_names.index(p.part)) for p in pieces]
    )
    np.testing.assert_array_equal(chair_asset.labels, expected)
    assert chair_asset.format == "glb"
    assert chair_asset.sha256 == hashlib.sha256(chair_asset.source.read_bytes()).hexdigest()
    assert sha256_file(chair_asset.source) == chair_asset.sha256


def test_glb_node_transforms_are_applied(tmp_path):
    box = trimesh.creation.box(extents=[1, 1, 1])
    scene = trimesh.Scene()
    move = trimesh.transformations.translation_matrix([10, 0, 0])
    turn = trimesh.transformations.rotation_matrix(np.pi / 2, [0, 0, 1])
    scene.add_geometry(box, node_name="seat", geom_name="seat", transform=move @ turn)
    scene.add_geometry(box, node_name="leg__L", geom_name="leg_geom")
    scene.add_geometry(box, node_name="leg__R", geom_name="leg_geom2", transform=move)
    path = tmp_path / "moved.glb"
    path.write_bytes(scene.export(file_type="glb"))
    asset = load_asset(path)
    first = asset.vertices[asset.faces[asset.face_geometry == 0]].reshape(-1, 3)
    np.testing.assert_allclose(first.mean(0), [10, 0, 0], atol=1e-9)
    assert asset.part_names == ["seat", "leg"]
    assert np.bincount(asset.labels).tolist() == [12, 24]


def test_single_generic_name_is_unlabeled(tmp_path):
    path = tmp_path / "one.glb"
    path.write_bytes(trimesh.Scene(trimesh.creation.box()).export(file_type="glb"))
    asset = load_asset(path)
    assert not asset.has_labels and asset.labels is None


def test_vertex_colours_survive(chair_asset, chair_scene):
    scene = chair_scene
    seat = scene.geometry["seat"].visual.vertex_colors[0, :3]
    seat_faces = chair_asset.faces[chair_asset.labels == 1]
    np.testing.assert_array_equal(
        chair_asset.vertex_colors[seat_faces.reshape(-1)], np.tile(seat, (len(seat_faces) * 3, 1))
    )


def test_texture_colours_are_sampled_by_uv(tmp_path):
    # a quad whose texture is red on the left half (u < 0.5) and blue on the right
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, :4] = [255, 0, 0]
    image[:, 4:] = [0, 0, 255]
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    uv = vertices[:, :2].copy()
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(image))
    visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    mesh = trimesh.Trimesh(vertices, faces, visual=visual, process=False)
    path = tmp_path / "textured.glb"
    path.write_bytes(mesh.export(file_type="glb"))
    asset = load_asset(path)
    assert asset.textures and asset.vertex_uv is not None
    dense = sample_dense(asset, 4000, seed=0)
    x = asset.denormalize(dense.points)[:, 0]
    clear = np.abs(x - 0.5) > 0.1  # away from the bilinear seam
    left, right = clear & (x < 0.5), clear & (x > 0.5)
    assert (dense.colors[left, 0] > 200).all() and (dense.colors[left, 2] < 50).all()
    assert (dense.colors[right, 2] > 200).all() and (dense.colors[right, 0] < 50).all()


def test_obj_object_and_group_names(tmp_path):
    text = (
        "o seat\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"
        "o leg.0\nv 0 0 1\nv 1 0 1\nv 0 1 1\nf 4 5 6\n"
        "g leg__L\nv 0 0 2\nv 1 0 2\nv 0 1 2\nf 7 8 9\n"
        "o back\ng back__top\nv 0 0 3\nv 1 0 3\nv 0 1 3\nf 10 11 12\n"
    )
    path = tmp_path / "parts.obj"
    path.write_text(text)
    asset = load_asset(path)
    assert asset.part_names == ["seat", "leg", "back"]
    by_z = {
        round(float(asset.vertices[f].mean(0)[2])): int(label)
        for f, label in zip(asset.faces, asset.labels, strict=True)
    }
    assert by_z == {0: 0, 1: 1, 2: 1, 3: 2}


@pytest.mark.parametrize("fmt", ["off", "stl", "obj", "ply"])
def test_mesh_formats_round_trip_geometry(tmp_path, fmt):
    mesh = trimesh.creation.icosphere(subdivisions=1)
    path = tmp_path / f"sphere.{fmt}"
    mesh.export(path)
    asset = load_asset(path)
    assert asset.is_mesh and asset.format == fmt
    assert len(asset.faces) == len(mesh.faces)
    area = (
        0.5
        * np.linalg.norm(
            np.cross(
                *(
                    asset.vertices[asset.faces][:, 1:] - asset.vertices[asset.faces][:, :1]
                ).transpose(1, 0, 2)
            ),
            axis=1,
        ).sum()
    )
    assert area == pytest.approx(mesh.area, rel=1e-5)


def _write_ply(path, vertex, face=None, comments=()):
    elements = [PlyElement.describe(vertex, "vertex")]
    if face is not None:
        elements.append(PlyElement.describe(face, "face"))
    PlyData(elements, text=False, comments=list(comments)).write(str(path))


def test_ply_mesh_with_face_labels_and_header_names(tmp_path):
    vertex = np.array(
        [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0)], dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")]
    )
    face = np.array(
        [([0, 1, 2, 3], 2), ([0, 2, 1], 0)], dtype=[("vertex_indices", "O"), ("label", "u1")]
    )
    path = tmp_path / "quad.ply"
    _write_ply(path, vertex, face, comments=["parts: top,leg"])
    asset = load_asset(path)
    assert asset.part_names == ["top", "leg"]
    # the quad fans into two triangles labeled leg; the last face is unassigned
    assert asset.labels.tolist() == [1, 1, -1]
    assert len(asset.faces) == 3


def test_ply_cloud_with_vertex_labels_and_sidecar(tmp_path):
    rng = np.random.default_rng(0)
    n = 50
    vertex = np.zeros(
        n,
        dtype=[
            ("x", "f4"),
            ("y", "f4"),
            ("z", "f4"),
            ("red", "u1"),
            ("green", "u1"),
            ("blue", "u1"),
            ("label", "i4"),
        ],
    )
    for axis in "xyz":
        vertex[axis] = rng.normal(size=n)
    vertex["red"] = 200
    vertex["label"] = rng.integers(0, 3, n)
    path = tmp_path / "cloud.ply"
    _write_ply(path, vertex)
    (tmp_path / "parts.json").write_text(json.dumps(["wing", "body"]))
    asset = load_asset(path)
    assert not asset.is_mesh
    assert asset.part_names == ["wing", "body"]
    np.testing.assert_array_equal(asset.labels, vertex["label"] - 1)
    assert (asset.vertex_colors[:, 0] == 200).all()


def test_npz_cloud_with_labels_and_names(tmp_path):
    rng = np.random.default_rng(2)
    points = rng.normal(size=(40, 3))
    colors = rng.integers(0, 256, size=(40, 3))
    labels = rng.integers(0, 3, 40)
    path = tmp_path / "cloud.npz"
    np.savez(
        path, points=np.hstack([points, colors]), labels=labels, part_names=np.array(["a", "b"])
    )
    asset = load_asset(path)
    np.testing.assert_allclose(asset.vertices, points)
    np.testing.assert_array_equal(asset.vertex_colors, colors)
    np.testing.assert_array_equal(asset.labels, labels - 1)
    assert asset.part_names == ["a", "b"]


def test_npy_float_colours_and_xyz_text(tmp_path):
    rng = np.random.default_rng(3)
    cloud = np.hstack([rng.normal(size=(30, 3)), rng.random((30, 3))])
    np.save(tmp_path / "c.npy", cloud)
    asset = load_asset(tmp_path / "c.npy")
    np.testing.assert_array_equal(
        asset.vertex_colors, np.round(cloud[:, 3:] * 255).astype(np.uint8)
    )
    np.savetxt(tmp_path / "c.xyz", cloud[:, :3])
    np.testing.assert_allclose(load_asset(tmp_path / "c.xyz").vertices, cloud[:, :3])
    np.savetxt(tmp_path / "c.txt", cloud[:, :3], delimiter=",", header="x,y,z")
    np.testing.assert_allclose(load_asset(tmp_path / "c.txt").vertices, cloud[:, :3])


def test_a_txt_without_rows_of_numbers_says_so(tmp_path):
    path = tmp_path / "README.txt"
    path.write_text("Read me first.\nThis pack holds chairs.\n")
    with pytest.raises(InvalidInputError, match="no rows of numbers: not an x y z point table"):
        load_asset(path)


def test_mesh_normalisation_is_area_weighted_centroid_and_max_norm(chair_asset):
    tri = chair_asset.vertices[chair_asset.faces]
    centre, total = np.zeros(3), 0.0
    for a, b, c in tri:  # literal reference
        area = 0.5 * np.linalg.norm(np.cross(b - a, c - a))
        centre += area * (a + b + c) / 3
        total += area
    centre /= total
    np.testing.assert_allclose(chair_asset.center, centre, atol=1e-12)
    norms = np.linalg.norm(chair_asset.normalize(chair_asset.vertices), axis=1)
    assert norms.max() == pytest.approx(1.0)


def test_cloud_normalisation_is_mean_and_max_norm(tmp_path):
    points = np.random.default_rng(4).normal(size=(100, 3)) * 5 + 7
    np.save(tmp_path / "p.npy", points)
    asset = load_asset(tmp_path / "p.npy")
    np.testing.assert_allclose(asset.center, points.mean(0))
    assert np.linalg.norm(asset.normalize(points), axis=1).max() == pytest.approx(1.0)
    np.testing.assert_allclose(asset.denormalize(asset.normalize(points)), points, atol=1e-12)


def _two_box_mesh(path):
    boxes = [trimesh.creation.box(extents=(1, 1, 1)), trimesh.creation.box(extents=(1, 1, 1))]
    boxes[1].apply_translation((0, 1.5, 0))
    mesh = trimesh.util.concatenate(boxes)
    mesh.export(path)
    return mesh


def test_label_array_sidecar_gives_per_face_labels(tmp_path):
    """PSB / MeshCNN layout: <stem>.ply + <stem>_labels.npy (0-based, per face) + parts.json."""
    mesh = _two_box_mesh(tmp_path / "pair.ply")
    labels = np.repeat(np.array([1, 0], np.uint8), len(mesh.faces) // 2)
    np.save(tmp_path / "pair_labels.npy", labels)
    (tmp_path / "parts.json").write_text(json.dumps(["top", "bottom"]))
    asset = load_asset(tmp_path / "pair.ply")
    assert asset.part_names == ["top", "bottom"]
    np.testing.assert_array_equal(asset.labels, labels.astype(np.int64))
    dense = sample_dense(asset, n_points=2000, seed=0)
    lower = dense.points[:, 1] < dense.points[:, 1].mean()
    assert (dense.labels[lower] == 1).all() and (dense.labels[~lower] == 0).all()


def test_label_array_sidecar_of_the_wrong_length_is_a_clear_error(tmp_path):
    _two_box_mesh(tmp_path / "pair.ply")
    np.save(tmp_path / "pair_labels.npy", np.zeros(5, np.uint8))
    with pytest.raises(InvalidInputError, match="5 labels for the 24 faces of pair.ply"):
        load_asset(tmp_path / "pair.ply")


@pytest.mark.parametrize("suffix", ["obj", "glb", "off"])
def test_label_array_sidecar_with_parts_json_is_read_for_every_mesh_format(tmp_path, suffix):
    """Issue 15 item 2: a parts.json naming the parts must not hide ``<stem>_labels.npy``
    (OBJ and GLB loaded with every face unassigned)."""
    mesh = trimesh.util.concatenate(
        [trimesh.creation.box(extents=(1, 1, 1)), trimesh.creation.box(extents=(1, 1, 1))]
    )
    mesh.vertices[len(mesh.vertices) // 2 :, 1] += 1.5
    path = tmp_path / f"pair.{suffix}"
    mesh.export(path)
    plain = load_asset(path)
    top = plain.vertices[plain.faces].mean(axis=1)[:, 1] > 0.75  # (f,)
    labels = np.where(top, 0, 1).astype(np.int64)  # 0-based: top, bottom
    np.save(tmp_path / "pair_labels.npy", labels)
    (tmp_path / "parts.json").write_text(json.dumps(["top", "bottom"]))
    asset = load_asset(path)
    assert asset.part_names == ["top", "bottom"]
    np.testing.assert_array_equal(asset.labels, labels)


def test_label_values_are_remapped_densely(tmp_path):
    """Issue 15 item 1: parts grow with the distinct values, not with the largest one."""
    _two_box_mesh(tmp_path / "pair.ply")
    labels = np.repeat(np.array([7, 10**6], np.int64), 12)
    labels[0] = -1
    np.save(tmp_path / "pair_labels.npy", labels)
    (tmp_path / "parts.json").write_text(json.dumps(["a", "b"]))
    asset = load_asset(tmp_path / "pair.ply")
    assert asset.part_names == ["a", "b", "part_8", "part_1000001"]
    assert asset.labels[0] == -1 and (asset.labels[1:12] == 2).all()
    assert (asset.labels[12:] == 3).all()


@pytest.mark.parametrize(
    "array",
    [
        np.zeros(24, dtype=[("a", "i4")]),
        np.full(24, 1.0),
        np.zeros(24, np.complex64),
        np.array(["a"] * 24),
    ],
    ids=["structured", "float", "complex", "string"],
)
def test_label_array_must_hold_integers(tmp_path, array):
    """Issue 15 item 15: structured dtypes crashed, float and complex were accepted."""
    _two_box_mesh(tmp_path / "pair.ply")
    np.save(tmp_path / "pair_labels.npy", array)
    with pytest.raises(InvalidInputError, match="pair_labels.npy"):
        load_asset(tmp_path / "pair.ply")


def test_latin1_obj_and_stl_load_with_their_names(tmp_path):
    """Issue 15 item 10: Latin-1 OBJ/STL failed as "corrupt or truncated" (trimesh wanted
    charset_normalizer, which is not installed)."""
    obj = tmp_path / "latin.obj"
    obj.write_bytes(
        "# café\no pièce\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\n"
        "o tête\nv 0 0 2\nv 1 0 2\nv 0 1 2\nf 5 6 7\n".encode("latin-1")
    )
    asset = load_asset(obj)
    assert asset.part_names == ["pièce", "tête"]
    np.testing.assert_array_equal(asset.labels, [0, 0, 1])
    stl = tmp_path / "latin.stl"
    stl.write_bytes(
        "solid café\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\n"
        "vertex 0 1 0\nendloop\nendfacet\nendsolid café\n".encode("latin-1")
    )
    assert len(load_asset(stl).faces) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ([{"id": "x", "name": "top"}], "a part 'id' is not an integer"),
        # JSON's Infinity: an OverflowError blamed the OBJ ("corrupt") or escaped (issue 31)
        ([{"id": float("inf"), "name": "top"}], "a part 'id' is not an integer"),
        ([{"id": float("-inf"), "name": "top"}], "a part 'id' is not an integer"),
        (["top", "Top"], "names the part 'Top' twice"),
        (["top", " "], "a part name is empty"),
        ({"parts": [1, 2]}, "'parts' must be a list of names"),
    ],
)
def test_bad_parts_json_is_reported_as_parts_json(tmp_path, content, message):
    """Issue 15 item 16: parts.json errors read "corrupt OBJ", and duplicate names were
    accepted here but rejected (as "--parts") by the index."""
    _two_box_mesh(tmp_path / "pair.obj")
    (tmp_path / "parts.json").write_text(json.dumps(content))
    with pytest.raises(InvalidInputError, match="parts.json") as caught:
        load_asset(tmp_path / "pair.obj")
    assert message in str(caught.value) and "corrupt" not in str(caught.value)


def test_duplicate_names_in_an_index_parts_json_name_the_file(tmp_path):
    from bipart_cli.index.walk import folder_part_names

    _two_box_mesh(tmp_path / "pair.obj")
    (tmp_path / "parts.json").write_text(json.dumps(["leg", "Leg"]))
    with pytest.raises(InvalidInputError, match=r"parts.json: the list names 'Leg' twice"):
        folder_part_names(tmp_path / "pair.obj", tmp_path)
