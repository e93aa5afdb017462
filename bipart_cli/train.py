"""Bi-level training, Algorithm 1 of the paper (Sec. 3.3.1).

For every target of a batch: retrieve its support set (M shapes, the target
included), adapt the head for K SGD steps on the support (inner loop, head
only), then add the target's loss under the adapted head to the outer loss.
Adam updates the extractor and the head on the summed outer loss.

Speed: frozen-encoder features come from the index cache; extractor features
are computed once per shape per outer step and shared by every inner step and
every target of the batch whose support uses the shape.

Distributed: under ``torchrun`` each rank takes a slice of every global batch,
gradients are summed across ranks (the outer loss is a sum), and only rank 0
writes. The result equals one process with the same global batch.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .adapt import PackedLabels, inner_loop, pack_labels, shape_losses
from .errors import TrainingDivergedError, UsageError
from .io.atomic import atomic_path, atomic_write_text

if TYPE_CHECKING:
    import torch

    from .labeling.pseudo_labels import PseudoLabels
    from .model import BiPartConfig


@dataclass
class TrainSettings:
    """Every number of Algorithm 1 is an option; defaults are the paper's (Sec. 4.1)."""

    epochs: int = 10
    batch_size: int = 8
    support_size: int = 8
    inner_steps: int = 5
    inner_lr: float = 0.1
    outer_lr: float = 1e-4
    first_order: bool = False
    bilevel: bool = True
    use_extractor: bool = True
    support_strategy: str = "part-perfect"
    box_reduction: str = "mean"
    categories: list[str] | None = None
    val_fraction: float = 0.1
    val_inner_steps: int = 10
    val_inner_lr: float = 0.3
    seed: int = 0
    max_steps: int | None = None
    checkpoint_activations: bool = True

    def __post_init__(self) -> None:
        from .adapt import check_box_reduction

        check_box_reduction(self.box_reduction)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainShape:
    """One training shape. points (N, 3) float32; encoder_features (N, F) or None;
    pseudo_labels over the N points; gt_labels (N,) int64 or None; bps (F_bps,)."""

    shape_id: str
    category: str
    part_names: list[str]
    points: np.ndarray
    pseudo_labels: PseudoLabels
    bps: np.ndarray
    part_count: int
    encoder_features: np.ndarray | None = None
    gt_labels: np.ndarray | None = None


@dataclass
class EpochReport:
    epoch: int
    mean_loss: float
    val_miou: float | None
    seconds: float
    steps: int = 0
    losses: list[float] = field(default_factory=list)


# --- distributed ------------------------------------------------------------


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): NCCL on GPU, gloo on CPU."""
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size())


def sum_gradients(parameters: list[torch.nn.Parameter], dist_info: DistInfo) -> None:
    """All-reduce (sum) the gradients: the outer loss is a sum over the global batch.

    A rank whose slice of the batch is empty (or that left a parameter unused)
    contributes zeros, so every rank joins the same all-reduces and none waits forever.
    """
    if dist_info.world_size <= 1:
        return
    import torch
    import torch.distributed as dist

    for param in parameters:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)


def broadcast_weights(model, dist_info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers to every rank, so all start from identical weights."""
    if dist_info.world_size <= 1:
        return
    import torch.distributed as dist

    for tensor in model.state_dict().values():
        dist.broadcast(tensor, src=0)


# --- support retrieval in training -------------------------------------------


def training_supports(
    shapes: list[TrainShape], targets: list[int], settings: TrainSettings, rng: np.random.Generator
) -> dict[int, list[int]]:
    """Support set per target: the target itself plus M-1 shapes of its category (Sec. 3.3.1, 3.4)."""
    from .support import select_support

    bps = np.stack([s.bps for s in shapes]).astype(np.float64)
    mean = bps.mean(0)
    by_category: dict[str, list[int]] = {}
    for i, shape in enumerate(shapes):
        by_category.setdefault(shape.category, []).append(i)
    supports = {}
    for target in targets:
        candidates = [j for j in by_category[shapes[target].category] if j != target]
        chosen: list[int] = []
        if candidates and settings.support_size > 1:
            picked = select_support(
                bps[target],
                bps[candidates],
                np.array([shapes[j].part_count for j in candidates]),
                m=min(settings.support_size - 1, len(candidates)),
                strategy=settings.support_strategy,
                mean=mean,
                rng=rng,
            )
            chosen = [candidates[int(k)] for k in picked]
        supports[target] = [target, *chosen]
    return supports


# --- one outer step -------------------------------------------------------------


def fill_encoder_features(model, shapes: list[TrainShape], device, quiet: bool = True) -> int:
    """Compute the frozen-encoder features of shapes the index did not cache, once for the run.

    Returns how many were computed. The encoder never changes during training, so a
    cache miss would otherwise cost an encoder pass per shape per outer step.
    """
    import torch

    from .runtime import progress

    missing = [s for s in shapes if s.encoder_features is None]
    with progress(quiet or not missing) as bar:
        task = bar.add_task("encoding shapes the index did not cache", total=len(missing))
        for shape in missing:
            points = torch.from_numpy(shape.points).float().to(device)[None]
            shape.encoder_features = model.encode(points)[0].cpu().numpy()
            bar.update(task, advance=1)
    return len(missing)


def _encoder_features(model, shapes: list[TrainShape], rows: list[int], device) -> torch.Tensor:
    """(U, N, F) frozen-encoder features: from the index cache, else computed without grad."""
    import torch

    cached = [shapes[r].encoder_features for r in rows]
    if all(c is not None for c in cached):
        return torch.from_numpy(np.stack(cached)).float().to(device)
    points = torch.from_numpy(np.stack([shapes[r].points for r in rows])).float().to(device)
    with torch.no_grad():
        return model.encode(points)


def _extract_features(model, points, encoded, checkpoint_activations: bool) -> torch.Tensor:
    """(U, N, C) extractor features with a graph to θ.

    With ``checkpoint_activations`` only each shape's output is kept; its
    (N, k, C) attention activations are recomputed one shape at a time in the
    backward pass. A batch of 8 targets with M=8 touches up to 64 shapes, about
    0.5 GB of activations each at the paper's sizes.
    """
    import torch
    from torch.utils.checkpoint import checkpoint

    if not (checkpoint_activations and torch.is_grad_enabled()):
        return model.extract(points, encoder_features=encoded)
    per_shape = [
        checkpoint(model.extract, points[i : i + 1], encoded[i : i + 1], use_reentrant=False)
        for i in range(points.shape[0])
    ]
    return torch.cat(per_shape)


def outer_loss(
    model,
    shapes: list[TrainShape],
    batch: list[int],
    supports: dict[int, list[int]],
    settings: TrainSettings,
    device,
) -> torch.Tensor:
    """``L_outer = Σ_i L(f(T_i, π, θ, φ_K^i), C_i)`` for the targets in ``batch`` (Algorithm 1, lines 5-17).

    Extractor features are computed once for every shape the batch touches and
    shared by all inner steps and all targets.
    """
    import torch

    support_ids = (s for t in batch for s in supports[t]) if settings.bilevel else ()
    touched = sorted({*batch, *support_ids})  # without the inner loop, only the targets
    row_of = {shape: row for row, shape in enumerate(touched)}
    points = torch.from_numpy(np.stack([shapes[r].points for r in touched])).float().to(device)
    encoded = _encoder_features(model, shapes, touched, device)
    features = _extract_features(model, points, encoded, settings.checkpoint_activations)
    labels = pack_labels(
        [shapes[r].pseudo_labels for r in touched],
        [len(shapes[r].part_names) for r in touched],
        device=device,
    )
    head_0 = model.head_params()
    total = features.new_zeros(())
    for target in batch:
        head = head_0
        if settings.bilevel:
            rows = torch.tensor([row_of[s] for s in supports[target]], device=device)
            head = inner_loop(
                model,
                features[rows],
                labels.select(rows),
                settings.inner_steps,
                settings.inner_lr,
                head_params=head_0,
                create_graph=not settings.first_order,
                box_reduction=settings.box_reduction,
            )
        row = torch.tensor([row_of[target]], device=device)
        target_labels: PackedLabels = labels.select(row)
        total = (
            total
            + shape_losses(model, head, features[row], target_labels, settings.box_reduction).sum()
        )
    return total


def naive_outer_loss(
    model,
    shapes: list[TrainShape],
    batch: list[int],
    supports: dict[int, list[int]],
    settings: TrainSettings,
    device,
) -> torch.Tensor:
    """The same loss computed the slow way: a full forward (encoder and extractor) at every inner step.

    Reference for ``benchmarks/train_speed.py`` and for tests of :func:`outer_loss`.
    """
    import torch

    def full_features(rows: list[int]):
        points = torch.from_numpy(np.stack([shapes[r].points for r in rows])).float().to(device)
        encoded = model.encode(points)  # frozen: computed without grad
        return _extract_features(model, points, encoded, settings.checkpoint_activations)

    def loss_of(rows: list[int], head):
        labels = pack_labels(
            [shapes[r].pseudo_labels for r in rows],
            [len(shapes[r].part_names) for r in rows],
            device=device,
        )
        return shape_losses(model, head, full_features(rows), labels, settings.box_reduction).sum()

    head_0 = model.head_params()
    total = None
    for target in batch:
        head = dict(head_0)
        if settings.bilevel:
            for _ in range(settings.inner_steps):
                inner = loss_of(supports[target], head)
                grads = torch.autograd.grad(
                    inner, list(head.values()), create_graph=not settings.first_order
                )
                if settings.first_order:
                    grads = [g.detach() for g in grads]
                head = {
                    name: value - settings.inner_lr * g
                    for (name, value), g in zip(head.items(), grads, strict=True)
                }
        loss = loss_of([target], head)
        total = loss if total is None else total + loss
    return total


# --- checkpoints (safetensors + JSON, no pickle) ----------------------------------


CHECKPOINT_FILES = ("model.safetensors", "optimizer.safetensors", "rng_state.safetensors")


def save_checkpoint(run_dir: Path, model, optimizer, state: dict[str, Any]) -> Path:
    """Write ``RUN_DIR/checkpoint``: model (save_pretrained layout), optimizer tensors, trainer state.

    The folder is written beside the old one and swapped in by rename, so a kill
    at any moment leaves the last good checkpoint intact (a kill between the two
    renames is repaired by :func:`recover_checkpoint`). ``trainer_state.json``,
    written last, records the sha256 of the other files. A failed write (a full
    disk) removes the staging folder and raises one OutputWriteError line.
    """
    import shutil

    from safetensors.torch import save_file

    from .errors import OutputWriteError
    from .io import sha256_file
    from .io.atomic import is_write_error, write_error_reason

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
            for name in CHECKPOINT_FILES
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


# --- the loop -------------------------------------------------------------------------


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
    from .adapt import PAPER_INNER_LOOP, AdaptSettings
    from .evaluate import shape_miou
    from .predict import FeatureCache, adapt_and_predict
    from .support import SupportShape

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

    from .runtime import progress

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
        start_epoch, step = _restore(model, optimizer, checkpoint, device, settings)
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
                global_loss = _global_sum(loss, dist_info, device)
                if not math.isfinite(global_loss):
                    raise TrainingDivergedError(
                        _diverged_message(global_loss, epoch, step, run_dir)
                    )
                optimizer.step()
                step += 1
                losses.append(global_loss / len(batch))
                _log(run_dir, dist_info, {"epoch": epoch, "step": step, "loss": losses[-1]})
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
        _log(
            run_dir,
            dist_info,
            {
                "epoch": epoch,
                "step": step,
                "mean_loss": report.mean_loss,
                "val_miou": val,
                "seconds": report.seconds,
            },
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
        f"the last good checkpoint (end of epoch {_checkpoint_epoch(checkpoint)}) is kept in {checkpoint}"
        if (checkpoint / "trainer_state.json").exists()
        else "no checkpoint was written yet"
    )
    return (
        f"training diverged: the outer loss became {loss} at epoch {epoch + 1}, step {step + 1}; "
        f"{kept} (lower --outer-lr or --inner-lr, or check the index for NaN points)"
    )


def _checkpoint_epoch(checkpoint: Path) -> int:
    return int(json.loads((checkpoint / "trainer_state.json").read_text())["epoch"])


def _global_sum(loss, dist_info: DistInfo, device) -> float:
    import torch

    value = torch.tensor(
        float(loss.detach()) if loss is not None else 0.0, dtype=torch.float64, device=device
    )
    if dist_info.world_size > 1:
        import torch.distributed as dist

        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return float(value)


def _log(run_dir: Path, dist_info: DistInfo, record: dict[str, Any]) -> None:
    if not dist_info.is_main:
        return
    with open(run_dir / "log.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")


def _restore(
    model, optimizer, checkpoint: Path, device, settings: TrainSettings | None = None
) -> tuple[int, int]:
    """Load weights, optimizer, RNG and counters from ``checkpoint`` (checksums verified).

    Raises :class:`CheckpointError` for a damaged checkpoint and :class:`UsageError`
    when ``settings`` has another ``--seed`` than the run being resumed.
    """
    from .errors import CheckpointError
    from .io import sha256_file

    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        if not isinstance(state, dict):
            raise ValueError("trainer_state.json is not a JSON object")
        for name, digest in (state.get("sha256") or {}).items():
            if name not in CHECKPOINT_FILES:
                raise ValueError(f"unexpected file {name!r} in trainer_state.json")
            if sha256_file(checkpoint / name) != digest:
                raise ValueError(f"{name} is corrupt (sha256 mismatch)")
        saved_seed = (state.get("settings") or {}).get("seed")
        if settings is not None and saved_seed is not None and saved_seed != settings.seed:
            raise UsageError(
                f"--resume: --seed {settings.seed} differs from the run's seed {saved_seed}; "
                f"resume with --seed {saved_seed} or start a new --out"
            )
        epoch, step = int(state["epoch"]), int(state["step"])
        if epoch < 0 or step < 0:
            raise ValueError("negative epoch or step")
        model.load_weights(checkpoint / "model.safetensors")
        load_optimizer_state(optimizer, checkpoint, state["optimizer_groups"])
        _load_rng_state(checkpoint)
    except (UsageError, CheckpointError):
        raise
    except Exception as exc:  # noqa: BLE001 - json, safetensors and torch raise many types
        from .runtime import scrub_hint

        raise CheckpointError(
            f"cannot resume from {checkpoint}: {type(exc).__name__}: {scrub_hint(str(exc))}"
        ) from exc
    _truncate_log(checkpoint.parent / "log.jsonl", step)
    return epoch, step


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


# --- entry point -------------------------------------------------------------------------


def load_training_shapes(index_path: str) -> list[TrainShape]:
    """Every shape of an index as a :class:`TrainShape` (features from the cache when present)."""
    from .index import ShapeIndex

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


def read_model_config(path: str | Path) -> BiPartConfig:
    """``--model-config``: a JSON object of :class:`BiPartConfig` fields (the others keep defaults)."""
    from .model import BiPartConfig

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
) -> list[EpochReport]:
    """``bipart train``: build the model (``model_config`` or the paper's sizes), then run
    :func:`train_model`. ``r_max`` is raised to the index's largest part count."""
    import dataclasses

    from .model import BiPartConfig, BiPartModel
    from .runtime import resolve_device, seed_everything

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
    config = dataclasses.replace(
        base,
        use_extractor=base.use_extractor and settings.use_extractor,
        r_max=max(base.r_max, most_parts),
    )
    model = BiPartModel(config).to(torch_device)
    return train_model(
        model, shapes, Path(run_dir), settings, torch_device, resume=resume, quiet=quiet
    )
