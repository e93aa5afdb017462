"""``bipart pretrain``: masking and the visible-token encoder against slow references, the
loss falling on a small corpus, kill-and-resume, divergence, and the
``pretrain`` -> ``train --encoder`` -> ``segment`` chain with the encoder recorded."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny import NUM_POINTS, tiny_config
from _training import write_tiny_index
from safetensors.torch import load_file

from bipart_cli.errors import CheckpointError, TrainingDivergedError
from bipart_cli.index.shape import default_basis
from bipart_cli.model import BiPartModel
from bipart_cli.model.checkpoint import load_point_m2ae_checkpoint
from bipart_cli.model.encoder import build_hierarchy
from bipart_cli.pretrain import PretrainSettings, pretrain
from bipart_cli.pretrain.corpus import Corpus, draw_batch, random_rotation
from bipart_cli.pretrain.loop import run_steps
from bipart_cli.pretrain.masked_autoencoder import (
    MaskedAutoencoder,
    _scatter,
    chamfer_l2,
    visible_tokens,
)

REPO = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")


def sphere_batch(batch: int, seed: int = 0) -> torch.Tensor:
    points = torch.randn(batch, NUM_POINTS, 3, generator=torch.Generator().manual_seed(seed))
    return points / points.norm(dim=-1, keepdim=True)


def hierarchy(points: torch.Tensor, config):
    return build_hierarchy(points, config.group_sizes, config.group_k)


# --- the maths -------------------------------------------------------------------------


def test_masks_hide_the_coarsest_share_and_follow_it_down():
    config = tiny_config()
    centres, neighbours = hierarchy(sphere_batch(3), config)
    visible = visible_tokens(neighbours, config.group_sizes, 0.75, torch.Generator().manual_seed(1))
    coarsest = config.group_sizes[-1]
    assert (visible[-1].sum(1) == coarsest - int(0.75 * coarsest)).all()
    for b in range(3):  # slow reference: a token is visible iff a visible coarser group holds it
        for stage in range(len(visible) - 1, 0, -1):
            expected = torch.zeros(config.group_sizes[stage - 1], dtype=torch.bool)
            for group in range(config.group_sizes[stage]):
                if visible[stage][b, group]:
                    expected[neighbours[stage][b, group]] = True
            assert torch.equal(visible[stage - 1][b], expected)


def test_with_nothing_hidden_the_masked_pass_is_the_encoder():
    model = MaskedAutoencoder(tiny_config()).eval()
    points = sphere_batch(2)
    centres, neighbours = hierarchy(points, model.config)
    everything = [torch.ones(c.shape[:2], dtype=torch.bool) for c in centres]
    with torch.no_grad():
        encoded = model.encode_visible(points, centres, neighbours, everything)
        _, reference = model.h_encoder(points)
    for ours, theirs in zip(encoded, reference, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_padding_to_the_batch_leaves_each_shape_alone():
    model = MaskedAutoencoder(tiny_config()).eval()
    points = sphere_batch(3, seed=4)
    centres, neighbours = hierarchy(points, model.config)
    visible = visible_tokens(neighbours, model.config.group_sizes, 0.8, torch.Generator())
    with torch.no_grad():
        together = model.encode_visible(points, centres, neighbours, visible)
        for b in range(3):
            one = slice(b, b + 1)
            alone = model.encode_visible(
                points[one], [c[one] for c in centres], [n[one] for n in neighbours],
                [v[one] for v in visible],
            )  # fmt: skip
            for stage, single in enumerate(alone):
                torch.testing.assert_close(together[stage][one], single, rtol=1e-4, atol=1e-5)
                assert (single[0][~visible[stage][b]] == 0).all()  # hidden tokens stay empty


def test_scatter_keeps_the_rows_dtype_under_mixed_precision():
    """CUDA's bf16 autocast hands the scatter float32 LayerNorm rows and bf16 tokens
    (a dtype error there, seen on an H200, before the fix)."""
    tokens = torch.zeros(1, 4, 2, dtype=torch.bfloat16)  # (B, G, C)
    rows = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # (B, L, C) float32
    placed = _scatter(rows, torch.tensor([[2, 0]]), tokens)
    assert placed.dtype == torch.float32 and placed.shape == tokens.shape
    torch.testing.assert_close(placed[0], torch.tensor([[3.0, 4.0], [0, 0], [1.0, 2.0], [0, 0]]))


def test_chamfer_l2_against_a_loop():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 5, 3)), rng.normal(size=(4, 6, 3))
    expected = []
    for x, y in zip(a, b, strict=True):
        d2 = ((x[:, None] - y[None]) ** 2).sum(-1)
        expected.append(d2.min(1).mean() + d2.min(0).mean())
    # chamfer_l2 takes equal-sized sets in the model; the formula holds for any sizes
    got = chamfer_l2(torch.from_numpy(a), torch.from_numpy(b))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


def test_batches_are_a_function_of_seed_and_step():
    rng = np.random.default_rng(0)
    corpus = Corpus()
    for _ in range(5):
        corpus.add("test", rng.normal(size=(300, 3)))
    first = draw_batch(corpus, seed=3, step=7, batch_size=4, num_points=NUM_POINTS)
    assert first.shape == (4, NUM_POINTS, 3) and first.dtype == np.float32
    np.testing.assert_array_equal(first, draw_batch(corpus, 3, 7, 4, NUM_POINTS))
    assert not np.array_equal(first, draw_batch(corpus, 3, 8, 4, NUM_POINTS))
    for kind in ("so3", "up"):
        rotation = random_rotation(np.random.default_rng(1), kind)
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(rotation) == pytest.approx(1.0)
    assert random_rotation(np.random.default_rng(1), "up")[1].tolist() == [0, 1, 0]


# --- runs ------------------------------------------------------------------------------


def losses(run: Path) -> list[tuple[int, float]]:
    lines = (run / "log.jsonl").read_text().splitlines()
    return [(r["step"], r["loss"]) for r in map(json.loads, lines)]


@pytest.mark.slow
def test_the_loss_falls_on_a_small_procedural_corpus(tmp_path):
    settings = PretrainSettings(procedural=6, steps=40, batch_size=4, save_every=20, seed=1)
    report = pretrain(
        tmp_path / "run", settings, device="cpu", quiet=True, model_config=tiny_config()
    )
    curve = [loss for _, loss in losses(tmp_path / "run")]
    assert len(curve) == 40 and report.steps == 40 and report.shapes == 6
    assert np.mean(curve[-5:]) < 0.5 * np.mean(curve[:5]), curve
    encoder = tmp_path / "run" / "encoder"
    tensors = load_file(str(encoder / "model.safetensors"))
    assert tensors and all(key.startswith("h_encoder.") for key in tensors)  # official layout
    state = load_point_m2ae_checkpoint(encoder / "model.safetensors", config=tiny_config())
    assert state.keys() == BiPartModel(tiny_config()).encoder.state_dict().keys()


def test_a_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    config = tiny_config()
    rng = np.random.default_rng(0)
    good = Corpus()
    good.add("test", rng.normal(size=(400, 3)) * 0.5)
    settings = PretrainSettings(steps=4, batch_size=2, save_every=2)
    run = tmp_path / "run"
    run_steps(MaskedAutoencoder(config), good, run, settings, CPU, quiet=True)
    broken = Corpus()
    broken.add("test", np.full((400, 3), np.nan))
    longer = dataclasses.replace(settings, steps=8)
    with pytest.raises(TrainingDivergedError, match="step 5.*last good checkpoint \\(step 4\\)"):
        run_steps(MaskedAutoencoder(config), broken, run, longer, CPU, resume=True, quiet=True)
    state = json.loads((run / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 4


OTHER_RADII = [0.1, 0.2, 0.4]


def two_step_run(tmp_path: Path) -> tuple[Corpus, Path, PretrainSettings]:
    """A 2-step run of the tiny encoder on one random cloud: (its corpus, folder, settings)."""
    rng = np.random.default_rng(0)
    corpus = Corpus()
    corpus.add("test", rng.normal(size=(400, 3)) * 0.5)
    settings = PretrainSettings(steps=2, batch_size=2, save_every=2)
    run = tmp_path / "run"
    run_steps(MaskedAutoencoder(tiny_config()), corpus, run, settings, CPU, quiet=True)
    return corpus, run, settings


def resume_with_other_radii(corpus: Corpus, run: Path, settings: PretrainSettings) -> None:
    """Resume ``run`` to step 4 with an encoder whose radii differ (the same weights' shapes)."""
    other = MaskedAutoencoder(tiny_config(local_radius=OTHER_RADII))
    longer = dataclasses.replace(settings, steps=4)
    run_steps(other, corpus, run, longer, CPU, resume=True, quiet=True)


def test_resume_without_the_checkpoints_config_is_refused(tmp_path):
    """Issue 31 item 8: a checkpoint that had lost its config.json was not compared: an
    encoder whose radii differ fits the same weights, and the run went on with it."""
    corpus, run, settings = two_step_run(tmp_path)
    (run / "checkpoint" / "config.json").unlink()
    with pytest.raises(CheckpointError, match="its config.json is missing.*start a new --out"):
        resume_with_other_radii(corpus, run, settings)
    assert json.loads((run / "checkpoint" / "trainer_state.json").read_text())["step"] == 2


def test_resume_from_a_checkpoint_with_an_edited_config_is_refused(tmp_path):
    """Issue 31: config.json had no sha256 in trainer_state.json, so a checkpoint whose
    config.json was edited to name the encoder resumed with (other radii, the same weights'
    shapes) passed the comparison, and the run went on with another encoder."""
    corpus, run, settings = two_step_run(tmp_path)
    config_path = run / "checkpoint" / "config.json"
    config = json.loads(config_path.read_text())
    config["local_radius"] = OTHER_RADII
    config_path.write_text(json.dumps(config, indent=2))
    with pytest.raises(CheckpointError) as caught:
        resume_with_other_radii(corpus, run, settings)
    assert str(caught.value) == (
        f"cannot resume from {run / 'checkpoint'}: ValueError: config.json is corrupt or was "
        "edited (sha256 mismatch)"
    )
    assert json.loads((run / "checkpoint" / "trainer_state.json").read_text())["step"] == 2


def pretrain_command(run: Path, config: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "bipart_cli", "pretrain", "--procedural", "6", "--out", str(run),
        "--model-config", str(config), "--max-steps", "60", "--batch-size", "2",
        "--save-every", "10", "--device", "cpu", "--seed", "5", "--quiet", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_losses(tmp_path):
    config = tmp_path / "model.json"
    config.write_text(json.dumps(dataclasses.asdict(tiny_config())))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = tmp_path / "whole"
    subprocess.run(pretrain_command(whole, config), check=True, env=env, cwd=REPO)

    resumed = tmp_path / "resumed"
    process = subprocess.Popen(pretrain_command(resumed, config), env=env, cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if (resumed / "log.jsonl").exists() and len(losses_so_far(resumed)) > 13:
                break
            time.sleep(0.01)
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    state = json.loads((resumed / "checkpoint" / "trainer_state.json").read_text())
    assert 10 <= state["step"] < 60 and not (resumed / "encoder").exists()

    subprocess.run(pretrain_command(resumed, config, "--resume"), check=True, env=env, cwd=REPO)
    assert losses(resumed) == losses(whole) and len(losses(whole)) == 60
    final = load_file(str(whole / "encoder" / "model.safetensors"))
    again = load_file(str(resumed / "encoder" / "model.safetensors"))
    assert all(torch.equal(final[key], again[key]) for key in final)


def losses_so_far(run: Path) -> list[str]:
    return [line for line in (run / "log.jsonl").read_text().splitlines() if line.endswith("}")]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "nothing to pre-train on"),
        (["--data", "/nonexistent/folder"], "not a folder of assets or an index"),
        (["--procedural", "2", "--rotation", "sideways"], "--rotation"),
        (["--procedural", "2", "--mask-ratio", "1.5"], "--mask-ratio"),
        (["--procedural", "2", "--outer-lr", "0"], "--outer-lr"),
    ],
)
def test_usage_errors_are_one_line(extra, message, run_bipart, tmp_path):
    result = run_bipart("pretrain", "--out", str(tmp_path / "run"), "--max-steps", "1", *extra)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_an_existing_run_needs_resume_and_the_same_options(tmp_path, run_bipart):
    config = tmp_path / "model.json"
    config.write_text(json.dumps(dataclasses.asdict(tiny_config())))
    run = tmp_path / "run"
    args = ["pretrain", "--procedural", "2", "--out", str(run), "--model-config", str(config)]
    assert run_bipart(*args, "--max-steps", "2", "-q").returncode == 0
    again = run_bipart(*args, "--max-steps", "2", "-q")
    assert again.returncode == 2 and "pass --resume" in again.stderr
    other = run_bipart(*args, "--max-steps", "4", "--seed", "3", "--resume", "-q")
    assert other.returncode == 2 and "--seed 3 differs from the run's seed 0" in other.stderr
    (run / "checkpoint" / "trainer_state.json").write_text("{not json")
    damaged = run_bipart(*args, "--max-steps", "4", "--resume", "-q")
    assert damaged.returncode == 1 and "cannot resume from" in damaged.stderr, damaged.stderr
    assert len(damaged.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_resume_with_another_model_config_is_one_line(tmp_path, run_bipart):
    """Issue 31 item 8: the encoder's state-dict mismatch was printed whole."""
    run = tmp_path / "run"
    for name, dims in (("model.json", [24, 48, 96]), ("other.json", [12, 24, 48])):
        config = dataclasses.asdict(tiny_config(encoder_dims=dims))
        (tmp_path / name).write_text(json.dumps(config))
    args = ["pretrain", "--procedural", "2", "--out", str(run), "--max-steps", "2", "-q"]
    assert run_bipart(*args, "--model-config", str(tmp_path / "model.json")).returncode == 0
    again = run_bipart(*args, "--model-config", str(tmp_path / "other.json"), "--resume")
    assert again.returncode == 2, again.stderr
    (line,) = again.stderr.strip().splitlines()
    assert "--resume: the run's model has encoder_dims [24, 48, 96], this one [12, 24, 48]" in line


# --- pretrain -> train --encoder -> segment ----------------------------------------------


@pytest.mark.slow
def test_pretrain_train_segment_chain_records_the_encoder(tmp_path, run_bipart, monkeypatch):
    from bipart_cli.procedural import write_examples

    config = tmp_path / "model.json"
    config.write_text(json.dumps(dataclasses.asdict(tiny_config())))
    run, trained, index = tmp_path / "pre", tmp_path / "trained", tmp_path / "index"
    result = run_bipart(
        "pretrain", "--procedural", "4", "--out", str(run), "--model-config", str(config),
        "--max-steps", "3", "--batch-size", "2", "--json", "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["steps"] == 3 and summary["encoder"] == str(run / "encoder")
    encoder_record = json.loads((run / "encoder" / "config.json").read_text())

    write_tiny_index(index, default_basis().points)
    result = run_bipart(
        "train", "--index", str(index), "--out", str(trained), "--encoder", str(run / "encoder"),
        "--model-config", str(config), "--epochs", "1", "--max-steps", "2", "--batch-size", "2",
        "--support-size", "2", "--val-fraction", "0", "--device", "cpu", "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    model = BiPartModel.from_pretrained(trained / "model")
    assert model.config.encoder_init == "bipart-pretrain" and model.encoder_is_pretrained
    assert model.config.encoder_sha256 == encoder_record["encoder_sha256"]
    assert model.config.encoder_name == encoder_record["name"]

    write_examples(tmp_path / "ex", categories=(), n_chairs=3)
    chair = tmp_path / "chair.glb"
    (tmp_path / "ex" / "chairs" / "chair_1.glb").replace(chair)
    monkeypatch.setenv("BIPART_CACHE", str(tmp_path / "cache"))
    result = run_bipart(
        "segment", str(chair), "--parts", "back,seat,leg,arm", "--weights", str(trained / "model"),
        "--support", str(tmp_path / "ex" / "chairs"), "--labeler", "none", "--out-dir",
        str(tmp_path / "out"), "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sidecar = json.loads((tmp_path / "out" / "chair.parts.json").read_text())
    weights = sidecar["weights"]
    assert weights["encoder_pretrained"] is True
    assert weights["encoder_name"] == encoder_record["name"]
    assert weights["encoder_sha256"] == encoder_record["encoder_sha256"]


def test_loading_verifies_the_recorded_encoder(tmp_path):
    model = BiPartModel(tiny_config())
    model.config.encoder_init = "bipart-pretrain"
    model.config.encoder_name = "test"
    model.config.encoder_sha256 = model.encoder_sha256()
    model.save_pretrained(tmp_path / "model")
    assert BiPartModel.from_pretrained(tmp_path / "model").config.encoder_name == "test"
    config_path = tmp_path / "model" / "config.json"
    record = json.loads(config_path.read_text())
    record["encoder_sha256"] = "0" * 64
    config_path.write_text(json.dumps(record))
    # refused before the model is built: the weights file records the encoder it was written with
    with pytest.raises(CheckpointError, match="encoder_sha256 is '0{64}'.*an edited config.json"):
        BiPartModel.from_pretrained(tmp_path / "model")


def test_an_encoder_folder_of_other_sizes_is_one_clear_error(tmp_path):
    from bipart_cli.model.checkpoint import save_encoder_folder

    small = BiPartModel(tiny_config())
    save_encoder_folder(small.encoder, small.config, tmp_path / "encoder", "tiny")
    other = BiPartModel(tiny_config(encoder_dims=[48, 48, 96]))
    with pytest.raises(CheckpointError, match="encoder_dims is \\[24, 48, 96\\]"):
        other.load_encoder_checkpoint(tmp_path / "encoder")
    record = json.loads((tmp_path / "encoder" / "config.json").read_text())
    record["model_type"] = "something-else"
    (tmp_path / "encoder" / "config.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="model_type"):
        small.load_encoder_checkpoint(tmp_path / "encoder")


# --- torchrun -----------------------------------------------------------------------------

DIST_SCRIPT = """
import os, sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, {tests!r})
from _tiny import tiny_config
from bipart_cli.pretrain import PretrainSettings
from bipart_cli.pretrain.corpus import Corpus
from bipart_cli.pretrain.loop import run_steps
from bipart_cli.pretrain.masked_autoencoder import MaskedAutoencoder

torch.set_num_threads(1)
rank = int(os.environ.get("RANK", "0"))
torch.manual_seed(rank)  # different per rank: the run must broadcast rank 0's weights
model = MaskedAutoencoder(tiny_config())
corpus = Corpus()
rng = np.random.default_rng(0)
for _ in range(4):
    corpus.add("test", rng.normal(size=(400, 3)) * 0.5)
out = Path(sys.argv[1])
settings = PretrainSettings(steps=6, batch_size=3, save_every=3)  # rank 1 takes 1 of 3 shapes
run_steps(model, corpus, out / "run", settings, torch.device("cpu"), quiet=True)
save_file({{k: v.contiguous() for k, v in model.state_dict().items()}}, str(out / f"rank{{rank}}.safetensors"))
"""


@pytest.mark.slow
def test_two_gloo_processes_end_with_the_same_model(tmp_path):
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with gloo is not built in")
    script = tmp_path / "dist_pretrain.py"
    script.write_text(DIST_SCRIPT.format(tests=str(REPO / "tests")))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    subprocess.run([*launcher, "--standalone", str(script), str(tmp_path)], check=True, env=env)
    zero, one = (load_file(str(tmp_path / f"rank{rank}.safetensors")) for rank in (0, 1))
    assert all(torch.equal(zero[name], one[name]) for name in zero)  # weights and BN statistics
    curve = losses(tmp_path / "run")
    assert [step for step, _ in curve] == list(range(1, 7))
    assert all(np.isfinite(loss) for _, loss in curve)
    assert (tmp_path / "run" / "encoder" / "model.safetensors").is_file()


def test_corpus_reads_folders_and_indexes_and_skips_broken_files(tmp_path):
    from bipart_cli.pretrain.corpus import POOL_POINTS, build_corpus
    from bipart_cli.procedural import make_shape

    folder = tmp_path / "assets" / "nested"
    folder.mkdir(parents=True)
    (folder / "chair.glb").write_bytes(make_shape("chair", 1).export(file_type="glb"))
    (folder / "mug.obj").write_text(make_shape("mug", 2).to_mesh().export(file_type="obj"))
    (folder / "broken.ply").write_bytes(b"ply\nthis is not a ply file\n")
    (folder / "notes.txt.bak").write_text("not an asset")
    index = tmp_path / "index"
    write_tiny_index(index, default_basis().points, count=3)
    corpus = build_corpus([str(tmp_path / "assets"), str(index)], procedural=2, seed=0)
    assert corpus.sources == {"files": 2, "index": 3, "procedural": 2}
    assert len(corpus.skipped) == 1 and "broken.ply" in corpus.skipped[0]
    assert [len(pool) for pool in corpus.pools[:2]] == [POOL_POINTS, POOL_POINTS]
    assert all(
        np.isfinite(pool).all() and np.abs(pool).max() <= 1.0 + 1e-5 for pool in corpus.pools
    )
