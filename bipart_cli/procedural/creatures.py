"""Creatures: humanoid, quadruped, bird, fish, hand, octopus, each in a random pose.

Each builder draws proportions and a pose (joint angles within plausible ranges: limbs
bent, arms raised or lowered, head turned, wings spread or folded, fingers and tentacles
curled) from ``rng``, walks a small skeleton of joints, and skins each segment with a
capsule, an ellipsoid, a tube or a thin hull. :func:`fit` then puts the shape in the
generator's frame: Y-up, its largest extent one unit, its lowest point on y = 0, centred
over the origin. Humanoids and hands face +z; quadrupeds, birds and fish head along +x.
"""

from __future__ import annotations

import numpy as np
import trimesh

from .primitives import Piece, capsule, cone, ellipsoid, tube, turn, uniform

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


# --- humanoid --------------------------------------------------------------------------


def _humanoid_arm(rng, shoulder, torso, side, length, radius) -> trimesh.Trimesh:
    """An arm from ``shoulder`` (3,): raised sideways, swung forward or back, elbow bent.

    ``torso`` (3, 3) is the torso's rotation; ``side`` +1 or -1 (x of the shoulder).
    """
    raised = uniform(rng, 0.15, 2.7)  # 0: hanging, pi / 2: level, more: overhead
    swing = uniform(rng, -0.5, 1.4)  # positive: forward (+z)
    elbow = uniform(rng, 0.0, 1.8) * rng.random()  # the forearm folds forward, often a little
    shoulder_turn = torso @ turn(side * raised, Z) @ turn(-swing, X)
    upper = shoulder_turn @ DOWN
    fore = shoulder_turn @ turn(-elbow, X) @ DOWN
    joints = chain(shoulder, [upper, fore], [length * 0.52, length * 0.48])
    hand_axes = frame(fore, shoulder_turn @ Z)
    hand = ellipsoid(
        joints[-1] + fore * radius * 1.6, radius * np.array([1.7, 1.2, 0.7]), hand_axes, 1
    )
    return trimesh.util.concatenate([limb(joints, [radius, radius * 0.85]), hand])


def _humanoid_stance(rng) -> list[tuple[float, float]]:
    """(thigh flex, knee bend) of the two legs, in radians: standing, walking, crouching
    or lifting one leg. Flex swings the thigh forward (+z); the knee folds the shin back."""
    stance = rng.choice(["stand", "walk", "crouch", "lift"])
    if stance == "stand":
        return [(uniform(rng, -0.1, 0.15), uniform(rng, 0.0, 0.15)) for _ in range(2)]
    if stance == "walk":
        stride = uniform(rng, 0.2, 0.5)
        legs = [(stride, uniform(rng, 0.0, 0.2)), (-stride, uniform(rng, 0.2, 0.7))]
    elif stance == "crouch":
        legs = [(uniform(rng, 0.7, 1.2), uniform(rng, 1.2, 1.8)) for _ in range(2)]
    else:
        legs = [(uniform(rng, 0.5, 1.4), uniform(rng, 0.2, 1.6)), (0.0, uniform(rng, 0.0, 0.2))]
    return legs[::-1] if rng.random() < 0.5 else legs


def _humanoid_leg(rng, hip, side, pose, length, radius) -> trimesh.Trimesh:
    """A leg from ``hip`` (3,) in ``pose`` (thigh flex, knee bend), spread a little sideways,
    a foot pointing forward."""
    flex, knee = pose
    hip_turn = turn(side * uniform(rng, 0.0, 0.2), Z) @ turn(-flex, X)
    shin_turn = hip_turn @ turn(knee, X)
    joints = chain(hip, [hip_turn @ DOWN, shin_turn @ DOWN], [length * 0.5, length * 0.5])
    # the foot stays roughly level: it turns back by part of the leg's net tilt
    foot_turn = shin_turn @ turn(-(knee - flex) * 0.7, X)
    foot_length = length * uniform(rng, 0.25, 0.3)
    foot = ellipsoid(
        joints[-1] + foot_turn @ np.array([0, -radius * 0.6, foot_length * 0.3]),
        [foot_length / 2, radius * 0.7, radius * 1.1],
        frame(foot_turn @ Z, foot_turn @ Y),
        1,
    )
    return trimesh.util.concatenate([limb(joints, [radius, radius * 0.8]), foot])


def _humanoid_head(rng, neck_base, torso, radius) -> trimesh.Trimesh:
    """Neck, skull and nose from ``neck_base`` (3,), turned, nodded and tilted."""
    head_turn = (
        torso
        @ turn(uniform(rng, -0.9, 0.9), Y)
        @ turn(uniform(rng, -0.35, 0.45), X)
        @ turn(uniform(rng, -0.25, 0.25), Z)
    )
    neck_top = neck_base + head_turn @ Y * radius * 0.9
    centre = neck_top + head_turn @ Y * radius
    skull = ellipsoid(centre, radius * np.array([0.85, 1.1, 0.95]), head_turn)
    # the nose shows which way the head faces
    nose = ellipsoid(
        centre + head_turn @ np.array([0, -0.15, 0.95]) * radius,
        radius * np.array([0.16, 0.22, 0.2]),
        head_turn,
        1,
    )
    return trimesh.util.concatenate([capsule(neck_base, neck_top, radius * 0.45), skull, nose])


def build_humanoid(rng) -> list[Piece]:
    """A standing, walking, crouching or reaching person: head, torso, two arms, two legs."""
    leg_length, torso_length = uniform(rng, 0.46, 0.56), uniform(rng, 0.28, 0.34)
    shoulder, hip = uniform(rng, 0.09, 0.12), uniform(rng, 0.05, 0.07)
    depth = uniform(rng, 0.05, 0.075)
    pelvis = np.array([0.0, leg_length, 0.0])
    # the upper body leans, twists and bends sideways about the pelvis
    torso = (
        turn(uniform(rng, -0.4, 0.4), Y)
        @ turn(uniform(rng, -0.15, 0.45), X)
        @ turn(uniform(rng, -0.15, 0.15), Z)
    )
    chest_centre = pelvis + torso @ Y * torso_length * 0.66
    body = trimesh.util.concatenate(
        [
            ellipsoid(chest_centre, [shoulder, torso_length * 0.36, depth], torso),
            capsule(pelvis + torso @ Y * 0.05, chest_centre, shoulder * 0.65),
            ellipsoid(pelvis, [hip * 1.5, 0.06, depth * 0.9], torso, 1),
        ]
    )
    pieces = [
        Piece("head", _humanoid_head(rng, pelvis + torso @ Y * torso_length, torso, 0.065), "skin"),
        Piece("torso", body, "fabric"),
    ]
    arm_length, arm_radius = uniform(rng, 0.3, 0.36), uniform(rng, 0.022, 0.03)
    for side in (1, -1):
        root = pelvis + torso @ np.array([side * shoulder, torso_length * 0.9, 0])
        pieces.append(
            Piece("arm", _humanoid_arm(rng, root, torso, side, arm_length, arm_radius), "skin")
        )
    leg_radius = uniform(rng, 0.03, 0.042)
    for side, pose in zip((1, -1), _humanoid_stance(rng), strict=True):
        root = pelvis + np.array([side * hip, -0.02, 0])
        leg = _humanoid_leg(rng, root, side, pose, leg_length, leg_radius)
        pieces.append(Piece("leg", leg, "fabric"))
    return fit(pieces)


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


# --- fish ------------------------------------------------------------------------------


def bend(vertices, curvature, head_x) -> np.ndarray:
    """``vertices`` (n, 3) bent sideways (about y) along an arc of ``curvature`` that
    starts at x = ``head_x``: a swimming fish's curve. Lengths along x are kept."""
    u = head_x - vertices[:, 0]  # distance back from the head
    angle = curvature * u
    # the arc's point and normal at u (written with sinc so curvature 0 is exact)
    along = u * np.sinc(angle / np.pi)
    aside = 0.5 * curvature * u**2 * np.sinc(angle / (2 * np.pi)) ** 2
    out = vertices.copy()
    out[:, 0] = head_x - along + vertices[:, 2] * np.sin(angle)
    out[:, 2] = aside + vertices[:, 2] * np.cos(angle)
    return out


def _fish_body(rng, length, height, width) -> trimesh.Trimesh:
    """A spindle: an ellipsoid whose back half narrows to the tail's stalk."""
    body = ellipsoid([0, 0, 0], [length / 2, height, width], subdivisions=3)
    taper = uniform(rng, 0.4, 0.65)
    back = np.clip(-body.vertices[:, 0] / (length / 2), 0, 1)
    body.vertices[:, 1:] *= (1 - taper * back**1.5)[:, None]
    return body


def _fish_fins(rng, length, height, width) -> list[trimesh.Trimesh]:
    """A dorsal fin on the back, two pectoral fins behind the head (spread and swept at
    random) and sometimes an anal fin below: thin plates, (3 or 4,) meshes."""
    side_plane = np.eye(3)  # fins in the x-y plane, thin along z
    fins = []
    base, tall = length * uniform(rng, 0.15, 0.35), height * uniform(rng, 0.6, 1.3)
    at = uniform(rng, -0.15, 0.05) * length  # the fin's back end
    tip = at + base * uniform(rng, -0.1, 0.4)  # raked back, or not
    fins.append(
        thin_hull(
            [[at, height * 0.75], [at + base, height * 0.7], [tip, height * 0.7 + tall]],
            side_plane,
            np.zeros(3),
            width * 0.12,
        )
    )
    pectoral = length * uniform(rng, 0.1, 0.18)
    for side in (1, -1):
        # spread out from the side and swept back at random
        direction = turn(side * uniform(rng, 0.3, 1.2), Y) @ turn(uniform(rng, -0.5, 0.2), Z) @ -X
        axes = frame(direction, Y)
        root = np.array([length * 0.22, -height * 0.3, side * width * 0.6])
        fins.append(
            thin_hull(
                [[0, 0], [0, pectoral * 0.45], [pectoral, -pectoral * 0.2]],
                axes,
                root,
                width * 0.08,
            )
        )
    if rng.random() < 0.6:
        anal = length * uniform(rng, 0.08, 0.16)
        x0 = -length * 0.2
        fins.append(
            thin_hull(
                [
                    [x0, -height * 0.4],
                    [x0 + anal, -height * 0.6],
                    [x0 - anal * 0.6, -height * 0.6 - anal],
                ],
                side_plane,
                np.zeros(3),
                width * 0.1,
            )
        )
    return fins


def _fish_tail(rng, length, height, width) -> trimesh.Trimesh:
    """A forked or rounded tail fin at the stalk: two lobes, spread at random."""
    tail_length = length * uniform(rng, 0.15, 0.25)
    spread = uniform(rng, 0.5, 1.2) * tail_length
    stalk_x, stalk_h = -length * 0.46, height * 0.35
    lobes = []
    for up in (1, -1):
        outline = [
            [stalk_x + length * 0.04, 0],
            [stalk_x, up * stalk_h],
            [stalk_x - tail_length, up * spread],
            [stalk_x - tail_length * uniform(rng, 0.5, 0.9), 0],
        ]
        lobes.append(thin_hull(outline, np.eye(3), np.zeros(3), width * 0.1))
    return trimesh.util.concatenate(lobes)


def build_fish(rng) -> list[Piece]:
    """A fish bent mid-stroke: body, fins (dorsal, pectoral, maybe anal), forked tail."""
    length = 1.0
    height = uniform(rng, 0.08, 0.22)  # an eel .. a bream
    width = height * uniform(rng, 0.35, 0.6)
    pieces = [Piece("body", _fish_body(rng, length, height, width), "scales")]
    pieces += [Piece("fin", fin, "scales") for fin in _fish_fins(rng, length, height, width)]
    pieces.append(Piece("tail", _fish_tail(rng, length, height, width), "scales"))
    curvature = uniform(rng, -0.9, 0.9)  # the tail up to ~50 degrees aside
    pitch = turn(uniform(rng, -0.2, 0.2), Z)
    for piece in pieces:
        piece.mesh.vertices = bend(np.asarray(piece.mesh.vertices), curvature, length / 2) @ pitch.T
    return fit(pieces)


# --- hand ------------------------------------------------------------------------------


def _finger(rng, base, length, radius, spread) -> trimesh.Trimesh:
    """A three-joint finger from knuckle ``base`` (3,), pointing up, fanned by ``spread``
    and curled towards the palm (+z): mostly straight, or mostly curled."""
    level = uniform(rng, 0.7, 1.0) if rng.random() < 0.45 else uniform(rng, 0.0, 0.25)
    curls = np.cumsum(level * np.array([1.3, 1.6, 1.0]) + rng.uniform(-0.1, 0.1, 3))
    directions = [turn(spread, Z) @ turn(c, X) @ Y for c in curls]
    joints = chain(base, directions, length * np.array([0.45, 0.3, 0.25]))
    return limb(joints, radius * np.array([1.0, 0.92, 0.85]), (8, 4))


def _thumb(rng, base, length, radius, side) -> trimesh.Trimesh:
    """The thumb from ``base`` (3,) at the palm's ``side`` (+1: +x): spread out from the
    palm, turned in front of it, and curled back across it."""
    spread = uniform(rng, 0.3, 0.9)
    oppose = uniform(rng, 0.0, 0.8)
    curls = np.cumsum(rng.uniform(0.0, 0.4, 3))
    directions = [
        turn(-side * (spread - curl * 0.8), Z) @ turn(oppose + curl * 0.6, X) @ Y for curl in curls
    ]
    joints = chain(base, directions, length * np.array([0.4, 0.33, 0.27]))
    return limb(joints, radius * np.array([1.15, 1.0, 0.9]), (8, 4))


def _palm(length, width, thickness) -> trimesh.Trimesh:
    """A rounded slab ``width`` x ``length`` x ``thickness`` standing on y = 0: a sphere's
    vertices pushed towards a box's corners (a superellipsoid), so the fingers leave a
    straight top edge, not the tip of an egg."""
    palm = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    squared = np.sign(palm.vertices) * np.abs(palm.vertices) ** 0.45
    palm.vertices = squared * [width / 2, length / 2, thickness / 2] + [0, length / 2, 0]
    return palm


def build_hand(rng) -> list[Piece]:
    """A right or left hand, fingers up and palm to +z, in a random gesture (open, fist,
    pointing, ...) and wrist angle: palm, four fingers, thumb."""
    palm_length = uniform(rng, 0.32, 0.38)
    palm_width = palm_length * uniform(rng, 0.8, 0.95)
    thickness = palm_length * uniform(rng, 0.16, 0.22)
    palm = _palm(palm_length, palm_width, thickness)
    pieces = [Piece("palm", palm, "skin")]
    side = 1 if rng.random() < 0.5 else -1  # the thumb's side: right or left hand
    finger_length = palm_length * uniform(rng, 0.85, 1.05)
    radius = palm_length * uniform(rng, 0.06, 0.075)
    fan = uniform(rng, 0.0, 0.15)
    for i, share in enumerate((0.9, 1.0, 0.95, 0.75)):  # index .. little finger
        x = side * palm_width * (0.36 - 0.24 * i)
        base = np.array([x, palm_length * (1.02 - 0.05 * abs(i - 1.2)), 0.0])
        finger = _finger(
            rng, base, finger_length * share, radius * (1 - 0.05 * i), side * fan * (1.2 - i)
        )
        pieces.append(Piece("finger", finger, "skin"))
    thumb_base = np.array([side * palm_width * 0.4, palm_length * 0.35, thickness * 0.3])
    pieces.append(
        Piece("thumb", _thumb(rng, thumb_base, finger_length * 0.8, radius * 1.1, side), "skin")
    )
    wrist = (
        turn(uniform(rng, -0.6, 0.6), Y)
        @ turn(uniform(rng, -0.4, 0.4), X)
        @ turn(uniform(rng, -0.25, 0.25), Z)
    )
    for piece in pieces:
        piece.mesh.vertices = np.asarray(piece.mesh.vertices) @ wrist.T
    return fit(pieces)


# --- octopus ---------------------------------------------------------------------------


def _tentacle(rng, hub, angle, mantle_radius) -> trimesh.Trimesh:
    """A tentacle from under the mantle at ``angle`` about y: first down and out (or now and
    then up), then curling towards its tip, upwards more often than not, with a corkscrew."""
    out = np.array([np.cos(angle), 0.0, np.sin(angle)])
    droop = uniform(rng, -0.9, -0.2) if rng.random() < 0.2 else uniform(rng, 0.2, 0.9)
    direction = unit(out * np.cos(droop) - Y * np.sin(droop))
    root = hub + out * mantle_radius * 0.55
    steps = np.linspace(0, 1, 10)
    curls = uniform(rng, -0.05, 0.25) * 0.3 - uniform(rng, -0.3, 1.0) * steps**2
    path = curled(
        root,
        direction,
        np.cross(Y, out),
        curls,
        mantle_radius * uniform(rng, 3.5, 6.0),
        uniform(rng, -0.15, 0.15),
    )
    radius = mantle_radius * uniform(rng, 0.22, 0.3)
    return tube(path, radius * np.linspace(1.0, 0.12, len(path)))


def build_octopus(rng) -> list[Piece]:
    """An octopus resting on or reaching with its arms: head (mantle and eyes), eight
    tentacles, each drooping, reaching and curling on its own."""
    mantle_radius = uniform(rng, 0.12, 0.18)
    hub = np.zeros(3)
    axes = turn(uniform(rng, -np.pi, np.pi), Y) @ turn(uniform(rng, -0.6, 0.6), Z)
    height = mantle_radius * uniform(rng, 1.2, 1.7)
    centre = hub + axes @ np.array([0, height * 0.85, 0])
    head = [ellipsoid(centre, [mantle_radius, height, mantle_radius], axes)]
    for side in (1, -1):
        eye = hub + axes @ np.array(
            [mantle_radius * 0.75, height * 0.1, side * mantle_radius * 0.5]
        )
        head.append(ellipsoid(eye, [mantle_radius * 0.22] * 3, subdivisions=1))
    pieces = [Piece("head", trimesh.util.concatenate(head), "mollusc")]
    start = uniform(rng, 0, np.pi / 4)
    for k in range(8):
        angle = start + k * np.pi / 4 + uniform(rng, -0.2, 0.2)
        pieces.append(Piece("tentacle", _tentacle(rng, hub, angle, mantle_radius), "mollusc"))
    return fit(pieces)
