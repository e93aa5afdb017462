"""How is a posed creature put together, whatever its kind? A skeleton of joints, its
segments skinned, and the generator's frame it is fitted to.

Each builder (:mod:`.people`, :mod:`.animals`, :mod:`.sea_creatures`) draws proportions and
a pose (joint angles within plausible ranges: limbs bent, arms raised or lowered, head
turned, wings spread or folded, fingers and tentacles curled) from ``rng``, walks a small
skeleton of joints (:func:`chain`, :func:`curled`), and skins each segment with a capsule
(:func:`limb`), an ellipsoid, a tube or a thin hull (:func:`thin_hull`). :func:`fit` then
puts the shape in the generator's frame: Y-up, its largest extent one unit, its lowest point
on y = 0, centred over the origin.
"""

from __future__ import annotations

import numpy as np
import trimesh

from .primitives import Piece, capsule, turn

X, Y, Z = np.eye(3)
DOWN = -Y


def unit(vector) -> np.ndarray:
    """``vector`` (3,) scaled to length one."""
    vector = np.asarray(vector, float)
    return vector / np.linalg.norm(vector)


def frame(forward, up) -> np.ndarray:
    """The (3, 3) rotation whose columns are ``forward``, the part of ``up`` across it,
    and their cross product: axes for an ellipsoid or a hull along a limb."""
    forward = unit(forward)
    up = unit(np.asarray(up, float) - (np.asarray(up, float) @ forward) * forward)
    return np.stack([forward, up, np.cross(forward, up)], 1)


def chain(root, directions, lengths) -> np.ndarray:
    """Joint positions (k + 1, 3) from ``root`` (3,) along ``directions`` (k, 3), each
    segment ``lengths`` (k,) long."""
    steps = np.asarray(lengths, float)[:, None] * np.asarray(directions, float)
    return np.concatenate([[root], np.asarray(root, float) + np.cumsum(steps, axis=0)])


def limb(joints, radii, count=(8, 6)) -> trimesh.Trimesh:
    """One capsule per segment of ``joints`` (k + 1, 3), of ``radii`` (k,)."""
    return trimesh.util.concatenate(
        [capsule(a, b, r, count) for a, b, r in zip(joints[:-1], joints[1:], radii, strict=True)]
    )


def curled(root, direction, axis, curls, length, swirl=0.0) -> np.ndarray:
    """A curling path (k + 1, 3) of k = len(curls) equal segments, ``length`` in all.

    Each segment turns by ``curls[i]`` radians about ``axis`` (3,) from the one before,
    starting along ``direction`` (3,); ``swirl`` also turns direction and axis about y
    at every joint, so the curl leaves its plane (a tentacle's corkscrew).
    """
    direction, axis = unit(direction), unit(axis)
    directions = []
    for curl in curls:
        direction = turn(swirl, Y) @ turn(curl, axis) @ direction
        axis = turn(swirl, Y) @ axis
        directions.append(direction)
    return chain(root, directions, np.full(len(curls), length / len(curls)))


def thin_hull(points_2d, axes, origin, thickness) -> trimesh.Trimesh:
    """A flat plate: the convex hull of ``points_2d`` (n, 2) in the plane of the first two
    columns of ``axes`` (3, 3), ``thickness`` thick along the third, moved to ``origin``."""
    flat = np.asarray(points_2d, float) @ np.asarray(axes)[:, :2].T
    across = thickness / 2 * np.asarray(axes)[:, 2]
    return trimesh.convex.convex_hull(np.concatenate([flat + across, flat - across]) + origin)


def fit(pieces: list[Piece], size: float = 1.0) -> list[Piece]:
    """Scale ``pieces`` in place so their largest extent is ``size``, their lowest point
    on y = 0 and their x-z box centred on the origin; returns them."""
    bounds = np.array([piece.mesh.bounds for piece in pieces])  # (n, 2, 3)
    low, high = bounds[:, 0].min(axis=0), bounds[:, 1].max(axis=0)
    shift = -np.array([(low[0] + high[0]) / 2, low[1], (low[2] + high[2]) / 2])
    scale = size / float((high - low).max())
    for piece in pieces:
        piece.mesh.apply_translation(shift)
        piece.mesh.apply_scale(scale)
    return pieces
