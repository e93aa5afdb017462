"""Issue #14, the user's path: offline use (defect 1), progress (2), missing parts (5),
the sidecar (8) and ``examples/batch.sh``.

Every run is offline with an empty Hub cache, as on a machine without internet: the
default labeler (``auto``) must then fall back to few-shot from the labeled support.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bipart_cli.procedural import make_shape, write_examples

REPO = Path(__file__).resolve().parents[2]
PARTS = "back,seat,leg,arm"
FAST = ["--weights", "random", "--points", "2048", "--device", "cpu"]
WAYS_FORWARD = ("--labeler none", "--support", "--detector DIR", "online")


def _env(root: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "HF_HOME": str(root / "hf"), "HF_HUB_OFFLINE": "1"}
    env["BIPART_CACHE"] = str(root / "cache")
    env.pop("HF_HUB_CACHE", None)
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


def bipart(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bipart_cli", *args],
        capture_output=True,
        text=True,
        cwd=root,
        env=_env(root, **env),
    )


def segment_chair(root: Path, *options: str, parts: str = PARTS, **env: str):
    """``bipart segment targets/chair.glb --parts PARTS OPTIONS...`` in ``root``."""
    return bipart(root, "segment", "targets/chair.glb", "--parts", parts, *options, **env)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("user_path")
    write_examples(folder, categories=(), n_chairs=3)
    (folder / "targets").mkdir()
    (folder / "targets" / "chair.glb").write_bytes(make_shape("chair", 11).export(file_type="glb"))
    return folder


@pytest.fixture(scope="module")
def offline_run(root):
    """The README's first command (no --labeler), offline, plus a part nobody provides."""
    done = segment_chair(
        root,
        "--support",
        "chairs",
        "-o",
        "out",
        "--json",
        "--preview",
        *FAST,
        parts=f"{PARTS},cushion",
    )
    return done


def test_default_labeler_falls_back_to_few_shot_offline(offline_run):
    assert offline_run.returncode == 0, offline_run.stderr
    record = json.loads(offline_run.stdout)
    assert record["ok"] and record["mode"] == "few-shot" and record["labeler"] == "none"
    notices = [line for line in offline_run.stderr.splitlines() if line.startswith("notice:")]
    assert len(notices) == 1, offline_run.stderr
    assert "few-shot" in notices[0] and "--support" in notices[0]


def test_stdout_holds_only_the_result(offline_run):
    lines = offline_run.stdout.splitlines()
    assert len(lines) == 1
    json.loads(lines[0])


def test_stages_are_shown_on_stderr_with_times(offline_run):
    stage_lines = {}
    for line in offline_run.stderr.splitlines():
        words = line.split()  # about, stage, seconds, "s", what it found (issue 32 item 7)
        if len(words) > 3 and words[1] in ("load", "sample", "label", "support", "adapt", "write"):
            assert words[0] in ("setup", "chair.glb"), line
            assert words[3] == "s" and float(words[2]) >= 0, line
            stage_lines.setdefault(words[1], line)
    assert {"load", "sample", "support", "adapt", "write"} <= set(stage_lines), offline_run.stderr
    assert "label" not in stage_lines  # few-shot: no labeler ran
    used = len(json.loads(offline_run.stdout)["support"])  # the shapes found, not --support-size
    retrieved = [
        line.split()[4:6]
        for line in offline_run.stderr.splitlines()
        if line.startswith("chair.glb") and "shapes" in line
    ]
    assert retrieved == [[str(used), "shapes"]], offline_run.stderr


def test_unprovided_part_warns_on_stderr_and_in_json(offline_run, root):
    # an armless chair from three chairs: the support's fit may warn too (test_fit), and so
    # may the arm no point of it is called (tests/support/test_support_kinds.py), never another part
    warnings = [line for line in offline_run.stderr.splitlines() if line.startswith("warning:")]
    about_parts = [line for line in warnings if "fits this shape poorly" not in line]
    unprovided = [line for line in about_parts if "'cushion'" in line]
    assert len(unprovided) == 1 and "none of the 3 support shapes" in unprovided[0]
    assert all(
        "'arm'" in line and "no point" in line for line in about_parts if "'cushion'" not in line
    ), offline_run.stderr
    record = json.loads(offline_run.stdout)
    assert len(record["warnings"]) == len(warnings) and "'cushion'" in record["warnings"][0]
    sidecar = json.loads((root / "out" / "chair.parts.json").read_text())
    assert sidecar["warnings"] == record["warnings"]


def test_sidecar_records_settings_timings_and_parts(offline_run, root):
    sidecar = json.loads((root / "out" / "chair.parts.json").read_text())
    assert sidecar["up"] == "auto" and sidecar["up_axis"] == "y"  # a GLB: Y-up, as specified
    settings = sidecar["settings"]
    assert settings["parts"] == [*PARTS.split(","), "cushion"]
    assert settings["labeler"] == "none" and settings["labeler_requested"] == "auto"
    assert settings["points"] == 2048 and settings["seed"] == 0
    from bipart_cli.adapt import AdaptSettings

    assert settings["adapt"] == AdaptSettings().__dict__ and settings["weights"] == "random"
    assert settings["support_dir"] == "chairs"
    assert sidecar["timings"]["total"] > 0
    for stage in ("load", "sample", "support", "adapt"):
        assert sidecar["timings"][stage] >= 0
    by_name = {part["name"]: part for part in sidecar["parts"]}
    assert by_name["cushion"]["points"] == 0
    assert "node" not in by_name["cushion"]  # no faces, no node in the GLB
    assert by_name["back"]["node"] == "back"
    for part in sidecar["parts"]:
        assert "mean_score" in part and "mean_confidence" not in part
    record = json.loads(offline_run.stdout)
    assert record["settings"] == settings  # the NDJSON record carries them too
    assert sidecar["files"]["preview"] == "chair.parts.png"
    assert record["outputs"]["preview"] == str(Path("out") / "chair.parts.png")
    assert (root / "out" / "chair.parts.png").is_file()
    assert record["outputs"]["json"].endswith("chair.parts.json")
    assert record["timings"]["total"] >= sidecar["timings"]["total"]
    assert {p["name"]: p["mean_score"] for p in record["parts"]} == {
        p["name"]: p["mean_score"] for p in sidecar["parts"]
    }


def test_quiet_silences_progress_and_notices(root):
    done = segment_chair(
        root,
        "--support",
        "chairs",
        "-o",
        "out_quiet",
        "-q",
        *FAST,
    )
    assert done.returncode == 0, done.stderr
    # warnings still show (here the support's fit: an office chair from four-legged ones)
    assert all(line.startswith("warning: ") for line in done.stderr.splitlines()), done.stderr
    assert done.stdout.startswith("targets/chair.glb: few-shot")


def _assert_ways_forward(done: subprocess.CompletedProcess, *needles: str) -> None:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1, done.stderr  # one line: no retry messages, no wrapping
    assert lines[0].startswith("error: ")
    for needle in (*WAYS_FORWARD, *needles):
        assert needle in lines[0], lines[0]
    assert done.stdout == ""


def test_detector_offline_fails_at_once_naming_the_ways_forward(root):
    # the weights do not exist: the detector check must come first, before any heavy work
    done = segment_chair(
        root,
        "--labeler",
        "detector",
        "--weights",
        "/no/such/weights",
    )
    _assert_ways_forward(done, "offline mode is on", "a2bb814dd30d776dcf7e30523b00659f4f141c71")


def test_unreachable_hub_fails_without_retries(root):
    done = segment_chair(
        root,
        "--weights",
        "/no/such/weights",
        HF_HUB_OFFLINE="",
        HF_ENDPOINT="http://127.0.0.1:9",  # nothing listens on the discard port
        **dict.fromkeys(("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"), ""),
    )
    _assert_ways_forward(done, "cannot be reached")


def test_auto_without_labeled_support_fails_naming_the_ways_forward(root):
    done = segment_chair(root, *FAST)
    _assert_ways_forward(done)


def test_mixing_weights_reach_the_adaptation(root):
    """``--knn-weight`` and ``--registered-weight`` are the settings the run records."""
    done = segment_chair(
        root,
        "--support",
        "chairs",
        *FAST,
        "--knn-weight",
        "0.3",
        "--registered-weight",
        "0",
        "-o",
        "out_weights",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    adapt = json.loads(done.stdout)["settings"]["adapt"]
    assert adapt["knn_weight"] == 0.3 and adapt["registered_weight"] == 0.0


def test_batch_script_passes_options_through(root):
    done = subprocess.run(
        [
            "bash",
            str(REPO / "examples" / "batch.sh"),
            "targets",
            PARTS,
            "out_batch",
            "--support",
            "chairs",
            *FAST,
        ],
        capture_output=True,
        text=True,
        cwd=root,
        env=_env(root, BIPART=f"{sys.executable} -m bipart_cli"),
    )
    assert done.returncode == 0, done.stderr
    assert "1 ok, 0 failed" in done.stdout
    record = json.loads((root / "out_batch" / "results.jsonl").read_text())
    assert record["mode"] == "few-shot"
    assert record["weights"]["weights_id"] == "random"  # --weights reached bipart


@pytest.mark.slow
def test_examples_command_writes_labeled_support_sets(root):
    """``bipart examples``: one labeled support folder per category, usable offline."""
    from bipart_cli.io import load_asset
    from bipart_cli.procedural import CATEGORIES

    done = bipart(root, "examples", "sets", "--categories", "lamp,mug", "--per-category", "2")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (root / "sets").iterdir()) == ["lamp", "mug"]
    for category in ("lamp", "mug"):
        shapes = sorted((root / "sets" / category).glob("*.glb"))
        assert len(shapes) == 2
        for shape in shapes:
            assert set(load_asset(shape).part_names) <= set(CATEGORIES[category])
    assert "sets/lamp" in done.stdout and "base,pole,shade" in done.stdout

    lamp = root / "targets_lamp"
    lamp.mkdir()
    (lamp / "lamp.glb").write_bytes(make_shape("lamp", 7).export(file_type="glb"))
    segmented = bipart(
        root,
        "segment",
        "targets_lamp/lamp.glb",
        "--parts",
        "base,pole,shade",
        "--support",
        "sets/lamp",
        "--json",
        "-q",
        *FAST,
    )
    assert segmented.returncode == 0, segmented.stderr
    record = json.loads(segmented.stdout)
    assert record["mode"] == "few-shot" and record["warnings"] == []


def test_examples_command_rejects_unknown_categories(root):
    done = bipart(root, "examples", "sets2", "--categories", "lamp,spaceship")
    assert done.returncode == 2 and "spaceship" in done.stderr
    assert not (root / "sets2").exists()
