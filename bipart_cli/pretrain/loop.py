"""The pre-training loop behind ``bipart pretrain``: seeded batches, AdamW with warm-up and
cosine decay, a JSONL log, checkpoints that resume exactly, and the encoder folder at the end.

RUN_DIR/
    log.jsonl                one object per step: step, loss (the batch's mean Chamfer L2), lr
    pretrain_settings.json   the run's settings
    checkpoint/              every ``save_every`` steps: weights, optimizer, trainer state
    encoder/                 at the end: the encoder alone, for ``train --encoder``
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import TrainingDivergedError, UsageError
from ..io.atomic import atomic_write_text
from ..train.checkpoints import (
    append_log,
    recover_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from ..train.distributed import (
    DistInfo,
    broadcast_buffers,
    broadcast_weights,
    global_sum,
    init_distributed,
    sum_gradients,
)
from .corpus import Corpus, build_corpus, check_sources, draw_batch
from .settings import PretrainSettings

if TYPE_CHECKING:
    from ..model import BiPartConfig

ENCODER_FOLDER = "encoder"
# a resumed run must draw the batches the interrupted one would have drawn
SAME_RUN = ("data", "procedural", "seed", "batch_size", "mask_ratio", "rotation")


@dataclass
class PretrainReport:
    """What a run did: steps taken in this process, first and last logged loss, timing."""

    steps: int
    first_loss: float | None
    last_loss: float | None
    seconds: float
    shapes: int
    encoder_dir: Path
    peak_memory_mb: float


def pretrain(
    run_dir: Path,
    settings: PretrainSettings,
    device: str = "auto",
    resume: bool = False,
    quiet: bool = False,
    model_config: BiPartConfig | None = None,
) -> PretrainReport:
    """Build the corpus and the masked autoencoder, run ``settings.steps`` steps, export the encoder."""
    from ..model import BiPartConfig
    from ..runtime import resolve_device, seed_everything
    from .masked_autoencoder import MaskedAutoencoder

    torch_device = resolve_device(device)
    seed_everything(settings.seed)
    config = model_config if model_config is not None else BiPartConfig()
    run_dir = Path(run_dir)
    checkpoint = run_dir / "checkpoint"
    if not resume and (checkpoint / "trainer_state.json").exists():
        raise UsageError(f"{run_dir} holds a run already: pass --resume, or choose another --out")
    check_sources(settings.data, settings.procedural)
    corpus = _load_corpus(settings, quiet)
    model = MaskedAutoencoder(config, settings.decoder_depth).to(torch_device)
    return run_steps(model, corpus, run_dir, settings, torch_device, resume, quiet)


def _load_corpus(settings: PretrainSettings, quiet: bool) -> Corpus:
    from ..runtime import progress

    with progress(quiet) as bar:
        task = bar.add_task("reading and generating shapes", total=None)
        corpus = build_corpus(
            settings.data,
            settings.procedural,
            settings.seed,
            tick=lambda: bar.update(task, advance=1),
        )
    return corpus


def _optimizer(model, settings: PretrainSettings):
    import torch

    decay, no_decay = [], []
    for name, param in model.named_parameters():
        # norms, biases and tokens are not decayed (the MAE recipe)
        (no_decay if param.ndim <= 1 or "token" in name else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": settings.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=settings.lr)


def run_steps(
    model,
    corpus: Corpus,
    run_dir: Path,
    settings: PretrainSettings,
    device,
    resume: bool = False,
    quiet: bool = False,
) -> PretrainReport:
    """Steps ``[start, settings.steps)``; ``start`` is the checkpoint's step on ``--resume``."""
    import torch

    from ..runtime import progress

    dist_info = init_distributed(device)
    broadcast_weights(model, dist_info)
    optimizer = _optimizer(model, settings)
    step = _start(model, optimizer, run_dir, settings, device, resume, dist_info)
    trainable = [p for p in model.parameters() if p.requires_grad]
    first_loss = last_loss = None
    started, first_step = time.perf_counter(), step
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.train()
    with progress(quiet or not dist_info.is_main) as bar:
        task = bar.add_task("pre-training", total=settings.steps, completed=step)
        while step < settings.steps:
            for group in optimizer.param_groups:
                group["lr"] = settings.learning_rate(step)
            broadcast_buffers(model, dist_info)
            loss = step_loss(model, corpus, settings, step, device, dist_info)
            if not math.isfinite(loss):
                raise TrainingDivergedError(_diverged_message(loss, step, run_dir))
            sum_gradients(trainable, dist_info)
            optimizer.step()
            step += 1
            first_loss = loss if first_loss is None else first_loss
            last_loss = loss
            append_log(
                run_dir,
                {"step": step, "loss": loss, "lr": settings.learning_rate(step - 1)},
                dist_info.is_main,
            )
            bar.update(task, advance=1, description=f"pre-training loss {loss:.5f}")
            if dist_info.is_main and (step % settings.save_every == 0 or step == settings.steps):
                state = {"epoch": 0, "step": step, "settings": settings.to_dict()}
                save_checkpoint(run_dir, model, optimizer, state)
    broadcast_buffers(model, dist_info)  # every rank ends with the exported statistics
    encoder_dir = run_dir / ENCODER_FOLDER
    if dist_info.is_main:
        _export_encoder(model, run_dir, settings, corpus, step, last_loss)
    return PretrainReport(
        steps=step - first_step,
        first_loss=first_loss,
        last_loss=last_loss,
        seconds=time.perf_counter() - started,
        shapes=len(corpus),
        encoder_dir=encoder_dir,
        peak_memory_mb=peak_memory_mb(device),
    )


def _start(model, optimizer, run_dir, settings, device, resume, dist_info: DistInfo) -> int:
    """The step to start from: the checkpoint's on ``--resume``, else 0 (with a fresh log)."""
    checkpoint = run_dir / "checkpoint"
    if resume and dist_info.is_main:
        recover_checkpoint(run_dir)
    if resume and (checkpoint / "trainer_state.json").exists():
        return restore_checkpoint(model, optimizer, checkpoint, device, settings, SAME_RUN)[1]
    if dist_info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "log.jsonl").unlink(missing_ok=True)
        atomic_write_text(
            run_dir / "pretrain_settings.json", json.dumps(settings.to_dict(), indent=2) + "\n"
        )
    return 0


def step_loss(model, corpus, settings, step, device, dist_info: DistInfo) -> float:
    """Forward and backward of this rank's slice of the step's global batch; the global mean loss."""
    import torch

    batch = draw_batch(
        corpus,
        settings.seed,
        step,
        settings.batch_size,
        model.config.num_points,
        rotation=settings.rotation,
    )
    batch = batch[dist_info.rank :: dist_info.world_size]  # (B_local, N, 3)
    model.zero_grad(set_to_none=True)
    loss = None
    if len(batch):
        points = torch.from_numpy(batch).to(device)
        generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + step)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            per_shape = model(points, settings.mask_ratio, generator)  # (B_local,)
        loss = per_shape.sum()
        (loss / settings.batch_size).backward()  # summed over ranks: the global batch's mean
    return global_sum(loss, dist_info, device) / settings.batch_size


def _export_encoder(model, run_dir: Path, settings, corpus: Corpus, step: int, loss) -> None:
    from ..model.checkpoint import save_encoder_folder

    provenance = {
        "steps": step,
        "final_loss": loss,
        "shapes": len(corpus),
        "sources": corpus.sources,
        "mask_ratio": settings.mask_ratio,
        "rotation": settings.rotation,
        "seed": settings.seed,
    }
    name = f"bipart-pretrain:{run_dir.resolve().name}@{step}"
    save_encoder_folder(model.h_encoder, model.config, run_dir / ENCODER_FOLDER, name, provenance)


def _diverged_message(loss: float, step: int, run_dir: Path) -> str:
    checkpoint = run_dir / "checkpoint"
    if (checkpoint / "trainer_state.json").exists():
        saved = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        kept = f"the last good checkpoint (step {saved['step']}) is kept in {checkpoint}"
    else:
        kept = "no checkpoint was written yet"
    return (
        f"pre-training diverged: the loss became {loss} at step {step + 1}; {kept} "
        f"(lower --outer-lr, or check the data for broken shapes)"
    )


def peak_memory_mb(device) -> float:
    import resource

    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
