"""Appliances: boxes with a door. Microwaves, ovens and ranges, front-loading washers and
dryers, fridges; ``body`` is the cabinet and everything fixed to it (control panel, knobs,
buttons, cooktop, feet), ``door`` each panel that swings open, its handle and window."""

from __future__ import annotations

import numpy as np
import trimesh

from .primitives import Piece, box, rod, uniform

KINDS = ("microwave", "oven", "washer", "fridge")


def build_appliance(rng) -> list[Piece]:
    """A microwave (a door over most of the front, a control panel beside or under it), an
    oven or range (a drop-down door under a control strip, burners on top sometimes), a
    front-loading washer or dryer (a round door under a control strip) or a fridge (one
    door, a freezer door over it, or two side by side). The door stands proud of the front
    or sits flush in it; a bar handle, a knob or none."""
    kind = str(rng.choice(KINDS, p=[0.35, 0.2, 0.2, 0.25]))
    if kind == "microwave":
        size = [uniform(rng, 0.42, 0.65), uniform(rng, 0.25, 0.4), uniform(rng, 0.3, 0.5)]
    elif kind == "oven":
        size = [uniform(rng, 0.5, 0.9), uniform(rng, 0.75, 0.95), uniform(rng, 0.5, 0.7)]
    elif kind == "washer":
        size = [uniform(rng, 0.55, 0.7), uniform(rng, 0.8, 0.95), uniform(rng, 0.5, 0.7)]
    else:
        size = [uniform(rng, 0.55, 0.95), uniform(rng, 1.3, 1.9), uniform(rng, 0.55, 0.75)]
    width, height, depth = size
    base = 0.0 if kind == "microwave" or rng.random() < 0.5 else uniform(rng, 0.02, 0.08)
    wall = uniform(rng, 0.01, 0.03)
    body = [_shell(width, height, depth, base, wall), *_inside(rng, kind, size, base, wall)]
    door_t = depth * uniform(rng, 0.04, 0.1)
    proud = rng.random() < 0.7  # the door on the front, or set into it
    front = depth / 2 + (door_t / 2 if proud else -door_t / 2)
    handle = str(rng.choice(["bar", "knob", "none"], p=[0.55, 0.15, 0.3]))
    doors, panels = _layout(rng, kind, width, height, base)
    side_by_side = len(doors) == 2 and doors[0][1] == doors[1][0]
    pieces = [
        Piece(
            "door", _door(rng, frame, front, door_t, handle, kind, side_by_side and i == 1), "metal"
        )
        for i, frame in enumerate(doors)
    ]
    for x0, x1, y0, y1 in panels:  # control panels: part of the body, with knobs or buttons
        body.append(box([x1 - x0, y1 - y0, door_t], [(x0 + x1) / 2, (y0 + y1) / 2, front]))
        body += _controls(rng, (x0, x1, y0, y1), front + door_t / 2)
    if kind == "oven" and rng.random() < 0.7:  # a cooktop's burners
        for sx in (-1, 1):
            for sz in (-1, 1):
                centre = [sx * width / 4, height, sz * depth / 4]
                body.append(rod(centre, np.add(centre, [0, 0.015, 0]), 0.06 * width, 16))
    return [Piece("body", trimesh.util.concatenate(body), "metal"), *pieces]


def _shell(width, height, depth, base, wall) -> trimesh.Trimesh:
    """The cabinet: walls of thickness ``wall`` (sides, top, bottom, back) from ``base`` up,
    open at the front (the doors and control panels close it), on four feet when
    ``base`` > 0."""
    tall, middle = height - base, (height + base) / 2
    parts = [
        box([wall, tall, depth], [-(width - wall) / 2, middle, 0]),
        box([wall, tall, depth], [(width - wall) / 2, middle, 0]),
        box([width, wall, depth], [0, height - wall / 2, 0]),
        box([width, wall, depth], [0, base + wall / 2, 0]),
        box([width - 2 * wall, tall - 2 * wall, wall], [0, middle, -(depth - wall) / 2]),
    ]
    if base > 0:
        foot = min(0.05, width / 8)
        for sx in (-1, 1):
            for sz in (-1, 1):
                centre = [sx * (width / 2 - foot), base / 2, sz * (depth / 2 - foot)]
                parts.append(box([foot, base, foot], centre))
    return trimesh.util.concatenate(parts)


def _inside(rng, kind, size, base, wall) -> list[trimesh.Trimesh]:
    """What is seen through an open door: a fridge's or oven's shelves, a washer's drum."""
    width, height, depth = size
    inner = [width - 2 * wall, depth - 2 * wall]
    if kind == "washer":
        radius = min(width, height - base) * uniform(rng, 0.3, 0.4)
        y = base + (height - base) * 0.5
        return [rod([0, y, -depth / 2 + wall], [0, y, depth / 2 - 2 * wall], radius, 24)]
    count = {"fridge": int(rng.integers(1, 5)), "oven": int(rng.integers(0, 3))}.get(kind, 0)
    levels = np.linspace(base + wall, height - wall, count + 2)[1:-1]
    return [box([inner[0], 0.01, inner[1]], [0, y, 0]) for y in levels]


def _layout(rng, kind, width, height, base) -> tuple[list[tuple], list[tuple]]:
    """The front's doors and control panels, each a frame (x0, x1, y0, y1)."""
    margin = 0.01
    x0, x1, y0, y1 = -width / 2 + margin, width / 2 - margin, base + margin, height - margin
    if kind == "microwave":
        if rng.random() < 0.75:  # the panel beside the door
            split = x0 + (x1 - x0) * uniform(rng, 0.65, 0.8)
            return [(x0, split, y0, y1)], [(split, x1, y0, y1)]
        split = y0 + (y1 - y0) * uniform(rng, 0.7, 0.82)  # or a strip under or over it
        if rng.random() < 0.5:
            return [(x0, x1, y0, split)], [(x0, x1, split, y1)]
        low = y1 - (split - y0)
        return [(x0, x1, low, y1)], [(x0, x1, y0, low)]
    if kind in ("oven", "washer"):
        strip = y1 - (y1 - y0) * uniform(rng, 0.1, 0.2)
        low = y0 + (y1 - y0) * uniform(rng, 0.0, 0.15)
        if kind == "washer":  # a round door on a front panel
            return [(x0, x1, y0, strip)], [(x0, x1, strip, y1), (x0, x1, y0, strip)]
        panels = [(x0, x1, strip, y1)] + ([(x0, x1, y0, low)] if low > y0 + 0.02 else [])
        return [(x0, x1, low, strip)], panels
    style = str(rng.choice(["one", "freezer", "side"], p=[0.3, 0.45, 0.25]))
    if style == "side" and width > 0.7:
        middle = (x0 + x1) / 2
        return [(x0, middle, y0, y1), (middle, x1, y0, y1)], []
    if style == "freezer":
        split = y0 + (y1 - y0) * uniform(rng, 0.6, 0.75)
        return [(x0, x1, y0, split), (x0, x1, split, y1)], []
    return [(x0, x1, y0, y1)], []


def _door(rng, frame, front, thickness, handle, kind, free_left=False) -> trimesh.Trimesh:
    """A panel filling ``frame`` at depth ``front`` (a washer's is round, on its front
    panel); a window on it sometimes, and a handle by its free edge, the right one unless
    ``free_left`` (an oven's across its top)."""
    x0, x1, y0, y1 = frame
    gap = 0.004
    w, h = x1 - x0 - 2 * gap, y1 - y0 - 2 * gap
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    face = front + thickness / 2
    if kind == "washer":
        radius = min(w, h) * uniform(rng, 0.3, 0.42)
        cy = y0 + h * uniform(rng, 0.45, 0.6)
        parts = [rod([cx, cy, face], [cx, cy, face + thickness], radius, 24)]  # on the panel
        parts.append(rod([cx, cy, face], [cx, cy, face + thickness * 1.5], radius * 0.75, 24))
        return trimesh.util.concatenate(parts)
    parts = [box([w, h, thickness], [cx, cy, front])]
    if kind in ("microwave", "oven") and rng.random() < 0.6:  # a window, set in a little
        parts.append(box([w * 0.65, h * 0.55, 0.004], [cx - w * 0.05, cy, face + 0.002]))
    if handle == "none":
        return trimesh.util.concatenate(parts)
    if kind == "oven":  # across the top of a drop-down door
        at, half = [cx, y1 - 0.05, face], [w * 0.38, 0, 0]
    else:
        edge = x0 + 0.04 if free_left else x1 - 0.04
        at, half = [edge, cy, face], [0, min(h * 0.3, 0.3), 0]
    if handle == "knob":
        parts.append(rod(at, np.add(at, [0, 0, 0.03]), 0.015, 10))
    else:
        bar = np.add(at, [0, 0, 0.035])
        parts.append(rod(np.subtract(bar, half), np.add(bar, half), 0.01, 8))
        for sign in (-1, 1):
            post = np.add(at, np.multiply(sign, half))
            parts.append(rod(post, np.add(post, [0, 0, 0.035]), 0.007, 6))
    return trimesh.util.concatenate(parts)


def _controls(rng, frame, face) -> list[trimesh.Trimesh]:
    """Knobs or buttons on a control panel ``frame`` whose outer face is at ``face``."""
    x0, x1, y0, y1 = frame
    wide = (x1 - x0) > (y1 - y0)
    count = int(rng.integers(1, 5))
    size = min(x1 - x0, y1 - y0) * 0.25
    out = []
    for t in np.linspace(0, 1, count + 2)[1:-1]:
        x = x0 + t * (x1 - x0) if wide else (x0 + x1) / 2
        y = (y0 + y1) / 2 if wide else y1 - t * (y1 - y0)
        if rng.random() < 0.5:
            out.append(rod([x, y, face], [x, y, face + 0.02], size, 12))
        else:
            out.append(box([size * 1.5, size, 0.01], [x, y, face + 0.005]))
    return out
