"""Hypothesis fuzz of the asset loaders (issue 15): no untyped exception, whatever the bytes.

Valid seed files of every format (and a ``<stem>_labels.npy`` and ``parts.json``
beside them) are mutated: bytes flipped, inserted or deleted, the file cut short,
numbers replaced by huge or negative ones. ``load_asset`` must return an asset or
raise a :class:`~bipart_cli.errors.BipartError`; anything else is a bug. The
process's address space is capped while fuzzing, so a memory bomb fails the
test instead of swapping.

Profiles: ``fuzz`` (1,000 cases, every run) and ``fuzz-slow`` (10,000 cases, the
``slow`` test, run with ``BIPART_FUZZ_SLOW=1``); ``BIPART_FUZZ_EXAMPLES`` overrides
the count of the default run.

A seeded fuzz (issue 31, every run, :mod:`_fuzz`) adds 2,000 fixed cases that also
reach a glTF's ``.bin``, a GLB's JSON fields (wrong types, NaNs, huge counts), structured
edits of the label array and ``parts.json``, the dense sample and the index's
``parts.json`` reader; an asset left intact must never be called corrupt.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import trimesh
from _fuzz import address_space_cap
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bipart_cli.errors import BipartError, InvalidInputError
from bipart_cli.io import load_asset

_COMMON = dict(
    deadline=None,  # no timed assertions: speed is measured in benchmarks, not here
    database=None,
    derandomize=True,  # the same cases on every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz", max_examples=int(os.environ.get("BIPART_FUZZ_EXAMPLES", "1000")), **_COMMON
)
settings.register_profile("fuzz-slow", max_examples=10_000, **_COMMON)


def _seed_files() -> dict[str, bytes]:
    """One small valid file per format (two boxes, so labeled formats have two parts)."""
    boxes = [trimesh.creation.box(extents=(1, 1, 1)), trimesh.creation.box(extents=(1, 1, 1))]
    boxes[1].apply_translation((0, 1.5, 0))
    mesh = trimesh.util.concatenate(boxes)
    scene = trimesh.Scene()
    scene.add_geometry(boxes[0], node_name="seat", geom_name="seat")
    scene.add_geometry(boxes[1], node_name="back", geom_name="back")
    seeds = {
        "glb": scene.export(file_type="glb"),
        "obj": "o seat\n" + mesh.export(file_type="obj"),
        "off": mesh.export(file_type="off"),
        "stl": mesh.export(file_type="stl"),
        "stl-ascii": mesh.export(file_type="stl_ascii"),
        "ply": mesh.export(file_type="ply", encoding="ascii"),
        "ply-binary": mesh.export(file_type="ply"),
    }
    rng = np.random.default_rng(0)
    points = rng.normal(size=(16, 3))
    buffer = io.BytesIO()
    np.save(buffer, points)
    seeds["npy"] = buffer.getvalue()
    buffer = io.BytesIO()
    np.savez(buffer, points=points, labels=rng.integers(0, 3, 16), part_names=np.array(["a", "b"]))
    seeds["npz"] = buffer.getvalue()
    seeds["xyz"] = "\n".join(" ".join(f"{v:.3f}" for v in row) for row in points).encode()
    return {k: v if isinstance(v, bytes) else v.encode() for k, v in seeds.items()}


SEEDS = _seed_files()
_LABELS = io.BytesIO()
np.save(_LABELS, np.repeat(np.array([0, 1], np.int64), 12))
LABELS_NPY = _LABELS.getvalue()
_NUMBER = re.compile(rb"-?\d+(\.\d+)?")
HUGE = [b"-1", b"0", b"4294967295", b"30000000", b"1e308", b"nan", b"-9223372036854775809"]


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """``seed`` with a few random edits."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "cut", "number"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 32))]
        elif kind == "cut":
            del data[at:]
        else:
            numbers = list(_NUMBER.finditer(bytes(data)))
            if numbers:
                match = numbers[draw(st.integers(0, len(numbers) - 1))]
                data[match.start() : match.end()] = draw(st.sampled_from(HUGE))
    return bytes(data)


@st.composite
def cases(draw):
    kind = draw(st.sampled_from(sorted(SEEDS)))
    data = draw(mutated(SEEDS[kind]))
    labels = draw(st.none() | mutated(LABELS_NPY))
    parts = draw(
        st.none()
        | st.just(json.dumps(["seat", "back"]).encode())
        | mutated(
            json.dumps({"parts": [{"id": 1, "name": "seat"}, {"id": 2, "name": "back"}]}).encode()
        )
    )
    return kind.split("-")[0], data, labels, parts


def check_case(case) -> None:
    suffix, data, labels, parts = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"shape.{suffix}"
        path.write_bytes(data)
        if labels is not None:
            (Path(folder) / "shape_labels.npy").write_bytes(labels)
        if parts is not None:
            (Path(folder) / "parts.json").write_bytes(parts)
        try:
            asset = load_asset(path)
        except BipartError as exc:
            assert str(exc).strip() and "\n" not in str(exc).strip(), repr(exc)
            return
        if asset.labels is not None:  # what was loaded is consistent
            n = len(asset.faces) if asset.faces is not None else len(asset.vertices)
            assert asset.labels.shape == (n,)
            assert asset.labels.max(initial=-1) < len(asset.part_names)


needs_procfs = pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")


@needs_procfs
@settings(settings.get_profile("fuzz"))
@given(case=cases())
def test_loaders_raise_only_typed_errors(case):
    with address_space_cap():
        check_case(case)


@needs_procfs
@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("BIPART_FUZZ_SLOW"), reason="set BIPART_FUZZ_SLOW=1")
@settings(settings.get_profile("fuzz-slow"))
@given(case=cases())
def test_loaders_raise_only_typed_errors_long_run(case):
    with address_space_cap():
        check_case(case)


# --- seeded fuzz: every format, its sidecars and a glTF's buffers (issue 31) ----------

FUZZ_SEED = 31
FUZZ_CASES = 2000


def _gltf_seed() -> dict[str, bytes]:
    """The two boxes as ``shape.gltf`` with its buffers in ``.bin`` files beside it."""
    scene = trimesh.Scene()
    for name, offset in (("seat", 0.0), ("back", 1.5)):
        box = trimesh.creation.box(extents=(1, 1, 1))
        box.apply_translation((0, offset, 0))
        scene.add_geometry(box, node_name=name, geom_name=name)
    files = scene.export(file_type="gltf")
    return {
        ("shape.gltf" if name.endswith(".gltf") else name): data for name, data in files.items()
    }


GLTF = _gltf_seed()
ASSET_KINDS = [*sorted(SEEDS), "gltf", "glb-json"]
PARTS_SEEDS = [
    ["seat", "back"],
    {"parts": ["seat", "back"]},
    {"parts": [{"id": 1, "name": "seat"}, {"id": 2, "name": "back"}]},
]


def _asset_case(seed: int):
    """Files of one fuzz case (name -> bytes), the asset's name among them. One of the
    asset, its label array or its ``parts.json`` is mutated (now and then two), so the
    sidecars are read beside an asset that loads."""
    from _fuzz import (
        glb_bytes,
        glb_chunks,
        mutate_bytes,
        mutate_json,
        mutate_json_value,
        mutate_npy,
        npy_bytes,
    )

    rng = np.random.default_rng([FUZZ_SEED, seed])
    kind = ASSET_KINDS[seed % len(ASSET_KINDS)]
    target = str(rng.choice(["asset", "labels", "parts", "all"], p=[0.4, 0.25, 0.25, 0.1]))
    edit_main = target in ("asset", "all")
    if kind == "gltf":
        files = dict(GLTF)
        name = "shape.gltf"
        if edit_main:
            edited = sorted(files)[int(rng.integers(0, len(files)))]
            edit = mutate_json if edited.endswith(".gltf") else mutate_bytes
            files[edited] = edit(rng, files[edited])
    elif kind == "glb-json":  # the JSON chunk mutated, the GLB still well framed
        name = "shape.glb"
        document, binary = glb_chunks(SEEDS["glb"])
        if edit_main:
            document = mutate_json_value(rng, document)
        files = {name: glb_bytes(document, binary)}
    else:
        name = f"shape.{kind.split('-')[0]}"
        files = {name: mutate_bytes(rng, SEEDS[kind]) if edit_main else SEEDS[kind]}
    # a parts.json is read for the labels of an array beside the asset: give it one
    if target in ("labels", "parts", "all") or rng.random() < 0.3:
        count = 16 if kind in ("npy", "npz", "xyz") else 24  # a label per point, or per face
        labels = np.repeat(np.array([0, 1], np.int64), count // 2)
        edit = target in ("labels", "all")
        files["shape_labels.npy"] = mutate_npy(rng, labels) if edit else npy_bytes(labels)
    if target in ("parts", "all") or rng.random() < 0.3:
        parts = json.dumps(PARTS_SEEDS[int(rng.integers(0, len(PARTS_SEEDS)))]).encode()
        edit = target in ("parts", "all")
        files["parts.json"] = mutate_json(rng, parts) if edit else parts
    return kind, name, files, edit_main


def _load_fuzzed(folder: Path, name: str, asset_edited: bool = True) -> None:
    """``load_asset``, then what the index does with it: its dense sample and the
    ``parts.json`` names the index walk reads. An asset left as it was is never called
    corrupt: the error names the sidecar at fault."""
    from bipart_cli.index.walk import folder_part_names
    from bipart_cli.io import sample_dense

    path = folder / name
    try:
        asset = load_asset(path)
    except InvalidInputError as exc:
        if not asset_edited and "corrupt or truncated" in str(exc):
            raise AssertionError(f"a valid asset called corrupt: {exc}") from exc
        raise
    if asset.labels is not None:  # what was loaded is consistent
        n = len(asset.faces) if asset.faces is not None else len(asset.vertices)
        assert asset.labels.shape == (n,)
        assert asset.labels.max(initial=-1) < len(asset.part_names)
    sample = sample_dense(asset, n_points=256, seed=0)
    assert np.isfinite(sample.points).all()
    folder_part_names(path, folder)


@needs_procfs
def test_seeded_fuzz_of_every_format_and_sidecar_raises_only_typed_errors(tmp_path):
    """2,000 seeded cases: PLY (ASCII, binary), OBJ, OFF, STL (ASCII, binary), GLB (its
    bytes, or its JSON chunk with a field of the wrong type, huge, negative or NaN), a glTF
    (its JSON or a ``.bin``), npy, npz and xyz clouds; beside them a ``_labels.npy``
    (a lying header, another dtype or shape, NaNs, huge values, a pickle) and a
    ``parts.json`` (wrong types, repeated or missing names, NaN ids). Loading, sampling and
    the index's ``parts.json`` reader return or raise a one-line :class:`BipartError`."""
    import shutil

    from _fuzz import address_space_cap, run_cases

    def make_case(seed: int):
        kind, name, files, asset_edited = _asset_case(seed)
        folder = tmp_path / f"case-{seed}"

        def run() -> None:
            folder.mkdir()
            try:
                for file, data in files.items():
                    (folder / file).write_bytes(data)
                _load_fuzzed(folder, name, asset_edited)
            finally:
                shutil.rmtree(folder)

        return kind, run

    with address_space_cap():
        outcomes, failures = run_cases(make_case, range(FUZZ_CASES))
    assert not failures, f"{len(failures)} of {FUZZ_CASES} cases:\n" + "\n".join(failures[:40])
    # the fuzz reaches both sides: assets that load and assets that are refused
    assert outcomes.get("ok", 0) > 100 and outcomes.get("InvalidInputError", 0) > 100, outcomes
