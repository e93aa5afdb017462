"""How are sea creatures built? A fish bent mid-stroke and an octopus, each in a random
pose; the fish heads along +x.
"""

from __future__ import annotations

import numpy as np
import trimesh

from .primitives import Piece, ellipsoid, tube, turn, uniform
from .skeleton import X, Y, Z, curled, fit, frame, thin_hull, unit

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
