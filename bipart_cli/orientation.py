"""Orientation handling: up-axis conversion, PCA canonical alignment and pose matching.

Real assets arrive Y-up (glTF), Z-up (many OBJ exports) or arbitrarily rotated,
and PSB shapes are not consistent within a category. bipart works in a Y-up
frame; ``--up z`` rotates Z-up assets into it, ``--up auto`` settles Y or Z per file
(:func:`settle_up`: glTF by its specification, other files by the support's fit) and
``--up pca`` aligns every cloud (target and support alike) to its principal axes.
:func:`matching_rotation` turns one cloud to lie as another does (``--match-pose``).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from . import kdtree

UP_CHOICES = ("auto", "y", "z", "pca", "none")

# Z-up -> Y-up: a -90 degree turn about X maps +Z to +Y.
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def pca_rotation(points: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) taking ``points`` (n, 3) to their principal axes.

    Axes are ordered by decreasing variance and mapped to (y, x, z), so the
    longest extent becomes "up". Each axis sign is fixed by the sign of the
    third moment (skewness) of the projections, which is stable under the
    eigen-solver's arbitrary sign; the last axis is flipped if needed to keep
    a proper rotation (det = +1).
    """
    centred = points - points.mean(0)
    _, vectors = np.linalg.eigh(np.cov(centred.T))  # ascending variance
    axes = vectors[:, ::-1].T.copy()  # (3, 3) rows: largest variance first
    for row in range(3):
        skew = np.mean((centred @ axes[row]) ** 3)
        if skew < 0:
            axes[row] = -axes[row]
    # Rows in output order (x, y, z): second-largest, largest, smallest.
    rotation = axes[[1, 0, 2]]
    if np.linalg.det(rotation) < 0:
        rotation[2] = -rotation[2]
    return rotation


def up_rotation(points: np.ndarray, up: str) -> np.ndarray:
    """Rotation (3, 3) into bipart's frame for ``--up y|z|pca|none``; apply as ``points @ R.T``.

    ``auto`` is settled into ``y`` or ``z`` first (:func:`settle_up`).
    """
    if up in ("y", "none"):
        return np.eye(3)
    if up == "z":
        return Z_UP_TO_Y_UP.copy()
    if up == "pca":
        return pca_rotation(np.asarray(points, dtype=np.float64))
    raise ValueError(f"unknown up axis {up!r}; expected y, z, pca or none")


def apply_rotation(points: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """points (n, 3) -> rotated points (n, 3), keeping the dtype."""
    return (points @ rotation.T).astype(points.dtype, copy=False)


def _axis_rotations() -> np.ndarray:
    """(24, 3, 3): the proper rotations that map the coordinate axes onto themselves."""
    from itertools import permutations, product

    rotations = []
    for order in permutations(range(3)):
        for signs in product((1.0, -1.0), repeat=3):
            rotation = np.zeros((3, 3))
            rotation[np.arange(3), order] = signs
            if np.linalg.det(rotation) > 0:
                rotations.append(rotation)
    return np.stack(rotations)


AXIS_ROTATIONS = _axis_rotations()
# the share of the Chamfer distance a turn must gain to be taken (chosen on the train splits;
# 0.4 gained 0.5 there but lost 1.4 on PSB's test split, so it stays: RESULTS section 28)
POSE_MARGIN = 0.25
# a support set of which at least this share fits the target as given is an aligned collection
ALIGNED_SHARE = 0.5
# the gain a turn must bring within an aligned collection (RESULTS section 29)
ALIGNED_POSE_MARGIN = POSE_MARGIN
# ... and the share a turn must also gain with every cloud standardised per axis
# (:func:`proportion_free_gain`): a tall cabinet laid on its side to fit a low one gains on
# the plain Chamfer distance, not once proportions are set aside (RESULTS section 33)
PROPORTION_FREE_MARGIN = 0.15
# points compared per cloud when matching poses; enough to tell a lying shape from a standing one
MATCH_POINTS = 512


def candidate_rotations(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """(48, 3, 3) rotations that may carry ``source`` (m, 3) onto ``target`` (n, 3).

    The 24 axis rotations (shapes exported with another up or forward axis) and the
    24 that map ``source``'s principal axes onto ``target``'s in every order and sign
    (shapes turned by any angle). The identity comes first.
    """
    return _candidates(pca_rotation(target), pca_rotation(source))


def _candidates(target_frame: np.ndarray, source_frame: np.ndarray) -> np.ndarray:
    """(48, 3, 3) :func:`candidate_rotations` from the two clouds' principal frames (3, 3)."""
    principal = target_frame.T @ AXIS_ROTATIONS @ source_frame  # (24, 3, 3)
    return np.concatenate([AXIS_ROTATIONS, principal])


def matching_rotation(
    target: np.ndarray,
    source: np.ndarray,
    margin: float = POSE_MARGIN,
    proportion_margin: float | None = PROPORTION_FREE_MARGIN,
) -> np.ndarray:
    """The rotation (3, 3) that best lays ``source`` (m, 3) over ``target`` (n, 3).

    The identity is kept unless a rotation beats it by ``margin`` (a fraction of its
    Chamfer distance, :func:`best_turn`): consistently oriented shapes stay as given.
    Apply about the source's centroid: ``(source - c) @ R.T + c``.
    """
    rotation, gain = best_turn(target, source, proportion_margin)
    return rotation if gain > margin else np.eye(3)


def best_turn(
    target: np.ndarray,
    source: np.ndarray,
    proportion_margin: float | None = PROPORTION_FREE_MARGIN,
) -> tuple[np.ndarray, float]:
    """The candidate rotation (3, 3) that best lays ``source`` (m, 3) over ``target`` (n, 3),
    and its gain: the share of the identity's Chamfer distance it saves (0 for the identity).

    Every candidate of :func:`candidate_rotations` is scored by the Chamfer distance
    of :func:`pose_costs`, coarse to fine: all of them on every fourth matched point,
    then the identity and the :data:`SHORTLIST` best on all :data:`MATCH_POINTS`. The
    best turn must also gain more than ``proportion_margin`` with proportions set aside
    (:func:`proportion_free_gain`; None: not asked), or the identity is returned.
    """
    target, source = match_cloud(target), match_cloud(source)
    rotations = _candidates(target.frame, source.frame)
    coarse = _chamfer_costs(target.coarse, source.coarse, rotations)  # (48,)
    shortlist = np.union1d([0], np.argsort(coarse, kind="stable")[:SHORTLIST])  # identity first
    costs = _chamfer_costs(target, source, rotations[shortlist])
    best = int(np.argmin(costs))
    if costs[best] >= costs[0]:  # the identity first among equals, and a perfect fit
        return np.eye(3), 0.0
    rotation = rotations[shortlist[best]]
    if (
        proportion_margin is not None
        and _proportion_free_gain(target, source, rotation) <= proportion_margin
    ):
        return np.eye(3), 0.0  # the turn only traded one proportion for another
    return rotation, float(1.0 - costs[best] / costs[0])


def proportion_free_gain(target: np.ndarray, source: np.ndarray, rotation: np.ndarray) -> float:
    """The share of the Chamfer distance that turning ``source`` (m, 3) by ``rotation``
    (3, 3) saves against ``target`` (n, 3) when every cloud is first standardised per axis
    (mean 0, standard deviation 1 along x, y and z): what the turn gains once the shapes'
    proportions are set aside. Negative when the turn fits worse."""
    return _proportion_free_gain(match_cloud(target), match_cloud(source), rotation)


def _proportion_free_gain(target: MatchCloud, source: MatchCloud, rotation: np.ndarray) -> float:
    target = target.proportion_free
    as_given = _chamfer_costs(target, source.proportion_free, IDENTITY)[0]
    turned = _chamfer_costs(target, source.turned(rotation).proportion_free, IDENTITY)[0]
    return float(1.0 - turned / as_given) if as_given > 0 else 0.0


def matching_rotations(
    target: np.ndarray,
    sources: list[np.ndarray],
    margin: float = POSE_MARGIN,
    aligned_margin: float = ALIGNED_POSE_MARGIN,
    proportion_margin: float | None = PROPORTION_FREE_MARGIN,
) -> np.ndarray:
    """(M, 3, 3) rotations that lay each of ``sources`` (m_i, 3) over ``target`` (n, 3),
    decided as a set; each source's turn as :func:`best_turn` finds it.

    When at least :data:`ALIGNED_SHARE` of the sources already fit the target as given (no
    turn gains ``margin``), the collection and the target share one orientation, and a turn
    must gain ``aligned_margin`` (1: never): a box-like shape's near-ties, and the odd shape
    of an aligned collection, stay as they are. Otherwise each source is turned on its own
    evidence (:func:`matching_rotation`).
    """
    turns = [best_turn(target, source, proportion_margin) for source in sources]
    if not turns:
        return np.zeros((0, 3, 3))
    gains = np.array([gain for _, gain in turns])
    aligned = float(np.mean(gains <= margin)) >= ALIGNED_SHARE
    threshold = max(margin, aligned_margin) if aligned else margin
    return np.stack([rotation if gain > threshold else np.eye(3) for rotation, gain in turns])


# candidates rescored on all matched points: on the train splits of PSB and human_seg the
# pick differs from a full search in 1 pair of 6632 (benchmarks/speed/pose_shortlist.py)
SHORTLIST = 12
COARSE_STRIDE = 4  # every fourth matched point


def pose_costs(target: np.ndarray, source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate rotations (R, 3, 3) and their symmetric Chamfer distances (R,).

    Both clouds are centred and scaled to unit RMS radius first, and each keeps
    :data:`MATCH_POINTS` points (a seeded draw, so the answer is deterministic).
    """
    target, source = match_cloud(target), match_cloud(source)
    rotations = _candidates(target.frame, source.frame)
    return rotations, _chamfer_costs(target, source, rotations)


def chamfer_distance(target: np.ndarray, source: np.ndarray) -> float:
    """The symmetric Chamfer distance of ``source`` (m, 3) to ``target`` (n, 3) as they lie,
    both centred and at unit RMS radius, on :data:`MATCH_POINTS` each: the cost
    :func:`best_turn` gives a pose: 0 for the same shape; on the dev sets' train splits, 0.15
    to 0.39 to the nearest shapes of its category, 0.32 to 0.61 to another's (5th to 95th
    percentiles, ``benchmarks/quality/support_fit.py``)."""
    return float(_chamfer_costs(match_cloud(target), match_cloud(source), IDENTITY)[0])


def _chamfer_costs(target: MatchCloud, source: MatchCloud, rotations: np.ndarray) -> np.ndarray:
    """(R,) symmetric Chamfer distances of ``source`` turned by each of ``rotations``
    (R, 3, 3) to ``target``: those ``target`` scored before are read back, the others scored
    now and kept (:attr:`MatchCloud.costs`).

    A cost is the same number whichever batch scores it (one point's nearest distance
    does not depend on the other queries), so reading it back changes nothing: the fit's
    distance at the identity is the one pose matching scored, and ``--up auto``'s Y
    reading scores the identity and the quarter turns pose matching needs again.
    """
    scored = target.costs.get(source.key)
    if scored is None:
        scored = target.costs[source.key] = {}
        if len(target.costs) > MATCH_CLOUDS_KEPT:  # bounded, as the clouds are
            del target.costs[next(iter(target.costs))]
    keys = [rotation.tobytes() for rotation in rotations]
    first = {}  # rotation bytes -> index of its first row, for the ones not scored yet
    for index, key in enumerate(keys):
        if key not in scored:
            first.setdefault(key, index)
    if first:
        todo = rotations[list(first.values())]  # (T, 3, 3)
        # |R s - t| = |s - R^T t|: two trees and two batched queries score every candidate
        turned_source = np.einsum("rij,nj->rni", todo, source.points)  # (T, m, 3)
        turned_target = np.einsum("rji,nj->rni", todo, target.points)  # (T, n, 3)
        to_target, _ = kdtree.query(target.tree, turned_source.reshape(-1, 3))
        to_source, _ = kdtree.query(source.tree, turned_target.reshape(-1, 3))
        count = len(todo)
        costs = to_target.reshape(count, -1).mean(1) + to_source.reshape(count, -1).mean(1)
        scored.update(zip(first, costs.tolist(), strict=True))
    return np.array([scored[key] for key in keys])


IDENTITY = np.eye(3)[None]  # (1, 3, 3)
# prepared clouds kept per process: a target, its up readings and a support set of 8 shapes
# as given and turned take about 20
MATCH_CLOUDS_KEPT = 64
_MATCH_CLOUDS: OrderedDict[bytes, MatchCloud] = OrderedDict()


class MatchCloud:
    """A cloud as the Chamfer costs read it (:func:`match_cloud`), with what is derived from
    it made once: its KD-tree, principal frame, every :data:`COARSE_STRIDE`-th point, the
    cloud turned to each up axis, and the costs already scored against other clouds.

    points : (m, 3) float64, at most :data:`MATCH_POINTS`, centred, at unit RMS radius;
    key : bytes naming the points it was made from.
    """

    def __init__(self, points: np.ndarray, key: bytes) -> None:
        self.points = points
        self.key = key
        # source key -> rotation bytes -> symmetric Chamfer distance (:func:`_chamfer_costs`)
        self.costs: dict[bytes, dict[bytes, float]] = {}
        self._turned: dict[bytes, MatchCloud] = {}

    @cached_property
    def tree(self):
        """scipy's ``cKDTree`` of :attr:`points`."""
        from scipy.spatial import cKDTree

        return cKDTree(self.points)

    @cached_property
    def frame(self) -> np.ndarray:
        """(3, 3) :func:`pca_rotation` of :attr:`points`."""
        return pca_rotation(self.points)

    @cached_property
    def coarse(self) -> MatchCloud:
        """Every :data:`COARSE_STRIDE`-th point, for the coarse pass of :func:`best_turn`."""
        return MatchCloud(self.points[::COARSE_STRIDE], self.key + b" coarse")

    @cached_property
    def proportion_free(self) -> MatchCloud:
        """The cloud standardised per axis (:func:`standardised`): its shape with its
        proportions set aside."""
        return MatchCloud(standardised(self.points), self.key + b" proportion-free")

    def turned(self, rotation: np.ndarray) -> MatchCloud:
        """The cloud turned by ``rotation`` (3, 3), itself for the identity (no
        arithmetic, so the costs it scored are shared)."""
        if np.array_equal(rotation, np.eye(3)):
            return self
        key = rotation.tobytes()
        if key not in self._turned:
            self._turned[key] = MatchCloud(self.points @ rotation.T, self.key + b" turned " + key)
        return self._turned[key]


def match_cloud(points: np.ndarray) -> MatchCloud:
    """The :class:`MatchCloud` of ``points`` (n, 3): made once per process for the same
    points (the same dtype, shape and bytes), so ``--up auto``, pose matching and the support
    fit centre, scale and build trees for a cloud once."""
    array = np.ascontiguousarray(points)
    digest = hashlib.blake2b(f"{array.dtype.str} {array.shape}".encode(), digest_size=20)
    digest.update(array)
    key = digest.digest()
    cloud = _MATCH_CLOUDS.get(key)
    if cloud is None:
        cloud = _MATCH_CLOUDS[key] = MatchCloud(_unit_cloud(array), key)
        if len(_MATCH_CLOUDS) > MATCH_CLOUDS_KEPT:
            _MATCH_CLOUDS.popitem(last=False)
    _MATCH_CLOUDS.move_to_end(key)
    return cloud


def clear_match_clouds() -> None:
    """Forget every kept :class:`MatchCloud` (a measurement from scratch)."""
    _MATCH_CLOUDS.clear()


def standardised(points: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """points (n, 3) with mean 0 and standard deviation 1 along each axis, float64."""
    points = np.asarray(points, dtype=np.float64)
    return (points - points.mean(0)) / (points.std(0) + eps)


def _unit_cloud(points: np.ndarray) -> np.ndarray:
    """MATCH_POINTS of ``points`` (n, 3), centred, at unit RMS radius, float64."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) > MATCH_POINTS:
        draw = np.random.default_rng(0).choice(len(points), MATCH_POINTS, replace=False)
        points = points[np.sort(draw)]
    centred = points - points.mean(0)
    radius = np.sqrt((centred**2).sum(1).mean())
    return centred / max(radius, 1e-12)


# The up axis a file is read with: its format's specification, else the one the support fits.

# the up axes a file may be written with, as rotations into bipart's Y-up frame
UP_AXES = {"y": np.eye(3), "z": Z_UP_TO_Y_UP}
# formats whose specification fixes the up axis (glTF 2.0: "glTF uses a right-handed
# coordinate system ... +Y is up"); OBJ, STL, PLY, OFF and point clouds have none
SPECIFIED_UP = {"glb": "y", "gltf": "y"}
# the share of the Y reading's support distance the Z reading must save for ``--up auto`` to
# read a file of no specified axis Z-up (Kenney furniture, 45 assets and their Z-up copies,
# support of their category or chairs: no Y-up original saves over 14% read Z-up)
UP_MARGIN = 0.15
# the share another axis must save for a warning that the axis used is likely wrong
UP_WARNING_MARGIN = POSE_MARGIN
# the quarter turns about the vertical: a support shape may face any way, but stands as it stands
VERTICAL_TURNS = AXIS_ROTATIONS[np.isclose(AXIS_ROTATIONS[:, 1, 1], 1.0)]  # (4, 3, 3)


def up_distances(points: np.ndarray, supports: list[np.ndarray]) -> dict[str, float]:
    """How far the support lies from ``points`` (n, 3) read with each axis of :data:`UP_AXES`.

    Per support shape (m_i, 3), the symmetric Chamfer distance of the unit-RMS clouds at
    its best quarter turn about the vertical; the median over the shapes, so a shape of
    the support in another pose does not sway it. Empty without support.
    """
    if not supports:
        return {}
    target = match_cloud(points)  # centring and scaling commute with the turns below
    shapes = [match_cloud(shape) for shape in supports]
    return {
        axis: float(
            np.median(
                [_chamfer_costs(target.turned(rotation), s, VERTICAL_TURNS).min() for s in shapes]
            )
        )
        for axis, rotation in UP_AXES.items()
    }


@dataclass(frozen=True)
class UpReading:
    """The up axis a target is read with (``y``, ``z``, ``pca`` or ``none``), why, the
    support's distance per axis (:func:`up_distances`) and a warning when another axis
    fits much better."""

    axis: str
    reason: str
    distances: dict[str, float] = field(default_factory=dict)
    warning: str | None = None


def settle_up(
    points: np.ndarray, up: str, supports: list[np.ndarray], file_format: str | None = None
) -> UpReading:
    """The up axis to read ``points`` (n, 3) with, for ``--up`` ``up``.

    ``auto``: the axis of the file format's specification (:data:`SPECIFIED_UP`), else Z
    when the support (clouds (m_i, 3) as they are stored) lies :data:`UP_MARGIN` closer to
    the target read Z-up than Y-up, else Y. ``y`` and ``z`` are taken as asked; with them and
    with a specified axis, a warning says when the other axis fits :data:`UP_WARNING_MARGIN`
    better. ``pca`` and ``none`` are not measured.
    """
    if up in ("pca", "none"):
        return UpReading(up, "as asked")
    if up not in UP_AXES and up != "auto":
        raise ValueError(f"unknown up axis {up!r}; expected one of {UP_CHOICES}")
    distances = up_distances(points, supports)
    specified = SPECIFIED_UP.get(file_format or "")
    if up != "auto":
        axis, reason = up, "as asked"
    elif specified:
        axis, reason = specified, f"as the {str(file_format).upper()} format specifies"
    elif distances and _saving(distances, "z", "y") > UP_MARGIN:
        axis = "z"
        reason = f"the support lies {_saving(distances, 'z', 'y'):.0%} closer than read Y-up"
    else:
        axis, reason = "y", "bipart's frame; the support fits no other axis clearly better"
    return UpReading(axis, reason, distances, _up_warning(axis, reason, distances))


def _saving(distances: dict[str, float], axis: str, than: str) -> float:
    """The share of ``than``'s support distance that reading ``axis`` up saves."""
    return 1.0 - distances[axis] / max(distances[than], 1e-12)


def _up_warning(axis: str, reason: str, distances: dict[str, float]) -> str | None:
    """One line when another axis fits :data:`UP_WARNING_MARGIN` better than ``axis``."""
    if not distances:
        return None
    other = next(name for name in UP_AXES if name != axis)
    saving = _saving(distances, other, axis)
    if saving <= UP_WARNING_MARGIN:
        return None
    return (
        f"read {axis.upper()}-up ({reason}), but the support lies {saving:.0%} closer to it "
        f"read {other.upper()}-up: if the file is {other.upper()}-up, pass --up {other}"
    )
