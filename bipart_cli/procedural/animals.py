"""How are animals on legs built? A quadruped and a bird, each in a random pose; both head
along +x.
"""

from __future__ import annotations

import numpy as np
import trimesh

from .primitives import Piece, capsule, cone, ellipsoid, tube, turn, uniform
from .skeleton import DOWN, X, Y, Z, chain, curled, fit, frame, limb, thin_hull, unit

# --- quadruped -------------------------------------------------------------------------


def _quadruped_leg(rng, hip, front, lifted, length, radius, ground) -> trimesh.Trimesh:
    """A leg from ``hip`` (3,), swung forward or back; front knees fold back, hind hocks
    forward. A planted leg's lower segment reaches y = ``ground``; a ``lifted`` one folds
    more and hangs free."""
    swing = uniform(rng, -0.35, 0.35)  # positive: the foot forward (+x)
    fold = uniform(rng, 0.5, 1.1) if lifted else uniform(rng, 0.0, 0.25)
    if front:
        upper, lower = swing, swing - fold
    else:  # the thigh slopes forward, the shank back, like a hock
        upper, lower = swing + 0.35 + fold * 0.5, swing - 0.25 - fold * 0.5
    lengths = [length * 0.5, length * 0.5]
    if not lifted:  # all planted feet on one ground, whatever their angles
        lengths[1] = (hip[1] - ground - lengths[0] * np.cos(upper)) / np.cos(lower)
    joints = chain(hip, [turn(upper, Z) @ DOWN, turn(lower, Z) @ DOWN], lengths)
    return limb(joints, [radius, radius * 0.75])


def _quadruped_head(rng, neck_top, heading, radius) -> trimesh.Trimesh:
    """Skull, snout and two ears at ``neck_top`` (3,), looking along ``heading`` (3,)
    nodded up or down."""
    axes = frame(turn(uniform(rng, -0.7, 0.35), np.cross(heading, Y)) @ heading, Y)
    forward, up, right = axes.T
    centre = neck_top + forward * radius * 0.5 + up * radius * 0.4
    snout_length = radius * uniform(rng, 0.8, 1.8)
    parts = [
        ellipsoid(centre, radius * np.array([1.1, 0.9, 0.8]), axes),
        ellipsoid(
            centre + forward * (radius * 0.8 + snout_length * 0.4) - up * radius * 0.25,
            [snout_length * 0.55, radius * 0.5, radius * 0.5],
            axes,
            1,
        ),
    ]
    ear = radius * uniform(rng, 0.5, 1.1)
    for side in (1, -1):
        base = centre + up * radius * 0.7 + right * side * radius * 0.45 - forward * radius * 0.2
        parts.append(cone(base, base + ear * unit(up + right * side * 0.3), radius * 0.28, 6))
    return trimesh.util.concatenate(parts)


def _quadruped_tail(rng, centre, torso_axes, body_length, girth) -> trimesh.Trimesh:
    """A tapering tail from the rump: held low, level or high, wagged aside, curled."""
    root = centre + torso_axes @ np.array([-body_length * 0.47, girth * 0.4, 0])
    lift = uniform(rng, -1.2, 1.0)  # from hanging back-down to raised
    direction = turn(uniform(rng, -0.6, 0.6), Y) @ turn(-lift, Z) @ -X
    curl = uniform(rng, -0.3, 0.3)
    path = curled(
        root, direction, np.cross(direction, Y), np.full(8, curl), uniform(rng, 0.15, 0.45)
    )
    radius = girth * uniform(rng, 0.15, 0.3)
    return tube(path, np.linspace(radius, radius * 0.35, len(path)), sections=6)


def build_quadruped(rng) -> list[Piece]:
    """A dog-, horse- or cat-like four-legged animal: head, torso (with neck), four legs,
    tail; standing, walking, grazing or looking round."""
    body_length, girth = uniform(rng, 0.45, 0.65), uniform(rng, 0.08, 0.13)
    width, leg_length = girth * uniform(rng, 0.75, 1.0), uniform(rng, 0.24, 0.45)
    centre = np.array([0.0, leg_length + girth * 0.6, 0.0])
    torso_axes = turn(uniform(rng, -0.1, 0.1), Z)
    # the neck rises from the chest at a random angle (grazing .. head high) and turns
    heading = turn(uniform(rng, -0.6, 0.6), Y) @ X
    raise_angle = uniform(rng, -0.5, 1.1)
    neck_dir = unit(heading * np.cos(raise_angle) + Y * np.sin(raise_angle))
    neck_base = centre + torso_axes @ np.array([body_length * 0.42, girth * 0.3, 0])
    neck_top = neck_base + neck_dir * uniform(rng, 0.1, 0.28)
    torso = trimesh.util.concatenate(
        [
            ellipsoid(centre, [body_length / 2, girth, width], torso_axes),
            capsule(neck_base, neck_top, girth * 0.4),
        ]
    )
    pieces = [
        Piece("head", _quadruped_head(rng, neck_top, heading, girth * 0.7), "fur"),
        Piece("torso", torso, "fur"),
    ]
    leg_radius = girth * uniform(rng, 0.25, 0.35)
    lifted = int(rng.integers(4)) if rng.random() < 0.4 else -1  # one leg off the ground
    for i, (sx, sz) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
        hip = centre + torso_axes @ np.array(
            [sx * body_length * 0.34, -girth * 0.3, sz * width * 0.55]
        )
        leg = _quadruped_leg(
            rng, hip, sx > 0, i == lifted, leg_length + girth * 0.3, leg_radius, 0.0
        )
        pieces.append(Piece("leg", leg, "fur"))
    pieces.append(
        Piece("tail", _quadruped_tail(rng, centre, torso_axes, body_length, girth), "fur")
    )
    return fit(pieces)


# --- bird ------------------------------------------------------------------------------


def _bird_wing(rng, shoulder, body_axes, side, length, chord, spread) -> trimesh.Trimesh:
    """A wing from ``shoulder`` (3,): folded along the body (``spread`` 0) or spread out to
    ``side`` (+1: +z; ``spread`` 1), raised or lowered, bent at the wrist."""
    sweep = turn(side * spread * np.pi / 2, Y)
    lift = turn(-side * spread * uniform(rng, -0.4, 1.1), X)
    arm = body_axes @ lift @ sweep @ -X
    # the wing's plane: against the body's side when folded, level when spread
    normal = body_axes @ lift @ unit((1 - spread) * side * Z + spread * Y + 1e-3 * Y)
    wrist_bend = turn(side * uniform(rng, 0.0, 0.6) * spread, normal)
    hand = wrist_bend @ arm
    wrist = shoulder + arm * length * 0.45
    return trimesh.util.concatenate(
        [
            ellipsoid(
                shoulder + arm * length * 0.22,
                [length * 0.26, chord * 0.06, chord / 2],
                frame(arm, normal),
                1,
            ),
            ellipsoid(
                wrist + hand * length * 0.27,
                [length * 0.32, chord * 0.04, chord * 0.4],
                frame(hand, normal),
                1,
            ),
        ]
    )


def _bird_leg(rng, hip, length, radius, ground, tucked) -> trimesh.Trimesh:
    """A leg from ``hip`` (3,): thigh forward, shank down to y = ``ground`` (or tucked up),
    three toes forward and one back."""
    thigh_angle = uniform(rng, 0.3, 0.8)
    shank_angle = uniform(rng, -2.4, -1.6) if tucked else uniform(rng, -0.35, 0.05)
    lengths = [length * 0.4, length * 0.6]
    if not tucked:  # both feet on one ground
        lengths[1] = (hip[1] - ground - lengths[0] * np.cos(thigh_angle)) / np.cos(shank_angle)
    joints = chain(hip, [turn(thigh_angle, Z) @ DOWN, turn(shank_angle, Z) @ DOWN], lengths)
    ankle = joints[-1]
    toe_length = radius * uniform(rng, 7.0, 11.0)  # with the body, not the legs
    toes = [
        capsule(ankle, ankle + toe_length * (turn(angle, Y) @ X), radius * 0.6, (6, 4))
        for angle in (-0.45, 0.0, 0.45)
    ]
    toes.append(capsule(ankle, ankle - toe_length * 0.6 * X, radius * 0.6, (6, 4)))
    return trimesh.util.concatenate([limb(joints, [radius * 1.8, radius]), *toes])


def _bird_head(rng, neck_base, body_axes, radius) -> trimesh.Trimesh:
    """Neck, round head and beak: the neck raised, the head turned, the beak tilted."""
    heading = turn(uniform(rng, -1.0, 1.0), Y) @ X
    neck = body_axes @ turn(uniform(rng, 0.6, 1.4), Z) @ X
    centre = neck_base + neck * uniform(rng, 0.04, 0.14) + Y * radius * 0.3
    beak_dir = turn(uniform(rng, -0.6, 0.25), np.cross(heading, Y)) @ heading
    beak_base = centre + beak_dir * radius * 0.8
    beak = cone(beak_base, beak_base + beak_dir * radius * uniform(rng, 0.6, 1.8), radius * 0.35)
    return trimesh.util.concatenate(
        [capsule(neck_base, centre, radius * 0.6), ellipsoid(centre, [radius] * 3), beak]
    )


def _bird_tail(rng, root, body_axes, length) -> trimesh.Trimesh:
    """A fan of tail feathers from ``root`` (3,), raised or lowered and spread."""
    axes = body_axes @ turn(uniform(rng, -0.5, 0.4), Z) @ turn(uniform(rng, -0.3, 0.3), Y)
    # the fan lies in the plane of the tail's direction (-x) and its width (z)
    plane = np.stack([-axes[:, 0], axes[:, 2], axes[:, 1]], 1)
    half = length * uniform(rng, 0.15, 0.4)
    outline = [[0, -length * 0.1], [0, length * 0.1], [length, -half], [length, half]]
    return thin_hull(outline, plane, root, length * 0.04)


def build_bird(rng) -> list[Piece]:
    """A perching or wading bird: head (with neck and beak), body, two wings (folded or
    spread), tail fan, two legs."""
    length = uniform(rng, 0.3, 0.42)
    height = length * uniform(rng, 0.2, 0.3)
    width = height * uniform(rng, 0.8, 1.0)
    centre = np.zeros(3)
    body_axes = turn(uniform(rng, 0.1, 0.8), Z)  # the front raised: perching .. upright
    pieces = [
        Piece(
            "head",
            _bird_head(
                rng,
                centre + body_axes @ np.array([length * 0.4, height * 0.4, 0]),
                body_axes,
                height * uniform(rng, 0.4, 0.55),
            ),
            "feathers",
        ),
        Piece("body", ellipsoid(centre, [length / 2, height, width], body_axes), "feathers"),
    ]
    spread = uniform(rng, 0.5, 1.0) if rng.random() < 0.6 else uniform(rng, 0.05, 0.15)
    wing_length, chord = length * uniform(rng, 0.9, 1.5), length * uniform(rng, 0.3, 0.45)
    for side in (1, -1):
        shoulder = centre + body_axes @ np.array([length * 0.15, height * 0.55, side * width * 0.8])
        wing = _bird_wing(rng, shoulder, body_axes, side, wing_length, chord, spread)
        pieces.append(Piece("wing", wing, "feathers"))
    tail_root = centre + body_axes @ np.array([-length * 0.42, height * 0.1, 0])
    pieces.append(
        Piece(
            "tail",
            _bird_tail(rng, tail_root, body_axes, length * uniform(rng, 0.5, 0.8)),
            "feathers",
        )
    )
    leg_length, leg_radius = length * uniform(rng, 0.5, 1.3), length * 0.02
    # now and then one leg is drawn up, and the bird stands on the other
    tucked_side = int(rng.choice([1, -1])) if rng.random() < 0.2 else 0
    for side in (1, -1):
        hip = centre + np.array([0.0, -height * 0.6, side * width * 0.45])
        ground = hip[1] - leg_length * 0.9
        leg = _bird_leg(rng, hip, leg_length, leg_radius, ground, side == tucked_side)
        pieces.append(Piece("leg", leg, "keratin"))
    return fit(pieces)
