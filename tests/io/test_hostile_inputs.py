"""Hostile inputs (issue 15): memory bombs, pickles, path traversal, concurrent runs.

Every bounded-memory case runs ``python -m bipart_cli`` in a subprocess under
``resource.setrlimit(RLIMIT_AS, ...)``, so a regression fails (MemoryError, a
non-zero exit or a wrong message) instead of swapping the machine.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh

# ``bipart info`` (no torch) peaks near 300 MiB of address space; the bombs asked for 8 GB+
INFO_LIMIT = 1 << 30


def run_limited(*args: str, limit: int = INFO_LIMIT, cwd: Path | None = None):
    """``python -m bipart_cli ARGS`` with its address space capped at ``limit`` bytes."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "bipart_cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1"},
        preexec_fn=cap,
    )


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    for hint in ("allow_pickle", "weights_only", "pickle.load"):
        assert hint not in result.stderr
    return lines[0]


def write_npy_header(path: Path, shape: tuple[int, ...], descr: str, payload: bytes) -> Path:
    """A ``.npy`` whose header declares ``shape`` but whose data is only ``payload``."""
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": descr, "fortran_order": False, "shape": shape}
        )
        handle.write(payload)
    return path


def two_boxes(path: Path) -> trimesh.Trimesh:
    mesh = trimesh.util.concatenate(
        [trimesh.creation.box(extents=(1, 1, 1)), trimesh.creation.box(extents=(1, 1, 1))]
    )
    mesh.vertices[len(mesh.vertices) // 2 :, 1] += 1.5
    mesh.export(path)
    return mesh


# --- item 1: memory bombs ------------------------------------------------------------

BOMB_PLY = (
    "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
    "property float z\nelement face 1\nproperty list uchar int vertex_indices\n"
    "property int label\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2 30000000\n"
)


def test_ply_face_label_of_30_million_is_one_part_in_bounded_memory(tmp_path):
    """The 208-byte PLY of the issue took 7.8 GB (17 GB here) and 20-100 s; now ~50 MB."""
    path = tmp_path / "bomb.ply"
    path.write_text(BOMB_PLY)
    assert path.stat().st_size == 208
    result = run_limited("info", str(path), "--json")
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert [(p["name"], p["faces"]) for p in facts["parts"]] == [("part_30000000", 1)]


def test_label_array_holding_10_to_the_12_is_one_part_in_bounded_memory(tmp_path):
    mesh = two_boxes(tmp_path / "pair.off")
    labels = np.zeros(len(mesh.faces), np.int64)
    labels[::2] = 10**12
    np.save(tmp_path / "pair_labels.npy", labels)
    result = run_limited("info", str(tmp_path / "pair.off"), "--json")
    assert result.returncode == 0, result.stderr
    parts = json.loads(result.stdout)["parts"]
    assert [(p["name"], p["faces"]) for p in parts] == [("part_1", 12), (f"part_{10**12 + 1}", 12)]


def test_label_array_header_declaring_10_to_the_12_labels_is_refused(tmp_path):
    two_boxes(tmp_path / "pair.off")
    write_npy_header(tmp_path / "pair_labels.npy", (10**12,), "<i8", bytes(8 * 24))
    line = one_error_line(run_limited("info", str(tmp_path / "pair.off")))
    assert "pair_labels.npy" in line and "declares more data than the file holds" in line


def test_point_array_header_declaring_a_terabyte_is_refused(tmp_path):
    path = write_npy_header(tmp_path / "cloud.npy", (10**11, 3), "<f4", bytes(12 * 10))
    line = one_error_line(run_limited("info", str(path)))
    assert "cloud.npy" in line and "declares more data than the file holds" in line


def test_ply_header_declaring_a_billion_vertices_is_refused(tmp_path):
    path = tmp_path / "many.ply"
    path.write_text(BOMB_PLY.replace("element vertex 3", "element vertex 1000000000"))
    line = one_error_line(run_limited("info", str(path)))
    assert "many.ply" in line and "1000000000 rows" in line


def test_npz_zip_bomb_is_refused_before_it_expands(tmp_path):
    """~300 KB of deflated zeros that would expand to 300 MB of points."""
    path = tmp_path / "bomb.npz"
    rows = 25_000_000  # (rows, 3) float32 = 300 MB
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("points.npy", "w", force_zip64=True) as member,
    ):
        np.lib.format.write_array_header_1_0(
            member, {"descr": "<f4", "fortran_order": False, "shape": (rows, 3)}
        )
        block = bytes(1 << 22)
        for _ in range(rows * 12 // len(block)):
            member.write(block)
        member.write(bytes(rows * 12 % len(block)))
    assert path.stat().st_size < 2_000_000
    line = one_error_line(run_limited("info", str(path), limit=700 << 20))
    assert "bomb.npz" in line and "expands to" in line


def test_npz_member_declaring_more_than_it_holds_is_refused(tmp_path):
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as archive, archive.open("points.npy", "w") as member:
        np.lib.format.write_array_header_1_0(
            member, {"descr": "<f8", "fortran_order": False, "shape": (10**10, 3)}
        )
        member.write(bytes(24 * 4))
    line = one_error_line(run_limited("info", str(path)))
    assert "liar.npz" in line and "declares more data" in line


# --- pickles ---------------------------------------------------------------------------


class _Payload:
    """Unpickling it would create a file: the proof that a pickle was executed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.parametrize("where", ["cloud.npy", "labels.npy", "cloud.npz"])
def test_pickled_arrays_are_never_loaded(tmp_path, where):
    marker = tmp_path / "pwned"
    payload = np.array([_Payload(str(marker)), 1], dtype=object)
    if where == "cloud.npy":
        target = tmp_path / "cloud.npy"
        np.save(target, payload, allow_pickle=True)
    elif where == "labels.npy":
        target = tmp_path / "pair.off"
        two_boxes(target)
        np.save(tmp_path / "pair_labels.npy", payload, allow_pickle=True)
    else:
        target = tmp_path / "cloud.npz"
        np.savez(target, points=np.zeros((4, 3)), labels=payload)
    line = one_error_line(run_limited("info", str(target)))
    assert "pickle" in line
    assert not marker.exists()


# --- item 3: concurrent runs -------------------------------------------------------------


@pytest.mark.slow
def test_four_concurrent_cold_cache_segment_runs_all_succeed_with_identical_labels(tmp_path):
    """3 of 4 failed with "staged record ... is missing in .../.staging" (the cache's
    staging folder was shared and removed under the others)."""
    from plyfile import PlyData

    from bipart_cli.procedural import make_shape, write_examples

    write_examples(tmp_path, categories=(), n_chairs=3)
    target = tmp_path / "target.glb"
    target.write_bytes(make_shape("chair", 11).export(file_type="glb"))
    env = {**os.environ, "NO_COLOR": "1", "BIPART_CACHE": str(tmp_path / "cache")}
    args = ["--parts", "back,seat,leg,arm", "--support", str(tmp_path / "chairs")]
    args += ["--labeler", "none", "--weights", "random", "--points", "2048", "--device", "cpu"]
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "bipart_cli", "segment", str(target), *args, "-o", f"out{k}"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(4)
    ]
    results = [(run.wait(timeout=900), *run.communicate()) for run in runs]
    for code, _, stderr in results:
        assert code == 0, stderr
    labels = [
        np.asarray(PlyData.read(str(tmp_path / f"out{k}" / "target.parts.ply"))["vertex"]["label"])
        for k in range(4)
    ]
    for other in labels[1:]:
        np.testing.assert_array_equal(other, labels[0])
    (index,) = (tmp_path / "cache" / "support").iterdir()
    assert not (index / ".staging").exists()


def test_a_writer_that_cannot_get_the_index_lock_names_the_holder(tmp_path):
    import threading

    from bipart_cli.errors import IndexBusyError
    from bipart_cli.index.writer import index_lock

    errors: list[BaseException] = []

    def second_writer() -> None:
        try:
            with index_lock(tmp_path / "index", timeout=0.2):
                pass
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)

    with index_lock(tmp_path / "index"):
        thread = threading.Thread(target=second_writer)
        thread.start()
        thread.join()
    (error,) = errors
    assert isinstance(error, IndexBusyError)
    assert f"being built by PID {os.getpid()}" in str(error)
    assert not (tmp_path / "index" / ".lock.owner").exists()


# --- item 5: manifest paths and revisions --------------------------------------------------


@pytest.fixture
def small_index(tmp_path) -> Path:
    """A one-shard synthetic index (no labeler or model runs)."""
    from _synthetic_index import synthetic_record, write_index

    out = tmp_path / "idx"
    write_index(out, [synthetic_record(i) for i in range(3)])
    return out


def _edit_manifest(index: Path, edit) -> None:
    path = index / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("field", "name"),
    [
        ("shard", "../../secret.safetensors"),
        ("shard", "/etc/passwd"),
        ("shard", "shards"),
        ("shard", "shards/link.safetensors"),
        ("basis", "../secret.safetensors"),
        ("basis", "shards"),
    ],
)
def test_manifest_paths_must_stay_inside_the_index(small_index, field, name):
    """``shards[].name`` and ``bps_basis.file`` were joined to the root unchecked
    (``/dev/zero`` is tested in a memory-capped subprocess below)."""
    from bipart_cli.errors import IndexCorruptError
    from bipart_cli.index import ShapeIndex

    secret = small_index.parent / "secret.safetensors"
    secret.write_bytes(b"x" * 64)
    (small_index / "shards" / "link.safetensors").symlink_to(secret)

    def edit(manifest):
        if field == "shard":
            manifest["shards"][0]["name"] = name
        else:
            manifest["bps_basis"]["file"] = name

    _edit_manifest(small_index, edit)
    with pytest.raises(IndexCorruptError, match="outside the index folder|not a regular file"):
        index = ShapeIndex.open(small_index, verify=field == "shard")
        index.basis  # noqa: B018 - reads bps_basis.file
        index.record(0)


@pytest.mark.parametrize("field", ["shard", "basis"])
def test_dev_zero_in_a_manifest_is_one_line_in_bounded_memory(small_index, tmp_path, field):
    """``/dev/zero`` as a shard or basis file was read until MemoryError."""

    def edit(manifest):
        if field == "shard":
            manifest["shards"][0]["name"] = "/dev/zero"
        else:
            manifest["bps_basis"]["file"] = "/dev/zero"

    _edit_manifest(small_index, edit)
    target = tmp_path / "t.ply"
    target.write_text(BOMB_PLY)
    result = run_limited(
        "segment",
        str(target),
        "--parts",
        "a,b",
        "--index",
        str(small_index),
        "--weights",
        "random",
        "--labeler",
        "none",
        "--points",
        "512",
        "--device",
        "cpu",
        "-q",
        limit=6 << 30,
    )  # fmt: skip (-q: no stage lines, only the error)
    line = one_error_line(result)
    assert "/dev/zero" in line and "outside the index folder" in line


@pytest.mark.parametrize(
    "uri",
    [
        "hf://datasets/owner/name@../../../etc",
        "hf://datasets/owner/name@/abs",
        "hf://datasets/owner/name@main\n",
        "hf://datasets/owner/name@a..b",
        "hf://datasets/owner/name@" + "a" * 300,
    ],
)
def test_hf_revisions_are_validated(uri):
    from bipart_cli.errors import UsageError
    from bipart_cli.hub import parse_hf_uri

    with pytest.raises(UsageError, match="not a valid revision"):
        parse_hf_uri(uri)


def test_good_hf_revisions_pass():
    from bipart_cli.hub import parse_hf_uri

    for revision in ("main", "v1.0", "refs/pr/3", "0123456789abcdef0123456789abcdef01234567"):
        assert parse_hf_uri(f"hf://datasets/owner/name@{revision}")[2] == revision


def test_a_pickled_torch_checkpoint_is_refused_without_unsafe_advice(tmp_path):
    """torch's message says to rerun with ``weights_only=False``: users must never read it."""
    import torch

    from bipart_cli.errors import CheckpointError
    from bipart_cli.model.checkpoint import load_point_m2ae_checkpoint
    from bipart_cli.runtime import user_message

    marker = tmp_path / "pwned"
    torch.save({"base_model": _Payload(str(marker))}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError) as caught:
        load_point_m2ae_checkpoint(tmp_path / "evil.pth")
    line = user_message(caught.value)
    assert "pickled Python objects" in line and "\n" not in line
    assert "weights_only" not in line and "allow_pickle" not in line
    assert not marker.exists()


# --- issue 31: small GLB/OBJ files that expand (instancing, textures) or lie -------------


def glb_bytes(header: dict, binary: bytes) -> bytes:
    """A GLB container: ``header`` as its JSON chunk, ``binary`` as its BIN chunk."""
    import struct

    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    body = struct.pack("<I", len(text)) + b"JSON" + text
    body += struct.pack("<I", len(binary)) + b"BIN\0" + binary
    return b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body


def textured_triangle_glb(png: bytes, nodes: int = 1, mesh: trimesh.Trimesh | None = None) -> bytes:
    """A GLB of ``nodes`` nodes all instancing one mesh (a textured triangle, or ``mesh``
    untextured when given), the PNG ``png`` embedded as its base-colour texture."""
    if mesh is None:
        vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
        faces = np.array([[0, 1, 2]], np.uint32)
    else:
        vertices = np.asarray(mesh.vertices, np.float32)
        faces = np.asarray(mesh.faces, np.uint32)
    uvs = np.clip(vertices[:, :2], 0, 1).astype(np.float32)
    blobs = [vertices.tobytes(), uvs.tobytes(), faces.tobytes(), png]
    offsets = np.cumsum([0] + [len(b) for b in blobs]).tolist()
    views = [
        {"buffer": 0, "byteOffset": offsets[i], "byteLength": len(blob)}
        for i, blob in enumerate(blobs)
    ]
    header = {
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [{"nodes": list(range(nodes))}],
        "nodes": [{"mesh": 0}] * nodes,
        "meshes": [
            {
                "primitives": [
                    {"attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "indices": 2, "material": 0}
                ]
            }
        ],
        "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}],
        "textures": [{"source": 0}],
        "images": [{"bufferView": 3, "mimeType": "image/png"}],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": len(vertices),
                "type": "VEC3",
                "min": vertices.min(0).tolist(),
                "max": vertices.max(0).tolist(),
            },
            {"bufferView": 1, "componentType": 5126, "count": len(vertices), "type": "VEC2"},
            {"bufferView": 2, "componentType": 5125, "count": faces.size, "type": "SCALAR"},
        ],  # fmt: skip
        "bufferViews": views,
        "buffers": [{"byteLength": offsets[-1] + (-offsets[-1] % 4)}],
    }
    return glb_bytes(header, b"".join(blobs))


def png_bytes(width: int, height: int) -> bytes:
    """A black RGB PNG: its header says ``width`` x ``height``, its deflated rows are tiny."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory) -> bytes:
    """A 12000x12000 PNG of ~420 KB: 430 MB decoded, ~3 GB as bipart baked it."""
    from PIL import Image

    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        return png_bytes(12000, 12000)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def test_forty_thousand_instances_of_one_mesh_are_refused_in_bounded_memory(tmp_path):
    """Issue 31 item 13: 40,000 nodes instancing one 2,000-triangle mesh (80M triangles in
    a file under 1 MB) took 3.8 GB in ``info``, then a MemoryError."""
    mesh = trimesh.creation.cylinder(radius=1, height=1, sections=500)
    assert len(mesh.faces) == 2000
    path = tmp_path / "instanced.glb"
    path.write_bytes(textured_triangle_glb(png_bytes(2, 2), nodes=40_000, mesh=mesh))
    assert path.stat().st_size < 1 << 20
    line = one_error_line(run_limited("info", str(path)))
    assert "instanced.glb: 80000000 triangles over its 40000 mesh instances" in line
    assert "limit of 2000000" in line


def test_a_few_instances_are_still_read(tmp_path):
    path = tmp_path / "three.glb"
    path.write_bytes(textured_triangle_glb(png_bytes(2, 2), nodes=3))
    result = run_limited("info", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["faces"] == 3


def test_a_12000_pixel_texture_in_a_small_glb_is_skipped_in_bounded_memory(tmp_path, huge_png):
    """Issue 31 item 14: the texture was decoded (and baked) whatever its size: ~3 GB."""
    path = tmp_path / "bomb.glb"
    path.write_bytes(textured_triangle_glb(huge_png))
    assert path.stat().st_size < 1 << 20
    result = run_limited("info", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["faces"] == 1
    (line,) = result.stderr.strip().splitlines()  # no DecompressionBombWarning either
    assert line.startswith("warning: ") and "bomb.glb: skipped 1 texture(s) of 12000x12000" in line


def test_a_12000_pixel_texture_of_an_obj_material_is_skipped_in_bounded_memory(tmp_path, huge_png):
    (tmp_path / "big.png").write_bytes(huge_png)
    (tmp_path / "tex.mtl").write_text("newmtl m\nmap_Kd big.png\n")
    (tmp_path / "tex.obj").write_text(
        "mtllib tex.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\n"
        "usemtl m\nf 1/1 2/2 3/3\n"
    )
    result = run_limited("info", str(tmp_path / "tex.obj"), "--json")
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "tex.obj: skipped 1 texture(s) of 12000x12000" in line


def test_a_texture_within_the_limit_is_kept(tmp_path):
    from bipart_cli.io import load_asset

    path = tmp_path / "small.glb"
    path.write_bytes(textured_triangle_glb(png_bytes(64, 32)))
    (texture,) = load_asset(path).textures
    assert texture.size == (64, 32)


def _corrupt_glb(kind: str) -> bytes:
    import struct

    data = bytearray(textured_triangle_glb(png_bytes(2, 2)))
    if kind == "utf8":
        at = data.index(b'"asset"')
        data[at + 1] = 0xFF  # "\xffsset": not UTF-8
    else:  # the JSON chunk's length runs past the end of the file
        data[12:16] = struct.pack("<I", 10**6)
    return bytes(data)


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("utf8", "corrupt or truncated GLB file (its JSON is not UTF-8"),
        ("length", "corrupt or truncated GLB file (its JSON chunk of 1000000 bytes runs past"),
    ],
)
def test_a_glb_with_a_broken_json_chunk_is_called_corrupt(tmp_path, kind, needle):
    """Issue 31 item 6: both were blamed on a missing ``charset_normalizer``."""
    path = tmp_path / "broken.glb"
    path.write_bytes(_corrupt_glb(kind))
    line = one_error_line(run_limited("info", str(path)))
    assert f"broken.glb: {needle}" in line and "charset" not in line
