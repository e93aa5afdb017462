"""Issue #32 item 7: in a batch the progress lines did not say which file they were about,
read oddly ("support hashing its files and the weights' 0.0 s") and were ragged; the
sidecar's timings left out ``write`` and did not add up to the time the input took."""

from __future__ import annotations

import json
import re

import pytest
from _chairs import PARTS, write_chair
from typer.testing import CliRunner

from bipart_cli.cli import app

# subject, stage, time, detail: "chair_a.glb  adapt     0.4 s  2 steps, 1024 points"
STAGE_LINE = re.compile(r"^(\S+) +(\w+) +(\d+\.\d) s(  .*)?$")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """``segment`` of two chairs in one batch (simulated labels, an untrained model)."""
    root = tmp_path_factory.mktemp("batch")
    inputs = [str(write_chair(root / name, seed)) for name, seed in (("a.glb", 1), ("bb.glb", 2))]
    args = ["--parts", ",".join(PARTS), "--labeler", "simulated", "--weights", "random"]
    args += ["--points", "1024", "--steps", "2", "--support-size", "1", "--device", "cpu"]
    args += ["--out-dir", str(root / "out"), "--json"]
    result = CliRunner().invoke(app, ["segment", *inputs, *args], env={"NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return root, result


def test_batch_progress_lines_name_their_file_in_aligned_columns(batch):
    _, result = batch
    lines = [line for line in result.stderr.splitlines() if STAGE_LINE.match(line)]
    subjects = [STAGE_LINE.match(line).group(1) for line in lines]
    assert set(subjects) == {"setup", "a.glb", "bb.glb"}, result.stderr
    for name in ("a.glb", "bb.glb"):
        stages = [STAGE_LINE.match(line).group(2) for line in lines if line.startswith(name)]
        assert {"load", "sample", "label", "support", "adapt", "write"} <= set(stages), stages
    # the setup's loading (torch, weights) is not told as the first file's
    assert any(line.startswith("setup ") and " weights" in line for line in lines)
    # one column each: the stage names start, and the times end, at one place on every line
    assert len({line.index(STAGE_LINE.match(line).group(2)) for line in lines}) == 1
    assert len({STAGE_LINE.match(line).end(3) for line in lines}) == 1
    assert not any("weights'" in line for line in result.stderr.splitlines())


def test_sidecar_timings_include_write_and_add_up(batch):
    root, result = batch
    records = [json.loads(line) for line in result.stdout.splitlines()]
    for record, name in zip(records, ("a", "bb"), strict=True):
        timings = json.loads((root / "out" / f"{name}.parts.json").read_text())["timings"]
        assert timings["write"] > 0 and timings["adapt"] > 0
        stages = {k: v for k, v in timings.items() if k not in ("total", "setup")}
        assert "other" in stages and timings["total"] == pytest.approx(sum(stages.values()))
        assert record["timings"]["total"] >= timings["total"]  # its write finished after
    first = json.loads((root / "out" / "a.parts.json").read_text())["timings"]
    second = json.loads((root / "out" / "bb.parts.json").read_text())["timings"]
    assert first["setup"] > 0 and "setup" not in second  # loaded once, told with the first


def test_input_names_are_file_names_unless_two_inputs_share_one():
    from bipart_cli.commands import input_names

    assert input_names(["x/a.glb", "y/b.glb"]) == ["a.glb", "b.glb"]
    assert input_names(["x/a.glb", "y/a.glb", "c.glb"]) == ["x/a.glb", "y/a.glb", "c.glb"]
