"""One outer step of Algorithm 1 (Sec. 3.3.1): for every target of a batch, retrieve its
support set (M shapes, the target included), adapt the head for K SGD steps on it (inner loop,
head only), and add the target's loss under the adapted head to the outer loss.

Speed: frozen-encoder features come from the index cache; extractor features are computed
once per shape per outer step and shared by every inner step and every target of the batch
whose support uses the shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..adapt import PackedLabels, inner_loop, pack_labels, shape_losses
from .settings import TrainSettings, TrainShape

if TYPE_CHECKING:
    import torch


def training_supports(
    shapes: list[TrainShape], targets: list[int], settings: TrainSettings, rng: np.random.Generator
) -> dict[int, list[int]]:
    """Support set per target: the target itself plus M-1 shapes of its category (Sec. 3.3.1, 3.4)."""
    from ..support import select_support

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


def fill_encoder_features(model, shapes: list[TrainShape], device, quiet: bool = True) -> int:
    """Compute the frozen-encoder features of shapes the index did not cache, once for the run.

    Returns how many were computed. The encoder never changes during training, so a
    cache miss would otherwise cost an encoder pass per shape per outer step.
    """
    import torch

    from ..runtime import progress

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

    Reference for ``benchmarks/training/train_speed.py`` and for tests of :func:`outer_loss`.
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
