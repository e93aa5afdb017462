"""Bi-level training (Algorithm 1): the fast outer loss against the naive one, determinism,
divergence, kill-and-resume through the CLI, and 2-process gloo against 1 process."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny import TESTS, tiny_config
from _training import (
    CPU,
    loss_and_grads,
    make_shapes,
    small_settings,
    tiny_model,
    write_tiny_index,
)
from safetensors.torch import load_file

from bipart_cli.errors import TrainingDivergedError
from bipart_cli.index.shape import default_basis
from bipart_cli.model import BiPartModel
from bipart_cli.model.loss import distillation_loss
from bipart_cli.train import (
    TrainShape,
    naive_outer_loss,
    outer_loss,
    train_model,
    training_supports,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def basis_points() -> np.ndarray:
    return default_basis().points


# --- the outer loss -----------------------------------------------------------------


@pytest.fixture(scope="module")
def outer_case(basis_points):
    shapes = make_shapes(6, basis_points)
    settings = small_settings()
    batch = [0, 3]
    supports = training_supports(shapes, batch, settings, np.random.default_rng(0))
    return shapes, batch, supports


@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
def test_outer_loss_equals_naive_loss_and_gradients(outer_case, first_order):
    shapes, batch, supports = outer_case
    settings = small_settings(first_order=first_order)
    model = tiny_model()
    fast_loss, fast_grads = loss_and_grads(outer_loss, model, shapes, batch, supports, settings)
    naive_loss, naive_grads = loss_and_grads(
        naive_outer_loss, model, shapes, batch, supports, settings
    )
    torch.testing.assert_close(fast_loss, naive_loss, rtol=1e-5, atol=1e-6)
    assert any(g.abs().sum() > 0 for g in fast_grads.values())
    for name, grad in fast_grads.items():
        torch.testing.assert_close(grad, naive_grads[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.slow
def test_second_order_gradients_differ_from_first_order(outer_case):
    shapes, batch, supports = outer_case
    model = tiny_model()
    _, second = loss_and_grads(
        outer_loss, model, shapes, batch, supports, small_settings(first_order=False)
    )
    _, first = loss_and_grads(
        outer_loss, model, shapes, batch, supports, small_settings(first_order=True)
    )
    gaps = {name: (second[name] - first[name]).abs().max().item() for name in second}
    assert max(gaps[n] for n in gaps if n.startswith("extractor.")) > 1e-6
    assert max(gaps[n] for n in gaps if n.startswith("head.")) > 1e-6


def test_no_bilevel_is_the_plain_loss_of_the_targets(outer_case):
    shapes, batch, supports = outer_case
    model = tiny_model().train()
    loss = outer_loss(model, shapes, batch, supports, small_settings(bilevel=False), CPU)
    expected = 0.0
    for target in batch:
        shape = shapes[target]
        points = torch.from_numpy(shape.points)[None]
        logits = model(points)  # (1, N, R_max): the module forward, current head
        labels = shape.pseudo_labels
        parts = len(shape.part_names)
        masks = torch.from_numpy(labels.masks)[None]
        expected = (
            expected
            + distillation_loss(
                logits,
                torch.tensor([parts]),
                masks,
                torch.from_numpy(labels.part_index)[None],
                torch.from_numpy(labels.scores).float()[None],
                torch.ones(1, len(labels.part_index), dtype=torch.bool),
                box_reduction="mean",
            ).sum()
        )
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


# --- determinism and divergence -----------------------------------------------------


@pytest.mark.slow
def test_same_seed_gives_identical_parameters_and_losses(tmp_path, basis_points):
    shapes = make_shapes(6, basis_points)
    settings = small_settings(epochs=2, batch_size=4, val_fraction=0.34)
    runs = []
    for name in ("a", "b"):
        model = tiny_model(seed=3)
        reports = train_model(model, shapes, tmp_path / name, settings, CPU, quiet=True)
        runs.append((model.state_dict(), [r.losses for r in reports], reports[-1].val_miou))
    (state_a, losses_a, val_a), (state_b, losses_b, val_b) = runs
    assert losses_a == losses_b and len(losses_a[0]) > 0
    assert val_a == val_b and val_a is not None
    for name, value in state_a.items():
        assert torch.equal(value, state_b[name]), name
    first = tiny_model(seed=3).state_dict()
    assert any(not torch.equal(first[n], state_a[n]) for n in first)


@pytest.mark.slow
def test_nan_points_stop_the_run_and_keep_the_previous_checkpoint(tmp_path, basis_points):
    shapes = make_shapes(6, basis_points)
    model = tiny_model()
    train_model(model, shapes, tmp_path, small_settings(epochs=1), CPU, quiet=True)
    after_epoch_1 = {k: v.clone() for k, v in model.state_dict().items()}
    checkpoint_bytes = (tmp_path / "checkpoint" / "model.safetensors").read_bytes()

    broken = [dataclasses.replace(s) for s in shapes]
    broken[2].points = broken[2].points.copy()
    broken[2].points[::7] = np.nan
    with pytest.raises(TrainingDivergedError) as caught:
        train_model(model, broken, tmp_path, small_settings(epochs=2), CPU, resume=True, quiet=True)
    message = str(caught.value)
    assert "nan" in message and "epoch 2" in message and "end of epoch 1" in message
    assert "\n" not in message

    assert (tmp_path / "checkpoint" / "model.safetensors").read_bytes() == checkpoint_bytes
    reloaded = BiPartModel.from_pretrained(tmp_path / "checkpoint")
    for name, value in reloaded.state_dict().items():
        assert torch.equal(value, after_epoch_1[name]), name
    state = json.loads((tmp_path / "checkpoint" / "trainer_state.json").read_text())
    assert state["epoch"] == 1


def test_a_huge_learning_rate_diverges_with_a_clear_message(tmp_path, basis_points):
    shapes = make_shapes(8, basis_points)
    settings = small_settings(epochs=3, outer_lr=1e30, inner_lr=1e30)
    with pytest.raises(TrainingDivergedError, match="training diverged: the outer loss became"):
        train_model(tiny_model(), shapes, tmp_path, settings, CPU, quiet=True)


# --- kill and resume through the CLI ------------------------------------------------------


def train_command(index: Path, run: Path, config: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bipart_cli",
        "train",
        "--index",
        str(index),
        "--out",
        str(run),
        "--model-config",
        str(config),
        "--epochs",
        "3",
        "--batch-size",
        "2",
        "--support-size",
        "3",
        "--inner-steps",
        "2",
        "--outer-lr",
        "1e-3",
        "--val-fraction",
        "0.2",
        "--device",
        "cpu",
        "--seed",
        "7",
        "--quiet",
        *extra,
    ]


def log_records(run: Path) -> list[dict]:
    path = run / "log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def step_losses(run: Path) -> list[tuple[int, int, float]]:
    return [(r["epoch"], r["step"], r["loss"]) for r in log_records(run) if "loss" in r]


def kill_mid_epoch_2(command: list[str], run: Path) -> None:
    """Start the run; SIGKILL it once a step of epoch 2 beyond the first checkpoint is logged."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if any(epoch == 1 for epoch, _, _ in step_losses(run)):
                break
            time.sleep(0.01)
        assert process.poll() is None, "the run ended before it could be killed mid-epoch 2"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_losses_and_weights(tmp_path, basis_points):
    index, config = tmp_path / "index", tmp_path / "model.json"
    write_tiny_index(index, basis_points)
    config.write_text(json.dumps(dataclasses.asdict(tiny_config())))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    whole = tmp_path / "whole"
    subprocess.run(train_command(index, whole, config), check=True, env=env, cwd=REPO)

    resumed = tmp_path / "resumed"
    kill_mid_epoch_2(train_command(index, resumed, config), resumed)
    state = json.loads((resumed / "checkpoint" / "trainer_state.json").read_text())
    assert state["epoch"] == 1, "the kill should land in epoch 2, after the first checkpoint"
    assert max(step for _, step, _ in step_losses(resumed)) > state["step"]
    assert not (resumed / "model").exists()

    subprocess.run(train_command(index, resumed, config, "--resume"), check=True, env=env, cwd=REPO)
    assert step_losses(resumed) == step_losses(whole)
    assert len(step_losses(whole)) == 3 * 5  # 10 training shapes, batches of 2
    final_whole = load_file(str(whole / "model" / "model.safetensors"))
    final_resumed = load_file(str(resumed / "model" / "model.safetensors"))
    assert final_whole.keys() == final_resumed.keys()
    for name, value in final_whole.items():
        assert torch.equal(value, final_resumed[name]), name
    val_whole = [r["val_miou"] for r in log_records(whole) if "val_miou" in r]
    val_resumed = [r["val_miou"] for r in log_records(resumed) if "val_miou" in r]
    assert val_whole == val_resumed and len(val_whole) == 3


# --- two gloo processes against one -------------------------------------------------------

DIST_SCRIPT = """
import os, sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, {tests!r})
from _training import make_shapes, small_settings, tiny_model
from bipart_cli.index.shape import default_basis
from bipart_cli.train import train_model

torch.set_num_threads(1)
rank = int(os.environ.get("RANK", "0"))
out = Path(sys.argv[1])
model = tiny_model(seed=11 + rank)  # different per rank: training must broadcast rank 0's
if int(os.environ.get("WORLD_SIZE", "1")) == 1:
    model = tiny_model(seed=11)
shapes = make_shapes(10, default_basis().points)
# 8 training shapes in batches of 7: rank 1's slice of the second batch is empty
settings = small_settings(epochs=2, batch_size=7, val_fraction=0.2)
train_model(model, shapes, out / "run", settings, torch.device("cpu"), quiet=True)
state = {{k: v.contiguous() for k, v in model.state_dict().items()}}
save_file(state, str(out / f"rank{{rank}}.safetensors"))
"""


def float_noise_gradients(shapes: list[TrainShape]) -> set[str]:
    """Parameters whose outer-loss gradient is float noise (|g| < 1e-6): a bias that a per-shape
    norm or the neighbour softmax cancels. Adam would turn that noise into full-size steps."""
    settings = small_settings()
    batch = [0, 1, 2, 3]
    supports = training_supports(shapes, batch, settings, np.random.default_rng(0))
    _, grads = loss_and_grads(outer_loss, tiny_model(seed=11), shapes, batch, supports, settings)
    return {name for name, grad in grads.items() if grad.abs().max() < 1e-6}


def test_no_trainable_parameter_has_a_cancelled_gradient():
    assert float_noise_gradients(make_shapes(10, default_basis().points)) == set()


def gloo_available() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_gloo_available()


@pytest.mark.slow
@pytest.mark.skipif(not gloo_available(), reason="torch.distributed with gloo is not built in")
def test_two_gloo_processes_match_one_process(tmp_path):
    script = tmp_path / "dist_train.py"
    script.write_text(textwrap.dedent(DIST_SCRIPT.format(tests=str(TESTS))))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single, double = tmp_path / "single", tmp_path / "double"
    single.mkdir()
    double.mkdir()
    subprocess.run([sys.executable, str(script), str(single)], check=True, env=env, cwd=REPO)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    subprocess.run(
        [*launcher, "--standalone", str(script), str(double)], check=True, env=env, cwd=REPO
    )
    one = load_file(str(single / "rank0.safetensors"))
    ranks = [load_file(str(double / f"rank{rank}.safetensors")) for rank in (0, 1)]
    zero = ranks[0]
    for two in ranks:
        for name, value in one.items():
            # summation order differs across ranks, and Adam's 1/sqrt(v) turns a rounding-level
            # gradient into up to one full step (lr 1e-3): measured up to 1.2e-4 on an Intel
            # Xeon, 1e-5 on an AMD EPYC; half a step is the bound that still catches a bug
            torch.testing.assert_close(two[name], value, rtol=1e-4, atol=5e-4, msg=name)
    start = tiny_model(seed=11).state_dict()
    assert any(not torch.equal(start[n], one[n]) for n in start)
    assert all(torch.equal(zero[n], value) for n, value in ranks[1].items())
    single_losses = [r["loss"] for r in log_records(single / "run") if "loss" in r]
    double_losses = [r["loss"] for r in log_records(double / "run") if "loss" in r]
    np.testing.assert_allclose(double_losses, single_losses, rtol=1e-5)


@pytest.mark.parametrize(
    ("content", "message"),
    [('{"r_max": 4, "widht": 3}', "unknown config keys: widht"), ("[1, 2]", "JSON object")],
)
def test_bad_model_config_is_a_usage_error(tmp_path, content, message):
    from typer.testing import CliRunner

    from bipart_cli.cli import app

    config = tmp_path / "model.json"
    config.write_text(content)
    args = ["train", "--index", str(tmp_path), "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, [*args, "--model-config", str(config)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "--model-config" in result.output
    assert not (tmp_path / "run").exists()


# --- resume gaps (issue 15 item 8) ----------------------------------------------------------


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory, basis_points):
    """A run folder after epoch 1 of 2, and the shapes it trained on."""
    shapes = make_shapes(6, basis_points)
    run = tmp_path_factory.mktemp("resume") / "run"
    train_model(tiny_model(), shapes, run, small_settings(epochs=1), CPU, quiet=True)
    return run, shapes


def _resume(run: Path, shapes, model=None, **overrides):
    """Resume ``run`` to epoch 2, with ``model`` (default: the tiny model it was started with)."""
    settings = small_settings(epochs=2, **overrides)
    model = tiny_model() if model is None else model
    return train_model(model, shapes, run, settings, CPU, resume=True, quiet=True)


def test_resume_after_a_kill_between_the_checkpoint_renames(one_epoch_run, tmp_path):
    """The swap had moved ``checkpoint`` to ``.checkpoint.old``: resume restarted at step 0."""
    run = tmp_path / "run"
    shutil.copytree(one_epoch_run[0], run)
    os.replace(run / "checkpoint", run / ".checkpoint.old")
    reports = _resume(run, one_epoch_run[1])
    assert [r.epoch for r in reports] == [1]
    assert json.loads((run / "checkpoint" / "trainer_state.json").read_text())["epoch"] == 2


def test_resume_drops_a_log_line_cut_short_by_a_kill(one_epoch_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(one_epoch_run[0], run)
    with open(run / "log.jsonl", "a") as handle:
        handle.write('{"step": 99, "lo')
    reports = _resume(run, one_epoch_run[1])
    assert [r.epoch for r in reports] == [1]
    for line in (run / "log.jsonl").read_text().splitlines():
        json.loads(line)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("flip", "model.safetensors is corrupt"),
        ("state", "cannot resume from"),
        ("optimizer", "cannot resume from"),
    ],
)
def test_a_damaged_checkpoint_is_one_typed_error(one_epoch_run, tmp_path, damage, message):
    from bipart_cli.errors import CheckpointError

    run = tmp_path / "run"
    shutil.copytree(one_epoch_run[0], run)
    checkpoint = run / "checkpoint"
    if damage == "flip":
        data = bytearray((checkpoint / "model.safetensors").read_bytes())
        data[-100] ^= 0x01
        (checkpoint / "model.safetensors").write_bytes(bytes(data))
    elif damage == "state":
        (checkpoint / "trainer_state.json").write_text('{"epoch": "x", "step": []}')
    else:
        (checkpoint / "optimizer.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        state["sha256"].pop("optimizer.safetensors")
        (checkpoint / "trainer_state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=message):
        _resume(run, one_epoch_run[1])


@pytest.mark.parametrize("lost", ["the map", "the model's"])
def test_a_resume_state_without_its_checksums_is_refused(one_epoch_run, tmp_path, lost):
    """Issue 31 item 11: with ``sha256`` gone from trainer_state.json, a flipped weight
    was resumed from without a word."""
    from bipart_cli.errors import CheckpointError

    run = tmp_path / "run"
    shutil.copytree(one_epoch_run[0], run)
    checkpoint = run / "checkpoint"
    data = bytearray((checkpoint / "model.safetensors").read_bytes())
    data[-100] ^= 0x01
    (checkpoint / "model.safetensors").write_bytes(bytes(data))
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    if lost == "the map":
        del state["sha256"]
    else:
        del state["sha256"]["model.safetensors"]
    (checkpoint / "trainer_state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="records no sha256"):
        _resume(run, one_epoch_run[1])


def test_resume_with_another_model_config_is_one_usage_line(one_epoch_run, tmp_path):
    """Issue 31 item 8: resumed without the run's --model-config, loading the weights
    failed on the first mismatched tensor, with a hint about shapes."""
    from bipart_cli.errors import UsageError

    run = tmp_path / "run"
    shutil.copytree(one_epoch_run[0], run)
    settings = small_settings(epochs=2)
    with pytest.raises(UsageError) as caught:
        train_model(tiny_model(extractor_dim=64), one_epoch_run[1], run, settings, CPU, resume=True)
    message = str(caught.value)
    assert message.startswith("--resume: the run's model has extractor_dim 32, this one 64")
    assert "--model-config the run was started with" in message and "\n" not in message


def test_resume_without_the_checkpoints_config_is_refused(one_epoch_run, tmp_path):
    """Issue 31 item 8: a checkpoint that had lost its config.json was not compared: a model
    whose radii differ fits the same weights, and the run went on with it."""
    from bipart_cli.errors import CheckpointError

    run = tmp_path / "run"
    shutil.copytree(one_epoch_run[0], run)
    (run / "checkpoint" / "config.json").unlink()
    with pytest.raises(CheckpointError) as caught:
        _resume(run, one_epoch_run[1], model=tiny_model(local_radius=[0.1, 0.2, 0.4]))
    assert str(caught.value) == (
        f"cannot resume from {run / 'checkpoint'}: its config.json is missing, so the run's "
        "model cannot be compared with this one; start a new --out"
    )
    assert CheckpointError.exit_code == 1  # as a checkpoint without its checksums


def test_resume_from_a_checkpoint_with_an_edited_config_is_refused(one_epoch_run, tmp_path):
    """Issue 31: config.json had no sha256 in trainer_state.json, so a checkpoint whose
    config.json was edited to name the model resumed with (other radii, the same weights'
    shapes) passed the comparison, and the run went on with another model."""
    from bipart_cli.errors import CheckpointError

    run = tmp_path / "run"
    shutil.copytree(one_epoch_run[0], run)
    config_path = run / "checkpoint" / "config.json"
    config = json.loads(config_path.read_text())
    config["local_radius"] = [0.1, 0.2, 0.4]
    config_path.write_text(json.dumps(config, indent=2))
    with pytest.raises(CheckpointError) as caught:
        _resume(run, one_epoch_run[1], model=tiny_model(local_radius=[0.1, 0.2, 0.4]))
    assert str(caught.value) == (
        f"cannot resume from {run / 'checkpoint'}: ValueError: config.json is corrupt or was "
        "edited (sha256 mismatch)"
    )


def test_a_checkpoint_without_its_configs_sha256_still_resumes(one_epoch_run, tmp_path):
    """Guard: a checkpoint written before config.json's sha256 was recorded resumes as before."""
    run = tmp_path / "run"
    shutil.copytree(one_epoch_run[0], run)
    state_path = run / "checkpoint" / "trainer_state.json"
    state = json.loads(state_path.read_text())
    del state["sha256"]["config.json"]
    state_path.write_text(json.dumps(state))
    reports = _resume(run, one_epoch_run[1])
    assert [r.epoch for r in reports] == [1]


def test_resume_with_another_seed_is_refused(one_epoch_run, tmp_path):
    from bipart_cli.errors import UsageError

    run = tmp_path / "run"
    shutil.copytree(one_epoch_run[0], run)
    with pytest.raises(UsageError, match="--seed 5 differs from the run's seed 0"):
        _resume(run, one_epoch_run[1], seed=5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"encoder_heads": 0}', "config.encoder_heads is 0"),
        ('{"mlp_ratio": NaN}', "config.mlp_ratio must be a finite number"),
        ('{"encoder_seed": "7"}', "config.encoder_seed must be an integer"),
        ('{"extractor_dim": 1000000000}', "config.extractor_dim is 1000000000"),
        ('{"num_points": -5}', "config.num_points is -5"),
        ('{"use_extractor": "no"}', "config.use_extractor must be true or false"),
        ('{"group_sizes": 3}', "config.group_sizes must be a list"),
    ],
)
def test_model_config_types_and_ranges_are_validated(tmp_path, content, message):
    """Issue 15 item 14: these crashed (heads 0, NaN, a string seed, huge sizes) or were
    accepted (num_points -5, use_extractor "no")."""
    from typer.testing import CliRunner

    from bipart_cli.cli import app

    config = tmp_path / "model.json"
    config.write_text(content)
    args = ["train", "--index", str(tmp_path), "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, [*args, "--model-config", str(config)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1


def test_a_checkpoint_that_cannot_be_written_leaves_no_staging_folder(tmp_path):
    """Issue 15 item 6: ``train`` left an empty ``.checkpoint.tmp`` on a full disk. A
    file-size limit (SIGXFSZ ignored) makes the writes fail like a full disk."""
    import resource

    from bipart_cli.errors import OutputWriteError
    from bipart_cli.train import save_checkpoint

    model = tiny_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        with pytest.raises(OutputWriteError, match="cannot write the checkpoint"):
            save_checkpoint(tmp_path, model, optimizer, {"epoch": 1, "step": 1})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
