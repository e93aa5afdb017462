"""``io.sources``: the files a load read (``Asset.sources``) and the identity over their
bytes (``Asset.sha256``)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from _chairs import PARTS, write_chair

from bipart_cli.io import load_asset
from bipart_cli.procedural import make_shape


def test_a_file_read_alone_is_its_own_sha256(tmp_path):
    path = write_chair(tmp_path / "chair.glb", 1)
    asset = load_asset(path)
    assert asset.sources == [path]
    assert asset.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_gltf_reports_its_buffers_and_the_identity_follows_them(tmp_path):
    for name, data in make_shape("chair", 1).export(file_type="gltf").items():
        (tmp_path / ("chair.gltf" if name.endswith(".gltf") else name)).write_bytes(data)
    (tmp_path / "unrelated.bin").write_bytes(b"never read")
    gltf = tmp_path / "chair.gltf"
    asset = load_asset(gltf)
    buffers = sorted(p.name for p in tmp_path.glob("gltf_buffer_*.bin"))
    assert asset.sources[0] == gltf
    assert sorted(p.name for p in asset.sources[1:]) == buffers
    before = asset.sha256
    (tmp_path / "unrelated.bin").write_bytes(b"still never read")
    assert load_asset(gltf).sha256 == before
    first = tmp_path / buffers[0]
    data = bytearray(first.read_bytes())
    data[0] ^= 1
    first.write_bytes(bytes(data))
    assert load_asset(gltf).sha256 != before


def test_a_psb_mesh_reports_its_label_array_and_parts_json(tmp_path):
    import trimesh

    asset = load_asset(write_chair(tmp_path / "chair.glb", 1))
    off = tmp_path / "chair.off"
    trimesh.Trimesh(asset.vertices, asset.faces, process=False).export(off)
    labels = np.zeros(len(asset.faces), dtype=np.int64)
    np.save(tmp_path / "chair_labels.npy", labels)
    (tmp_path / "parts.json").write_text(json.dumps(PARTS))
    loaded = load_asset(off)
    assert [p.name for p in loaded.sources] == ["chair.off", "chair_labels.npy", "parts.json"]
    seen = {loaded.sha256}
    np.save(tmp_path / "chair_labels.npy", labels + 1)
    seen.add(load_asset(off).sha256)
    (tmp_path / "parts.json").write_text(json.dumps(PARTS[::-1]))
    seen.add(load_asset(off).sha256)
    assert len(seen) == 3
