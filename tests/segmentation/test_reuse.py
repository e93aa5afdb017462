"""A few-shot run kept for reuse (``segmentation.reuse``): a re-run of the same file and
settings reads its labels back with no model and no torch, equal to the computed ones; any
change to what the labels depend on computes again.

Generated chairs, a 3-chair ``--support`` folder and tiny weights saved to a folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _chairs import N_DENSE, PARTS, TARGET_SEEDS, write_chair

from bipart_cli.procedural import write_examples
from bipart_cli.segmentation.request import SegmentOptions
from bipart_cli.segmentation.reuse import (
    RunStore,
    code_identity,
    folder_identity,
    run_key,
    support_identity,
)
from bipart_cli.store import ArrayStore
from bipart_cli.weights import weights_identity


def _target_support_and_weights(tmp_path: Path) -> Path:
    """A target chair, a 3-chair support folder (``chairs/``) and tiny weights (``weights/``)
    under ``tmp_path``; returns the target."""
    import torch
    from _tiny import tiny_config

    from bipart_cli.model import BiPartModel

    write_examples(tmp_path, categories=(), n_chairs=3)
    torch.manual_seed(0)
    BiPartModel(tiny_config()).save_pretrained(tmp_path / "weights")
    return write_chair(tmp_path / "target.glb", TARGET_SEEDS[0])


@pytest.fixture
def few_shot(tmp_path, monkeypatch):
    """A target, a support folder, tiny weights and a cache under ``tmp_path``: a function
    that segments the target in-process (its first result)."""
    from bipart_cli import segment

    target = _target_support_and_weights(tmp_path)
    monkeypatch.setenv("BIPART_CACHE", str(tmp_path / "cache"))

    def run(**options):
        options = {"support_dir": tmp_path / "chairs", "write": False, **options}
        weights = str(tmp_path / "weights")
        (result,) = segment(
            str(target),
            ",".join(PARTS),
            labeler="none",
            weights=weights,
            n_dense=N_DENSE,
            **options,
        )
        assert result.ok, result.error
        return result

    return run


_TWO_RUNS = """
import json, sys
from bipart_cli import segment
(result,) = segment(sys.argv[1], sys.argv[2], support_dir=sys.argv[3], weights=sys.argv[4],
                    labeler="none", n_dense=int(sys.argv[5]), out_dir=sys.argv[6], preview=True)
print(json.dumps({"ok": result.ok, "error": result.error, "reused": result.reused,
                  "torch": "torch" in sys.modules, "outputs": result.outputs}))
"""


def test_a_rerun_reads_its_labels_back_without_torch(tmp_path):
    """Two processes segment the same file with the same settings: the second imports no
    torch, not even for its preview (issue #32 item 6: torch's import was most of the 7 s a
    stored run's preview cost), and writes the same PLY, GLB and PNG as the first, which
    computed them."""
    target = _target_support_and_weights(tmp_path)
    env = {**os.environ, "BIPART_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}

    def run(out: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-c", _TWO_RUNS, str(target), ",".join(PARTS)]
            + [str(tmp_path / "chairs"), str(tmp_path / "weights"), str(N_DENSE), out],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    first, second = run(str(tmp_path / "first")), run(str(tmp_path / "second"))
    assert first["ok"] and second["ok"], (first["error"], second["error"])
    assert (first["reused"], first["torch"]) == (False, True)
    assert (second["reused"], second["torch"]) == (True, False)
    for kind in ("ply", "glb", "preview"):
        written = [Path(run["outputs"][kind]).read_bytes() for run in (first, second)]
        assert written[0] == written[1], kind
    sidecar = json.loads(Path(second["outputs"]["json"]).read_text())
    assert sidecar["settings"]["device"] == "cpu" and sidecar["reused"] is True
    assert json.loads(Path(first["outputs"]["json"]).read_text())["reused"] is False


def test_a_stored_run_equals_the_computed_one(few_shot):
    """Read back, a run gives the labels, scores, support and warnings it computed."""
    computed = few_shot()
    reused = few_shot()
    assert (computed.reused, reused.reused) == (False, True)
    np.testing.assert_array_equal(reused.dense_labels, computed.dense_labels)
    np.testing.assert_array_equal(reused.dense_scores, computed.dense_scores)
    assert reused.dense_labels.dtype == np.int64
    assert reused.support == computed.support and reused.warnings == computed.warnings
    assert reused.settings == computed.settings and reused.weights == computed.weights
    assert reused.parts == computed.parts and reused.mode == "few-shot"
    assert few_shot(reuse=False).reused is False


def test_a_changed_setting_or_support_file_computes_again(few_shot, tmp_path):
    few_shot()
    assert few_shot(steps=3).reused is False  # another setting
    assert few_shot(steps=3).reused is True
    sorted((tmp_path / "chairs").rglob("*.glb"))[-1].unlink()  # one support shape fewer
    assert few_shot(steps=3).reused is False


@pytest.mark.parametrize(
    "damage",
    [
        lambda arrays: {**arrays, "labels": arrays["labels"] + len(PARTS)},
        lambda arrays: {**arrays, "scores": np.full_like(arrays["scores"], np.nan)},
        lambda arrays: {**arrays, "labels": arrays["labels"][:-1]},
        lambda arrays: {**arrays, "record": np.frombuffer(b'{"mode": "few-shot"}', np.uint8)},
        lambda arrays: {**arrays, "record": np.frombuffer(b"\xff", np.uint8)},
    ],
    ids=["labels-past-the-parts", "nan-scores", "one-label-short", "fields-missing", "not-json"],
)
@pytest.mark.slow
def test_a_damaged_stored_run_is_computed_again(damage, few_shot, tmp_path):
    """A stored run that reads back whole but does not fit (labels, scores or its record) is
    computed again, with the computed labels, and replaced."""
    from safetensors import safe_open

    computed = few_shot()
    store = ArrayStore(tmp_path / "cache" / "features")
    (entry,) = (store.folder / "segment").glob("*.safetensors")
    with safe_open(str(entry), framework="np") as handle:
        key = handle.metadata()["key"]
        arrays = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    store.write("segment", key, damage(arrays))
    again = few_shot()
    assert again.reused is False
    np.testing.assert_array_equal(again.dense_labels, computed.dense_labels)
    assert few_shot().reused is True


def test_the_key_follows_everything_the_labels_depend_on():
    base = ("a" * 64, {"parts": PARTS, "seed": 0}, "auto", "w", "s", "c")
    variants = [
        ("b" * 64, *base[1:]),
        (base[0], {"parts": PARTS[::-1], "seed": 0}, *base[2:]),
        (base[0], {"parts": PARTS, "seed": 1}, *base[2:]),
        (*base[:2], "cpu", *base[3:]),
        (*base[:3], "w2", *base[4:]),
        (*base[:4], "s2", base[5]),
        (*base[:5], "c2"),
    ]
    keys = {run_key(*base), *(run_key(*variant) for variant in variants)}
    assert len(keys) == 1 + len(variants)
    assert run_key(*base) == run_key(*base)
    assert code_identity() == code_identity()


def test_identities_follow_the_files(tmp_path):
    """A support folder's identity changes with a file's bytes, name or a new file; weights'
    with their file; a local index's with its manifest."""
    folder = tmp_path / "support"
    (folder / "chair").mkdir(parents=True)
    (folder / "chair" / "a.ply").write_bytes(b"one")
    seen = {folder_identity(folder)}
    (folder / "chair" / "a.ply").write_bytes(b"two")
    seen.add(folder_identity(folder))
    (folder / "chair" / "a.ply").rename(folder / "chair" / "b.ply")
    seen.add(folder_identity(folder))
    (folder / "parts.json").write_text("[]")
    seen.add(folder_identity(folder))
    assert len(seen) == 4

    weights = tmp_path / "weights"
    weights.mkdir()
    assert weights_identity(str(weights)) is None  # no files: loading reports it
    (weights / "config.json").write_text("{}")
    (weights / "model.safetensors").write_bytes(b"x")
    first = weights_identity(str(weights))
    (weights / "model.safetensors").write_bytes(b"y")
    assert first is not None and weights_identity(str(weights)) != first
    assert weights_identity("random", seed=1) != weights_identity("random", seed=2)
    assert weights_identity("owner/name") is None  # a Hub id: not known without the Hub

    index = tmp_path / "index"
    index.mkdir()
    (index / "manifest.json").write_text("{}")
    first = support_identity(SegmentOptions(index=str(index)))
    (index / "manifest.json").write_text('{"shards": []}')
    assert first is not None and support_identity(SegmentOptions(index=str(index))) != first
    assert support_identity(SegmentOptions(index="hf://datasets/o/n")) is None


def test_an_unreadable_support_file_leaves_the_run_to_compute(tmp_path, monkeypatch):
    """A support file that cannot be hashed means no stored run (the computing run reports
    the file), never an error before the run."""
    from bipart_cli.segmentation import reuse

    (tmp_path / "support").mkdir()
    (tmp_path / "support" / "a.glb").write_bytes(b"x")
    options = SegmentOptions(support_dir=tmp_path / "support", weights="random")
    store = ArrayStore(tmp_path / "store")
    assert RunStore.for_options(options, "none", store) is not None

    def unreadable(path):
        raise PermissionError(f"{path}: permission denied")

    monkeypatch.setattr("bipart_cli.io.sha256_file", unreadable)
    assert reuse.RunStore.for_options(options, "none", store) is None


@pytest.mark.parametrize(
    "options",
    [
        {"labeler": "simulated"},
        {"device": "cuda"},
        {"zero_shot": True},
        {"reuse": False},
        {"index": "hf://datasets/o/n", "support_dir": None},
        {"weights": "owner/name"},
    ],
    ids=["a-labeler", "cuda", "zero-shot", "asked-not-to", "hub-index", "hub-weights"],
)
def test_what_is_never_reused(options, tmp_path):
    (tmp_path / "support").mkdir()
    plain = {"support_dir": tmp_path / "support", "weights": "random"}
    options = {**plain, **options}
    labeler = options.pop("labeler", "none")
    store = ArrayStore(tmp_path / "store")
    assert RunStore.for_options(SegmentOptions(**options), labeler, store) is None
    assert RunStore.for_options(SegmentOptions(**plain), "none", store) is not None
