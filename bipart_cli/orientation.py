"""Orientation handling: up-axis conversion and PCA canonical alignment.

Real assets arrive Y-up (glTF), Z-up (many OBJ exports) or arbitrarily rotated,
and PSB shapes are not consistent within a category. bipart works in a Y-up
frame; ``--up z`` rotates Z-up assets into it and ``--up auto`` aligns every
cloud (target and support alike) to its principal axes.
"""

from __future__ import annotations

import numpy as np

UP_CHOICES = ("y", "z", "auto", "none")

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
    """Rotation (3, 3) into bipart's frame for ``--up y|z|auto|none``; apply as ``points @ R.T``."""
    if up in ("y", "none"):
        return np.eye(3)
    if up == "z":
        return Z_UP_TO_Y_UP.copy()
    if up == "auto":
        return pca_rotation(np.asarray(points, dtype=np.float64))
    raise ValueError(f"unknown up axis {up!r}; expected one of {UP_CHOICES}")


def apply_rotation(points: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """points (n, 3) -> rotated points (n, 3), keeping the dtype."""
    return (points @ rotation.T).astype(points.dtype, copy=False)
