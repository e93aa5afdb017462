"""How well does the support fit the target, and how far can its labels be trusted?

Few-shot labels are only as good as the support is like the target: a table segmented from
chairs comes back as back, seat and leg, and the head's probabilities stay high all the same.
Two cheap measures (:class:`SupportFit`, :func:`measure_fit`) say when the support does not fit:

- ``distance``: the symmetric Chamfer distance of the target to its support shapes, each as
  the head sees it (turned to lie as the target does), both clouds centred and at unit RMS
  radius (:func:`~bipart_cli.orientation.chamfer_distance`), averaged over the
  :data:`NEAREST` nearest shapes;
- ``agreement``: the share of the target's points whose label is the one a plain
  nearest-point transfer from those posed support shapes gives (:func:`transferred_labels`).

The support fits poorly when ``distance`` is above :data:`DISTANCE_LIMIT` or ``agreement``
below :data:`AGREEMENT_LIMIT`: then one warning says so and names the ways out. From the
two measures a logistic function gives ``probability``, how likely the support is of the
target's kind; a point's score is its label's probability times it (:func:`calibrated_scores`).
On the train splits a point's probability is calibrated when the support is of the target's
kind, and far too high when it is not; the product is near the share of right points in
both cases. The limits and the logistic's weights were chosen on the train splits of the dev
sets, support from the target's own category against support from another one, never a
test split (``benchmarks/quality/support_fit.py``).

Light module: numpy and scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import kdtree

if TYPE_CHECKING:
    from .support import SupportShape

# the support's distance is the mean over this many nearest shapes: one close shape among
# unlike ones is not a fitting support
NEAREST = 3
# chosen on the train splits (benchmarks/quality/support_fit.py): they warn on 84% of the runs
# with another category's support, 53% of own-category runs under 60 mIoU, 5% of the others
DISTANCE_LIMIT = 0.40
AGREEMENT_LIMIT = 0.65
# logit of P(the support is of the target's kind) = a * distance + b * agreement + c, fitted
# on the same runs (as many from each category's own support as from another's)
FIT_LOGIT = (-25.81, 2.85, 6.96)
# target points compared with the transfer: enough for a share to within a percent
AGREEMENT_POINTS = 4096


@dataclass
class SupportFit:
    """How well the support fits one target.

    distances : one Chamfer distance per support shape, in support order; agreement : the
    share of target points whose label the nearest-point transfer gives.
    """

    distances: list[float]
    agreement: float

    @property
    def distance(self) -> float:
        """The mean Chamfer distance of the :data:`NEAREST` nearest support shapes."""
        return float(np.mean(sorted(self.distances)[:NEAREST]))

    @property
    def poor(self) -> bool:
        """Whether the support fits the target poorly (:data:`DISTANCE_LIMIT`,
        :data:`AGREEMENT_LIMIT`)."""
        return self.distance > DISTANCE_LIMIT or self.agreement < AGREEMENT_LIMIT

    @property
    def probability(self) -> float:
        """How likely the support is of the target's kind (:func:`fit_probability`)."""
        return fit_probability(self.distance, self.agreement)

    def to_json(self, support_ids: list[str]) -> dict[str, Any]:
        """The sidecar's ``support_fit``: the measures, their limits and each shape's distance."""
        return {
            "distance": round(self.distance, 4),
            "distance_limit": DISTANCE_LIMIT,
            "agreement": round(self.agreement, 4),
            "agreement_limit": AGREEMENT_LIMIT,
            "poor": self.poor,
            "probability": round(self.probability, 4),
            "shapes": [
                {"id": shape_id, "distance": round(distance, 4)}
                for shape_id, distance in zip(support_ids, self.distances, strict=True)
            ],
        }

    def warning(self, source: str) -> str | None:
        """One line naming the ways out when the support fits poorly, else None; ``source``
        says where the support came from (``the shapes in DIR``)."""
        if not self.poor:
            return None
        reasons = []
        if self.distance > DISTANCE_LIMIT:
            nearest = min(NEAREST, len(self.distances))
            reasons.append(
                f"its nearest {nearest} shapes are at Chamfer distance {self.distance:.2f} "
                f"(poor above {DISTANCE_LIMIT:.2f})"
            )
        if self.agreement < AGREEMENT_LIMIT:
            reasons.append(
                f"a nearest-point transfer from it agrees with {self.agreement:.0%} of the "
                f"labels (poor below {AGREEMENT_LIMIT:.0%})"
            )
        return (
            f"the support ({source}) fits this shape poorly: {' and '.join(reasons)}, so the "
            "labels may be wrong; give labeled shapes like this one (--support DIR), another "
            "category of `bipart examples DIR --categories ...`, or an --index that holds such shapes"
        )


def fit_probability(distance: float, agreement: float) -> float:
    """P(the support is of the target's kind), in (0, 1): the logistic :data:`FIT_LOGIT`."""
    a, b, c = FIT_LOGIT
    return float(1.0 / (1.0 + np.exp(-(a * distance + b * agreement + c))))


def measure_fit(
    network_points: np.ndarray,
    dense_points: np.ndarray,
    dense_labels: np.ndarray,
    support: list[SupportShape],
) -> SupportFit | None:
    """How well ``support``, as the head saw it, fits the target; None without support.

    network_points : (N, 3) the target as the support was posed to it; dense_points (n, 3)
    and dense_labels (n,) the labels given, in the same frame.
    """
    if not support:
        return None
    distances = support_distances(network_points, support)
    return SupportFit(distances, label_agreement(dense_points, dense_labels, support))


def calibrated_scores(scores: np.ndarray, fit: SupportFit | None) -> np.ndarray:
    """scores (n,) float32, each point's label probability -> (n,) float32, times
    ``fit.probability`` (unchanged without a support set: nothing to measure it by)."""
    if fit is None:
        return scores
    return (np.asarray(scores, dtype=np.float32) * np.float32(fit.probability)).astype(np.float32)


def support_distances(target_points: np.ndarray, support: list[SupportShape]) -> list[float]:
    """The Chamfer distance of target_points (N, 3) to each support shape as it lies (a shape
    pose matching left as it lay was scored there: the cost is read back, not recomputed)."""
    from .orientation import chamfer_distance

    return [chamfer_distance(target_points, shape.points) for shape in support]


def transferred_labels(points: np.ndarray, support: list[SupportShape]) -> np.ndarray:
    """points (n, 3) -> (n,) int64: the label of the nearest labeled support point, every
    cloud centred and at unit RMS radius (-1 everywhere when no support point is labeled).

    A support point's label is its pseudo labels' vote (of ground truth: its part).
    """
    from scipy.spatial import cKDTree

    clouds, labels = [], []
    for shape in support:
        shape_labels = shape.pseudo_labels.teacher_labels()
        labeled = shape_labels >= 0
        clouds.append(_unit_rms(shape.points)[labeled])
        labels.append(shape_labels[labeled])
    if not sum(len(cloud) for cloud in clouds):
        return np.full(len(points), -1, dtype=np.int64)
    _, nearest = kdtree.query(cKDTree(np.concatenate(clouds)), _unit_rms(points))
    return np.concatenate(labels)[nearest].astype(np.int64)


def label_agreement(points: np.ndarray, labels: np.ndarray, support: list[SupportShape]) -> float:
    """The share of points (n, 3) whose labels (n,) the support's nearest-point transfer
    gives, on every k-th point (at most :data:`AGREEMENT_POINTS`)."""
    step = max(1, len(points) // AGREEMENT_POINTS)
    transferred = transferred_labels(np.asarray(points)[::step], support)
    return float(np.mean(transferred == np.asarray(labels)[::step]))


def _unit_rms(points: np.ndarray) -> np.ndarray:
    """points (n, 3) centred and at unit RMS radius, float64."""
    centred = np.asarray(points, dtype=np.float64) - np.mean(points, axis=0)
    return centred / max(float(np.sqrt((centred**2).sum(1).mean())), 1e-12)
