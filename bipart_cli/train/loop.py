"""The training loop: epochs of outer steps, validation, logging, divergence checks, and the
``train`` entry point behind ``bipart train``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import TrainingDivergedError, UsageError
from ..io.atomic import atomic_write_text
from .checkpoints import (
    append_log,
    checkpoint_epoch,
    recover_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from .distributed import broadcast_weights, global_sum, init_distributed, sum_gradients
from .settings import EpochReport, TrainSettings, TrainShape
from .steps import fill_encoder_features, outer_loss, training_supports

if TYPE_CHECKING:
    from ..model import BiPartConfig


def split_train_val(
    shapes: list[TrainShape], settings: TrainSettings
) -> tuple[list[int], list[int]]:
    """Seeded split: ``val_fraction`` of the shapes with ground truth, per category, go to validation."""
    rng = np.random.default_rng(settings.seed)
    train, val = [], []
    by_category: dict[str, list[int]] = {}
    for i, shape in enumerate(shapes):
        by_category.setdefault(shape.category, []).append(i)
    for category in sorted(by_category):
        members = by_category[category]
        labeled = [i for i in members if shapes[i].gt_labels is not None]
        count = int(round(settings.val_fraction * len(labeled))) if len(members) > 2 else 0
        held = set(rng.permutation(labeled)[:count].tolist()) if count else set()
        val.extend(i for i in members if i in held)
        if settings.categories is None or category in settings.categories:
            train.extend(i for i in members if i not in held)
    return sorted(train), sorted(val)


def validation_miou(
    model,
    shapes: list[TrainShape],
    val: list[int],
    pool: list[int],
    settings: TrainSettings,
    device,
) -> float | None:
    """Mean mIoU of the validation shapes after inference-time adaptation on training supports."""
    if not val:
        return None
    from ..adapt import PAPER_INNER_LOOP, AdaptSettings
    from ..evaluate import shape_miou
    from ..predict import FeatureCache, adapt_and_predict
    from ..support import SupportShape

    # the paper's inner loop, the one training meta-learns for (not segment's defaults)
    adapt = AdaptSettings(
        **{
            **PAPER_INNER_LOOP,
            "steps": settings.val_inner_steps,
            "lr": settings.val_inner_lr,
            "support_size": settings.support_size,
        }
    )
    cache = FeatureCache(model, device, adapt)
    subset = [shapes[i] for i in pool]
    rng = np.random.default_rng(settings.seed)
    scores = []
    for i in val:
        target = shapes[i]
        candidates = [k for k, s in enumerate(subset) if s.category == target.category]
        support_ids = (
            training_supports([*subset, target], [len(subset)], settings, rng)[len(subset)][1:]
            if candidates
            else []
        )
        support = [
            SupportShape(
                subset[k].shape_id,
                subset[k].points,
                subset[k].pseudo_labels,
                subset[k].encoder_features,
            )
            for k in support_ids
        ]
        predicted, _ = adapt_and_predict(
            model,
            target.points,
            target.points,
            target.pseudo_labels,
            support,
            len(target.part_names),
            adapt,
            cache,
        )
        scores.append(shape_miou(predicted, target.gt_labels, len(target.part_names)))
    return float(np.mean(scores))


def _batches(order: np.ndarray, batch_size: int) -> list[list[int]]:
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


def train_model(
    model,
    shapes: list[TrainShape],
    run_dir: Path,
    settings: TrainSettings,
    device,
    resume: bool = False,
    quiet: bool = False,
) -> list[EpochReport]:
    """Run Algorithm 1 on ``shapes``, checkpointing every epoch into ``run_dir``."""
    import torch

    from ..runtime import progress

    dist_info = init_distributed(device)
    broadcast_weights(model, dist_info)
    train_ids, val_ids = split_train_val(shapes, settings)
    if not train_ids:
        raise UsageError("no training shapes (check --categories against the index's categories)")
    fill_encoder_features(model, shapes, device, quiet=quiet or not dist_info.is_main)
    pool = [shapes[i] for i in train_ids]
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=settings.outer_lr)
    start_epoch, step = 0, 0
    checkpoint = run_dir / "checkpoint"
    if resume and dist_info.is_main:
        recover_checkpoint(run_dir)
    if resume and (checkpoint / "trainer_state.json").exists():
        start_epoch, step = restore_checkpoint(model, optimizer, checkpoint, device, settings)
    elif dist_info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "log.jsonl").unlink(missing_ok=True)
        atomic_write_text(run_dir / "train_settings.json", json.dumps(settings.to_dict(), indent=2))
    fixed_supports = None
    if settings.support_strategy != "random":
        fixed_supports = training_supports(
            pool, list(range(len(pool))), settings, np.random.default_rng(settings.seed)
        )
    reports = []
    for epoch in range(start_epoch, settings.epochs):
        started = time.perf_counter()
        model.train()
        order = np.random.default_rng([settings.seed, epoch]).permutation(len(pool))
        supports = fixed_supports or training_supports(
            pool, list(range(len(pool))), settings, np.random.default_rng([settings.seed, epoch, 1])
        )
        batches = _batches(order, settings.batch_size)
        losses: list[float] = []
        with progress(quiet or not dist_info.is_main) as bar:
            task = bar.add_task(f"epoch {epoch + 1}/{settings.epochs}", total=len(batches))
            for batch in batches:
                if settings.max_steps is not None and step >= settings.max_steps:
                    break
                local = batch[dist_info.rank :: dist_info.world_size]
                optimizer.zero_grad(set_to_none=True)
                loss = outer_loss(model, pool, local, supports, settings, device) if local else None
                if loss is not None:
                    loss.backward()
                sum_gradients(trainable, dist_info)
                global_loss = global_sum(loss, dist_info, device)
                if not math.isfinite(global_loss):
                    raise TrainingDivergedError(
                        _diverged_message(global_loss, epoch, step, run_dir)
                    )
                optimizer.step()
                step += 1
                losses.append(global_loss / len(batch))
                append_log(
                    run_dir, {"epoch": epoch, "step": step, "loss": losses[-1]}, dist_info.is_main
                )
                bar.update(
                    task,
                    advance=1,
                    description=f"epoch {epoch + 1}/{settings.epochs} loss {losses[-1]:.4f}",
                )
        model.eval()
        val = (
            validation_miou(model, shapes, val_ids, train_ids, settings, device)
            if dist_info.is_main
            else None
        )
        report = EpochReport(
            epoch,
            float(np.mean(losses)) if losses else float("nan"),
            val,
            time.perf_counter() - started,
            step,
            losses,
        )
        reports.append(report)
        append_log(
            run_dir,
            {
                "epoch": epoch,
                "step": step,
                "mean_loss": report.mean_loss,
                "val_miou": val,
                "seconds": report.seconds,
            },
            dist_info.is_main,
        )
        if dist_info.is_main:
            save_checkpoint(
                run_dir,
                model,
                optimizer,
                {"epoch": epoch + 1, "step": step, "settings": settings.to_dict()},
            )
        if settings.max_steps is not None and step >= settings.max_steps:
            break
    if dist_info.is_main:
        model.save_pretrained(run_dir / "model")
    return reports


def _diverged_message(loss: float, epoch: int, step: int, run_dir: Path) -> str:
    checkpoint = run_dir / "checkpoint"
    kept = (
        f"the last good checkpoint (end of epoch {checkpoint_epoch(checkpoint)}) is kept in {checkpoint}"
        if (checkpoint / "trainer_state.json").exists()
        else "no checkpoint was written yet"
    )
    return (
        f"training diverged: the outer loss became {loss} at epoch {epoch + 1}, step {step + 1}; "
        f"{kept} (lower --outer-lr or --inner-lr, or check the index for NaN points)"
    )


def load_training_shapes(index_path: str) -> list[TrainShape]:
    """Every shape of an index as a :class:`TrainShape` (features from the cache when present)."""
    from ..index import ShapeIndex

    index = ShapeIndex.open(index_path)
    shapes = []
    for row, entry in enumerate(index.entries):
        record = index.record(row)
        features = (
            None if record.features is None else np.asarray(record.features, dtype=np.float32)
        )
        shapes.append(
            TrainShape(
                shape_id=record.id,
                category=record.category,
                part_names=list(record.part_names),
                points=record.points,
                pseudo_labels=record.pseudo_labels,
                bps=record.bps,
                part_count=int(entry.surviving_parts),
                encoder_features=features,
                gt_labels=record.gt_labels,
            )
        )
    return shapes


def _drop_stale_features(shapes: list[TrainShape], index_path: str, model) -> None:
    """Cached features made by another encoder than the model's are dropped (recomputed once)."""
    from ..index import ShapeIndex, encoder_identity

    if ShapeIndex.open(index_path, verify=False).encoder != encoder_identity(model):
        for shape in shapes:
            shape.encoder_features = None


def read_model_config(path: str | Path) -> BiPartConfig:
    """``--model-config``: a JSON object of :class:`BiPartConfig` fields (the others keep defaults)."""
    from ..model import BiPartConfig

    try:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object of BiPartConfig fields")
        data.pop("model_type", None)  # a saved model's config.json is accepted as is
        return BiPartConfig.from_dict(data)
    except OSError as exc:
        raise UsageError(f"--model-config {path}: cannot read it ({exc.strerror})") from exc
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--model-config {path}: {exc}") from exc


def train(
    index_path: str,
    run_dir: Path,
    settings: TrainSettings,
    device: str = "auto",
    resume: bool = False,
    quiet: bool = False,
    model_config: BiPartConfig | None = None,
    encoder: str | Path | None = None,
) -> list[EpochReport]:
    """``bipart train``: build the model (``model_config`` or the paper's sizes), then run
    :func:`train_model`. ``r_max`` is raised to the index's largest part count.

    ``encoder`` (``--encoder``) is a pre-trained encoder: a ``bipart pretrain`` folder,
    whose sizes the model takes, or the official Point-M2AE weights. Features the
    index cached with another encoder are recomputed.
    """
    import dataclasses

    from ..model import BiPartConfig, BiPartModel
    from ..runtime import resolve_device, seed_everything

    torch_device = resolve_device(device)
    seed_everything(settings.seed)
    shapes = load_training_shapes(index_path)
    if not shapes:
        raise UsageError(f"index {index_path} holds no shapes")
    if settings.categories:
        known = {s.category for s in shapes}
        unknown = sorted(set(settings.categories) - known)
        if unknown:
            raise UsageError(
                f"--categories: {', '.join(unknown)} not in the index (it has {', '.join(sorted(known))})"
            )
    most_parts = max(len(s.part_names) for s in shapes)
    base = model_config if model_config is not None else BiPartConfig()
    if encoder is not None and Path(encoder).is_dir():
        from ..model.checkpoint import read_encoder_folder

        base = dataclasses.replace(base, **read_encoder_folder(encoder)["sizes"])
    config = dataclasses.replace(
        base,
        use_extractor=base.use_extractor and settings.use_extractor,
        r_max=max(base.r_max, most_parts),
    )
    model = BiPartModel(config)
    if encoder is not None:
        model.load_encoder_checkpoint(encoder)
    model = model.to(torch_device)
    _drop_stale_features(shapes, index_path, model)
    return train_model(
        model, shapes, Path(run_dir), settings, torch_device, resume=resume, quiet=quiet
    )
