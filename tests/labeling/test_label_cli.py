"""``bipart label`` end to end on a generated chair (given, simulated, tiny detector offline)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("transformers")

from bipart_cli.cli import app  # noqa: E402
from bipart_cli.labeling.pseudo_labels import PseudoLabels  # noqa: E402
from bipart_cli.procedural import make_shape  # noqa: E402

runner = CliRunner()
FAST = ["--n-dense", "3000", "--device", "cpu", "--seed", "0"]


@pytest.fixture(scope="module")
def chair_glb(tmp_path_factory):
    path = tmp_path_factory.mktemp("asset") / "chair.glb"
    make_shape("chair", seed=4).export(path)  # four legs, no arms
    return path


def _outputs(out_dir):
    pseudo = PseudoLabels.load(out_dir / "chair.pseudo.safetensors")
    summary = json.loads((out_dir / "chair.pseudo.json").read_text())
    return pseudo, summary


def test_label_given(chair_glb, tmp_path):
    result = runner.invoke(
        app, ["label", str(chair_glb), "--labeler", "given", "--out-dir", str(tmp_path), *FAST]
    )
    assert result.exit_code == 0, result.output
    pseudo, summary = _outputs(tmp_path)
    assert pseudo.num_points == 3000 and pseudo.part_names == ["back", "seat", "leg"]
    assert summary["boxes_per_part"] == {"back": 1, "seat": 1, "leg": 1}
    assert (tmp_path / "chair.pseudo.png").is_file()


def test_label_simulated_json_and_preview(chair_glb, tmp_path):
    preview = tmp_path / "sheet.png"
    args = ["label", str(chair_glb), "--parts", "back,seat,leg", "--labeler", "simulated"]
    result = runner.invoke(
        app, [*args, "--out-dir", str(tmp_path), "--preview", str(preview), "--json", *FAST]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    pseudo, summary = _outputs(tmp_path)
    assert printed == summary
    assert summary["provenance"]["simulated"] is True and pseudo.provenance["simulated"] is True
    assert summary["num_boxes"] == pseudo.num_boxes > 0
    assert sum(summary["boxes_per_part"].values()) == pseudo.num_boxes
    assert [box["score"] for box in summary["boxes"]] == pytest.approx(
        pseudo.scores.tolist(), abs=1e-4
    )
    from PIL import Image

    with Image.open(preview) as image:  # 10 views in a 5 x 2 grid
        assert image.width == 2.5 * image.height


def test_label_tiny_detector_offline(chair_glb, tmp_path, monkeypatch):
    from _detectors import build_tiny_grounding_dino

    model = build_tiny_grounding_dino(tmp_path / "tiny")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    args = ["label", str(chair_glb), "--parts", "back,seat,leg", "--detector", str(model)]
    result = runner.invoke(app, [*args, "--threshold", "0.0", "--out-dir", str(out), *FAST])
    assert result.exit_code == 0, result.output
    pseudo, summary = _outputs(out)
    assert (
        pseudo.provenance["simulated"] is False and pseudo.provenance["backend"] == "grounding-dino"
    )
    assert pseudo.num_boxes > 0 and np.isfinite(pseudo.boxes).all()
    assert (out / "chair.pseudo.png").is_file()


def test_label_missing_detector_clear_error(chair_glb, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    args = [
        "label",
        str(chair_glb),
        "--parts",
        "back,seat",
        "--offline",
        "--out-dir",
        str(tmp_path),
    ]
    result = runner.invoke(app, [*args, *FAST])
    assert result.exit_code == 1
    assert "--detector DIR" in " ".join(result.output.split())
    assert not list(tmp_path.glob("chair.pseudo.*"))


def test_label_needs_parts_and_labels(chair_glb, tmp_path):
    result = runner.invoke(app, ["label", str(chair_glb), "--labeler", "simulated", *FAST])
    assert result.exit_code == 2
    result = runner.invoke(
        app, ["label", str(chair_glb), "--parts", "a", "--labeler", "magic", *FAST]
    )
    assert result.exit_code == 2


def test_label_writes_its_three_files_as_one_unit(chair_glb, tmp_path):
    """Issue 15 item 6: ``label`` wrote file by file, so a failing summary left the
    pseudo labels and the preview behind."""
    (tmp_path / "chair.pseudo.json").mkdir()  # its rename fails after the others are staged
    result = runner.invoke(
        app, ["label", str(chair_glb), "--labeler", "given", "--out-dir", str(tmp_path), *FAST]
    )
    assert result.exit_code == 1, result.output
    assert "cannot write outputs" in result.output and "nothing was written" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chair.pseudo.json"]
