"""Procedural shapes with known named parts: test fixtures, demos and a toy corpus.

Each category is a builder that draws proportions, part shapes and optional parts
from a seeded generator and returns low-poly trimesh primitives, one per part
instance. :func:`make_shape` puts them in a ``trimesh.Scene`` with one node per
instance named ``<part>`` (single instance) or ``<part>.<i>`` (``leg.0`` ..
``leg.3``), which :func:`bipart_cli.io.load_asset` reads back as ground truth.

Shapes are Y-up (glTF's convention), about one unit tall, standing on y = 0.
To add a category: write ``_build_<name>(rng) -> list[Piece]`` and register it in
``_BUILDERS`` with its part names in ``CATEGORIES``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from .io.atomic import atomic_path
from .parts import part_colors

ColorMode = str  # "natural" | "parts" | "grey"

CATEGORIES: dict[str, list[str]] = {
    "chair": ["back", "seat", "leg", "arm"],
    "table": ["top", "leg"],
    "mug": ["body", "handle"],
    "lamp": ["base", "pole", "shade"],
    "airplane": ["body", "wing", "tail", "engine"],
    "car": ["body", "cabin", "wheel"],
    "guitar": ["body", "neck", "head"],
    "knife": ["blade", "handle"],
    "bottle": ["body", "neck", "cap"],
    "bed": ["frame", "mattress", "headboard", "leg", "pillow"],
    "sofa": ["seat", "back", "arm", "leg"],
    "bookshelf": ["side", "shelf", "back"],
    "teapot": ["body", "spout", "handle", "lid"],
    "truck": ["cabin", "tank", "chassis", "wheel"],
}

# Plausible material colours for the "natural" colour mode.
_MATERIALS: dict[str, list[tuple[int, int, int]]] = {
    "wood": [(133, 94, 66), (164, 116, 73), (193, 154, 107), (101, 67, 33), (222, 184, 135)],
    "fabric": [(70, 90, 140), (150, 40, 40), (90, 110, 80), (200, 190, 170), (60, 60, 60)],
    "metal": [(170, 170, 175), (120, 120, 128), (200, 200, 205), (60, 60, 66)],
    "ceramic": [(240, 240, 235), (40, 80, 150), (180, 60, 50), (230, 200, 80)],
    "plastic": [(30, 30, 30), (220, 220, 220), (200, 50, 50), (50, 120, 200)],
    "paint": [(190, 30, 40), (30, 70, 160), (235, 235, 235), (40, 40, 40), (20, 110, 70)],
    "glass": [(120, 170, 160), (90, 60, 30), (150, 190, 210)],
    "rubber": [(25, 25, 25), (45, 45, 45)],
}
_GREY = (160, 160, 160)
_SECTIONS = 12


@dataclass
class Piece:
    """One part instance: its part name, mesh and material class."""

    part: str
    mesh: trimesh.Trimesh
    material: str


# --- primitives --------------------------------------------------------------


def _box(extents, center, rotation=None) -> trimesh.Trimesh:
    mesh = trimesh.creation.box(extents=extents)
    if rotation is not None:
        mesh.apply_transform(rotation)
    mesh.apply_translation(center)
    return mesh


def _rod(start, end, radius, sections=_SECTIONS) -> trimesh.Trimesh:
    """A cylinder from ``start`` to ``end``."""
    return trimesh.creation.cylinder(radius=radius, segment=[start, end], sections=sections)


def _frustum(r_bottom, r_top, y_bottom, y_top, center_xz=(0.0, 0.0), sections=_SECTIONS):
    """A truncated cone along y (convex hull of two rings)."""
    angles = np.linspace(0, 2 * np.pi, sections, endpoint=False)
    rings = []
    for radius, y in ((r_bottom, y_bottom), (r_top, y_top)):
        ring = np.stack([radius * np.cos(angles), np.full(sections, y), radius * np.sin(angles)], 1)
        rings.append(ring + [center_xz[0], 0, center_xz[1]])
    return trimesh.convex.convex_hull(np.concatenate(rings))


def _rotation(angle, axis) -> np.ndarray:
    return trimesh.transformations.rotation_matrix(angle, axis)


def _leg(rng, style, top, bottom, thickness) -> trimesh.Trimesh:
    """A vertical leg from ``top`` to ``bottom`` (points): box, round or tapered."""
    top, bottom = np.asarray(top, float), np.asarray(bottom, float)
    if style == "box":
        return _box([thickness, top[1] - bottom[1], thickness], (top + bottom) / 2)
    if style == "round":
        return _rod(bottom, top, thickness / 2)
    return _frustum(thickness * 0.3, thickness * 0.55, bottom[1], top[1], (top[0], top[2]))


def _u(rng, low, high) -> float:
    return float(rng.uniform(low, high))


# --- categories ----------------------------------------------------------------


def _build_chair(rng) -> list[Piece]:
    width, depth = _u(rng, 0.40, 0.60), _u(rng, 0.38, 0.55)
    seat_y, seat_t = _u(rng, 0.38, 0.50), _u(rng, 0.03, 0.08)
    leg_t, inset = _u(rng, 0.03, 0.06), _u(rng, 0.0, 0.04)
    style = str(rng.choice(["box", "round", "tapered"]))
    top = seat_y + seat_t
    pieces = []
    back_h, back_t = _u(rng, 0.35, 0.60), _u(rng, 0.025, 0.06)
    tilt = _u(rng, 0.0, 0.25)
    back = _box([width, back_h, back_t], [0, back_h / 2, 0])
    back.apply_transform(_rotation(-tilt, [1, 0, 0]))
    back.apply_translation([0, top, -depth / 2 + back_t / 2])
    pieces.append(Piece("back", back, "wood"))
    pieces.append(
        Piece("seat", _box([width, seat_t, depth], [0, seat_y + seat_t / 2, 0]), "fabric")
    )
    x = width / 2 - inset - leg_t / 2
    z = depth / 2 - inset - leg_t / 2
    for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        leg = _leg(rng, style, [sx * x, seat_y, sz * z], [sx * x, 0.0, sz * z], leg_t)
        pieces.append(Piece("leg", leg, "wood"))
    if rng.random() < 0.4:
        arm_y, arm_t = top + _u(rng, 0.15, 0.25), _u(rng, 0.03, 0.05)
        for sx in (-1, 1):
            ax = sx * (width / 2 + arm_t / 2)
            rest = _box([arm_t, arm_t, depth * 0.85], [ax, arm_y, 0.02])
            post = _box([arm_t, arm_y - top, arm_t], [ax, (arm_y + top) / 2, depth * 0.35])
            pieces.append(Piece("arm", trimesh.util.concatenate([rest, post]), "wood"))
    return pieces


def _build_table(rng) -> list[Piece]:
    height, top_t = _u(rng, 0.65, 0.80), _u(rng, 0.03, 0.06)
    round_top = rng.random() < 0.35
    pieces = []
    if round_top:
        radius = _u(rng, 0.4, 0.6)
        top = _rod([0, height - top_t, 0], [0, height, 0], radius, sections=24)
        half_x = half_z = radius * 0.55
    else:
        half_x, half_z = _u(rng, 0.45, 0.8), _u(rng, 0.3, 0.5)
        top = _box([2 * half_x, top_t, 2 * half_z], [0, height - top_t / 2, 0])
    pieces.append(Piece("top", top, "wood"))
    leg_y = height - top_t
    if round_top and rng.random() < 0.6:  # pedestal
        column = _rod([0, 0.02, 0], [0, leg_y, 0], _u(rng, 0.03, 0.06))
        foot = _rod([0, 0, 0], [0, 0.03, 0], _u(rng, 0.2, 0.3), sections=16)
        pieces.append(Piece("leg", trimesh.util.concatenate([column, foot]), "metal"))
        return pieces
    leg_t, inset = _u(rng, 0.04, 0.08), _u(rng, 0.02, 0.08)
    style = str(rng.choice(["box", "round", "tapered"]))
    x, z = half_x - inset - leg_t / 2, half_z - inset - leg_t / 2
    for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        leg = _leg(rng, style, [sx * x, leg_y, sz * z], [sx * x, 0.0, sz * z], leg_t)
        pieces.append(Piece("leg", leg, "wood"))
    return pieces


def _build_mug(rng) -> list[Piece]:
    radius, height, wall = _u(rng, 0.3, 0.42), _u(rng, 0.7, 1.0), _u(rng, 0.03, 0.05)
    wall_mesh = trimesh.creation.annulus(
        r_min=radius - wall, r_max=radius, height=height, sections=20
    )
    wall_mesh.apply_transform(_rotation(-np.pi / 2, [1, 0, 0]))
    wall_mesh.apply_translation([0, height / 2, 0])
    bottom = _rod([0, 0, 0], [0, wall, 0], radius - wall / 2, sections=20)
    pieces = [Piece("body", trimesh.util.concatenate([wall_mesh, bottom]), "ceramic")]
    major, minor = _u(rng, 0.18, 0.26) * height, _u(rng, 0.025, 0.045)
    handle = trimesh.creation.torus(
        major_radius=major, minor_radius=minor, major_sections=16, minor_sections=8
    )
    handle.apply_translation([radius + major * 0.55, height * _u(rng, 0.45, 0.6), 0])
    pieces.append(Piece("handle", handle, "ceramic"))
    return pieces


def _build_lamp(rng) -> list[Piece]:
    base_r, base_t = _u(rng, 0.15, 0.25), _u(rng, 0.03, 0.07)
    pole_h = _u(rng, 0.5, 0.9)
    if rng.random() < 0.5:
        base = _rod([0, 0, 0], [0, base_t, 0], base_r, sections=20)
    else:
        base = _box([2 * base_r, base_t, 2 * base_r], [0, base_t / 2, 0])
    pole = _rod([0, base_t, 0], [0, base_t + pole_h, 0], _u(rng, 0.012, 0.025))
    shade_h = _u(rng, 0.2, 0.35)
    y0 = base_t + pole_h - shade_h * 0.4
    shade = _frustum(_u(rng, 0.18, 0.3), _u(rng, 0.08, 0.16), y0, y0 + shade_h, sections=20)
    return [
        Piece("base", base, "metal"),
        Piece("pole", pole, "metal"),
        Piece("shade", shade, "fabric"),
    ]


def _build_airplane(rng) -> list[Piece]:
    length, radius = _u(rng, 1.6, 2.2), _u(rng, 0.09, 0.14)
    body = trimesh.creation.capsule(height=length - 2 * radius, radius=radius, count=[12, 8])
    body.apply_transform(_rotation(np.pi / 2, [0, 1, 0]))
    pieces = [Piece("body", body, "paint")]
    span, chord, sweep = _u(rng, 0.7, 1.1), _u(rng, 0.18, 0.3), _u(rng, 0.0, 0.5)
    wing_x = _u(rng, -0.15, 0.1)
    for side in (-1, 1):
        wing = _box([chord, 0.02, span], [0, 0, side * span / 2])
        wing.apply_transform(_rotation(side * sweep, [0, 1, 0]))
        wing.apply_translation([wing_x, -radius * 0.4, side * radius * 0.8])
        pieces.append(Piece("wing", wing, "paint"))
    tail_x = -length / 2 + 0.12
    fin_h = _u(rng, 0.2, 0.35)
    pieces.append(
        Piece("tail", _box([0.18, fin_h, 0.02], [tail_x, radius + fin_h / 2 - 0.02, 0]), "paint")
    )
    stab = _u(rng, 0.2, 0.35)
    for side in (-1, 1):
        pieces.append(
            Piece(
                "tail",
                _box([0.14, 0.015, stab], [tail_x, 0.02, side * (stab / 2 + radius * 0.6)]),
                "paint",
            )
        )
    if rng.random() < 0.7:
        for side in (-1, 1):
            z = side * (radius + span * 0.35)
            engine = _rod(
                [wing_x + 0.18, -radius - 0.06, z], [wing_x - 0.12, -radius - 0.06, z], 0.05
            )
            pieces.append(Piece("engine", engine, "metal"))
    return pieces


def _build_car(rng) -> list[Piece]:
    length, width = _u(rng, 1.6, 2.2), _u(rng, 0.7, 0.9)
    wheel_r, clearance = _u(rng, 0.14, 0.2), _u(rng, 0.05, 0.12)
    body_h = _u(rng, 0.25, 0.35)
    body_y = wheel_r + clearance
    pieces = [Piece("body", _box([length, body_h, width], [0, body_y + body_h / 2, 0]), "paint")]
    cabin_l, cabin_h = length * _u(rng, 0.4, 0.6), _u(rng, 0.2, 0.3)
    cabin = _frustum(cabin_l * 0.5, cabin_l * 0.38, 0, cabin_h, sections=4)
    cabin.apply_transform(_rotation(np.pi / 4, [0, 1, 0]))
    cabin.apply_transform(np.diag([1.0, 1.0, width * 0.9 / cabin_l, 1.0]))
    cabin.apply_translation([_u(rng, -0.2, 0.05), body_y + body_h, 0])
    pieces.append(Piece("cabin", cabin, "glass"))
    wheel_x = length / 2 - wheel_r * 1.5
    for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        z = sz * (width / 2 - 0.05)
        wheel = _rod(
            [sx * wheel_x, wheel_r, z - 0.06], [sx * wheel_x, wheel_r, z + 0.06], wheel_r, 16
        )
        pieces.append(Piece("wheel", wheel, "rubber"))
    return pieces


def _build_guitar(rng) -> list[Piece]:
    lower, upper = _u(rng, 0.18, 0.24), _u(rng, 0.13, 0.18)
    thick = _u(rng, 0.06, 0.1)
    lower_bout = _rod([0, lower, -thick / 2], [0, lower, thick / 2], lower, 20)
    upper_y = lower * 2 + upper * 0.6
    upper_bout = _rod([0, upper_y, -thick / 2], [0, upper_y, thick / 2], upper, 20)
    pieces = [Piece("body", trimesh.util.concatenate([lower_bout, upper_bout]), "wood")]
    neck_l = _u(rng, 0.45, 0.6)
    neck_y0 = upper_y + upper * 0.8
    pieces.append(
        Piece("neck", _box([0.05, neck_l, 0.03], [0, neck_y0 + neck_l / 2, thick / 4]), "wood")
    )
    head = _box([0.08, 0.16, 0.025], [0, 0.08, 0])
    head.apply_transform(_rotation(-_u(rng, 0.0, 0.25), [1, 0, 0]))
    head.apply_translation([0, neck_y0 + neck_l, thick / 4])
    pieces.append(Piece("head", head, "wood"))
    return pieces


def _build_knife(rng) -> list[Piece]:
    handle_l, blade_l = _u(rng, 0.25, 0.35), _u(rng, 0.45, 0.7)
    blade_w = _u(rng, 0.05, 0.1)
    tip_drop = _u(rng, 0.0, 1.0) * blade_w
    profile = np.array(
        [[0, 0], [0, blade_w], [blade_l * 0.8, blade_w], [blade_l, tip_drop], [blade_l * 0.9, 0]]
    )
    half_t = 0.006
    points = [[x, y, z] for x, y in profile for z in (-half_t, half_t)]
    blade = trimesh.convex.convex_hull(np.array(points) + [handle_l, 0, 0])
    if rng.random() < 0.5:
        handle = _box([handle_l, blade_w * 0.8, 0.03], [handle_l / 2, blade_w * 0.45, 0])
    else:
        handle = trimesh.creation.capsule(height=handle_l - 0.04, radius=0.02, count=[8, 6])
        handle.apply_transform(_rotation(np.pi / 2, [0, 1, 0]))
        handle.apply_translation([handle_l / 2, blade_w * 0.45, 0])
    return [Piece("blade", blade, "metal"), Piece("handle", handle, "wood")]


def _build_bottle(rng) -> list[Piece]:
    radius, body_h = _u(rng, 0.15, 0.25), _u(rng, 0.45, 0.7)
    neck_r, neck_h = radius * _u(rng, 0.25, 0.4), _u(rng, 0.12, 0.25)
    shoulder_h = _u(rng, 0.05, 0.2)
    body = trimesh.util.concatenate(
        [
            _rod([0, 0, 0], [0, body_h, 0], radius, 20),
            _frustum(radius, neck_r, body_h, body_h + shoulder_h, sections=20),
        ]
    )
    neck_y = body_h + shoulder_h
    neck = _rod([0, neck_y, 0], [0, neck_y + neck_h, 0], neck_r, 16)
    cap = _rod([0, neck_y + neck_h, 0], [0, neck_y + neck_h + 0.05, 0], neck_r * 1.15, 16)
    return [
        Piece("body", body, "glass"),
        Piece("neck", neck, "glass"),
        Piece("cap", cap, "plastic"),
    ]


def _build_bed(rng) -> list[Piece]:
    length, width = _u(rng, 1.9, 2.2), _u(rng, 0.9, 1.6)
    leg_h, frame_t = _u(rng, 0.08, 0.25), _u(rng, 0.08, 0.15)
    frame_y = leg_h + frame_t / 2
    pieces = [Piece("frame", _box([width, frame_t, length], [0, frame_y, 0]), "wood")]
    mattress_t = _u(rng, 0.15, 0.25)
    mattress_y = leg_h + frame_t + mattress_t / 2
    pieces.append(
        Piece(
            "mattress",
            _box([width * 0.96, mattress_t, length * 0.97], [0, mattress_y, 0]),
            "fabric",
        )
    )
    head_h = _u(rng, 0.5, 0.9)
    pieces.append(
        Piece("headboard", _box([width, head_h, 0.06], [0, head_h / 2, -length / 2 - 0.03]), "wood")
    )
    for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        x, z = sx * (width / 2 - 0.05), sz * (length / 2 - 0.05)
        pieces.append(Piece("leg", _box([0.07, leg_h, 0.07], [x, leg_h / 2, z]), "wood"))
    n_pillows = 1 if width < 1.2 else 2
    pillow_y = leg_h + frame_t + mattress_t + 0.05
    for i in range(n_pillows):
        x = 0.0 if n_pillows == 1 else (i - 0.5) * width * 0.48
        pillow = _box([width * 0.4, 0.1, 0.35], [x, pillow_y, -length / 2 + 0.3])
        pieces.append(Piece("pillow", pillow, "fabric"))
    return pieces


def _build_sofa(rng) -> list[Piece]:
    width, depth = _u(rng, 1.4, 2.2), _u(rng, 0.75, 0.95)
    leg_h, seat_t = _u(rng, 0.06, 0.15), _u(rng, 0.25, 0.4)
    seat_top = leg_h + seat_t
    arm_w = _u(rng, 0.12, 0.22)
    inner = width - 2 * arm_w
    pieces = [Piece("seat", _box([inner, seat_t, depth], [0, leg_h + seat_t / 2, 0]), "fabric")]
    back_h, back_t = _u(rng, 0.35, 0.55), _u(rng, 0.15, 0.25)
    back = _box([width, back_h, back_t], [0, seat_top + back_h / 2, -depth / 2 + back_t / 2])
    pieces.append(Piece("back", back, "fabric"))
    arm_h = _u(rng, 0.15, 0.3)
    for sx in (-1, 1):
        arm = _box(
            [arm_w, seat_t + arm_h, depth],
            [sx * (inner + arm_w) / 2, leg_h + (seat_t + arm_h) / 2, 0],
        )
        pieces.append(Piece("arm", arm, "fabric"))
    for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        x, z = sx * (width / 2 - 0.06), sz * (depth / 2 - 0.06)
        pieces.append(Piece("leg", _rod([x, 0, z], [x, leg_h, z], 0.03, 8), "wood"))
    return pieces


def _build_bookshelf(rng) -> list[Piece]:
    width, depth, height = _u(rng, 0.6, 1.2), _u(rng, 0.25, 0.4), _u(rng, 1.0, 2.0)
    board = _u(rng, 0.02, 0.04)
    pieces = []
    for sx in (-1, 1):
        side = _box([board, height, depth], [sx * (width / 2 - board / 2), height / 2, 0])
        pieces.append(Piece("side", side, "wood"))
    n_shelves = int(rng.integers(3, 6))
    for y in np.linspace(board / 2, height - board / 2, n_shelves):
        pieces.append(Piece("shelf", _box([width - 2 * board, board, depth], [0, y, 0]), "wood"))
    if rng.random() < 0.6:
        back = _box([width, height, 0.01], [0, height / 2, -depth / 2 - 0.005])
        pieces.append(Piece("back", back, "wood"))
    return pieces


def _build_teapot(rng) -> list[Piece]:
    radius, squash = _u(rng, 0.4, 0.5), _u(rng, 0.65, 0.85)
    body = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    body.apply_scale([1.0, squash, 1.0])
    centre_y = radius * squash
    body.apply_translation([0, centre_y, 0])
    pieces = [Piece("body", body, "ceramic")]
    # the spout leaves the lower side, tilted up and out, tapering
    start = np.array([radius * 0.75, centre_y - radius * squash * 0.2, 0])
    tilt = _u(rng, 0.6, 1.0)
    length = _u(rng, 0.35, 0.5)
    spout = _frustum(_u(rng, 0.07, 0.09), _u(rng, 0.03, 0.045), 0, length)
    spout.apply_transform(_rotation(-(np.pi / 2 - tilt), [0, 0, 1]))
    spout.apply_translation(start)
    pieces.append(Piece("spout", spout, "ceramic"))
    major, minor = _u(rng, 0.17, 0.24), _u(rng, 0.025, 0.04)
    handle = trimesh.creation.torus(
        major_radius=major, minor_radius=minor, major_sections=16, minor_sections=8
    )
    handle.apply_translation([-(radius * 0.9 + major * 0.5), centre_y, 0])
    pieces.append(Piece("handle", handle, "ceramic"))
    lid_r = radius * _u(rng, 0.35, 0.5)
    top = 2 * centre_y - 0.01
    lid = trimesh.util.concatenate(
        [
            _rod([0, top, 0], [0, top + 0.05, 0], lid_r, 16),
            _rod([0, top + 0.05, 0], [0, top + 0.1, 0], 0.04, 8),
        ]
    )
    pieces.append(Piece("lid", lid, "ceramic"))
    return pieces


def _build_truck(rng) -> list[Piece]:
    length, width = _u(rng, 2.2, 2.8), _u(rng, 0.7, 0.85)
    wheel_r = _u(rng, 0.14, 0.19)
    frame_y, frame_h = wheel_r * 1.1, _u(rng, 0.08, 0.12)
    pieces = [
        Piece(
            "chassis", _box([length, frame_h, width * 0.8], [0, frame_y + frame_h / 2, 0]), "metal"
        )
    ]
    deck = frame_y + frame_h
    cabin_l, cabin_h = _u(rng, 0.45, 0.6), _u(rng, 0.5, 0.7)
    cabin_x = length / 2 - cabin_l / 2
    pieces.append(
        Piece("cabin", _box([cabin_l, cabin_h, width], [cabin_x, deck + cabin_h / 2, 0]), "paint")
    )
    # the tank: a horizontal cylinder behind the cabin, with a gap
    tank_len = length - cabin_l - _u(rng, 0.1, 0.2)
    tank_r = _u(rng, 0.28, 0.38)
    tank_end = cabin_x - cabin_l / 2 - 0.08
    tank = _rod([tank_end - tank_len, deck + tank_r, 0], [tank_end, deck + tank_r, 0], tank_r, 20)
    pieces.append(Piece("tank", tank, "metal"))
    axles = [cabin_x, tank_end - tank_len * 0.3, tank_end - tank_len * 0.75]
    for x in axles:
        for side in (-1, 1):
            z = side * (width / 2 - 0.04)
            wheel = _rod([x, wheel_r, z - 0.07], [x, wheel_r, z + 0.07], wheel_r, 16)
            pieces.append(Piece("wheel", wheel, "rubber"))
    return pieces


_BUILDERS: dict[str, Callable[[np.random.Generator], list[Piece]]] = {
    "chair": _build_chair,
    "table": _build_table,
    "mug": _build_mug,
    "lamp": _build_lamp,
    "airplane": _build_airplane,
    "car": _build_car,
    "guitar": _build_guitar,
    "knife": _build_knife,
    "bottle": _build_bottle,
    "bed": _build_bed,
    "sofa": _build_sofa,
    "bookshelf": _build_bookshelf,
    "teapot": _build_teapot,
    "truck": _build_truck,
}


# --- public API -----------------------------------------------------------------


def make_pieces(category: str, seed: int = 0) -> list[Piece]:
    """The part instances of one random ``category`` shape (same seed, same shape)."""
    if category not in _BUILDERS:
        raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    return _BUILDERS[category](np.random.default_rng(seed))


def node_names(pieces: Iterable[Piece]) -> list[str]:
    """``<part>`` for a single instance, ``<part>.<i>`` when the part repeats."""
    pieces = list(pieces)
    totals: dict[str, int] = {}
    for piece in pieces:
        totals[piece.part] = totals.get(piece.part, 0) + 1
    seen: dict[str, int] = {}
    names = []
    for piece in pieces:
        i = seen.get(piece.part, 0)
        seen[piece.part] = i + 1
        names.append(piece.part if totals[piece.part] == 1 else f"{piece.part}.{i}")
    return names


def make_shape(category: str, seed: int = 0, colors: ColorMode = "natural") -> trimesh.Scene:
    """A ``trimesh.Scene`` of one random shape: one node per part instance.

    colors : ``"natural"`` (seeded material colours, shared by a part's instances),
    ``"parts"`` (the fixed part palette, in ``CATEGORIES`` order) or ``"grey"``.
    """
    if colors not in ("natural", "parts", "grey"):
        raise ValueError(f"colors must be natural, parts or grey, not {colors!r}")
    pieces = make_pieces(category, seed)
    palette = part_colors(len(CATEGORIES[category]))
    color_rng = np.random.default_rng([seed, 7919])
    part_color: dict[str, np.ndarray] = {}
    scene = trimesh.Scene()
    for piece, name in zip(pieces, node_names(pieces), strict=True):
        if piece.part not in part_color:
            if colors == "parts":
                rgb = palette[CATEGORIES[category].index(piece.part)]
            elif colors == "grey":
                rgb = np.array(_GREY)
            else:
                options = _MATERIALS[piece.material]
                base = np.array(options[int(color_rng.integers(len(options)))], dtype=float)
                rgb = np.clip(base + color_rng.normal(0, 8, 3), 0, 255)
            part_color[piece.part] = np.append(np.round(rgb), 255).astype(np.uint8)
        mesh = piece.mesh.copy()
        mesh.visual = trimesh.visual.ColorVisuals(
            mesh, vertex_colors=np.tile(part_color[piece.part], (len(mesh.vertices), 1))
        )
        mesh.metadata = {}
        scene.add_geometry(mesh, node_name=name, geom_name=name)
    return scene


def write_examples(
    out_dir: str | Path,
    categories: Iterable[str] = ("chair", "table", "mug", "lamp"),
    *,
    seed: int = 0,
    n_chairs: int = 6,
    colors: ColorMode = "natural",
) -> list[Path]:
    """Write ``<category>.glb`` for each category and ``chairs/chair_<k>.glb`` (a labeled
    few-shot support set of ``n_chairs`` chairs with seeds ``seed + 1 ..``)."""
    out_dir = Path(out_dir)
    jobs = [(out_dir / f"{category}.glb", category, seed) for category in categories]
    jobs += [
        (out_dir / "chairs" / f"chair_{k}.glb", "chair", seed + 1 + k) for k in range(n_chairs)
    ]
    written = []
    for path, category, shape_seed in jobs:
        data = make_shape(category, shape_seed, colors).export(file_type="glb")
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        written.append(path)
    return written


def write_corpus(
    out_dir: str | Path,
    per_category: int,
    categories: Iterable[str] | None = None,
    *,
    seed: int = 1000,
    colors: ColorMode = "natural",
) -> list[Path]:
    """A training corpus: ``<category>/<category>_<k>.glb`` plus a ``parts.json`` per category.

    ``parts.json`` holds the category's part names in ``CATEGORIES`` order, so every
    shape of a category is indexed with the same part order (``bipart index`` reads it).
    Shape ``k`` of category ``c`` has seed ``[seed, i_c, k]``, so the corpus never repeats
    the bundled examples (plain small seeds). Existing files are kept (re-runs resume).
    """
    import json

    out_dir = Path(out_dir)
    chosen = list(CATEGORIES) if categories is None else list(categories)
    unknown = [c for c in chosen if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown categories {', '.join(unknown)}; known: {', '.join(CATEGORIES)}")
    written = []
    for category in chosen:
        folder = out_dir / category
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "parts.json") as tmp:
            tmp.write_text(json.dumps({"parts": CATEGORIES[category]}) + "\n")
        code = list(CATEGORIES).index(category)
        for k in range(per_category):
            path = folder / f"{category}_{k:04d}.glb"
            if not path.exists():
                shape_seed = int(np.random.SeedSequence([seed, code, k]).generate_state(1)[0])
                data = make_shape(category, shape_seed, colors).export(file_type="glb")
                with atomic_path(path) as tmp:
                    tmp.write_bytes(data)
            written.append(path)
    return written


def write_support_sets(
    out_dir: str | Path,
    categories: Iterable[str] | None = None,
    *,
    per_category: int = 6,
    seed: int = 0,
    colors: ColorMode = "natural",
) -> dict[str, Path]:
    """Labeled few-shot support folders ``<out_dir>/<category>/`` (``bipart examples``).

    Each holds ``per_category`` shapes whose nodes name their parts, and a ``parts.json``;
    pass one as ``--support``. Seeds differ from the training corpus's (``seed + 2000``).
    Returns the folder of each category.
    """
    chosen = list(CATEGORIES) if categories is None else list(categories)
    write_corpus(out_dir, per_category, chosen, seed=seed + 2000, colors=colors)
    return {category: Path(out_dir) / category for category in chosen}
