"""How do the labels of support shapes that lie as the target lies reach its points?

Objects of one collection (PartNet-Mobility, ShapeNet, most game packs) share an
orientation, and their parts sit at much the same places once each shape's proportions
are set aside: a door on the front, a lid on top, wheels at the bottom. Each such support
shape is laid onto the target by a per-axis scale and shift (an ICP that fits the
scale and shift of every axis), and each target point takes the mean label of its nearest
laid-on support points. :mod:`~bipart_cli.predict` mixes this in with
``AdaptSettings.registered_weight``, from support shapes that were neither turned to the
target's pose nor laid on their principal axes: a shape that had to be turned is from a
collection of mixed poses, where a per-axis fit carries the pose's error.

Chosen on the train splits (``benchmarks/quality/adapt_options.py``; history 36): pm
73.5 -> 75.0, PSB plus human_seg 78.8 -> 79.2.
"""

from __future__ import annotations

import numpy as np

from .orientation import standardised

# the share of the labels mixed in from the laid-on shapes (0: off); validation pm 74.2 at
# 0.15, 75.0 at 0.25, 75.3 at 0.35 and 74.8 at 0.5, PSB plus human_seg 79.2 at 0.25, 78.9 at 0.35
REGISTERED_WEIGHT = 0.25
REGISTER_STEPS = 10  # ICP steps; validation pm 74.5 with none, 74.9 with 5, 75.0 with 10
REGISTERED_K = 4  # a target point's label is the mean of this many laid-on support points


def register_per_axis(
    source: np.ndarray, target: np.ndarray, steps: int = REGISTER_STEPS
) -> np.ndarray:
    """source (n, 3) laid onto target (m, 3) by a scale and a shift per axis: (n, 3) float64.

    Each step pairs every source point with its nearest target point and every target
    point with its nearest (laid-on) source point, and fits each axis's scale and shift to
    all the pairs by least squares. Pairs both ways: one way alone lets the source shrink
    onto part of the target. Stops early once a step no longer moves any point by 1e-6.
    """
    from scipy.spatial import KDTree

    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    target_tree = KDTree(target)
    laid = source
    for _ in range(steps):
        to_target = target_tree.query(laid)[1]  # (n,) nearest target point of each
        to_source = KDTree(laid).query(target)[1]  # (m,) nearest source point of each
        x = np.concatenate([source, source[to_source]])  # (n + m, 3) paired ...
        y = np.concatenate([target[to_target], target])  # ... with these
        scale, shift = _axis_fit(x, y)
        moved = source * scale + shift
        done = np.abs(moved - laid).max() < 1e-6
        laid = moved
        if done:
            break
    return laid


def _axis_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares scale (3,) and shift (3,) per axis with y ≈ x * scale + shift, x, y (p, 3)."""
    x_mean, y_mean = x.mean(0), y.mean(0)
    spread = ((x - x_mean) ** 2).sum(0)
    scale = ((x - x_mean) * (y - y_mean)).sum(0) / np.maximum(spread, 1e-12)
    return scale, y_mean - scale * x_mean


def registered_transfer(
    target_points: np.ndarray,
    support_points: list[np.ndarray],
    support_targets: list[np.ndarray],
    k: int = REGISTERED_K,
) -> np.ndarray | None:
    """(N, R) float32 label distributions of target_points (N, 3) from support shapes laid
    onto it: each point's mean over its ``k`` nearest labeled support points of their
    targets normalised to sum 1.

    support_points : each (n_s, 3), as posed for the target; support_targets : each
    (n_s, R) Eq. 2 weights per point and part (a row of zeros: an unlabeled point, never
    read). Every cloud is standardised per axis first. None when no point is labeled.
    """
    from scipy.spatial import KDTree

    target = standardised(target_points)
    laid, distributions = [], []
    for points, targets in zip(support_points, support_targets, strict=True):
        targets = np.asarray(targets, dtype=np.float64)
        totals = targets.sum(-1)
        labeled = totals > 0
        if not labeled.any():
            continue
        laid.append(register_per_axis(standardised(points), target)[labeled])
        distributions.append(targets[labeled] / totals[labeled, None])
    if not laid:
        return None
    reference = np.concatenate(laid)  # (P, 3)
    k = min(k, len(reference))
    nearest = KDTree(reference).query(target, k=k)[1].reshape(len(target), k)  # (N, k)
    return np.concatenate(distributions)[nearest].mean(1).astype(np.float32)  # (N, R)
