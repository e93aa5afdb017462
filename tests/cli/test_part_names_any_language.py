"""Issue 31: part names in any language, end to end.

``bipart segment chair.glb --parts "dossier,siège,pied" ...`` computed everything, then
failed with "internal error: ValueError: non-ASCII character in comment" and wrote
nothing. Here one run names its parts in Japanese, French, German and Chinese; its
support is bipart's own outputs under those names, its outputs load back with the exact
names, ``bipart index`` takes them as labeled shapes and ``--preview`` draws the legend.
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

from bipart_cli.io import load_asset, sample_dense, write_outputs
from bipart_cli.procedural import make_shape

REPO = Path(__file__).resolve().parents[2]
NAMES = ["背もたれ", "siège", "Bein", "扶手"]  # back, seat, leg, arm
FAST = ["--weights", "random", "--points", "2000", "--device", "cpu"]


def bipart(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bipart_cli", *args],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "NO_COLOR": "1", "HF_HUB_OFFLINE": "1"},
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """``chair.glb`` (the bundled example) and ``support/``: generated chairs written
    by :func:`write_outputs` with their ground-truth labels under ``NAMES``."""
    folder = tmp_path_factory.mktemp("any_language")
    shutil.copy(REPO / "examples" / "chair.glb", folder / "chair.glb")
    for seed in (1, 3):  # 3: the armchair
        source = folder / "shapes" / f"chair_{seed}.glb"
        source.parent.mkdir(exist_ok=True)
        source.write_bytes(make_shape("chair", seed).export(file_type="glb"))
        asset = load_asset(source)
        assert asset.part_names == ["back", "seat", "leg", "arm"][: len(asset.part_names)]
        dense = sample_dense(asset, 2000, seed=seed)
        write_outputs(asset, dense, dense.labels, np.ones(len(dense)), NAMES, folder / "support")
    for ply in (folder / "support").glob("*.ply"):
        ply.unlink()  # one support shape per chair: its GLB
    return folder


@pytest.fixture(scope="module")
def segmented(root):
    parts = ",".join(NAMES)
    args = ["segment", "chair.glb", "--parts", parts, "--support", "support", "-o", "out"]
    return bipart(root, *args, "--labeler", "none", "--preview", "--json", *FAST)


def test_segment_writes_every_output_with_the_names(segmented, root):
    assert segmented.returncode == 0, segmented.stderr
    assert "internal error" not in segmented.stderr
    record = json.loads(segmented.stdout)
    assert record["ok"] and record["part_names"] == NAMES
    assert len(record["support"]) == 2  # bipart's own GLBs are labeled support shapes
    out = root / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        f"chair.parts.{kind}" for kind in ("glb", "json", "ply", "png")
    ]
    sidecar = json.loads((out / "chair.parts.json").read_text(encoding="utf-8"))
    assert [part["name"] for part in sidecar["parts"]] == NAMES
    assert sidecar["settings"]["parts"] == NAMES
    assert sum(part["points"] for part in sidecar["parts"][:3]) > 0


def test_outputs_load_back_with_the_exact_names(segmented, root):
    assert segmented.returncode == 0, segmented.stderr
    sidecar = json.loads((root / "out" / "chair.parts.json").read_text(encoding="utf-8"))
    for kind in ("ply", "glb"):
        asset = load_asset(root / "out" / f"chair.parts.{kind}")
        assert asset.has_labels and asset.part_names == NAMES, kind
    cloud = load_asset(root / "out" / "chair.parts.ply")
    counts = np.bincount(cloud.labels + 1, minlength=len(NAMES) + 1)[1:]
    assert counts.tolist() == [part["points"] for part in sidecar["parts"]]


def test_info_lists_the_names(segmented, root):
    assert segmented.returncode == 0, segmented.stderr
    result = bipart(root, "info", "out/chair.parts.ply")
    assert result.returncode == 0, result.stderr
    for name in NAMES:
        assert f"  {name} " in result.stdout, name


def test_index_takes_the_outputs_as_labeled_shapes(segmented, root):
    from bipart_cli.index import ShapeIndex

    assert segmented.returncode == 0, segmented.stderr
    result = bipart(root, "index", "out", "--out", "index", "--no-cache-features", *FAST, "-q")
    assert result.returncode == 0, result.stderr
    index = ShapeIndex.open(root / "index")
    assert len(index) == 2  # the PLY and the GLB
    assert [record.part_names for record in index] == [NAMES, NAMES]


def test_the_result_line_prints_names_that_look_like_markup_as_given(root):
    """Rich markup in a part or file name is the user's text: printed, not interpreted."""
    marked = ["[bold]back", "seat[/]", "leg", "arm"]
    source = root / "shapes" / "chair_1.glb"
    asset = load_asset(source)
    dense = sample_dense(asset, 2000, seed=1)
    write_outputs(asset, dense, dense.labels, np.ones(len(dense)), marked, root / "marked_support")
    shutil.copy(root / "chair.glb", root / "[red]chair.glb")
    args = ["segment", "[red]chair.glb", "--parts", ",".join(marked), "-o", "marked"]
    run = bipart(root, *args, "--support", "marked_support", "--labeler", "none", *FAST)
    assert run.returncode == 0, run.stderr
    assert "[red]chair.glb:" in run.stdout
    assert "[bold]back" in run.stdout and "seat[/]" in run.stdout
