"""Household objects: mug, bottle, knife, guitar, teapot. Each builder draws a shape's proportions and optional parts from ``rng``."""

from __future__ import annotations

import numpy as np
import trimesh

from .primitives import Piece, box, frustum, rod, rotation, uniform


def build_mug(rng) -> list[Piece]:
    radius, height, wall = uniform(rng, 0.3, 0.42), uniform(rng, 0.7, 1.0), uniform(rng, 0.03, 0.05)
    wall_mesh = trimesh.creation.annulus(
        r_min=radius - wall, r_max=radius, height=height, sections=20
    )
    wall_mesh.apply_transform(rotation(-np.pi / 2, [1, 0, 0]))
    wall_mesh.apply_translation([0, height / 2, 0])
    bottom = rod([0, 0, 0], [0, wall, 0], radius - wall / 2, sections=20)
    pieces = [Piece("body", trimesh.util.concatenate([wall_mesh, bottom]), "ceramic")]
    major, minor = uniform(rng, 0.18, 0.26) * height, uniform(rng, 0.025, 0.045)
    handle = trimesh.creation.torus(
        major_radius=major, minor_radius=minor, major_sections=16, minor_sections=8
    )
    handle.apply_translation([radius + major * 0.55, height * uniform(rng, 0.45, 0.6), 0])
    pieces.append(Piece("handle", handle, "ceramic"))
    return pieces


def build_bottle(rng) -> list[Piece]:
    radius, body_h = uniform(rng, 0.15, 0.25), uniform(rng, 0.45, 0.7)
    neck_r, neck_h = radius * uniform(rng, 0.25, 0.4), uniform(rng, 0.12, 0.25)
    shoulder_h = uniform(rng, 0.05, 0.2)
    body = trimesh.util.concatenate(
        [
            rod([0, 0, 0], [0, body_h, 0], radius, 20),
            frustum(radius, neck_r, body_h, body_h + shoulder_h, sections=20),
        ]
    )
    neck_y = body_h + shoulder_h
    neck = rod([0, neck_y, 0], [0, neck_y + neck_h, 0], neck_r, 16)
    cap = rod([0, neck_y + neck_h, 0], [0, neck_y + neck_h + 0.05, 0], neck_r * 1.15, 16)
    return [
        Piece("body", body, "glass"),
        Piece("neck", neck, "glass"),
        Piece("cap", cap, "plastic"),
    ]


def build_knife(rng) -> list[Piece]:
    handle_l, blade_l = uniform(rng, 0.25, 0.35), uniform(rng, 0.45, 0.7)
    blade_w = uniform(rng, 0.05, 0.1)
    tip_drop = uniform(rng, 0.0, 1.0) * blade_w
    profile = np.array(
        [[0, 0], [0, blade_w], [blade_l * 0.8, blade_w], [blade_l, tip_drop], [blade_l * 0.9, 0]]
    )
    half_t = 0.006
    points = [[x, y, z] for x, y in profile for z in (-half_t, half_t)]
    blade = trimesh.convex.convex_hull(np.array(points) + [handle_l, 0, 0])
    if rng.random() < 0.5:
        handle = box([handle_l, blade_w * 0.8, 0.03], [handle_l / 2, blade_w * 0.45, 0])
    else:
        handle = trimesh.creation.capsule(height=handle_l - 0.04, radius=0.02, count=[8, 6])
        handle.apply_transform(rotation(np.pi / 2, [0, 1, 0]))
        handle.apply_translation([handle_l / 2, blade_w * 0.45, 0])
    return [Piece("blade", blade, "metal"), Piece("handle", handle, "wood")]


def build_guitar(rng) -> list[Piece]:
    lower, upper = uniform(rng, 0.18, 0.24), uniform(rng, 0.13, 0.18)
    thick = uniform(rng, 0.06, 0.1)
    lower_bout = rod([0, lower, -thick / 2], [0, lower, thick / 2], lower, 20)
    upper_y = lower * 2 + upper * 0.6
    upper_bout = rod([0, upper_y, -thick / 2], [0, upper_y, thick / 2], upper, 20)
    pieces = [Piece("body", trimesh.util.concatenate([lower_bout, upper_bout]), "wood")]
    neck_l = uniform(rng, 0.45, 0.6)
    neck_y0 = upper_y + upper * 0.8
    pieces.append(
        Piece("neck", box([0.05, neck_l, 0.03], [0, neck_y0 + neck_l / 2, thick / 4]), "wood")
    )
    head = box([0.08, 0.16, 0.025], [0, 0.08, 0])
    head.apply_transform(rotation(-uniform(rng, 0.0, 0.25), [1, 0, 0]))
    head.apply_translation([0, neck_y0 + neck_l, thick / 4])
    pieces.append(Piece("head", head, "wood"))
    return pieces


def build_teapot(rng) -> list[Piece]:
    radius, squash = uniform(rng, 0.4, 0.5), uniform(rng, 0.65, 0.85)
    body = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    body.apply_scale([1.0, squash, 1.0])
    centre_y = radius * squash
    body.apply_translation([0, centre_y, 0])
    pieces = [Piece("body", body, "ceramic")]
    # the spout leaves the lower side, tilted up and out, tapering
    start = np.array([radius * 0.75, centre_y - radius * squash * 0.2, 0])
    tilt = uniform(rng, 0.6, 1.0)
    length = uniform(rng, 0.35, 0.5)
    spout = frustum(uniform(rng, 0.07, 0.09), uniform(rng, 0.03, 0.045), 0, length)
    spout.apply_transform(rotation(-(np.pi / 2 - tilt), [0, 0, 1]))
    spout.apply_translation(start)
    pieces.append(Piece("spout", spout, "ceramic"))
    major, minor = uniform(rng, 0.17, 0.24), uniform(rng, 0.025, 0.04)
    handle = trimesh.creation.torus(
        major_radius=major, minor_radius=minor, major_sections=16, minor_sections=8
    )
    handle.apply_translation([-(radius * 0.9 + major * 0.5), centre_y, 0])
    pieces.append(Piece("handle", handle, "ceramic"))
    lid_r = radius * uniform(rng, 0.35, 0.5)
    top = 2 * centre_y - 0.01
    lid = trimesh.util.concatenate(
        [
            rod([0, top, 0], [0, top + 0.05, 0], lid_r, 16),
            rod([0, top + 0.05, 0], [0, top + 0.1, 0], 0.04, 8),
        ]
    )
    pieces.append(Piece("lid", lid, "ceramic"))
    return pieces
