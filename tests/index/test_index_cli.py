"""``bipart index`` end to end on generated chairs and tables (``given`` labels).

Small fixtures: 4 chairs + 2 tables, 4096 dense points each, no encoder
features unless a test is about them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bipart_cli.cli import app
from bipart_cli.index import ShapeIndex, build_index
from bipart_cli.index.format import BASIS_NAME
from bipart_cli.index.staging import FAULT_ENV, STAGING_DIR
from bipart_cli.procedural import CATEGORIES, make_shape

FAST = ["--points", "4096", "--no-cache-features", "--device", "cpu", "-q"]
SHAPES = [("chair", 0), ("chair", 1), ("chair", 2), ("chair", 3), ("table", 0), ("table", 1)]


def write_shape(path: Path, category: str, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(make_shape(category, seed).export(file_type="glb"))


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory) -> Path:
    """Chairs and tables by category folder, each with a ``parts.json``: node names are
    part labels only when one names them (issue 32 item 3)."""
    root = tmp_path_factory.mktemp("shapes")
    for category, seed in SHAPES:
        write_shape(root / category / f"{category}_{seed}.glb", category, seed)
    for category in {category for category, _ in SHAPES}:
        (root / category / "parts.json").write_text(json.dumps(CATEGORIES[category]))
    return root


@pytest.fixture(scope="module")
def reference(shapes_dir, tmp_path_factory) -> Path:
    """An uninterrupted single build of ``shapes_dir`` (the index everything else must equal)."""
    out = tmp_path_factory.mktemp("reference") / "index"
    summary = build_index(
        shapes_dir, out, n_dense=4096, no_cache_features=True, device="cpu", progress=False
    )
    assert summary.ok and summary.entries == len(SHAPES)
    return out


def copy_of(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "shapes"
    shutil.copytree(folder, target)
    return target


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def file_times(folder: Path) -> dict[str, tuple[int, int]]:
    """Modification time (ns) and inode of every file under ``folder``: a rewrite changes them."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.stat().st_ino)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".lock")
    }


def assert_same_index(a: Path, b: Path, ignore_root: bool = False) -> None:
    """Same manifest (optionally up to the source folder) and byte-identical shards."""
    manifest_a = json.loads((a / "manifest.json").read_text())
    manifest_b = json.loads((b / "manifest.json").read_text())
    if ignore_root:
        manifest_a["source_root"] = manifest_b["source_root"] = None
    assert manifest_a["entries"] == manifest_b["entries"]
    assert manifest_a == manifest_b
    files_a = {k: v for k, v in folder_bytes(a).items() if k != "manifest.json"}
    files_b = {k: v for k, v in folder_bytes(b).items() if k != "manifest.json"}
    assert files_a == files_b


def invoke(*args: str):
    return CliRunner().invoke(app, ["index", *args])


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bipart_cli", "index", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


# --- what a build stores ---------------------------------------------------------


def test_build_stores_categories_parts_labels_and_bps(reference, shapes_dir):
    from bipart_cli.support import bps_features

    index = ShapeIndex.open(reference)
    assert index.categories() == ["chair", "table"]
    assert index.ids == sorted(f"{c}/{c}_{s}.glb" for c, s in SHAPES)
    assert index.manifest["source_root"] == str(shapes_dir.resolve())
    for i, entry in enumerate(index.entries):
        record = index.record(i)
        assert set(entry.part_names) <= set(CATEGORIES[entry.category])
        assert entry.has_ground_truth and record.gt_labels.shape == (2048,)
        assert record.points.shape == (2048, 3) and record.dense_points.shape == (4096, 3)
        assert np.linalg.norm(record.points, axis=1).max() <= 1.0 + 1e-5
        assert record.dense_gt_labels.shape == (4096,)
        # every part of a generated shape is present, so every part survives Eq. 4
        assert set(np.unique(record.gt_labels)) == set(range(len(entry.part_names)))
        assert entry.surviving_parts == len(entry.part_names)
        np.testing.assert_allclose(record.bps, bps_features(record.points, index.basis.points))
        # `given` pseudo labels vote for the ground-truth part of (nearly) every point
        agree = (record.pseudo_labels.teacher_labels() == record.gt_labels).mean()
        assert agree > 0.95
        assert record.features is None


def test_parts_option_and_parts_json_rename_and_restrict_labels(shapes_dir, tmp_path):
    folder = tmp_path / "shapes"
    shutil.copytree(shapes_dir / "chair", folder / "chair")
    summary = build_index(
        folder, tmp_path / "a", parts="seat, back", n_dense=4096, no_cache_features=True,
        progress=False,
    )  # fmt: skip
    assert summary.ok
    index = ShapeIndex.open(tmp_path / "a")
    for i, entry in enumerate(index.entries):
        assert entry.part_names == ["seat", "back"]
        labels = index.record(i).gt_labels
        assert set(np.unique(labels)) == {-1, 0, 1}  # legs (and arms) are not named: -1

    (folder / "chair" / "parts.json").write_text(json.dumps({"parts": ["back", "leg"]}))
    build_index(folder, tmp_path / "b", n_dense=4096, no_cache_features=True, progress=False)
    index = ShapeIndex.open(tmp_path / "b")
    assert all(entry.part_names == ["back", "leg"] for entry in index.entries)


def test_cached_encoder_features_match_the_encoder(shapes_dir, tmp_path):
    import torch

    from bipart_cli.index import encoder_identity
    from bipart_cli.model import BiPartConfig, BiPartModel

    folder = tmp_path / "shapes"
    shutil.copytree(shapes_dir / "table", folder / "table")
    out = tmp_path / "index"
    args = [str(folder), "--out", str(out), "--points", "4096", "--device", "cpu", "-q"]
    assert invoke(*args).exit_code == 0
    index = ShapeIndex.open(out)
    model = BiPartModel(BiPartConfig()).eval()
    assert index.encoder == encoder_identity(model)
    for i in range(len(index)):
        cached = index.encoder_features(i)
        assert cached.dtype == np.float16 and cached.shape == (2048, 681)
        points = torch.from_numpy(index.record(i).points)[None]
        expected = model.encode(points)[0].numpy()
        np.testing.assert_allclose(cached.astype(np.float32), expected, rtol=2e-3, atol=2e-3)
    first = folder_bytes(out)

    # dropping the cache keeps every shape; bringing it back recomputes only features
    result = invoke(*args, "--no-cache-features", "--json")
    summary = json.loads(result.stdout)
    assert summary["unchanged"] == 2 and not summary["features_cached"]
    assert ShapeIndex.open(out).encoder_features(0) is None
    assert not (out / "features").exists() or not any((out / "features").iterdir())
    result = invoke(*args, "--json")
    assert json.loads(result.stdout)["indexed"] == 2
    assert folder_bytes(out) == first


# --- incremental, bad files, interruption ---------------------------------------------


def test_incremental_build_skips_unchanged_files(shapes_dir, reference, tmp_path):
    folder = copy_of(shapes_dir, tmp_path)
    out = tmp_path / "index"
    first = invoke(str(folder), "--out", str(out), *FAST, "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["indexed"] == len(SHAPES)
    assert_same_index(out, reference, ignore_root=True)
    manifest = (out / "manifest.json").read_bytes()
    written = file_times(out)

    again = json.loads(invoke(str(folder), "--out", str(out), *FAST, "--json").stdout)
    assert (again["indexed"], again["unchanged"]) == (0, len(SHAPES))
    assert (out / "manifest.json").read_bytes() == manifest
    assert file_times(out) == written  # nothing to change: no file is written again

    (out / BASIS_NAME).write_bytes(b"damaged")
    invoke(str(folder), "--out", str(out), *FAST, "-q")
    assert_same_index(out, reference, ignore_root=True)  # a damaged basis file is rewritten

    write_shape(folder / "chair" / "chair_1.glb", "chair", 11)  # changed content
    write_shape(folder / "chair" / "chair_9.glb", "chair", 9)  # new file
    (folder / "table" / "table_0.glb").unlink()  # removed file
    changed = json.loads(invoke(str(folder), "--out", str(out), *FAST, "--json").stdout)
    assert (changed["indexed"], changed["unchanged"], changed["removed"]) == (2, 4, 1)
    index = ShapeIndex.open(out)
    assert "chair/chair_9.glb" in index.ids and "table/table_0.glb" not in index.ids
    assert not (out / STAGING_DIR).exists()


def test_bad_files_are_reported_and_skipped_with_exit_3(shapes_dir, tmp_path):
    folder = copy_of(shapes_dir, tmp_path)
    (folder / "chair" / "broken.glb").write_bytes(b"glTF this is not")
    (folder / "table" / "empty.obj").write_text("")
    out = tmp_path / "index"
    result = invoke(str(folder), "--out", str(out), *FAST, "--json")
    assert result.exit_code == 3
    summary = json.loads(result.stdout)
    assert sorted(f["path"] for f in summary["failed"]) == ["chair/broken.glb", "table/empty.obj"]
    assert summary["entries"] == len(SHAPES) and summary["indexed"] == len(SHAPES)
    assert "broken.glb" in result.stderr and "empty.obj" in result.stderr
    assert len(ShapeIndex.open(out)) == len(SHAPES)


@pytest.mark.slow
def test_killed_build_resumes_to_the_same_index(shapes_dir, reference, tmp_path):
    out = tmp_path / "index"
    args = [str(shapes_dir), "--out", str(out), *FAST]
    killed = run_cli(*args, env={FAULT_ENV: "kill@2"})
    assert killed.returncode == -9, killed.stderr  # SIGKILL after the 2nd shape was staged
    assert not (out / "manifest.json").exists()
    assert len(list((out / STAGING_DIR).glob("*.safetensors"))) == 2

    resumed = run_cli(*args, "--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert (summary["resumed"], summary["indexed"]) == (2, len(SHAPES) - 2)
    assert_same_index(out, reference)
    assert not (out / STAGING_DIR).exists()


@pytest.mark.slow
def test_interrupted_rebuild_resumes_and_keeps_the_old_index_valid(
    shapes_dir, reference, tmp_path, monkeypatch
):
    folder = copy_of(shapes_dir, tmp_path)
    out = tmp_path / "index"
    shutil.copytree(reference, out)
    write_shape(folder / "chair" / "chair_0.glb", "chair", 20)
    write_shape(folder / "chair" / "chair_2.glb", "chair", 22)
    write_shape(folder / "table" / "table_1.glb", "table", 21)

    monkeypatch.setenv(FAULT_ENV, "interrupt@2")  # Ctrl-C after two of the three changed shapes
    interrupted = invoke(str(folder), "--out", str(out), *FAST)
    monkeypatch.delenv(FAULT_ENV)
    assert interrupted.exit_code == 130
    ShapeIndex.open(out).verify()  # the previous index is still whole
    assert (out / "manifest.json").read_bytes() == (reference / "manifest.json").read_bytes()

    resumed = json.loads(invoke(str(folder), "--out", str(out), *FAST, "--json").stdout)
    assert (resumed["resumed"], resumed["indexed"], resumed["unchanged"]) == (2, 1, 3)
    fresh = tmp_path / "fresh"
    assert invoke(str(folder), "--out", str(fresh), *FAST).exit_code == 0
    assert_same_index(out, fresh)


# --- scale-out and shared indexes ----------------------------------------------------


def test_shards_merged_equal_a_single_build(shapes_dir, reference, tmp_path):
    parts = []
    for i in range(2):
        part = tmp_path / f"part{i}"
        result = invoke(str(shapes_dir), "--out", str(part), "--shard", f"{i}/2", *FAST, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["partial"] == {"shards": [i], "of": 2}
        parts.append(part)
    sizes = [len(ShapeIndex.open(p)) for p in parts]
    assert sum(sizes) == len(SHAPES) and min(sizes) > 0

    for order in (parts, parts[::-1]):
        merged = tmp_path / f"merged-{order[0].name}"
        result = invoke("merge", *map(str, order), "--out", str(merged), "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["entries"] == len(SHAPES)
        assert_same_index(merged, reference)

    half = tmp_path / "half"
    invoke("merge", str(parts[0]), "--out", str(half))
    assert json.loads((half / "manifest.json").read_text())["partial"] == {"shards": [0], "of": 2}


def test_merge_refuses_indexes_built_differently(shapes_dir, reference, tmp_path):
    other = tmp_path / "other"
    assert invoke(str(shapes_dir), "--out", str(other), *FAST, "--seed", "1").exit_code == 0
    result = invoke("merge", str(reference), str(other), "--out", str(tmp_path / "m"))
    assert result.exit_code == 2
    assert "settings differ" in result.stderr


def test_merge_reads_a_part_from_an_offline_hub_cache(shapes_dir, reference, tmp_path):
    parts = []
    for i in range(2):
        part = tmp_path / f"part{i}"
        assert (
            invoke(str(shapes_dir), "--out", str(part), "--shard", f"{i}/2", *FAST).exit_code == 0
        )
        parts.append(part)
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "hub" / "datasets--team--chairs-part0"
    shutil.copytree(parts[0], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)

    merged = tmp_path / "merged"
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    result = run_cli(
        "merge", "hf://datasets/team/chairs-part0", str(parts[1]), "--out", str(merged), env=env
    )
    assert result.returncode == 0, result.stderr
    assert_same_index(merged, reference)


def test_usage_errors(shapes_dir, tmp_path):
    assert invoke(str(shapes_dir)).exit_code == 2  # no --out
    assert invoke(str(shapes_dir), "--out", str(tmp_path / "x"), "--shard", "2/2").exit_code == 2
    assert invoke(str(shapes_dir), "--out", str(tmp_path / "x"), "--labeler", "gpt").exit_code == 2
    missing = invoke(str(tmp_path / "nope"), "--out", str(tmp_path / "x"))
    assert missing.exit_code == 1 and "not a folder" in missing.stderr


def test_psb_layout_obj_is_indexed_with_its_labels_and_an_unlabeled_one_fails(tmp_path):
    """Issue 15 item 2: an OBJ with ``<stem>_labels.npy`` + ``parts.json`` indexed as 0 boxes
    with ``has_ground_truth: true``; a labeled index with no labels is an error."""
    import trimesh

    folder = tmp_path / "psb"
    folder.mkdir()
    for stem in ("1", "2"):
        boxes = [trimesh.creation.box(extents=(1, 1, 1)), trimesh.creation.box(extents=(1, 1, 1))]
        boxes[1].apply_translation((0, 1.5, 0))
        trimesh.util.concatenate(boxes).export(folder / f"{stem}.obj")
    (folder / "parts.json").write_text(json.dumps(["top", "bottom"]))
    from bipart_cli.io import load_asset

    plain = load_asset(folder / "1.obj")
    top = plain.vertices[plain.faces].mean(axis=1)[:, 1] > 0.75
    np.save(folder / "1_labels.npy", np.where(top, 0, 1))  # "2" has no label array
    out = tmp_path / "index"
    result = invoke(str(folder), "--out", str(out), *FAST, "--json")
    assert result.exit_code == 3, result.output
    summary = json.loads(result.stdout)
    assert [f["path"] for f in summary["failed"]] == ["2.obj"]
    assert "none of the parts top, bottom is labeled" in summary["failed"][0]["error"]
    (entry,) = ShapeIndex.open(out).entries
    assert entry.id == "1.obj" and entry.has_ground_truth and entry.num_boxes == 2


def test_rebuild_repairs_a_shard_with_a_flipped_byte(shapes_dir, reference, tmp_path):
    """Issue 15 item 4: a file with the right name and size was skipped, so ``verify()``
    kept failing after a rebuild that exited 0."""
    from bipart_cli.errors import IndexCorruptError

    out = tmp_path / "index"
    shutil.copytree(reference, out)
    (shard,) = sorted((out / "shards").glob("*.safetensors"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError):
        ShapeIndex.open(out).verify()
    result = invoke(str(shapes_dir), "--out", str(out), *FAST)
    assert result.exit_code == 0, result.output
    ShapeIndex.open(out).verify()
    assert_same_index(out, reference)


def test_unrelated_files_in_out_are_never_deleted(shapes_dir, reference, tmp_path):
    """Issue 15 item 9: ``--out EXISTING`` deleted every ``*.safetensors`` in its
    ``shards/`` and ``features/``."""
    foreign = tmp_path / "mine"
    (foreign / "shards").mkdir(parents=True)
    (foreign / "shards" / "model.safetensors").write_bytes(b"weights")
    result = invoke(str(shapes_dir), "--out", str(foreign), *FAST)
    assert result.exit_code == 2, result.output
    assert "holds no bipart index" in result.output
    assert (foreign / "shards" / "model.safetensors").read_bytes() == b"weights"
    assert sorted(p.name for p in foreign.iterdir()) == ["shards"]

    out = tmp_path / "index"
    shutil.copytree(reference, out)
    (out / "shards" / "model.safetensors").write_bytes(b"weights")
    (out / "features").mkdir(exist_ok=True)
    (out / "features" / "notes.safetensors").write_bytes(b"mine")
    result = invoke(str(shapes_dir / "chair"), "--out", str(out), *FAST)  # fewer shapes
    assert result.exit_code == 0, result.output
    assert (out / "shards" / "model.safetensors").read_bytes() == b"weights"
    assert (out / "features" / "notes.safetensors").read_bytes() == b"mine"
    assert len(ShapeIndex.open(out)) == 4


def test_a_full_disk_stops_the_build_with_one_line_and_no_staging(shapes_dir, tmp_path):
    """Issue 15 item 6: ``index`` left ``.staging`` behind on a full disk. A file-size limit
    (RLIMIT_FSIZE, SIGXFSZ ignored) makes every write past 16 KiB fail like a full disk."""
    import resource
    import signal

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 10, 16 << 10))

    out = tmp_path / "index"
    result = subprocess.run(
        [sys.executable, "-m", "bipart_cli", "index", str(shapes_dir), "--out", str(out), *FAST],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        preexec_fn=small_disk,
        timeout=300,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and "cannot write the index" in lines[0], result.stderr
    assert "File too large" in lines[0]
    assert not (out / STAGING_DIR).exists() and not (out / "manifest.json").exists()
