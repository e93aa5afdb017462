"""Every byte a result was computed from is in its key (issue 31): a label array, a
``parts.json``, a glTF's ``.bin``, a mesh file or a weights ``config.json`` or
``model.safetensors`` edited in place, keeping its size and modification time, changes what
``segment``, the index and ``eval`` give, the same as a fresh cache does; bipart's own
outputs never become support.

Generated chairs: a support folder in the PSB layout (``<stem>.off`` + ``<stem>_labels.npy``
+ ``parts.json``), a target glTF with its buffers in ``.bin`` files, tiny weights in a folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from _chairs import N_DENSE, PARTS, TARGET_SEEDS, write_chair

from bipart_cli.index import ShapeIndex, build_index
from bipart_cli.io import load_asset
from bipart_cli.procedural import make_shape

# each test segments, indexes or evaluates twice, end to end: the slow set, run by CI
pytestmark = pytest.mark.slow

SUPPORT_SEEDS = (1, 2, 3)


def edit_in_place(path: Path, data: bytes) -> None:
    """Write ``data`` over ``path``, which must keep its size, and put back its times."""
    before = path.stat()
    assert len(data) == before.st_size, "the edit must keep the file's size"
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_mtime_ns == before.st_mtime_ns


def write_psb_support(folder: Path) -> Path:
    """Chairs as ``chair_<seed>.off`` + ``chair_<seed>_labels.npy`` (0-based part per face)
    and one ``parts.json`` naming :data:`PARTS`; returns the folder."""
    import trimesh

    folder.mkdir(parents=True)
    for seed in SUPPORT_SEEDS:
        glb = write_chair(folder / "tmp.glb", seed)
        asset = load_asset(glb)
        glb.unlink()
        lookup = np.array([PARTS.index(name) for name in asset.part_names])
        labels = np.where(asset.labels >= 0, lookup[np.maximum(asset.labels, 0)], -1)
        mesh = trimesh.Trimesh(asset.vertices, asset.faces, process=False)
        mesh.export(folder / f"chair_{seed}.off")
        np.save(folder / f"chair_{seed}_labels.npy", labels.astype(np.int64))
    (folder / "parts.json").write_text(json.dumps(PARTS))
    return folder


def swap_labels(folder: Path) -> None:
    """In every ``_labels.npy``: back and seat trade places (same size, same times)."""
    for path in sorted(folder.glob("*_labels.npy")):
        labels = np.load(path)
        swapped = np.select([labels == 0, labels == 1], [1, 0], labels)
        edit_in_place(path, _npy_bytes(path, swapped))


def swap_parts_json(folder: Path) -> None:
    """``parts.json``: back and seat trade names (same size, same times)."""
    path = folder / "parts.json"
    names = json.loads(path.read_text())
    names[0], names[1] = names[1], names[0]
    edit_in_place(path, json.dumps(names).encode())


def _npy_bytes(path: Path, array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array.astype(np.load(path).dtype))
    return buffer.getvalue()


def write_gltf(folder: Path, seed: int) -> Path:
    """A chair as ``chair.gltf`` with its buffers in ``.bin`` files beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in make_shape("chair", seed).export(file_type="gltf").items():
        (folder / ("chair.gltf" if name.endswith(".gltf") else name)).write_bytes(data)
    return folder / "chair.gltf"


def turn_gltf_positions(gltf: Path) -> None:
    """Swap y and z of every vertex in the ``.bin`` files (the chair lies on its back):
    the ``.gltf`` itself is untouched, each ``.bin`` keeps its size and times."""
    document = json.loads(gltf.read_text())
    edits: dict[Path, bytearray] = {}
    for mesh in document["meshes"]:
        for primitive in mesh["primitives"]:
            accessor = document["accessors"][primitive["attributes"]["POSITION"]]
            view = document["bufferViews"][accessor["bufferView"]]
            path = gltf.parent / document["buffers"][view["buffer"]]["uri"]
            data = edits.setdefault(path, bytearray(path.read_bytes()))
            start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
            end = start + 12 * accessor["count"]
            xyz = np.frombuffer(bytes(data[start:end]), dtype="<f4").reshape(-1, 3)
            data[start:end] = np.ascontiguousarray(xyz[:, [0, 2, 1]]).tobytes()
    assert edits, "no POSITION buffers found"
    for path, data in edits.items():
        edit_in_place(path, bytes(data))


# --- the index re-reads a shape when any file it was read from changed ----------------


def _build(folder: Path, out: Path):
    return build_index(
        folder, out, labeler="given", parts=PARTS, no_cache_features=True, progress=False
    )


def _gt_by_id(out: Path) -> dict[str, np.ndarray]:
    index = ShapeIndex.open(out)
    rows = range(len(index.entries))
    return {index.entries[i].id: index.record(i) for i in rows}


def _part_ratios(out: Path) -> dict[str, list[float]]:
    """The manifest's ``part_ratio`` per shape id (what retrieval ranks support by)."""
    index = ShapeIndex.open(out)
    return {index.entries[i].id: index.entries[i].part_ratio for i in range(len(index.entries))}


@pytest.mark.parametrize("edit", ["labels_npy", "parts_json", "gltf_bin"])
def test_the_index_reads_again_a_shape_whose_sidecar_or_buffer_changed(tmp_path, edit):
    """``bipart index --parts`` again after an in-place edit of a label array, the
    ``parts.json`` or a glTF's ``.bin``: no shape is "unchanged", and the records are those
    a fresh build makes (labels follow the swap, points the turn)."""
    folder = tmp_path / "shapes"
    if edit == "gltf_bin":
        write_gltf(folder, TARGET_SEEDS[0])
    else:
        write_psb_support(folder)
    out = tmp_path / "index"
    first = _build(folder, out)
    assert first.ok and first.indexed == first.files
    before, ratios_before = _gt_by_id(out), _part_ratios(out)
    {"labels_npy": swap_labels, "parts_json": swap_parts_json}.get(
        edit, lambda f: turn_gltf_positions(f / "chair.gltf")
    )(folder)

    again = _build(folder, out)
    assert again.ok and again.unchanged == 0 and again.indexed == again.files
    fresh = _build(folder, tmp_path / "fresh")
    assert fresh.ok
    after, expected = _gt_by_id(out), _gt_by_id(tmp_path / "fresh")
    field = "points" if edit == "gltf_bin" else "gt_labels"
    for shape_id, record in after.items():
        assert record.sha256 == expected[shape_id].sha256
        np.testing.assert_array_equal(getattr(record, field), getattr(expected[shape_id], field))
        assert not np.array_equal(getattr(record, field), getattr(before[shape_id], field))
    # the manifest too: "unchanged" had kept the old part_ratio
    assert _part_ratios(out) == _part_ratios(tmp_path / "fresh")
    if edit != "gltf_bin":
        assert _part_ratios(out) != ratios_before


# --- segment: a warm cache gives what a fresh cache gives -----------------------------


def _tiny_weights(folder: Path) -> Path:
    import torch
    from _tiny import tiny_config

    from bipart_cli.model import BiPartModel

    torch.manual_seed(0)
    BiPartModel(tiny_config()).save_pretrained(folder)
    return folder


def _segment(target: Path, support: Path, weights: Path, cache: Path, **options):
    from bipart_cli import segment

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BIPART_CACHE", str(cache))
        (result,) = segment(
            str(target),
            ",".join(PARTS),
            support_dir=support,
            labeler="none",
            weights=str(weights),
            n_dense=N_DENSE,
            **{"write": False, **options},
        )
    assert result.ok, result.error
    return result


@pytest.fixture
def chairs(tmp_path):
    """A PSB-layout support folder, a target chair and tiny weights under ``tmp_path``."""
    support = write_psb_support(tmp_path / "support")
    target = write_chair(tmp_path / "target.glb", TARGET_SEEDS[0])
    return support, target, _tiny_weights(tmp_path / "weights")


def test_segment_follows_a_swap_in_the_support_label_arrays(chairs, tmp_path):
    """Item 1: back and seat swapped in the support's ``_labels.npy`` (size and times kept):
    the warm run labels as a fresh cache does, not as before the swap."""
    support, target, weights = chairs
    before = _segment(target, support, weights, tmp_path / "cache")
    swap_labels(support)
    warm = _segment(target, support, weights, tmp_path / "cache")
    fresh = _segment(target, support, weights, tmp_path / "fresh")
    assert not np.array_equal(fresh.dense_labels, before.dense_labels)
    assert warm.reused is False
    np.testing.assert_array_equal(warm.dense_labels, fresh.dense_labels)
    # the right labels were stored under the new key: a third run reads them back
    third = _segment(target, support, weights, tmp_path / "cache")
    assert third.reused is True
    np.testing.assert_array_equal(third.dense_labels, fresh.dense_labels)


def test_a_target_gltf_whose_bin_changed_is_not_a_stored_run(chairs, tmp_path):
    """Item 2: a target ``.gltf`` whose ``.bin`` was edited in place (positions turned, same
    size and times) is computed again, not read back with the old labels."""
    support, _, weights = chairs
    target = write_gltf(tmp_path / "target", TARGET_SEEDS[0])
    first = _segment(target, support, weights, tmp_path / "cache")
    assert _segment(target, support, weights, tmp_path / "cache").reused is True
    turn_gltf_positions(target)
    warm = _segment(target, support, weights, tmp_path / "cache")
    fresh = _segment(target, support, weights, tmp_path / "fresh")
    assert warm.reused is False
    assert not np.array_equal(fresh.dense_labels, first.dense_labels)
    np.testing.assert_array_equal(warm.dense_labels, fresh.dense_labels)


@pytest.mark.parametrize(
    ("old", "new"),
    [('"extractor_k": 16', '"extractor_k": 12'), ("    0.64,", "    0.25,")],
    ids=["extractor_k", "local_radius"],
)
def test_segment_follows_an_edited_weights_config(chairs, tmp_path, old, new):
    """Item 3: ``extractor_k`` or a ``local_radius`` edited in ``config.json`` (size and times
    kept, ``model.safetensors`` untouched): a warm cache labels as a fresh one does."""
    support, target, weights = chairs
    before = _segment(target, support, weights, tmp_path / "cache")
    config = weights / "config.json"
    text = config.read_text()
    assert text.count(old) == 1
    edit_in_place(config, text.replace(old, new).encode())
    warm = _segment(target, support, weights, tmp_path / "cache")
    fresh = _segment(target, support, weights, tmp_path / "fresh")
    assert not np.array_equal(fresh.dense_scores, before.dense_scores)
    np.testing.assert_array_equal(warm.dense_labels, fresh.dense_labels)
    np.testing.assert_array_equal(warm.dense_scores, fresh.dense_scores)


def test_a_target_in_its_own_support_folder_never_supports_itself(chairs, tmp_path):
    """Item 4: a target segmented inside its support folder twice (its ``*.parts.*`` written
    there the first time): the second run's support is the same, and so are its labels."""
    support, _, weights = chairs
    target = write_chair(support / "target.glb", TARGET_SEEDS[0])
    first = _segment(target, support, weights, tmp_path / "cache", write=True)
    assert any(support.glob("target.parts.*"))
    second = _segment(target, support, weights, tmp_path / "cache", write=True)
    fresh = _segment(target, support, weights, tmp_path / "fresh", write=False)
    for result in (first, second, fresh):
        assert result.support and not any(".parts" in name for name in result.support)
    assert second.support == first.support
    np.testing.assert_array_equal(second.dense_labels, first.dense_labels)
    np.testing.assert_array_equal(fresh.dense_labels, first.dense_labels)


# --- eval: a warm cache scores as a fresh cache does ----------------------------------


def write_eval_folder(folder: Path) -> Path:
    """One category, ``chair/``: PSB-layout chairs (``.off`` + ``_labels.npy`` + ``parts.json``)
    and, in ``chair/gltf/``, a chair whose buffers are ``.bin`` files (its parts are its node
    names, so a swap in the PSB chairs' labels or names is a disagreement it does not share)."""
    write_psb_support(folder / "chair")
    write_gltf(folder / "chair" / "gltf", TARGET_SEEDS[0])
    return folder


def turn_off_mesh(path: Path) -> None:
    """Swap y and z of every vertex line of an ASCII ``.off`` (same size, same times)."""
    lines = path.read_bytes().split(b"\n")
    assert lines[0].strip() == b"OFF"
    n_vertices = int(lines[1].split()[0])
    for i in range(2, 2 + n_vertices):
        x, y, z = lines[i].split(b" ")
        lines[i] = b" ".join([x, z, y])
    edit_in_place(path, b"\n".join(lines))


def negate_tensor(path: Path, name: str) -> None:
    """Flip the sign bit of every float32 of tensor ``name`` in a ``.safetensors`` file
    (same size, same times)."""
    data = bytearray(path.read_bytes())
    header_size = int.from_bytes(data[:8], "little")
    entry = json.loads(data[8 : 8 + header_size])[name]
    assert entry["dtype"] == "F32"
    start, end = (8 + header_size + offset for offset in entry["data_offsets"])
    values = np.frombuffer(bytes(data[start:end]), dtype="<f4")
    data[start:end] = (-values).astype("<f4").tobytes()
    edit_in_place(path, bytes(data))


def edit_config(weights: Path, old: str, new: str) -> None:
    config = weights / "config.json"
    text = config.read_text()
    assert text.count(old) == 1
    edit_in_place(config, text.replace(old, new).encode())


EVAL_EDITS = {
    "mesh_off": lambda shapes, weights: turn_off_mesh(shapes / "chair" / "chair_1.off"),
    "gltf_bin": lambda shapes, weights: turn_gltf_positions(
        shapes / "chair" / "gltf" / "chair.gltf"
    ),
    "labels_npy": lambda shapes, weights: swap_labels(shapes / "chair"),
    "parts_json": lambda shapes, weights: swap_parts_json(shapes / "chair"),
    # a size of the extractor only: the index's cached encoder features stay valid
    "config_extractor_k": lambda shapes, weights: edit_config(
        weights, '"extractor_k": 16', '"extractor_k": 12'
    ),
    # a size of the encoder: the index's cached encoder features are stale
    "config_local_radius": lambda shapes, weights: edit_config(weights, "    0.64,", "    0.25,"),
    "model_safetensors": lambda shapes, weights: negate_tensor(
        weights / "model.safetensors", "head.fc1.weight"
    ),
}


def _index_for_eval(folder: Path, out: Path, weights: Path):
    """``bipart index`` of ``folder`` (labels given, encoder features of ``weights`` kept)."""
    summary = build_index(
        folder, out, labeler="given", weights=str(weights), n_dense=N_DENSE, progress=False
    )
    assert summary.ok and not summary.failed, summary.failed
    return summary


def _eval(index: Path, weights: Path, cache: Path) -> list[tuple]:
    """``bipart eval --index INDEX --labeler none`` (support: the index's other shapes) with
    ``$BIPART_CACHE`` at ``cache`` and 10 inner steps (what is kept does not depend on how
    many): each shape's id, mIoU, part IoUs and support ids."""
    from bipart_cli.evaluate import evaluate_index

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BIPART_CACHE", str(cache))
        report = evaluate_index(
            str(index), labeler="none", weights=str(weights), device="cpu", seed=0, steps=10
        )
    scores = [(s.shape_id, s.miou, s.part_ious, s.support) for s in report.shapes]
    assert len(scores) == len(SUPPORT_SEEDS) + 1  # every shape has ground truth
    return scores


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> tuple[Path, list[tuple]]:
    """``shapes/`` (:func:`write_eval_folder`), tiny ``weights/``, their ``index/`` and a
    ``cache/`` that holds one eval of it; and that eval's scores."""
    root = tmp_path_factory.mktemp("evaluated")
    shapes = write_eval_folder(root / "shapes")
    weights = _tiny_weights(root / "weights")
    _index_for_eval(shapes, root / "index", weights)
    scores = _eval(root / "index", weights, root / "cache")
    assert _eval(root / "index", weights, root / "cache") == scores  # read back as computed
    return root, scores


@pytest.mark.parametrize("edit", list(EVAL_EDITS))
def test_eval_follows_an_edit_to_any_byte_it_read(evaluated, tmp_path, edit):
    """``bipart eval`` after one file it read, directly or through the index, was edited in
    place (size and times kept): an ``.off`` mesh, a glTF's ``.bin``, the ``_labels.npy``
    arrays, the ``parts.json``, the weights' ``config.json`` (an extractor or an encoder
    size) or ``model.safetensors`` (a head weight). The index is built again in place and
    eval run with the warm cache; it scores exactly as a fresh index and a fresh cache do,
    and not as before the edit."""
    import shutil

    root, before = evaluated
    shutil.copytree(root, tmp_path / "copy")  # times kept: the warm state of one eval
    root = tmp_path / "copy"
    shapes, weights, index = root / "shapes", root / "weights", root / "index"

    EVAL_EDITS[edit](shapes, weights)
    _index_for_eval(shapes, index, weights)  # incremental: what changed is indexed again
    warm = _eval(index, weights, root / "cache")
    _index_for_eval(shapes, tmp_path / "fresh-index", weights)
    fresh = _eval(tmp_path / "fresh-index", weights, tmp_path / "fresh-cache")
    assert fresh != before
    assert warm == fresh
