"""End to end on generated chairs: index with ``given``, segment, eval (issue 5's Done-when).

Small dense counts (``--points 4096``) and five support chairs keep it fast; the
``--support`` cache goes to ``BIPART_CACHE`` under the test's tmp folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trimesh

from bipart_cli.io import load_asset
from bipart_cli.procedural import make_shape, write_examples

PARTS = ["back", "seat", "leg", "arm"]
N_DENSE = "4096"


def bipart(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "BIPART_CACHE": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "bipart_cli", *args], capture_output=True, text=True, env=env
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """chairs/chair_0..4.glb (labeled, seeds 1..5) and an index of them built with ``given``."""
    root = tmp_path_factory.mktemp("e2e")
    write_examples(root, categories=(), n_chairs=5)
    done = bipart(
        "index",
        str(root / "chairs"),
        "--out",
        str(root / "index"),
        "--labeler",
        "given",
        "--parts",  # node names are part labels when a request names them (issue 32 item 3)
        ",".join(PARTS),
        "--no-cache-features",
        "--points",
        N_DENSE,
        "--json",
        "--quiet",
        cache=root / "cache",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["entries"] == 5 and not summary["failed"]
    return root


def unlabeled_chair(path: Path, seed: int) -> Path:
    """A new chair as one merged mesh: no node names, so no labels to read."""
    mesh = trimesh.util.concatenate(make_shape("chair", seed).dump())
    path.write_bytes(mesh.export(file_type="glb"))
    assert not load_asset(path).has_labels
    return path


def segment_chair(target: Path, out_dir: Path, *source: str, labeler: str, cache: Path) -> dict:
    """``bipart segment`` of one chair with untrained weights and --json; returns its result."""
    done = bipart(
        "segment",
        str(target),
        "--parts",
        ",".join(PARTS),
        *source,
        "--labeler",
        labeler,
        "--weights",
        "random",
        "--points",
        N_DENSE,
        "--out-dir",
        str(out_dir),
        "--json",
        cache=cache,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def check_outputs(result: dict, out_dir: Path, stem: str, mode: str) -> None:
    """PLY, GLB and JSON exist, load back labeled with PARTS, and say the weights are untrained."""
    assert result["ok"] and result["mode"] == mode
    assert result["weights"]["weights_id"] == "random" and result["weights"]["trained"] is False
    for kind in ("ply", "glb", "json"):
        assert Path(result["outputs"][kind]) == out_dir / f"{stem}.parts.{kind}"
        assert (out_dir / f"{stem}.parts.{kind}").is_file()
    for kind in ("ply", "glb"):
        labeled = load_asset(out_dir / f"{stem}.parts.{kind}")
        assert labeled.has_labels and labeled.part_names == PARTS
        assert labeled.labels.max() >= 1  # more than one part predicted
    summary = json.loads((out_dir / f"{stem}.parts.json").read_text())
    assert [p["name"] for p in summary["parts"]] == PARTS
    assert sum(p["points"] for p in summary["parts"]) + summary["unassigned"]["points"] == 4096
    assert summary["weights"]["weights_id"] == "random" and summary["weights"]["trained"] is False
    assert summary["mode"] == mode


@pytest.mark.slow
def test_index_then_segment_unlabeled_chair_then_eval(workspace):
    target = unlabeled_chair(workspace / "new_chair.glb", seed=21)
    out_dir = workspace / "out_fewshot"
    result = segment_chair(
        target,
        out_dir,
        "--index",
        str(workspace / "index"),
        labeler="none",
        cache=workspace / "cache",
    )
    check_outputs(result, out_dir, "new_chair", mode="few-shot")
    assert len(result["support"]) == 5  # every indexed chair, M = min(8, 5)

    done = bipart(
        "eval",
        "--index",
        str(workspace / "index"),
        "--labeler",
        "none",
        "--weights",
        "random",
        "--json",
        "--quiet",
        cache=workspace / "cache",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    summary = report["summary"]
    assert summary["num_shapes"] == 5 and list(summary["per_category"]) == ["chairs"]
    numbers = [*summary["per_category"].values(), summary["category_mean"]]
    numbers.append(summary["instance_mean"])
    assert all(0.0 <= x <= 1.0 for x in numbers)
    assert report["settings"]["weights"]["trained"] is False
    # leave-one-out: each shape is segmented with the other four as support
    assert all(0.0 <= s["miou"] <= 1.0 and len(s["part_ious"]) == 4 for s in report["shapes"])


@pytest.mark.slow
def test_segment_with_support_folder(workspace):
    target = unlabeled_chair(workspace / "other_chair.glb", seed=22)
    out_dir = workspace / "out_support"
    cache = workspace / "support_cache"
    result = segment_chair(
        target, out_dir, "--support", str(workspace / "chairs"), labeler="none", cache=cache
    )
    check_outputs(result, out_dir, "other_chair", mode="few-shot")
    assert sorted(result["support"]) == sorted(p.name for p in (workspace / "chairs").glob("*.glb"))
    # the folder was indexed into $BIPART_CACHE, not next to the assets
    assert any((cache / "support").rglob("*.safetensors"))
    assert not any((workspace / "chairs").glob("*.safetensors"))


@pytest.mark.slow
def test_zero_shot_without_index(workspace):
    out_dir = workspace / "out_zero"
    result = segment_chair(
        workspace / "chairs" / "chair_0.glb",
        out_dir,
        labeler="simulated",
        cache=workspace / "cache",
    )
    check_outputs(result, out_dir, "chair_0", mode="zero-shot")
    assert result["support"] == []
