"""Vehicles: airplane, car, truck. Each builder draws a shape's proportions and optional parts from ``rng``."""

from __future__ import annotations

import numpy as np
import trimesh

from .primitives import Piece, box, frustum, rod, rotation, uniform


def build_airplane(rng) -> list[Piece]:
    length, radius = uniform(rng, 1.6, 2.2), uniform(rng, 0.09, 0.14)
    body = trimesh.creation.capsule(height=length - 2 * radius, radius=radius, count=[12, 8])
    body.apply_transform(rotation(np.pi / 2, [0, 1, 0]))
    pieces = [Piece("body", body, "paint")]
    span, chord, sweep = uniform(rng, 0.7, 1.1), uniform(rng, 0.18, 0.3), uniform(rng, 0.0, 0.5)
    wing_x = uniform(rng, -0.15, 0.1)
    for side in (-1, 1):
        wing = box([chord, 0.02, span], [0, 0, side * span / 2])
        wing.apply_transform(rotation(side * sweep, [0, 1, 0]))
        wing.apply_translation([wing_x, -radius * 0.4, side * radius * 0.8])
        pieces.append(Piece("wing", wing, "paint"))
    tail_x = -length / 2 + 0.12
    fin_h = uniform(rng, 0.2, 0.35)
    pieces.append(
        Piece("tail", box([0.18, fin_h, 0.02], [tail_x, radius + fin_h / 2 - 0.02, 0]), "paint")
    )
    stab = uniform(rng, 0.2, 0.35)
    for side in (-1, 1):
        pieces.append(
            Piece(
                "tail",
                box([0.14, 0.015, stab], [tail_x, 0.02, side * (stab / 2 + radius * 0.6)]),
                "paint",
            )
        )
    if rng.random() < 0.7:
        for side in (-1, 1):
            z = side * (radius + span * 0.35)
            engine = rod(
                [wing_x + 0.18, -radius - 0.06, z], [wing_x - 0.12, -radius - 0.06, z], 0.05
            )
            pieces.append(Piece("engine", engine, "metal"))
    return pieces


def build_car(rng) -> list[Piece]:
    length, width = uniform(rng, 1.6, 2.2), uniform(rng, 0.7, 0.9)
    wheel_r, clearance = uniform(rng, 0.14, 0.2), uniform(rng, 0.05, 0.12)
    body_h = uniform(rng, 0.25, 0.35)
    body_y = wheel_r + clearance
    pieces = [Piece("body", box([length, body_h, width], [0, body_y + body_h / 2, 0]), "paint")]
    cabin_l, cabin_h = length * uniform(rng, 0.4, 0.6), uniform(rng, 0.2, 0.3)
    cabin = frustum(cabin_l * 0.5, cabin_l * 0.38, 0, cabin_h, sections=4)
    cabin.apply_transform(rotation(np.pi / 4, [0, 1, 0]))
    cabin.apply_transform(np.diag([1.0, 1.0, width * 0.9 / cabin_l, 1.0]))
    cabin.apply_translation([uniform(rng, -0.2, 0.05), body_y + body_h, 0])
    pieces.append(Piece("cabin", cabin, "glass"))
    wheel_x = length / 2 - wheel_r * 1.5
    for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        z = sz * (width / 2 - 0.05)
        wheel = rod(
            [sx * wheel_x, wheel_r, z - 0.06], [sx * wheel_x, wheel_r, z + 0.06], wheel_r, 16
        )
        pieces.append(Piece("wheel", wheel, "rubber"))
    return pieces


def build_truck(rng) -> list[Piece]:
    length, width = uniform(rng, 2.2, 2.8), uniform(rng, 0.7, 0.85)
    wheel_r = uniform(rng, 0.14, 0.19)
    frame_y, frame_h = wheel_r * 1.1, uniform(rng, 0.08, 0.12)
    pieces = [
        Piece(
            "chassis", box([length, frame_h, width * 0.8], [0, frame_y + frame_h / 2, 0]), "metal"
        )
    ]
    deck = frame_y + frame_h
    cabin_l, cabin_h = uniform(rng, 0.45, 0.6), uniform(rng, 0.5, 0.7)
    cabin_x = length / 2 - cabin_l / 2
    pieces.append(
        Piece("cabin", box([cabin_l, cabin_h, width], [cabin_x, deck + cabin_h / 2, 0]), "paint")
    )
    # the tank: a horizontal cylinder behind the cabin, with a gap
    tank_len = length - cabin_l - uniform(rng, 0.1, 0.2)
    tank_r = uniform(rng, 0.28, 0.38)
    tank_end = cabin_x - cabin_l / 2 - 0.08
    tank = rod([tank_end - tank_len, deck + tank_r, 0], [tank_end, deck + tank_r, 0], tank_r, 20)
    pieces.append(Piece("tank", tank, "metal"))
    axles = [cabin_x, tank_end - tank_len * 0.3, tank_end - tank_len * 0.75]
    for x in axles:
        for side in (-1, 1):
            z = side * (width / 2 - 0.04)
            wheel = rod([x, wheel_r, z - 0.07], [x, wheel_r, z + 0.07], wheel_r, 16)
            pieces.append(Piece("wheel", wheel, "rubber"))
    return pieces
