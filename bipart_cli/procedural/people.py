"""How are people built? A humanoid and a hand, each in a random pose; both face +z."""

from __future__ import annotations

import numpy as np
import trimesh

from .primitives import Piece, capsule, ellipsoid, turn, uniform
from .skeleton import DOWN, X, Y, Z, chain, fit, frame, limb

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
