"""Checkpoints and resume: safetensors and JSON, no pickle; model, optimizer and RNG state,
so a resumed run continues the interrupted one's losses.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..io.atomic import atomic_path
from .settings import TrainSettings

if TYPE_CHECKING:
    import torch


CHECKPOINT_FILES = ("model.safetensors", "optimizer.safetensors", "rng_state.safetensors")
# Recorded too since issue 31; optional on resume: a checkpoint written before has no entry.
CHECKPOINT_CONFIG = "config.json"


def save_checkpoint(run_dir: Path, model, optimizer, state: dict[str, Any]) -> Path:
    """Write ``RUN_DIR/checkpoint``: model (save_pretrained layout), optimizer tensors, trainer state.

    The folder is written beside the old one and swapped in by rename, so a kill
    at any moment leaves the last good checkpoint intact (a kill between the two
    renames is repaired by :func:`recover_checkpoint`). ``trainer_state.json``,
    written last, records the sha256 of the other files, ``config.json`` included.
    A failed write (a full disk) removes the staging folder and raises one
    OutputWriteError line.
    """
    import shutil

    from safetensors.torch import save_file

    from ..errors import OutputWriteError
    from ..io import sha256_file
    from ..io.atomic import is_write_error, write_error_reason

    final = run_dir / "checkpoint"
    staging = run_dir / ".checkpoint.tmp"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        staging.mkdir(parents=True)
        model.save_pretrained(staging)
        tensors, groups = _optimizer_to_tensors(optimizer)
        save_file(tensors, str(staging / "optimizer.safetensors"))
        save_file(_rng_tensors(), str(staging / "rng_state.safetensors"))
        checksums = {
            name: sha256_file(staging / name)
            for name in (*CHECKPOINT_FILES, CHECKPOINT_CONFIG)
            if (staging / name).is_file()
        }
        (staging / "trainer_state.json").write_text(
            json.dumps({**state, "optimizer_groups": groups, "sha256": checksums}, indent=2)
        )
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if is_write_error(exc):
            raise OutputWriteError(
                f"cannot write the checkpoint in {run_dir}: {write_error_reason(exc)}"
            ) from exc
        raise
    old = run_dir / ".checkpoint.old"
    if final.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(staging, final)
    if old.exists():
        shutil.rmtree(old)
    return final


def recover_checkpoint(run_dir: Path) -> None:
    """Finish a checkpoint swap a kill interrupted: with ``checkpoint/`` missing, a complete
    ``.checkpoint.tmp`` (it has ``trainer_state.json``, written last) becomes the
    checkpoint, else the previous one kept in ``.checkpoint.old``."""
    final = run_dir / "checkpoint"
    if (final / "trainer_state.json").exists():
        return
    for candidate in (run_dir / ".checkpoint.tmp", run_dir / ".checkpoint.old"):
        if (candidate / "trainer_state.json").exists():
            if final.exists():
                import shutil

                shutil.rmtree(final)
            os.replace(candidate, final)
            return


def _optimizer_to_tensors(optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    import torch

    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for param_id, param_state in state_dict["state"].items():
        for key, value in param_state.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{param_id}.{key}"] = tensor.detach().cpu().contiguous()
    groups = [{k: v for k, v in group.items()} for group in state_dict["param_groups"]]
    return tensors, groups


def _rng_tensors() -> dict[str, torch.Tensor]:
    """torch's CPU (and CUDA) generator states, as uint8 tensors."""
    import torch

    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["torch_cuda"] = torch.cuda.get_rng_state()
    return tensors


def _load_rng_state(checkpoint: Path) -> None:
    import torch
    from safetensors.torch import load_file

    path = checkpoint / "rng_state.safetensors"
    if not path.exists():
        return
    tensors = load_file(str(path))
    torch.set_rng_state(tensors["torch_cpu"])
    if "torch_cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["torch_cuda"])


def load_optimizer_state(optimizer, checkpoint: Path, groups: list[dict[str, Any]]) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(checkpoint / "optimizer.safetensors"))
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def restore_checkpoint(
    model,
    optimizer,
    checkpoint: Path,
    device,
    settings: TrainSettings | None = None,
    same_run: tuple[str, ...] = ("seed",),
) -> tuple[int, int]:
    """Load weights, optimizer, RNG and counters from ``checkpoint`` (checksums verified).

    Raises :class:`CheckpointError` for a damaged checkpoint and :class:`UsageError`
    when ``settings`` has another ``--seed`` than the run being resumed.
    """
    from ..errors import CheckpointError

    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        if not isinstance(state, dict):
            raise ValueError("trainer_state.json is not a JSON object")
        _require_config(checkpoint)
        _verify_checksums(checkpoint, state.get("sha256"))
        if settings is not None:
            _check_same_run(state.get("settings") or {}, settings, same_run)
        _check_same_model(checkpoint, model)
        epoch, step = int(state["epoch"]), int(state["step"])
        if epoch < 0 or step < 0:
            raise ValueError("negative epoch or step")
        model.load_weights(checkpoint / "model.safetensors")
        load_optimizer_state(optimizer, checkpoint, state["optimizer_groups"])
        _load_rng_state(checkpoint)
    except (UsageError, CheckpointError):
        raise
    except Exception as exc:  # noqa: BLE001 - json, safetensors and torch raise many types
        from ..runtime import scrub_hint

        raise CheckpointError(
            f"cannot resume from {checkpoint}: {type(exc).__name__}: {scrub_hint(str(exc))}"
        ) from exc
    _truncate_log(checkpoint.parent / "log.jsonl", step)
    return epoch, step


def _verify_checksums(checkpoint: Path, checksums: Any) -> None:
    """Every checkpoint file on disk has its sha256 in ``trainer_state.json``, and it matches.

    A state without them (lost, or removed) is refused, not trusted: a flipped byte in
    the weights would otherwise be resumed silently. ``config.json`` is verified when the
    map lists it: an edited one could name the model being resumed with, not the run's.
    A checkpoint written before its sha256 was recorded has no entry, and resumes as it
    did (its config.json is still compared with the model, :func:`_check_same_model`)."""
    from ..io import sha256_file

    if not isinstance(checksums, dict) or not checksums:
        raise ValueError(
            "trainer_state.json records no sha256 of the checkpoint's files, so they cannot "
            "be verified; start a new --out"
        )
    for name, digest in checksums.items():
        if name not in (*CHECKPOINT_FILES, CHECKPOINT_CONFIG):
            raise ValueError(f"unexpected file {name!r} in trainer_state.json")
        if sha256_file(checkpoint / name) != digest:
            raise ValueError(f"{name} is corrupt or was edited (sha256 mismatch)")
    for name in CHECKPOINT_FILES:
        if name not in checksums and (checkpoint / name).exists():
            raise ValueError(f"trainer_state.json records no sha256 of {name}")
    if "model.safetensors" not in checksums:
        raise ValueError("trainer_state.json records no sha256 of model.safetensors")


def _require_config(checkpoint: Path) -> None:
    """A checkpoint that has lost its ``config.json`` is a :class:`CheckpointError`: the
    weights record too little of the config (a radius or a neighbour count changes no
    tensor's shape), so the run could go on with another model than it was started with."""
    from ..errors import CheckpointError

    if not (checkpoint / CHECKPOINT_CONFIG).is_file():
        raise CheckpointError(
            f"cannot resume from {checkpoint}: its config.json is missing, so the run's model "
            "cannot be compared with this one; start a new --out"
        )


def _check_same_model(checkpoint: Path, model) -> None:
    """The checkpoint's ``config.json`` describes ``model``'s config: resumed with another
    ``--model-config`` (or without the run's), the weights cannot fit, and loading them
    printed a whole state-dict mismatch. A :class:`UsageError` naming the first field."""
    saved = json.loads((checkpoint / CHECKPOINT_CONFIG).read_text(encoding="utf-8"))
    if not isinstance(saved, dict):
        raise ValueError("config.json is not a JSON object")
    current = model.config.to_dict()
    for name, value in current.items():
        before = saved.get(name)
        if name in saved and json.loads(json.dumps(value)) != before:
            raise UsageError(
                f"--resume: the run's model has {name} {before}, this one {value}; resume with "
                "the --model-config the run was started with (none if it had none), or start "
                "a new --out"
            )


def _check_same_run(saved: dict[str, Any], settings, names: tuple[str, ...]) -> None:
    """A resumed run must be the run it resumes: each setting in ``names`` (whatever decides
    the batches it draws) equals the saved one, else a :class:`UsageError` naming the option."""
    for name in names:
        value, before = getattr(settings, name), saved.get(name)
        if before is not None and before != value:
            option = "--" + name.replace("_", "-")
            raise UsageError(
                f"--resume: {option} {value} differs from the run's {name.replace('_', ' ')} "
                f"{before}; resume with {option} {before} or start a new --out"
            )


def append_log(run_dir: Path, record: dict[str, Any], is_main: bool = True) -> None:
    """One JSON object per line in ``RUN_DIR/log.jsonl`` (see :func:`_truncate_log` on resume);
    in a distributed run only the main rank (``is_main``) writes."""
    if not is_main:
        return
    with open(run_dir / "log.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint so a resumed run's log matches an
    uninterrupted one; a line cut short by a kill (not JSON) is dropped too."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            keep = isinstance(record, dict) and int(record["step"]) <= step
        except (ValueError, KeyError, TypeError):
            keep = False
        if keep:
            kept.append(line)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in kept))


def checkpoint_epoch(checkpoint: Path) -> int:
    return int(json.loads((checkpoint / "trainer_state.json").read_text())["epoch"])
