"""A rebuild loads only the shapes whose files changed (issue 31: a warm run no slower).

An index's record names the files loading its shape read and those it looked for in vain
(``ShapeRecord.reads``); a rebuild hashes the first and checks the second, and parses a
shape again only when one of them changed: an edited label array, a sidecar JSON that
appeared, a label array that vanished. The loads are counted on ``load_asset``, which the
build still calls for real.

Generated chairs in the PSB layout: ``chair_<seed>.off`` + ``chair_<seed>_labels.npy`` and
one ``parts.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from _chairs import N_DENSE, PARTS, write_chair

import bipart_cli.io
from bipart_cli.index import ShapeIndex, build_index
from bipart_cli.io import load_asset
from bipart_cli.io.sources import identity_if_unchanged, read_names

SEEDS = (1, 2, 3)


def write_psb_folder(folder: Path) -> Path:
    """``chair_<seed>.off`` + ``chair_<seed>_labels.npy`` (0-based part per face) per seed
    and a ``parts.json`` naming :data:`PARTS`; returns the folder."""
    import trimesh

    folder.mkdir(parents=True)
    for seed in SEEDS:
        asset = load_asset(write_chair(folder / "tmp.glb", seed))
        (folder / "tmp.glb").unlink()
        lookup = np.array([PARTS.index(name) for name in asset.part_names])
        labels = np.where(asset.labels >= 0, lookup[np.maximum(asset.labels, 0)], -1)
        trimesh.Trimesh(asset.vertices, asset.faces, process=False).export(
            folder / f"chair_{seed}.off"
        )
        np.save(folder / f"chair_{seed}_labels.npy", labels.astype(np.int64))
    (folder / "parts.json").write_text(json.dumps(PARTS))
    return folder


def edit_in_place(path: Path, data: bytes) -> None:
    """Write ``data`` over ``path``, keeping its size and its times."""
    before = path.stat()
    assert len(data) == before.st_size
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """The names of the files ``load_asset`` is called on (it still loads them)."""
    called: list[str] = []
    real = bipart_cli.io.load_asset

    def counted(path):
        called.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(bipart_cli.io, "load_asset", counted)
    return called


def build(folder: Path, out: Path):
    return build_index(
        folder, out, labeler="given", no_cache_features=True, progress=False, n_dense=N_DENSE
    )


def records(out: Path) -> dict:
    index = ShapeIndex.open(out)
    return {index.entries[i].id: index.record(i) for i in range(len(index.entries))}


def test_an_unchanged_folder_is_indexed_again_without_loading_a_shape(tmp_path, loads):
    folder = write_psb_folder(tmp_path / "chairs")
    out = tmp_path / "index"
    assert build(folder, out).indexed == len(SEEDS)
    manifest = (out / "manifest.json").read_bytes()
    loads.clear()

    again = build(folder, out)
    assert again.ok and again.unchanged == len(SEEDS)
    assert loads == []
    assert (out / "manifest.json").read_bytes() == manifest


def test_an_edited_label_array_reloads_that_shape_alone(tmp_path, loads):
    folder = write_psb_folder(tmp_path / "chairs")
    out = tmp_path / "index"
    build(folder, out)
    before = records(out)
    path = folder / "chair_2_labels.npy"
    labels = np.load(path)
    swapped = np.select([labels == 0, labels == 1], [1, 0], labels)  # back <-> seat
    edit_in_place(path, _npy_bytes(swapped, labels.dtype))
    loads.clear()

    again = build(folder, out)
    assert loads == ["chair_2.off"]
    assert (again.indexed, again.unchanged) == (1, len(SEEDS) - 1)
    after, fresh = records(out), records_of_fresh_build(folder, tmp_path / "fresh")
    for shape_id, record in after.items():
        assert record.sha256 == fresh[shape_id].sha256
        np.testing.assert_array_equal(record.gt_labels, fresh[shape_id].gt_labels)
    assert not np.array_equal(after["chair_2.off"].gt_labels, before["chair_2.off"].gt_labels)


def test_a_sidecar_that_appears_or_a_label_array_that_vanishes_reloads_its_shape(tmp_path, loads):
    """``chair_1.json`` is read before ``parts.json`` once it is there (its names order the
    labels); ``chair_3`` without its label array has no labels and is left out."""
    folder = write_psb_folder(tmp_path / "chairs")
    out = tmp_path / "index"
    build(folder, out)
    before = records(out)
    (folder / "chair_1.json").write_text(json.dumps(PARTS[::-1]))
    (folder / "chair_3_labels.npy").unlink()
    loads.clear()

    again = build(folder, out)
    assert sorted(loads) == ["chair_1.off", "chair_3.off"]
    assert again.unchanged == 1 and [u["path"] for u in again.unlabeled] == ["chair_3.off"]
    after = records(out)
    assert sorted(after) == ["chair_1.off", "chair_2.off"]
    assert after["chair_1.off"].sha256 != before["chair_1.off"].sha256
    assert not np.array_equal(after["chair_1.off"].gt_labels, before["chair_1.off"].gt_labels)


def test_an_index_written_before_records_kept_their_reads_is_given_them_once(
    tmp_path, loads, monkeypatch
):
    """Each shape is loaded once more, and the index is then the one a new build writes."""
    import bipart_cli.index.shape

    folder = write_psb_folder(tmp_path / "chairs")
    out = tmp_path / "index"
    with monkeypatch.context() as older:
        older.setattr(bipart_cli.index.shape, "asset_reads", lambda asset: None)
        build(folder, out)
    assert "reads" not in json.loads((out / "manifest.json").read_text())["entries"][0]
    loads.clear()

    upgraded = build(folder, out)
    assert upgraded.unchanged == len(SEEDS) and len(loads) == len(SEEDS)
    build(folder, tmp_path / "fresh")
    fresh = json.loads((tmp_path / "fresh" / "manifest.json").read_text())
    assert json.loads((out / "manifest.json").read_text())["entries"] == fresh["entries"]
    loads.clear()
    build(folder, out)
    assert loads == []


def test_an_unchanged_support_folder_loads_no_shape(tmp_path, loads):
    """``segment --support DIR``'s bank, the second time: no support file is parsed."""
    from bipart_cli.support import SupportBank

    folder = write_psb_folder(tmp_path / "chairs")
    assert len(SupportBank.from_folder(folder, tmp_path / "cache")) == len(SEEDS)
    loads.clear()
    assert len(SupportBank.from_folder(folder, tmp_path / "cache")) == len(SEEDS)
    assert loads == []


def test_identity_if_unchanged_follows_the_files_read_and_those_looked_for(tmp_path):
    folder = write_psb_folder(tmp_path / "chairs")
    mesh = folder / "chair_1.off"
    asset = load_asset(mesh)
    names = read_names(asset.sources, asset.missing)
    assert names == {
        "files": ["chair_1_labels.npy", "parts.json"],
        "missing": ["chair_1.json", "chair_1.off.json"],
    }
    assert identity_if_unchanged(mesh, names) == asset.sha256
    (folder / "parts.json").write_text(json.dumps(PARTS[::-1]))
    assert identity_if_unchanged(mesh, names) == load_asset(mesh).sha256 != asset.sha256
    (folder / "chair_1.off.json").write_text("[]")
    assert identity_if_unchanged(mesh, names) is None
    (folder / "chair_1.off.json").unlink()
    (folder / "chair_1_labels.npy").unlink()
    assert identity_if_unchanged(mesh, names) is None


def records_of_fresh_build(folder: Path, out: Path) -> dict:
    build(folder, out)
    return records(out)


def _npy_bytes(array: np.ndarray, dtype) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array.astype(dtype))
    return buffer.getvalue()


def test_the_default_encoders_identity_is_the_models_and_is_read_back(tmp_path, monkeypatch):
    """``bipart index`` without ``--weights``: the identity is the loaded model's the first
    time, read from bipart's store the next (no model loaded), and made again once bipart's
    code (or a library) is another."""
    import bipart_cli.store as store
    from bipart_cli.index.shape import (
        LazyEncoder,
        default_encoder_identity,
        encoder_identity,
        load_encoder,
    )

    monkeypatch.setenv("BIPART_CACHE", str(tmp_path / "cache"))
    loaded: list[str] = []

    def load(device):
        loaded.append(str(device))
        return load_encoder(None, 0, device)

    first = default_encoder_identity(LazyEncoder(load, "cpu"))
    assert loaded == ["cpu"]
    assert first == encoder_identity(load_encoder(None, 0, "cpu"))
    again = default_encoder_identity(LazyEncoder(load, "cpu"))
    assert again == first and loaded == ["cpu"]  # read back: no model
    monkeypatch.setattr(store, "code_identity", lambda: "another version of bipart")
    assert default_encoder_identity(LazyEncoder(load, "cpu")) == first
    assert loaded == ["cpu", "cpu"]  # another code: the model again


def test_the_encoder_identity_of_weights_is_read_back_until_they_change(tmp_path, monkeypatch):
    """``bipart index --weights DIR``: the identity is the loaded model's the first time, read
    from bipart's store the next (no model loaded), and made again once the weights' files
    are others; ``--weights random`` is keyed by its seed."""
    from _tiny import tiny_config

    from bipart_cli.index.shape import (
        LazyEncoder,
        encoder_identity,
        load_encoder,
        weights_encoder_identity,
    )
    from bipart_cli.model import BiPartModel

    monkeypatch.setenv("BIPART_CACHE", str(tmp_path / "cache"))
    weights = str(BiPartModel(tiny_config()).save_pretrained(tmp_path / "weights"))
    loaded: list[str] = []

    def load(spec, seed):
        def made(device):
            loaded.append(f"{spec} {seed}")
            return load_encoder(spec, seed, device)

        return LazyEncoder(made, "cpu")

    first = weights_encoder_identity(load(weights, 0), weights, 0)
    assert first == encoder_identity(load_encoder(weights, 0, "cpu"))
    assert weights_encoder_identity(load(weights, 0), weights, 0) == first
    assert loaded == [f"{weights} 0"]  # read back: no model
    other = BiPartModel(tiny_config())
    first_weight = next(other.encoder.parameters())
    first_weight.data += 0.5
    other.save_pretrained(tmp_path / "weights")  # other encoder weights in the same folder
    changed = weights_encoder_identity(load(weights, 0), weights, 0)
    assert loaded == [f"{weights} 0", f"{weights} 0"] and changed != first
    random = [weights_encoder_identity(load("random", seed), "random", seed) for seed in (0, 1)]
    assert random[0] == encoder_identity(load_encoder("random", 0, "cpu"))
    assert weights_encoder_identity(load("random", 0), "random", 0) == random[0]
    assert loaded[2:] == ["random 0", "random 1"]


@pytest.mark.parametrize("with_weights", [False, True], ids=["default", "weights"])
def test_an_unchanged_folder_with_features_is_checked_without_torch(tmp_path, with_weights):
    """The feature cache on (the default): a second ``bipart index`` of an unchanged folder, in
    a fresh process, finds every shape unchanged without importing torch, with or without
    ``--weights DIR``."""
    import subprocess
    import sys

    weights = None
    if with_weights:
        from _tiny import tiny_config

        from bipart_cli.model import BiPartModel

        weights = str(BiPartModel(tiny_config()).save_pretrained(tmp_path / "weights"))
    folder = write_psb_folder(tmp_path / "chairs")
    out = tmp_path / "index"
    script = (
        "import sys, json\n"
        "from bipart_cli.index import build_index\n"
        f"s = build_index({str(folder)!r}, {str(out)!r}, labeler='given', progress=False,"
        f" n_dense={N_DENSE}, device='cpu', weights={weights!r})\n"
        "print(json.dumps([s.indexed, s.unchanged, 'torch' in sys.modules]))\n"
    )
    env = {**os.environ, "BIPART_CACHE": str(tmp_path / "cache")}

    def run() -> list:
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
        )
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert run() == [len(SEEDS), 0, True]  # made: the encoder filled the feature cache
    assert run() == [0, len(SEEDS), False]
    assert ShapeIndex.open(out).encoder is not None
