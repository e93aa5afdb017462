"""Support-set selection (Sec. 3.4): BPS features and random / similarity / part-perfect.

BPS (Prokudin et al. 2019): a fixed, seeded basis of points uniform in a ball;
a shape's feature is, for every basis point, the distance to the nearest point
of the unit-sphere-normalised cloud.

Part-perfect (Eq. 4): with per-point votes ``W = Σ_d Y^d`` (N, R), the ratio of
part r is ``Σ_n W_{n,r} [W_{n,r} = max_k W_{n,k}]``, normalised to sum 1; parts
below 0.01 are dropped. A shape is part-perfect when its number of surviving
parts is the category's maximum.

NumPy and SciPy only: no torch import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .labeling.pseudo_labels import PseudoLabels

STRATEGIES = ("part-perfect", "similarity", "random")
BPS_POINTS = 1024
BPS_RADIUS = 1.5
MIN_PART_RATIO = 0.01


@dataclass
class BPSBasis:
    """A fixed BPS basis: ``points`` (P, 3) float32, uniform in a ball of ``radius``."""

    points: np.ndarray
    seed: int = 0
    radius: float = BPS_RADIUS

    @classmethod
    def generate(
        cls, num_points: int = BPS_POINTS, radius: float = BPS_RADIUS, seed: int = 0
    ) -> BPSBasis:
        """Uniform in the ball: a Gaussian direction times ``r = radius · U^(1/3)``."""
        rng = np.random.default_rng(seed)
        directions = rng.standard_normal((num_points, 3))  # (P, 3)
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        radii = radius * rng.uniform(size=(num_points, 1)) ** (1.0 / 3.0)  # (P, 1)
        return cls((directions * radii).astype(np.float32), seed=seed, radius=radius)

    def save(self, path: str | Path) -> Path:
        """Write ``points`` to a safetensors file (seed and radius in its metadata)."""
        from safetensors.numpy import save_file

        from .io.atomic import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp:
            save_file(
                {"points": np.ascontiguousarray(self.points, dtype=np.float32)},
                str(tmp),
                metadata={"seed": str(self.seed), "radius": repr(float(self.radius))},
            )
        return path

    @classmethod
    def load(cls, path: str | Path) -> BPSBasis:
        from safetensors import safe_open

        from .errors import InvalidInputError

        try:
            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
                points = handle.get_tensor("points")
        except Exception as exc:  # safetensors raises several types for corrupt files
            raise InvalidInputError(f"cannot read BPS basis {path}: {exc}") from exc
        return cls(
            points,
            seed=int(metadata.get("seed", 0)),
            radius=float(metadata.get("radius", BPS_RADIUS)),
        )


def normalize_to_unit_sphere(points: np.ndarray) -> np.ndarray:
    """Subtract the mean, divide by the largest norm: (N, 3) -> (N, 3)."""
    centred = np.asarray(points, dtype=np.float64) - np.mean(points, axis=0)
    scale = np.linalg.norm(centred, axis=1).max()
    return centred / scale if scale > 0 else centred


def bps_features(points: np.ndarray, basis: BPSBasis | np.ndarray) -> np.ndarray:
    """BPS feature of one cloud (N, 3) -> (P,), or of a batch (B, N, 3) -> (B, P), float32.

    Each entry is the distance from a basis point to the nearest point of the
    unit-sphere-normalised cloud (normalised here).
    """
    from scipy.spatial import KDTree

    basis_points = basis.points if isinstance(basis, BPSBasis) else np.asarray(basis)
    points = np.asarray(points)
    if points.ndim == 3:
        return np.stack([bps_features(cloud, basis_points) for cloud in points])
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError(f"points must be (N, 3) or (B, N, 3), got {points.shape}")
    distances, _ = KDTree(normalize_to_unit_sphere(points)).query(basis_points, k=1)
    return distances.astype(np.float32)


def centered_cosine_similarity(
    query: np.ndarray, bank: np.ndarray, mean: np.ndarray | None = None
) -> np.ndarray:
    """Cosine similarity after subtracting the bank's mean feature: (Q, F), (M, F) -> (Q, M).

    BPS distances are all positive and vary little from shape to shape compared
    with their size, so raw cosines all sit near 1 and barely rank anything.
    Subtracting the mean over the index (``mean`` (F,), default the mean of
    ``bank``) keeps only how each shape differs from the typical one, which
    spreads the cosines over [-1, 1].
    """
    query = np.atleast_2d(np.asarray(query, dtype=np.float64))
    bank = np.atleast_2d(np.asarray(bank, dtype=np.float64))
    centre = bank.mean(axis=0) if mean is None else np.asarray(mean, dtype=np.float64)
    q = query - centre
    b = bank - centre
    q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return q @ b.T


def part_ratios(labels: PseudoLabels | np.ndarray) -> np.ndarray:
    """Eq. 4, normalised: per-part share of the points it wins. (R,) float64, sums to 1 (or 0).

    ``labels`` is a :class:`PseudoLabels` or its votes ``W`` (N, R) float.
    Ties credit every tied part; points no box covers add nothing.
    """
    votes = labels.votes() if hasattr(labels, "votes") else labels
    votes = np.asarray(votes, dtype=np.float64)
    if votes.size == 0:
        return np.zeros(votes.shape[-1] if votes.ndim == 2 else 0)
    wins = votes == votes.max(axis=1, keepdims=True)  # (N, R) Iverson bracket
    ratio = (votes * wins).sum(axis=0)  # (R,)
    total = ratio.sum()
    return ratio / total if total > 0 else ratio


def surviving_parts(ratios: np.ndarray, min_ratio: float = MIN_PART_RATIO) -> np.ndarray:
    """Parts whose normalised ratio is at least ``min_ratio``: (R,) -> (R,) bool."""
    return np.asarray(ratios) >= min_ratio


def surviving_part_count(
    labels: PseudoLabels | np.ndarray, min_ratio: float = MIN_PART_RATIO
) -> int:
    """Number of parts of a shape that survive the Eq. 4 filter."""
    return int(surviving_parts(part_ratios(labels), min_ratio).sum())


def is_part_perfect(part_counts: np.ndarray) -> np.ndarray:
    """Shapes with the category's maximum number of surviving parts: (M,) int -> (M,) bool."""
    counts = np.asarray(part_counts)
    return counts == counts.max() if counts.size else np.zeros(0, dtype=bool)


def select_support(
    target_feature: np.ndarray,
    candidate_features: np.ndarray,
    candidate_part_counts: np.ndarray | None = None,
    m: int = 8,
    strategy: str = "part-perfect",
    mean: np.ndarray | None = None,
    exclude: np.ndarray | list[int] | None = None,
    rng: np.random.Generator | int | None = None,
    target_index: int | None = None,
) -> np.ndarray:
    """Pick up to ``m`` support shapes among the candidates.

    Parameters
    ----------
    target_feature : (F,) BPS feature of the target
    candidate_features : (M, F) BPS features of the candidates (one category)
    candidate_part_counts : (M,) surviving part counts (needed for ``part-perfect``)
    strategy : ``part-perfect`` (most similar part-perfect shapes, then the most
        similar others), ``similarity`` (most similar) or ``random`` (seeded)
    mean : (F,) centring for the cosine, default the candidates' mean
    exclude : candidate indices never picked
    rng : Generator or seed for ``random`` (None means seed 0: reproducible)
    target_index : the target's own row among the candidates; it comes first and
        counts towards ``m`` (training includes the target, Sec. 3.3.1)

    Returns
    -------
    indices : (min(m, eligible),) int64 into the candidates, in pick order.
    """
    if strategy not in STRATEGIES:
        from .errors import UsageError

        raise UsageError(f"unknown support strategy {strategy!r}: expected {', '.join(STRATEGIES)}")
    candidate_features = np.atleast_2d(np.asarray(candidate_features))
    eligible = np.ones(len(candidate_features), dtype=bool)
    if exclude is not None:
        eligible[np.asarray(exclude, dtype=np.int64)] = False
    chosen: list[int] = []
    if target_index is not None:
        chosen.append(int(target_index))
        eligible[target_index] = False
    slots = max(0, m - len(chosen))
    pool = np.flatnonzero(eligible)
    if strategy == "random":
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng or 0)
        picks = generator.choice(pool, size=min(slots, len(pool)), replace=False)
    else:
        similarity = centered_cosine_similarity(target_feature, candidate_features, mean)[0]
        by_similarity = pool[np.argsort(-similarity[pool], kind="stable")]  # most similar first
        if strategy == "similarity":
            picks = by_similarity[:slots]
        else:
            picks = _part_perfect_order(by_similarity, candidate_part_counts)[:slots]
    return np.asarray(chosen + [int(i) for i in picks], dtype=np.int64)


def _part_perfect_order(by_similarity: np.ndarray, part_counts: np.ndarray | None) -> np.ndarray:
    """Part-perfect shapes (by similarity), then the others (by similarity)."""
    if part_counts is None:
        raise ValueError("part-perfect selection needs candidate_part_counts")
    counts = np.asarray(part_counts)[by_similarity]
    perfect = is_part_perfect(counts)  # the maximum among the eligible candidates
    return np.concatenate([by_similarity[perfect], by_similarity[~perfect]])
