"""Tiny models, random labeled shapes and a tiny index for the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from _tiny import NUM_POINTS, random_labels, tiny_config, unit_cloud

from bipart_cli.index import IndexWriter, ShapeRecord
from bipart_cli.index.shape import default_basis
from bipart_cli.model import BiPartModel
from bipart_cli.runtime import seed_everything
from bipart_cli.support import bps_features
from bipart_cli.train import TrainSettings, TrainShape

CPU = torch.device("cpu")
GREY = np.array([180, 180, 180], dtype=np.uint8)


def make_shapes(count: int, basis_points: np.ndarray, seed: int = 0) -> list[TrainShape]:
    """``count`` random shapes over two categories, 3 or 4 parts each, with ground truth."""
    rng = np.random.default_rng(seed)
    shapes = []
    for i in range(count):
        points = unit_cloud(rng)
        parts = 3 + i % 2
        labels = random_labels(rng, parts=parts)
        shapes.append(
            TrainShape(
                shape_id=f"shape{i:02d}",
                category=("mug", "lamp")[i % 2],
                part_names=labels.part_names,
                points=points,
                pseudo_labels=labels,
                bps=bps_features(points, basis_points),
                part_count=parts,
                gt_labels=rng.integers(0, parts, NUM_POINTS),
            )
        )
    return shapes


def tiny_model(seed: int = 0, **overrides) -> BiPartModel:
    seed_everything(seed)
    return BiPartModel(tiny_config(**overrides))


def small_settings(**overrides) -> TrainSettings:
    values = dict(
        epochs=2,
        batch_size=2,
        support_size=3,
        inner_steps=2,
        inner_lr=0.1,
        outer_lr=1e-3,
        val_fraction=0.0,
        support_strategy="similarity",
        val_inner_steps=3,
    )
    values.update(overrides)
    return TrainSettings(**values)


def trainable(model: BiPartModel) -> dict[str, torch.Tensor]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def loss_and_grads(loss_fn, model, shapes, batch, supports, settings):
    loss = loss_fn(model.train(), shapes, batch, supports, settings, CPU)
    params = trainable(model)
    grads = torch.autograd.grad(loss, list(params.values()))
    return loss.detach(), dict(zip(params, grads, strict=True))


def write_tiny_index(path: Path, basis_points: np.ndarray, count: int = 12) -> None:
    writer = IndexWriter(
        path,
        settings={"source": "synthetic", "labeler": "given"},
        basis=default_basis(),
        encoder=None,
    )
    for shape in make_shapes(count, basis_points, seed=5):
        writer.add(
            ShapeRecord(
                id=shape.shape_id,
                category=shape.category,
                part_names=shape.part_names,
                source=f"{shape.shape_id}.ply",
                sha256=shape.shape_id,
                points=shape.points,
                dense_points=shape.points,
                dense_colors=np.tile(GREY, (NUM_POINTS, 1)),
                bps=shape.bps,
                pseudo_labels=shape.pseudo_labels,
                gt_labels=shape.gt_labels,
                dense_gt_labels=shape.gt_labels,
            )
        )
    writer.commit()
