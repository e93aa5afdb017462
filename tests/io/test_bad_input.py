"""Bad input through ``bipart info ASSET``: one clear line, non-zero exit, no traceback, no files."""

from __future__ import annotations

import json
import logging
import struct

import numpy as np
import pytest
import trimesh

from bipart_cli.errors import UsageError
from bipart_cli.io import sample_network_indices
from bipart_cli.parts import parse_part_names
from bipart_cli.procedural import make_shape


def _assert_clean_failure(result, folder, before, *needles):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    for needle in needles:
        assert needle in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in folder.iterdir()) == before


def _check(run_bipart, folder, name, *needles):
    before = sorted(p.name for p in folder.iterdir())
    result = run_bipart("info", name, cwd=folder)
    _assert_clean_failure(result, folder, before, *needles)
    return result


def test_missing_file(run_bipart, tmp_path):
    _check(run_bipart, tmp_path, "nope.glb", "nope.glb", "no such file")


def test_directory(run_bipart, tmp_path):
    (tmp_path / "shapes").mkdir()
    _check(run_bipart, tmp_path, "shapes", "is a directory")


def test_unknown_extension(run_bipart, tmp_path):
    (tmp_path / "chair.fbx").write_bytes(b"Kaydara FBX Binary")
    _check(run_bipart, tmp_path, "chair.fbx", "unsupported file type", ".glb")


def test_garbage_glb(run_bipart, tmp_path):
    (tmp_path / "garbage.glb").write_bytes(np.random.default_rng(0).bytes(4096))
    _check(run_bipart, tmp_path, "garbage.glb", "corrupt or truncated GLB")


def test_truncated_glb(run_bipart, tmp_path):
    data = make_shape("chair", 0).export(file_type="glb")
    (tmp_path / "cut.glb").write_bytes(data[: len(data) // 2])
    _check(run_bipart, tmp_path, "cut.glb", "corrupt or truncated GLB")


def test_zero_byte_file(run_bipart, tmp_path):
    (tmp_path / "empty.glb").write_bytes(b"")
    _check(run_bipart, tmp_path, "empty.glb", "empty")


def test_empty_mesh(run_bipart, tmp_path):
    (tmp_path / "empty.off").write_text("OFF\n0 0 0\n")
    _check(run_bipart, tmp_path, "empty.off", "empty mesh")


def _glb(gltf: dict) -> bytes:
    """A binary glTF holding only a JSON chunk (no buffers)."""
    chunk = json.dumps(gltf).encode()
    chunk += b" " * (-len(chunk) % 4)
    body = struct.pack("<II", len(chunk), 0x4E4F534A) + chunk
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def test_glb_without_geometry(run_bipart, tmp_path):
    gltf = {"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}]}
    gltf["nodes"] = [{"name": "lonely_node"}]
    (tmp_path / "nothing.glb").write_bytes(_glb(gltf))
    _check(run_bipart, tmp_path, "nothing.glb", "empty mesh")


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_non_finite_vertices_obj(run_bipart, tmp_path, bad):
    text = f"v 0 0 0\nv 1 0 0\nv 0 1 {bad}\nv 1 1 0\nf 1 2 3\nf 2 4 3\n"
    (tmp_path / "bad.obj").write_text(text)
    _check(run_bipart, tmp_path, "bad.obj", "NaN or inf")


def test_non_finite_vertices_ply(run_bipart, tmp_path):
    header = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
    header += (
        "property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
    )
    (tmp_path / "bad.ply").write_text(header + "0 0 0\n1 0 0\n0 inf 0\n3 0 1 2\n")
    _check(run_bipart, tmp_path, "bad.ply", "1 of 3", "NaN or inf")


def test_non_finite_point_cloud(run_bipart, tmp_path):
    points = np.random.default_rng(0).normal(size=(50, 3))
    points[7, 1] = np.nan
    np.save(tmp_path / "cloud.npy", points)
    _check(run_bipart, tmp_path, "cloud.npy", "1 of 50", "NaN or inf")


def test_only_degenerate_faces(run_bipart, tmp_path):
    # collinear corners: every triangle has zero area
    vertices = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0.0]])
    mesh = trimesh.Trimesh(vertices, [[0, 1, 2], [1, 2, 3]], process=False)
    (tmp_path / "flat.stl").write_bytes(mesh.export(file_type="stl"))
    _check(run_bipart, tmp_path, "flat.stl", "degenerate")


def test_verbose_shows_the_traceback(run_bipart, tmp_path):
    (tmp_path / "garbage.glb").write_bytes(b"glTF" + bytes(100))
    result = run_bipart("info", "garbage.glb", "-v", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr


def test_fewer_points_than_needed_upsamples_with_a_warning(caplog):
    points = np.random.default_rng(1).normal(size=(100, 3))
    with caplog.at_level(logging.WARNING, logger="bipart"):
        indices = sample_network_indices(points, n_samples=256, seed=0)
    assert indices.shape == (256,) and indices.dtype == np.int64
    assert set(indices.tolist()) == set(range(100))  # every point kept, the rest repeats
    assert any("fewer than" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "--parts is empty"),
        (" , ,", "--parts is empty"),
        ("back,,seat", "empty name at position 2"),
        ("back,seat,Back", "twice"),
        ("a,b,c,d", "at most 3"),
        ("back,se\nat", r"name 2 \('se\\nat'\) holds the unprintable character \\x0a"),
        ("back,se\rat", r"U\+000D"),
        ("back\tseat", r"U\+0009"),
        ("back,se\x1b[2Jat", r"U\+001B"),
        ("back,se\x85at", r"U\+0085"),  # C1 next line
        ("back,se\u2028at", r"U\+2028"),  # line separator
        ("back\u202eseat", r"U\+202E"),  # right-to-left override
        ("back,se\udcffat", r"U\+DCFF"),  # an undecodable argv byte (surrogateescape)
    ],
)
def test_bad_parts_are_usage_errors(text, message):
    with pytest.raises(UsageError, match=message) as info:
        parse_part_names(text, max_parts=3)
    assert info.value.exit_code == 2
    assert "\n" not in str(info.value)


def test_good_parts_are_stripped():
    assert parse_part_names(" back, seat ,leg ", max_parts=3) == ["back", "seat", "leg"]
    assert parse_part_names(["arm", "leg"]) == ["arm", "leg"]
    assert parse_part_names("back,seat\n") == ["back", "seat"]  # "$(cat parts.txt)"


@pytest.mark.parametrize(
    "text",
    ["dossier,siège,pied", "Rückenlehne,Sitz", "靠背,座位", "背もたれ,座面", "میز,پایه‌ها"],
)
def test_part_names_in_any_language_are_kept(text):
    """Issue 31: names in any script (the zero-width non-joiner of Persian included)."""
    assert parse_part_names(text) == text.split(",")


@pytest.mark.parametrize("command", ["segment", "eval", "train"])
def test_unknown_box_reduction_is_a_one_line_usage_error(run_bipart, tmp_path, command):
    args = {
        "segment": ["segment", "x.glb", "--parts", "a,b", "--weights", "random"],
        "eval": ["eval", "--index", str(tmp_path)],
        "train": ["train", "--index", str(tmp_path), "--out", str(tmp_path / "run")],
    }[command]
    result = run_bipart(*args, "--box-reduction", "median", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--box-reduction must be one of mean, sum, not 'median'" in lines[0]
    assert not (tmp_path / "run").exists()


def test_terminal_escapes_in_node_names_are_not_printed_raw(run_bipart, tmp_path):
    """Issue 15 item 17: GLB node names reached the terminal with their escape sequences."""
    scene = trimesh.Scene()
    for name, shift in (("\x1b]0;pwned\x07seat", 0.0), ("\x1b[2Jback", 2.0)):
        box = trimesh.creation.box(extents=(1, 1, 1))
        box.apply_translation((0, shift, 0))
        scene.add_geometry(box, node_name=name, geom_name=name)
    (tmp_path / "evil.glb").write_bytes(scene.export(file_type="glb"))
    result = run_bipart("info", "evil.glb", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b[2Jback" in result.stdout


def test_line_breaks_in_node_names_are_escaped(run_bipart, tmp_path):
    """Issue 31: a GLB node name holding a newline (or tab, CR, line separator) was
    printed raw by ``bipart info``, breaking its one line per part."""
    scene = trimesh.Scene()
    names = ("se\nat", "back\r\tx", "leg\u2028y", "座面")
    for shift, name in enumerate(names):
        box = trimesh.creation.box(extents=(1, 1, 1))
        box.apply_translation((0, 2.0 * shift, 0))
        scene.add_geometry(box, node_name=name, geom_name=f"g{shift}")
    (tmp_path / "lines.glb").write_bytes(scene.export(file_type="glb"))
    # node names are part labels when a parts.json names them (issue 32 item 3)
    (tmp_path / "parts.json").write_text(json.dumps(list(names)))
    result = run_bipart("info", "lines.glb", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    parts = [line.split() for line in lines[lines.index("         parts: 4 labeled") + 1 :]]
    assert [words[:2] for words in parts] == [
        ["1", "se\\x0aat"],
        ["2", "back\\x0d\\x09x"],
        ["3", "leg\\u2028y"],
        ["4", "座面"],
        ["(unassigned)", "0"],
    ]
    assert "\t" not in result.stdout and "\r" not in result.stdout
    assert "\u2028" not in result.stdout
    facts = json.loads(run_bipart("info", "lines.glb", "--json", cwd=tmp_path).stdout)
    assert [part["name"] for part in facts["parts"]] == list(names)  # JSON: the exact names


def test_a_broken_parts_json_comment_is_one_line(run_bipart, tmp_path):
    header = 'ply\nformat ascii 1.0\ncomment parts-json: ["a", 3\nelement vertex 3\n'
    body = "property float x\nproperty float y\nproperty float z\nproperty int label\n"
    rows = "0 0 0 1\n1 0 0 2\n0 1 0 2\n"
    (tmp_path / "bad.ply").write_text(header + body + "end_header\n" + rows)
    _check(run_bipart, tmp_path, "bad.ply", "bad.ply", "parts-json", "not a JSON list of names")
