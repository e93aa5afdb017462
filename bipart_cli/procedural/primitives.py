"""The parts' building blocks: low-poly boxes (square or rounded), rods, frustums, lathed
shells, capsules, ellipsoids, cones and tubes, and the Piece they make.

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


def rounded_box(extents, center, radius, axis=1, sections=SECTIONS) -> trimesh.Trimesh:
    """A box whose four edges along ``axis`` (0, 1 or 2) are rounded to ``radius`` (clipped
    to half the two other extents, where the slab is a disc or a stadium)."""
    extents = np.asarray(extents, float)
    a, b = (i for i in range(3) if i != axis)
    radius = min(radius, extents[a] / 2, extents[b] / 2)
    if radius < 1e-3:
        return box(extents, center)
    angles = np.linspace(0, 2 * np.pi, sections, endpoint=False)
    ring = np.zeros((sections, 3))
    ring[:, a], ring[:, b] = radius * np.cos(angles), radius * np.sin(angles)
    points = []
    for sa in (-1, 1):
        for sb in (-1, 1):
            for s_axis in (-1, 1):
                corner = np.zeros(3)
                corner[a] = sa * (extents[a] / 2 - radius)
                corner[b] = sb * (extents[b] / 2 - radius)
                corner[axis] = s_axis * extents[axis] / 2
                points.append(ring + corner)
    mesh = trimesh.convex.convex_hull(np.concatenate(points))
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


def lathe(profile, sections=SECTIONS) -> trimesh.Trimesh:
    """The closed solid swept by a closed ``profile`` of (radius, y) points (k, 2) turning
    about the y axis: a lampshade's open shell, say."""
    profile = np.asarray(profile, float)
    mesh = trimesh.creation.revolve(np.vstack([profile, profile[:1]]), sections=sections)
    mesh.apply_transform(rotation(-np.pi / 2, [1, 0, 0]))  # revolve's z axis -> y
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def rotation(angle, axis) -> np.ndarray:
    return trimesh.transformations.rotation_matrix(angle, axis)


def turn(angle, axis) -> np.ndarray:
    """The (3, 3) rotation by ``angle`` radians about ``axis`` (3,), right-handed."""
    return rotation(angle, axis)[:3, :3]


def _placed(mesh, direction, origin) -> trimesh.Trimesh:
    """``mesh``, built along +z, turned onto ``direction`` (3,) and moved to ``origin`` (3,)."""
    mesh.apply_transform(trimesh.geometry.align_vectors([0, 0, 1], direction))
    mesh.apply_translation(origin)
    return mesh


def capsule(start, end, radius, count=(8, 6)) -> trimesh.Trimesh:
    """A capsule whose end spheres are centred on ``start`` and ``end`` (3,).

    A limb segment: consecutive segments of a chain overlap in a round joint.
    """
    start, end = np.asarray(start, float), np.asarray(end, float)
    axis = end - start
    length = float(np.linalg.norm(axis))
    mesh = trimesh.creation.capsule(height=length, radius=radius, count=list(count))
    return _placed(mesh, axis / length, (start + end) / 2)


def cone(base, tip, radius, sections=8) -> trimesh.Trimesh:
    """A cone from a disc of ``radius`` centred on ``base`` (3,) to a point at ``tip`` (3,)."""
    base, tip = np.asarray(base, float), np.asarray(tip, float)
    length = float(np.linalg.norm(tip - base))
    mesh = trimesh.creation.cone(radius=radius, height=length, sections=sections)
    return _placed(mesh, (tip - base) / length, base)


def ellipsoid(center, radii, axes=None, subdivisions=2) -> trimesh.Trimesh:
    """An ellipsoid centred on ``center`` (3,) with semi-axes ``radii`` (3,) along the
    columns of ``axes`` (a (3, 3) rotation; default x, y, z)."""
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=1.0)
    transform = np.eye(4)
    transform[:3, :3] = (np.eye(3) if axes is None else np.asarray(axes)) @ np.diag(radii)
    transform[:3, 3] = center
    mesh.apply_transform(transform)
    return mesh


def tube(path, radii, sections=8) -> trimesh.Trimesh:
    """A closed tube through ``path`` (k, 3), k >= 2, of radius ``radii`` (k,) at each point.

    For tails and tentacles: it tapers and curls smoothly where a chain of capsules
    would show its joints. Each ring lies across the mean direction of its two
    segments, and its frame is carried along the path (parallel transport) so the
    tube does not twist. The ends are closed by fans; faces wind outwards.
    """
    path = np.asarray(path, float)
    radii = np.broadcast_to(np.asarray(radii, float), len(path))
    steps = np.diff(path, axis=0)
    steps /= np.linalg.norm(steps, axis=1, keepdims=True)
    tangents = np.concatenate([steps[:1], steps[:-1] + steps[1:], steps[-1:]])
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    normal = np.cross(tangents[0], np.eye(3)[np.argmin(np.abs(tangents[0]))])
    angles = np.linspace(0, 2 * np.pi, sections, endpoint=False)
    rings = []
    for point, tangent, radius in zip(path, tangents, radii, strict=True):
        normal = normal - (normal @ tangent) * tangent
        normal /= np.linalg.norm(normal)
        binormal = np.cross(tangent, normal)
        offsets = np.outer(np.cos(angles), normal) + np.outer(np.sin(angles), binormal)
        rings.append(point + radius * offsets)
    vertices = np.concatenate([*rings, path[:1], path[-1:]])
    k, j = len(path), np.arange(sections)
    faces = []
    for i in range(k - 1):
        a, b = i * sections + j, i * sections + (j + 1) % sections
        c, d = a + sections, b + sections
        faces += [np.stack([a, b, d], 1), np.stack([a, d, c], 1)]
    first, last = k * sections, k * sections + 1
    faces.append(np.stack([np.full(sections, first), (j + 1) % sections, j], 1))
    tip_ring = (k - 1) * sections
    faces.append(
        np.stack([np.full(sections, last), tip_ring + j, tip_ring + (j + 1) % sections], 1)
    )
    return trimesh.Trimesh(vertices, np.concatenate(faces), process=False)


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
