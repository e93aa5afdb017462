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
73.5 -> 75.2, PSB plus human_seg 78.8 -> 79.0.
"""

from __future__ import annotations

import numpy as np

from .orientation import standardised

# the share of the labels mixed in from the laid-on shapes (0: off); validation pm 74.2 at
# 0.15, 75.0 at 0.25, 75.3 at 0.35 and 74.8 at 0.5, PSB plus human_seg 79.2 at 0.25, 78.9 at 0.35
REGISTERED_WEIGHT = 0.25
REGISTER_STEPS = 10  # ICP steps; validation pm 74.5 with none, 74.9 with 5, 75.0 with 10
# the fit reads every k-th point of each cloud, at most this many: six numbers per shape
# need few pairs, and the nearest-point queries are the cost (2048: 108 ms a target for
# three shapes, pm 75.0; 512: 26 ms, pm 75.2)
REGISTER_POINTS = 512
REGISTERED_K = 4  # a target point's label is the mean of this many laid-on support points


def register_per_axis(
    source: np.ndarray,
    target: np.ndarray,
    steps: int = REGISTER_STEPS,
    points: int | None = REGISTER_POINTS,
) -> np.ndarray:
    """source (n, 3) laid onto target (m, 3) by a scale and a shift per axis: (n, 3) float64.

    Each step pairs every source point with its nearest target point and every target
    point with its nearest (laid-on) source point, and fits each axis's scale and shift to
    all the pairs by least squares. Pairs both ways: one way alone lets the source shrink
    onto part of the target. The pairs are drawn from every k-th point of each cloud, at
    most ``points`` of it (None: all). Stops early once a step changes no scale or shift
    by 1e-9.
    """
    from scipy.spatial import KDTree

    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    fit_source, fit_target = _every_kth(source, points), _every_kth(target, points)
    target_tree = KDTree(fit_target)
    scale, shift = np.ones(3), np.zeros(3)
    for _ in range(steps):
        laid = fit_source * scale + shift
        to_target = target_tree.query(laid)[1]  # nearest target point of each source point
        to_source = KDTree(laid).query(fit_target)[1]  # and the other way
        x = np.concatenate([fit_source, fit_source[to_source]])  # (p, 3) paired ...
        y = np.concatenate([fit_target[to_target], fit_target])  # ... with these
        new_scale, new_shift = _axis_fit(x, y)
        done = max(np.abs(new_scale - scale).max(), np.abs(new_shift - shift).max()) < 1e-9
        scale, shift = new_scale, new_shift
        if done:
            break
    return source * scale + shift


def _every_kth(points: np.ndarray, most: int | None) -> np.ndarray:
    """Every k-th of points (n, 3), k the smallest that keeps at most ``most`` (None: all)."""
    if most is None or len(points) <= most:
        return points
    return points[:: -(-len(points) // most)]


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
