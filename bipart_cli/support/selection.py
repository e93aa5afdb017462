"""Support-set selection (Sec. 3.4): random, similarity or part-perfect.

Similarity ranks by the centred cosine of BPS features; a shape is part-perfect
when its number of surviving parts (Eq. 4, :mod:`bipart_cli.signatures`) is the
category's maximum.

NumPy and SciPy only: no torch import.
"""

from __future__ import annotations

import numpy as np

from ..signatures import (  # noqa: F401  (re-exported: the support set's vocabulary)
    BPS_POINTS,
    BPS_RADIUS,
    MIN_PART_RATIO,
    BPSBasis,
    bps_features,
    normalize_to_unit_sphere,
    part_ratios,
    surviving_part_count,
    surviving_parts,
)

STRATEGIES = ("part-perfect", "similarity", "random")

# A candidate whose labels name fewer than this share of the requested parts is another kind
# of object (a table for a chair's back, seat and leg), never support: fewer shapes beat
# wrong ones. Half keeps a chair without arms for back, seat, leg and arm.
MIN_NAMED_SHARE = 0.5


def names_enough_parts(named_counts: np.ndarray, requested: int) -> np.ndarray:
    """(M,) bool: the candidates whose labels name at least :data:`MIN_NAMED_SHARE` of the
    ``requested`` parts, from how many of them each names, (M,) int."""
    return np.asarray(named_counts) >= MIN_NAMED_SHARE * requested


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
    return unit_rows(query - centre) @ unit_rows(bank - centre).T


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm, zero rows left zero: (E, F) -> (E, F), the same dtype."""
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def is_part_perfect(part_counts: np.ndarray) -> np.ndarray:
    """Shapes with the category's maximum number of surviving parts: (M,) int -> (M,) bool."""
    counts = np.asarray(part_counts)
    return counts == counts.max() if counts.size else np.zeros(0, dtype=bool)


def select_support(
    target_feature: np.ndarray | None,
    candidate_features: np.ndarray | None,
    candidate_part_counts: np.ndarray | None = None,
    m: int = 8,
    strategy: str = "part-perfect",
    mean: np.ndarray | None = None,
    exclude: np.ndarray | list[int] | None = None,
    rng: np.random.Generator | int | None = None,
    target_index: int | None = None,
    similarity: np.ndarray | None = None,
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
    similarity : (M,) the centred cosines when already known (a bank keeps its
        features normalised); ``target_feature`` and ``candidate_features`` are then unused

    Returns
    -------
    indices : (min(m, eligible),) int64 into the candidates, in pick order; ties
    in similarity go to the earlier candidate.
    """
    if strategy not in STRATEGIES:
        from ..errors import UsageError

        raise UsageError(f"unknown support strategy {strategy!r}: expected {', '.join(STRATEGIES)}")
    if similarity is None and strategy != "random":
        candidate_features = np.atleast_2d(np.asarray(candidate_features))
        similarity = centered_cosine_similarity(target_feature, candidate_features, mean)[0]
    count = len(similarity) if similarity is not None else len(np.atleast_2d(candidate_features))
    eligible = np.ones(count, dtype=bool)
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
        if strategy == "part-perfect" and candidate_part_counts is None:
            raise ValueError("part-perfect selection needs candidate_part_counts")
        picks = np.concatenate(
            [
                most_similar(members, similarity, k)
                for members, k in ranked_pools(pool, candidate_part_counts, slots, strategy)
            ]
        )
    return np.asarray(chosen + [int(i) for i in picks], dtype=np.int64)


def ranked_pools(
    pool: np.ndarray, part_counts: np.ndarray | None, slots: int, strategy: str
) -> list[tuple[np.ndarray, int]]:
    """The pools ``similarity`` and ``part-perfect`` pick the most similar of, in order, each
    with how many it gives: every candidate of ``pool`` (ascending indices); or its
    part-perfect ones (the maximum count among them), then the others for what is left."""
    if strategy == "similarity":
        return [(pool, slots)]
    perfect = is_part_perfect(np.asarray(part_counts)[pool])
    first = pool[perfect]
    return [(first, slots), (pool[~perfect], slots - min(slots, len(first)))]


def rows_that_may_be_picked(
    lower: np.ndarray, upper: np.ndarray, part_counts: np.ndarray, m: int, strategy: str
) -> np.ndarray:
    """(M,) bool: the candidates :func:`select_support` may pick, given only bounds
    ``lower <= similarity <= upper`` (M,) on their similarities.

    A pool that gives k picks keeps every candidate whose upper bound reaches the pool's
    k-th largest lower bound; the others are below k candidates that are surely better,
    so their similarity need not be known. ``random`` reads no similarity at all.
    """
    may = np.zeros(len(lower), dtype=bool)
    if strategy == "random" or m <= 0:
        return may
    for members, k in ranked_pools(np.arange(len(lower)), part_counts, m, strategy):
        if k <= 0 or not len(members):
            continue
        if k >= len(members):
            may[members] = True
            continue
        kth_lower = np.partition(lower[members], len(members) - k)[len(members) - k]
        may[members[upper[members] >= kth_lower]] = True
    return may


def most_similar(pool: np.ndarray, similarity: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` entries of ``pool`` (ascending indices) with the highest ``similarity``, best first.

    The same as ``pool[np.argsort(-similarity[pool], kind="stable")][:k]`` (ties to the
    earlier entry) in O(len(pool)) with ``argpartition`` instead of a full sort.
    """
    scores = similarity[pool]
    if k <= 0 or len(pool) == 0:
        return pool[:0]
    if k < len(pool):
        threshold = scores[np.argpartition(-scores, k - 1)[k - 1]]  # the k-th best score
        above = np.flatnonzero(scores > threshold)
        ties = np.flatnonzero(scores == threshold)[: k - len(above)]
        keep = np.sort(np.concatenate([above, ties]))
    else:
        keep = np.arange(len(pool))
    return pool[keep[np.argsort(-scores[keep], kind="stable")]]
