"""Issue #32 item 3: exporters name nodes too (``bedDouble_2a4d3a``, ``cover.001``). Node
names are part labels only for a request that names them (``--parts``, an index's
``parts.json``) or when a ``parts.json`` beside the file names them; ``info`` says
"unlabeled (node names: ...)" otherwise, and ``index`` says which files it left out and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trimesh
from typer.testing import CliRunner

from bipart_cli.cli import app
from bipart_cli.index import ShapeIndex
from bipart_cli.io import describe_asset, load_asset

FAST = ["--points", "2048", "--no-cache-features", "--device", "cpu"]


def write_boxes(path: Path, names: list[str]) -> Path:
    """A GLB of one unit box per node, stacked, the nodes named ``names``."""
    scene = trimesh.Scene()
    for height, name in enumerate(names):
        box = trimesh.creation.box(extents=(1, 1, 1))
        box.apply_translation((0, 1.5 * height, 0))
        scene.add_geometry(box, node_name=name, geom_name=f"Mesh {name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(scene.export(file_type="glb"))
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    """An exporter-named bed, a one-node bench and a chair whose nodes name its parts."""
    write_boxes(tmp_path / "assets" / "bed.glb", ["bedDouble.001", "bedDouble_2a4d3a"])
    write_boxes(tmp_path / "assets" / "bench.glb", ["bench"])
    write_boxes(tmp_path / "assets" / "chair.glb", ["back", "seat", "leg.0", "leg.1"])
    return tmp_path / "assets"


def test_exporter_node_names_are_no_part_labels(folder, run_bipart):
    bed = describe_asset(load_asset(folder / "bed.glb"))
    assert not bed["labeled"] and bed["parts"] == []
    assert bed["node_names"] == ["bedDouble.001", "bedDouble_2a4d3a"]
    assert not describe_asset(load_asset(folder / "bed.glb"), ["frame", "pillow"])["labeled"]
    result = run_bipart("info", "bed.glb", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert (
        "parts: unlabeled (node names: bedDouble.001, bedDouble_2a4d3a); node names are part "
        "labels only when --parts or a parts.json names them"
    ) in result.stdout
    bench = run_bipart("info", "bench.glb", cwd=folder)
    assert bench.stdout.splitlines()[-1].split() == [
        "parts:",
        "unlabeled",
        "(node",
        "names:",
        "bench)",
    ]


def test_node_names_count_when_the_request_or_a_parts_json_names_them(folder, tmp_path):
    chair = load_asset(folder / "chair.glb")
    assert not describe_asset(chair)["labeled"]
    requested = describe_asset(chair, ["back", "seat", "arm"])
    assert requested["labeled"] and [p["name"] for p in requested["parts"]] == [
        "back",
        "seat",
        "leg",
    ]
    beside = write_boxes(tmp_path / "named" / "chair.glb", ["back", "seat", "leg.0"])
    (beside.parent / "parts.json").write_text(json.dumps(["back", "seat", "leg"]))
    assert describe_asset(load_asset(beside))["labeled"]


def test_index_leaves_out_unlabeled_files_and_says_why(folder, tmp_path):
    out = tmp_path / "index"
    result = CliRunner().invoke(
        app, ["index", str(folder), "--out", str(out), "--parts", "back,seat,leg", *FAST, "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["files"], summary["entries"], summary["failed"]) == (3, 1, [])
    assert {item["path"]: item["why"] for item in summary["unlabeled"]} == {
        "bed.glb": "none of its node names is a requested part",
        "bench.glb": "no part labels",  # one node: the object's name; it was a failure before
    }
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: 1 of 3 files left out as unlabeled: none of its node names is a requested "
        "part (e.g. bed.glb, node names: bedDouble.001, bedDouble_2a4d3a)",
        "warning: 1 of 3 files left out as unlabeled: no part labels (e.g. bench.glb, node "
        "names: bench)",
    ]
    assert ShapeIndex.open(out).ids == ["chair.glb"]


def test_index_without_a_request_takes_no_node_names_and_says_so(folder, tmp_path):
    result = CliRunner().invoke(app, ["index", str(folder), "--out", str(tmp_path / "i"), *FAST])
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert any(
        "2 of 3 files left out as unlabeled: node names are part labels only when --parts or a "
        "parts.json names them" in line
        for line in lines
    ), result.stderr
    assert lines[-1] == (
        f"error: {folder}: none of its 3 files has part labels; name the parts with --parts or "
        "a parts.json, or use --labeler detector"
    )
