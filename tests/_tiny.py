"""Tiny models and synthetic shapes shared by the adaptation and training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bipart_cli.labeling.pseudo_labels import PseudoLabels
from bipart_cli.model import BiPartConfig

NUM_POINTS = 256
# the tests' root folder, for subprocesses that import these helpers
TESTS = Path(__file__).resolve().parent


def tiny_config(**overrides) -> BiPartConfig:
    settings = dict(
        group_sizes=[64, 32, 8],
        group_k=[8, 4, 4],
        encoder_dims=[24, 48, 96],
        encoder_depths=[1, 1, 1],
        encoder_heads=6,
        extractor_dim=32,
        head_hidden=32,
        r_max=6,
        num_points=NUM_POINTS,
    )
    settings.update(overrides)
    return BiPartConfig(**settings)


def small_config(**overrides) -> BiPartConfig:
    """A small model for the encoder, model and checkpoint tests (256 points)."""
    settings = dict(
        group_sizes=[64, 32, 8],
        group_k=[8, 4, 4],
        encoder_dims=[12, 24, 48],
        encoder_depths=[1, 2, 1],
        encoder_heads=2,
        extractor_dim=16,
        head_hidden=16,
        r_max=5,
        num_points=NUM_POINTS,
    )
    settings.update(overrides)
    return BiPartConfig(**settings)


def unit_cloud_tensor(num_points: int, seed: int = 0, batch: int = 1):
    """Seeded Gaussian clouds scaled into the unit sphere, (B, N, 3) torch float32."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    points = torch.randn(batch, num_points, 3, generator=generator)
    return points / points.norm(dim=-1, keepdim=True).amax(dim=1, keepdim=True)


def unit_cloud(rng: np.random.Generator, num_points: int = NUM_POINTS) -> np.ndarray:
    points = rng.normal(size=(num_points, 3)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1).max()


def random_labels(
    rng: np.random.Generator, num_points: int = NUM_POINTS, parts: int = 3, boxes: int = 5
) -> PseudoLabels:
    return PseudoLabels(
        masks=rng.random((boxes, num_points)) < 0.3,
        part_index=rng.integers(0, parts, boxes),
        scores=rng.uniform(0.5, 1.0, boxes),
        part_names=[f"part{i}" for i in range(parts)],
    )


def half_space_labels(points: np.ndarray) -> tuple[np.ndarray, PseudoLabels]:
    """Ground truth ``x > 0 -> part 1`` and one full-mask box per part (the `given` form)."""
    truth = (points[:, 0] > 0).astype(np.int64)
    labels = PseudoLabels(
        masks=np.stack([truth == 0, truth == 1]),
        part_index=np.array([0, 1]),
        scores=np.ones(2),
        part_names=["left", "right"],
    )
    return truth, labels


def copy_and_flipped_copies(rng, target: np.ndarray, flipped: int) -> list:
    """Support shapes: the target's own points labeled x > 0 (:func:`half_space_labels`),
    then ``flipped`` noisy copies labeled the other way round."""
    from bipart_cli.support import SupportShape

    shapes = [SupportShape("same", target.copy(), half_space_labels(target)[1])]
    for i in range(flipped):
        points = (target + rng.normal(scale=0.03, size=target.shape)).astype(np.float32)
        right = half_space_labels(points)[0] == 1
        flipped_labels = PseudoLabels(
            masks=np.stack([right, ~right]),
            part_index=np.array([0, 1]),
            scores=np.ones(2),
            part_names=["left", "right"],
        )
        shapes.append(SupportShape(f"flipped{i}", points, flipped_labels))
    return shapes


def agreement_with_half_space(model, target: np.ndarray, support: list, **fields) -> float:
    """Share of the target's points (N, 3) that ``adapt_and_predict`` labels as
    :func:`half_space_labels` does, with smoothing, the refit, presence, pose matching and
    descriptors off unless ``fields`` (AdaptSettings fields) say otherwise."""
    import torch

    from bipart_cli.adapt import AdaptSettings
    from bipart_cli.predict import FeatureCache, adapt_and_predict

    plain = dict(
        smooth=0, self_training_steps=0, presence=0.0, match_pose=False, descriptors="none"
    )
    settings = AdaptSettings(**{**plain, **fields})
    cache = FeatureCache(model, torch.device("cpu"), settings)
    predicted, _ = adapt_and_predict(model, target, target, None, support, 2, settings, cache)
    return float((predicted == half_space_labels(target)[0]).mean())
