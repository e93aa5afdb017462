"""What the adapted head's probabilities of a target go through before they become labels.

The head's probabilities are mixed with a label transfer from the labeled points of the
support shapes that fit the target best (:func:`nearest_shapes`, :func:`knn_probabilities`),
smoothed over each point's neighbours that look alike (:func:`smooth_probabilities`), and
the head is then fitted once more with the target's own confident labels beside the
support's (:func:`self_training_targets`: transduction, the target's parts as they come
out in this very shape). Chosen on the train splits (RESULTS section 31): validation PSB
plus human_seg 77.7 -> 78.8, pm 71.3 -> 72.8.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import kdtree

if TYPE_CHECKING:
    import torch

# the kNN transfer reads the labeled points of this many support shapes, those nearest
# the target (0: all): a cabinet with drawers lends no labels to one with doors
KNN_SHAPES = 3
# smoothing weighs a neighbour by exp(-d² / (EDGE_SCALE² x the median d²)), d its distance
# to the point in the head's input space (0: every neighbour the same): labels stop at
# the seams where what the head reads changes
EDGE_SCALE = 1.0
MAX_EDGE_SCALE = 1e3
# the head is fitted this many more steps with the target's confident labels (0: off)
SELF_TRAINING_STEPS = 50
SELF_TRAINING_CONFIDENCE = 0.7  # a target point joins when its label is this probable
SELF_TRAINING_LR = 0.01
SELF_TRAINING_BATCH = 1024  # points drawn per step


def nearest_shapes(target_points: np.ndarray, shapes: list[np.ndarray], count: int) -> np.ndarray:
    """Indices (min(count, S),) of the ``shapes`` (each (n_s, 3)) nearest the target
    (N, 3), nearest first.

    Nearness is the symmetric Chamfer distance (mean nearest-point distance each way)
    with every cloud standardised per axis (mean 0, standard deviation 1), the frame in
    which the head reads positions: proportions aside, where a shape has its matter.
    """
    from scipy.spatial import KDTree

    from .orientation import standardised

    target = standardised(target_points)
    target_tree = KDTree(target)
    distances = []
    for points in shapes:
        shape = standardised(points)
        to_shape = KDTree(shape).query(target)[0].mean()
        to_target = target_tree.query(shape)[0].mean()
        distances.append(to_shape + to_target)
    return np.argsort(np.asarray(distances), kind="stable")[:count]


def knn_probabilities(
    target_features: torch.Tensor,
    reference: torch.Tensor,
    weights: torch.Tensor,
    k: int,
    chunk: int = 512,
) -> torch.Tensor:
    """Label transfer in the head's input space: each target point takes the mean label
    distribution of its ``k`` nearest labeled support points.

    target_features : (N, C); reference : (P, C) the labeled support points' head inputs
    and weights : (P, R) their Eq. 2 targets (:func:`adapt.labeled_points`)  ->  (N, R),
    rows summing to 1. A point's distribution is its targets normalised. ``chunk``: target
    points per block (512 measured fastest on CPU; the neighbours do not depend on it).
    """
    import torch

    distributions = weights / weights.sum(-1, keepdim=True)  # (P, R)
    k = min(k, len(reference))
    out = []
    for start in range(0, len(target_features), chunk):
        block = target_features[start : start + chunk]  # (c, C)
        # the matrix-product distance is fine here: neighbours in a learned feature space
        # have no exact ties worth keeping, and it is what makes (c, P) cheap
        nearest = torch.cdist(block, reference).topk(k, largest=False).indices  # (c, k)
        out.append(distributions[nearest].mean(1))  # (c, R)
    return torch.cat(out)


def smooth_probabilities(
    points: np.ndarray,
    probs: torch.Tensor,
    rounds: int,
    k: int = 10,
    features: torch.Tensor | None = None,
    edge_scale: float = 0.0,
) -> torch.Tensor:
    """``rounds`` of ``p <- (p + weighted mean of the k nearest neighbours' p) / 2``.

    points : (N, 3); probs : (N, R)  ->  (N, R), rows still summing to 1. A point's
    label then agrees with its surroundings: stray points inside a part take its label.
    The neighbours (the point itself among them) weigh the same, or with ``features``
    (N, C) and ``edge_scale`` > 0, ``exp(-d² / (edge_scale² median d²))`` normalised, d a
    neighbour's distance to the point in ``features`` (the lower median of all N k).
    """
    if rounds <= 0:
        return probs
    return Smoother(points, k, features, edge_scale, probs.device)(probs, rounds)


class Smoother:
    """:func:`smooth_probabilities` with the neighbour lists and their weights computed
    once, for several rounds of smoothing of the same points (N, 3)."""

    def __init__(
        self,
        points: np.ndarray,
        k: int = 10,
        features: torch.Tensor | None = None,
        edge_scale: float = 0.0,
        device=None,
    ) -> None:
        import torch
        from scipy.spatial import KDTree

        k = min(k, len(points))
        tree = KDTree(np.asarray(points, dtype=np.float64))
        _, neighbours = kdtree.query(tree, points, k=k)
        self.neighbours = torch.from_numpy(neighbours.reshape(len(points), k)).to(device)
        self.weights = None  # (N, k, 1), or None: every neighbour the same
        if features is not None and edge_scale > 0:
            squared = ((features[:, None, :] - features[self.neighbours]) ** 2).sum(-1)  # (N, k)
            scale = edge_scale**2 * squared.median().clamp_min(1e-12)
            weights = torch.exp(-squared / scale)
            self.weights = (weights / weights.sum(1, keepdim=True))[..., None]

    def __call__(self, probs: torch.Tensor, rounds: int) -> torch.Tensor:
        """probs (N, R) after ``rounds`` rounds."""
        if self.weights is None:
            for _ in range(rounds):
                probs = 0.5 * probs + 0.5 * probs[self.neighbours].mean(1)  # (N, R)
            return probs
        weights = self.weights.to(probs.dtype)
        for _ in range(rounds):
            probs = 0.5 * probs + 0.5 * (weights * probs[self.neighbours]).sum(1)  # (N, R)
        return probs


def self_training_targets(
    probs: torch.Tensor, support_weight: torch.Tensor, shapes: int, r_max: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The target's confident labels as :func:`~bipart_cli.adapt.labeled_points` gives the
    support's: (rows (P_t,) of the points that join, targets (P_t, r_max), logit mask
    (P_t, r_max)).

    probs : (N, R) the target's probabilities; a point joins with its likeliest part when
    that is at least :data:`SELF_TRAINING_CONFIDENCE` probable. The target's points weigh
    as much in all as one support shape's on average (``support_weight``: the support's
    total weight over its ``shapes`` shapes).
    """
    import torch

    confidence, label = probs.max(-1)
    rows = torch.nonzero(confidence > SELF_TRAINING_CONFIDENCE).flatten()
    targets = torch.zeros(len(rows), r_max, dtype=support_weight.dtype, device=probs.device)
    targets[torch.arange(len(rows)), label[rows]] = 1.0
    targets *= support_weight / max(shapes, 1) / max(len(rows), 1)
    mask = torch.zeros(len(rows), r_max, dtype=support_weight.dtype, device=probs.device)
    mask[:, probs.shape[1] :] = float("-inf")
    return rows, targets, mask
