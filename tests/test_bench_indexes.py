"""The benchmarks' shape indexes are made again when what they are made from changes: a
cached index is keyed by the dataset's files and the code that makes its records."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _key(monkeypatch, root: Path, **kwargs) -> str:
    import benchmarks.common.shared_data as shared_data
    from benchmarks.common.shared_index import build_key

    monkeypatch.setattr(shared_data, "DATA_ROOT", root)
    return build_key("toy", **kwargs)


def test_build_key_follows_the_dataset_files_and_the_labeler(tmp_path, monkeypatch):
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(repo))  # ``benchmarks`` is imported from the checkout
    (tmp_path / "toy").mkdir()
    np.savez(tmp_path / "toy" / "Cup.npz", points=np.zeros((1, 4, 3), np.float16))
    (tmp_path / "toy" / "meta.json").write_text("{}")
    first = _key(monkeypatch, tmp_path)
    assert _key(monkeypatch, tmp_path) == first  # the same files, the same key
    np.savez(tmp_path / "toy" / "Cup.npz", points=np.ones((1, 4, 3), np.float16))
    changed = _key(monkeypatch, tmp_path)
    assert changed != first
    assert _key(monkeypatch, tmp_path, labeler="simulated") != changed
    assert _key(monkeypatch, tmp_path, options={"miss_rate": 0.2}) != changed
    (tmp_path / "toy" / "Bowl.npz").write_bytes(b"")  # a new category's file
    assert _key(monkeypatch, tmp_path) != changed


def test_an_index_is_current_only_with_its_manifest_and_its_key(tmp_path, monkeypatch):
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(repo))
    from benchmarks.common.shared_index import KEY_FILE, is_current

    assert not is_current(tmp_path, "k")
    (tmp_path / "manifest.json").write_text("{}")
    assert not is_current(tmp_path, "k")  # an index from before the keys: made again
    (tmp_path / KEY_FILE).write_text("k")
    assert is_current(tmp_path, "k")
    assert not is_current(tmp_path, "other")


def test_a_reused_trained_model_says_when_it_was_made_from_other_data_or_code(
    tmp_path, monkeypatch, capsys
):
    """A benchmark's trained model is reused by its folder; the folder records what it was
    trained from, and reusing it from other settings' data or code says so."""
    import json

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(repo))
    import bipart_cli.store as store
    from benchmarks.common import paper_runs
    from bipart_cli.train import TrainSettings

    index = tmp_path / "index"
    index.mkdir()
    (index / "manifest.json").write_text("{}")
    (index / paper_runs.KEY_FILE).write_text("build 1")
    run = tmp_path / "run"
    run.mkdir()
    settings = TrainSettings(epochs=1, seed=0)
    made_from = paper_runs.training_key(settings, index)

    paper_runs.warn_if_made_otherwise(run, made_from)
    assert "whose training is not recorded" in capsys.readouterr().err
    (run / paper_runs.MADE_FROM).write_text(json.dumps({**made_from, "revision": "abc1234"}))
    paper_runs.warn_if_made_otherwise(run, made_from)
    assert capsys.readouterr().err == ""  # the same data and code: silent
    (index / paper_runs.KEY_FILE).write_text("build 2")  # the index rebuilt
    monkeypatch.setattr(store, "code_identity", lambda: "another bipart")
    paper_runs.warn_if_made_otherwise(run, paper_runs.training_key(settings, index))
    said = capsys.readouterr().err
    assert "trained at abc1234" in said and "train_index_build, code" in said


def test_the_joint_train_index_key_follows_each_of_its_datasets(tmp_path, monkeypatch):
    """``psb+human+pm-train`` is made again when any one of its datasets' files changes."""
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(repo))
    import benchmarks.common.shared_data as shared_data
    from benchmarks.common.shared_index import joint_build_key

    monkeypatch.setattr(shared_data, "DATA_ROOT", tmp_path)
    for name in ("toy", "other"):
        (tmp_path / name).mkdir()
        np.savez(tmp_path / name / "Cup.npz", points=np.zeros((1, 4, 3), np.float16))
        (tmp_path / name / "meta.json").write_text("{}")
    first = joint_build_key(("toy", "other"))
    assert joint_build_key(("toy", "other")) == first
    np.savez(tmp_path / "other" / "Cup.npz", points=np.ones((1, 4, 3), np.float16))
    second = joint_build_key(("toy", "other"))
    assert second != first
    np.savez(tmp_path / "toy" / "Cup.npz", points=np.ones((1, 4, 3), np.float16))
    assert joint_build_key(("toy", "other")) not in (first, second)
