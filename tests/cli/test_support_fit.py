"""Issue #32 item 1, the user's path: support that fits says so, support that does not warns.

``bipart examples DIR --categories chair,table`` writes procedural support offline; a table
segmented from the chairs must carry one warning about the support (stderr and sidecar),
a chair from the same chairs none, and both sidecars the fit measures. The default weights,
as a user runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bipart_cli.procedural import make_shape

pytestmark = pytest.mark.slow  # two segment runs with the default weights: about 30 s

PARTS = "back,seat,leg,arm"
POOR = "fits this shape poorly"


def bipart(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "400", "BIPART_CACHE": str(root / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "bipart_cli", *args],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The examples, then a table and a chair segmented from the chairs, twice (the second
    run reads the first back from the cache)."""
    root = tmp_path_factory.mktemp("support_fit")
    made = bipart(root, "examples", "support", "--categories", "chair,table")
    assert made.returncode == 0, made.stderr
    (root / "targets").mkdir()
    for category in ("table", "chair"):
        scene = make_shape(category, 11)
        (root / "targets" / f"{category}.glb").write_bytes(scene.export(file_type="glb"))
    args = ["segment", "targets/table.glb", "targets/chair.glb", "--parts", PARTS]
    args += ["--support", "support/chair", "--labeler", "none", "--points", "4096"]
    args += ["--device", "cpu", "-o", "out", "--json"]
    first, second = bipart(root, *args), bipart(root, *args)
    for done in (first, second):
        assert done.returncode == 0, done.stderr
    return root, first, second


def _records(done: subprocess.CompletedProcess) -> dict[str, dict]:
    return {Path(r["input"]).stem: r for r in map(json.loads, done.stdout.splitlines())}


def test_table_from_chairs_warns_once_naming_the_ways_out(runs):
    root, first, _ = runs
    table = _records(first)["table"]
    assert len(table["warnings"]) == 1 and POOR in table["warnings"][0]
    for way_out in ("support/chair", "--support DIR", "bipart examples", "--index"):
        assert way_out in table["warnings"][0]
    logged = [line for line in first.stderr.splitlines() if POOR in line]
    assert len(logged) == 1 and logged[0].startswith("warning: targets/table.glb: ")
    sidecar = json.loads((root / "out" / "table.parts.json").read_text())
    assert sidecar["warnings"] == table["warnings"]
    assert sidecar["support_fit"]["poor"] is True


def test_chair_from_chairs_does_not_warn(runs):
    root, first, _ = runs
    chair = _records(first)["chair"]
    assert chair["warnings"] == [], chair["warnings"]
    assert not [
        line for line in first.stderr.splitlines() if "targets/chair.glb" in line and POOR in line
    ]
    sidecar = json.loads((root / "out" / "chair.parts.json").read_text())
    assert sidecar["warnings"] == [] and sidecar["support_fit"]["poor"] is False


def test_sidecar_carries_the_fit_measures(runs):
    root, first, _ = runs
    fits = {}
    for stem, record in _records(first).items():
        fit = json.loads((root / "out" / f"{stem}.parts.json").read_text())["support_fit"]
        assert fit == record["support_fit"]
        assert [shape["id"] for shape in fit["shapes"]] == record["support"]
        assert fit["distance"] == pytest.approx(
            sum(sorted(shape["distance"] for shape in fit["shapes"])[:3]) / 3, abs=1e-3
        )
        assert 0 <= fit["agreement"] <= 1 and 0 < fit["probability"] < 1
        fits[stem] = fit
    assert fits["table"]["distance"] > fits["table"]["distance_limit"] > fits["chair"]["distance"]


def test_part_scores_fall_with_the_fit(runs):
    """The head is as sure of the table's parts as of the chair's; the scores are not."""
    root, first, _ = runs
    scores = {
        stem: [p["mean_score"] for p in record["parts"] if p["points"]]
        for stem, record in _records(first).items()
    }
    assert max(scores["table"]) < 0.2 < 0.5 < min(scores["chair"]), scores


def test_a_stored_run_keeps_the_fit_and_the_warning(runs):
    _, first, second = runs
    before, after = _records(first), _records(second)
    for stem in ("table", "chair"):
        assert after[stem]["reused"] is True
        assert after[stem]["support_fit"] == before[stem]["support_fit"]
        assert after[stem]["warnings"] == before[stem]["warnings"]
    assert [line for line in second.stderr.splitlines() if POOR in line]
