"""The parts' building blocks: low-poly boxes, rods and frustums, and the Piece they make.

Shapes are Y-up (glTF's convention), about one unit tall, standing on y = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

SECTIONS = 12


@dataclass
class Piece:
    """One part instance: its part name, mesh and material class."""

    part: str
    mesh: trimesh.Trimesh
    material: str


def box(extents, center, rotation=None) -> trimesh.Trimesh:
    mesh = trimesh.creation.box(extents=extents)
    if rotation is not None:
        mesh.apply_transform(rotation)
    mesh.apply_translation(center)
    return mesh


def rod(start, end, radius, sections=SECTIONS) -> trimesh.Trimesh:
    """A cylinder from ``start`` to ``end``."""
    return trimesh.creation.cylinder(radius=radius, segment=[start, end], sections=sections)


def frustum(r_bottom, r_top, y_bottom, y_top, center_xz=(0.0, 0.0), sections=SECTIONS):
    """A truncated cone along y (convex hull of two rings)."""
    angles = np.linspace(0, 2 * np.pi, sections, endpoint=False)
    rings = []
    for radius, y in ((r_bottom, y_bottom), (r_top, y_top)):
        ring = np.stack([radius * np.cos(angles), np.full(sections, y), radius * np.sin(angles)], 1)
        rings.append(ring + [center_xz[0], 0, center_xz[1]])
    return trimesh.convex.convex_hull(np.concatenate(rings))


def rotation(angle, axis) -> np.ndarray:
    return trimesh.transformations.rotation_matrix(angle, axis)


def leg_mesh(rng, style, top, bottom, thickness) -> trimesh.Trimesh:
    """A vertical leg from ``top`` to ``bottom`` (points): box, round or tapered."""
    top, bottom = np.asarray(top, float), np.asarray(bottom, float)
    if style == "box":
        return box([thickness, top[1] - bottom[1], thickness], (top + bottom) / 2)
    if style == "round":
        return rod(bottom, top, thickness / 2)
    return frustum(thickness * 0.3, thickness * 0.55, bottom[1], top[1], (top[0], top[2]))


def uniform(rng, low, high) -> float:
    return float(rng.uniform(low, high))
