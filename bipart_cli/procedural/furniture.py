"""Furniture: chair, table, bed, sofa, bookshelf, lamp. Each builder draws a shape's proportions and optional parts from ``rng``."""

from __future__ import annotations

import numpy as np
import trimesh

from .primitives import Piece, box, frustum, leg_mesh, rod, rotation, uniform


def build_chair(rng) -> list[Piece]:
    width, depth = uniform(rng, 0.40, 0.60), uniform(rng, 0.38, 0.55)
    seat_y, seat_t = uniform(rng, 0.38, 0.50), uniform(rng, 0.03, 0.08)
    leg_t, inset = uniform(rng, 0.03, 0.06), uniform(rng, 0.0, 0.04)
    style = str(rng.choice(["box", "round", "tapered"]))
    top = seat_y + seat_t
    pieces = []
    back_h, back_t = uniform(rng, 0.35, 0.60), uniform(rng, 0.025, 0.06)
    tilt = uniform(rng, 0.0, 0.25)
    back = box([width, back_h, back_t], [0, back_h / 2, 0])
    back.apply_transform(rotation(-tilt, [1, 0, 0]))
    back.apply_translation([0, top, -depth / 2 + back_t / 2])
    pieces.append(Piece("back", back, "wood"))
    pieces.append(Piece("seat", box([width, seat_t, depth], [0, seat_y + seat_t / 2, 0]), "fabric"))
    x = width / 2 - inset - leg_t / 2
    z = depth / 2 - inset - leg_t / 2
    for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        leg = leg_mesh(rng, style, [sx * x, seat_y, sz * z], [sx * x, 0.0, sz * z], leg_t)
        pieces.append(Piece("leg", leg, "wood"))
    if rng.random() < 0.4:
        arm_y, arm_t = top + uniform(rng, 0.15, 0.25), uniform(rng, 0.03, 0.05)
        for sx in (-1, 1):
            ax = sx * (width / 2 + arm_t / 2)
            rest = box([arm_t, arm_t, depth * 0.85], [ax, arm_y, 0.02])
            post = box([arm_t, arm_y - top, arm_t], [ax, (arm_y + top) / 2, depth * 0.35])
            pieces.append(Piece("arm", trimesh.util.concatenate([rest, post]), "wood"))
    return pieces


def build_table(rng) -> list[Piece]:
    height, top_t = uniform(rng, 0.65, 0.80), uniform(rng, 0.03, 0.06)
    round_top = rng.random() < 0.35
    pieces = []
    if round_top:
        radius = uniform(rng, 0.4, 0.6)
        top = rod([0, height - top_t, 0], [0, height, 0], radius, sections=24)
        half_x = half_z = radius * 0.55
    else:
        half_x, half_z = uniform(rng, 0.45, 0.8), uniform(rng, 0.3, 0.5)
        top = box([2 * half_x, top_t, 2 * half_z], [0, height - top_t / 2, 0])
    pieces.append(Piece("top", top, "wood"))
    leg_y = height - top_t
    if round_top and rng.random() < 0.6:  # pedestal
        column = rod([0, 0.02, 0], [0, leg_y, 0], uniform(rng, 0.03, 0.06))
        foot = rod([0, 0, 0], [0, 0.03, 0], uniform(rng, 0.2, 0.3), sections=16)
        pieces.append(Piece("leg", trimesh.util.concatenate([column, foot]), "metal"))
        return pieces
    leg_t, inset = uniform(rng, 0.04, 0.08), uniform(rng, 0.02, 0.08)
    style = str(rng.choice(["box", "round", "tapered"]))
    x, z = half_x - inset - leg_t / 2, half_z - inset - leg_t / 2
    for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        leg = leg_mesh(rng, style, [sx * x, leg_y, sz * z], [sx * x, 0.0, sz * z], leg_t)
        pieces.append(Piece("leg", leg, "wood"))
    return pieces


def build_bed(rng) -> list[Piece]:
    length, width = uniform(rng, 1.9, 2.2), uniform(rng, 0.9, 1.6)
    leg_h, frame_t = uniform(rng, 0.08, 0.25), uniform(rng, 0.08, 0.15)
    frame_y = leg_h + frame_t / 2
    pieces = [Piece("frame", box([width, frame_t, length], [0, frame_y, 0]), "wood")]
    mattress_t = uniform(rng, 0.15, 0.25)
    mattress_y = leg_h + frame_t + mattress_t / 2
    pieces.append(
        Piece(
            "mattress",
            box([width * 0.96, mattress_t, length * 0.97], [0, mattress_y, 0]),
            "fabric",
        )
    )
    head_h = uniform(rng, 0.5, 0.9)
    pieces.append(
        Piece("headboard", box([width, head_h, 0.06], [0, head_h / 2, -length / 2 - 0.03]), "wood")
    )
    for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        x, z = sx * (width / 2 - 0.05), sz * (length / 2 - 0.05)
        pieces.append(Piece("leg", box([0.07, leg_h, 0.07], [x, leg_h / 2, z]), "wood"))
    n_pillows = 1 if width < 1.2 else 2
    pillow_y = leg_h + frame_t + mattress_t + 0.05
    for i in range(n_pillows):
        x = 0.0 if n_pillows == 1 else (i - 0.5) * width * 0.48
        pillow = box([width * 0.4, 0.1, 0.35], [x, pillow_y, -length / 2 + 0.3])
        pieces.append(Piece("pillow", pillow, "fabric"))
    return pieces


def build_sofa(rng) -> list[Piece]:
    width, depth = uniform(rng, 1.4, 2.2), uniform(rng, 0.75, 0.95)
    leg_h, seat_t = uniform(rng, 0.06, 0.15), uniform(rng, 0.25, 0.4)
    seat_top = leg_h + seat_t
    arm_w = uniform(rng, 0.12, 0.22)
    inner = width - 2 * arm_w
    pieces = [Piece("seat", box([inner, seat_t, depth], [0, leg_h + seat_t / 2, 0]), "fabric")]
    back_h, back_t = uniform(rng, 0.35, 0.55), uniform(rng, 0.15, 0.25)
    back = box([width, back_h, back_t], [0, seat_top + back_h / 2, -depth / 2 + back_t / 2])
    pieces.append(Piece("back", back, "fabric"))
    arm_h = uniform(rng, 0.15, 0.3)
    for sx in (-1, 1):
        arm = box(
            [arm_w, seat_t + arm_h, depth],
            [sx * (inner + arm_w) / 2, leg_h + (seat_t + arm_h) / 2, 0],
        )
        pieces.append(Piece("arm", arm, "fabric"))
    for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        x, z = sx * (width / 2 - 0.06), sz * (depth / 2 - 0.06)
        pieces.append(Piece("leg", rod([x, 0, z], [x, leg_h, z], 0.03, 8), "wood"))
    return pieces


def build_bookshelf(rng) -> list[Piece]:
    width, depth, height = uniform(rng, 0.6, 1.2), uniform(rng, 0.25, 0.4), uniform(rng, 1.0, 2.0)
    board = uniform(rng, 0.02, 0.04)
    pieces = []
    for sx in (-1, 1):
        side = box([board, height, depth], [sx * (width / 2 - board / 2), height / 2, 0])
        pieces.append(Piece("side", side, "wood"))
    n_shelves = int(rng.integers(3, 6))
    for y in np.linspace(board / 2, height - board / 2, n_shelves):
        pieces.append(Piece("shelf", box([width - 2 * board, board, depth], [0, y, 0]), "wood"))
    if rng.random() < 0.6:
        back = box([width, height, 0.01], [0, height / 2, -depth / 2 - 0.005])
        pieces.append(Piece("back", back, "wood"))
    return pieces


def build_lamp(rng) -> list[Piece]:
    base_r, base_t = uniform(rng, 0.15, 0.25), uniform(rng, 0.03, 0.07)
    pole_h = uniform(rng, 0.5, 0.9)
    if rng.random() < 0.5:
        base = rod([0, 0, 0], [0, base_t, 0], base_r, sections=20)
    else:
        base = box([2 * base_r, base_t, 2 * base_r], [0, base_t / 2, 0])
    pole = rod([0, base_t, 0], [0, base_t + pole_h, 0], uniform(rng, 0.012, 0.025))
    shade_h = uniform(rng, 0.2, 0.35)
    y0 = base_t + pole_h - shade_h * 0.4
    shade = frustum(
        uniform(rng, 0.18, 0.3), uniform(rng, 0.08, 0.16), y0, y0 + shade_h, sections=20
    )
    return [
        Piece("base", base, "metal"),
        Piece("pole", pole, "metal"),
        Piece("shade", shade, "fabric"),
    ]
