"""Furniture: chair, table, bed, sofa, bookshelf, lamp, cabinet. Each builder draws a shape's proportions and optional parts from ``rng``."""

from __future__ import annotations

import numpy as np
import trimesh

from .primitives import (
    Piece,
    box,
    lathe,
    leg_mesh,
    rod,
    rotation,
    rounded_box,
    tube,
    uniform,
)

BACKS = ("panel", "padded", "ladder")  # a chair's back styles


def build_chair(rng) -> list[Piece]:
    """A chair: a board or cushioned seat, square or rounded; a panel, padded or ladder back
    (arched sometimes); four legs (sometimes with rails between them) or an office pedestal;
    arms sometimes.

    ``leg`` names whatever holds the seat up: legs, their rails, a column and its star.
    """
    width, depth = uniform(rng, 0.40, 0.62), uniform(rng, 0.38, 0.58)
    seat_y, seat_t = uniform(rng, 0.38, 0.52), uniform(rng, 0.03, 0.07)
    office = rng.random() < 0.25
    cushioned = rng.random() < (0.8 if office else 0.45)
    corner = uniform(rng, 0.05, 0.5) * min(width, depth) if rng.random() < 0.3 else 0.0
    backs, odds = (["panel", "padded"], None) if office else (BACKS, [0.25, 0.25, 0.5])
    back_style = str(rng.choice(backs, p=odds))
    leg_t = uniform(rng, 0.03, 0.09)
    inset = max(uniform(rng, 0.0, 0.04), 0.3 * corner)  # legs stay under a rounded seat
    post = (width / 2 - inset - leg_t / 2, depth / 2 - inset - leg_t / 2)  # rear legs' x, z

    seat = rounded_box([width, seat_t, depth], [0, seat_y + seat_t / 2, 0], corner)
    top = seat_y + seat_t
    if cushioned:
        pad_t = uniform(rng, 0.05, 0.12)
        pad = rounded_box([width * 0.94, pad_t, depth * 0.94], [0, top + pad_t / 2, 0], corner)
        seat, top = trimesh.util.concatenate([seat, pad]), top + pad_t
    back = _chair_back(rng, back_style, width, depth, top, post, leg_t)
    pieces = [
        Piece("back", back, "fabric" if back_style == "padded" else "wood"),
        Piece("seat", seat, "fabric" if cushioned else "wood"),
    ]
    pieces += _office_base(rng, seat_y, width) if office else _chair_legs(rng, seat_y, post, leg_t)
    if rng.random() < 0.4:
        pieces += chair_arms(rng, width, depth, top)
    return pieces


def chair_arms(rng, width: float, depth: float, top: float) -> list[Piece]:
    """Two arms beside a seat of ``width`` x ``depth`` whose top is at height ``top``: a rest
    on an upright at each side."""
    arm_y, arm_t = top + uniform(rng, 0.15, 0.25), uniform(rng, 0.03, 0.05)
    arms = []
    for sx in (-1, 1):
        ax = sx * (width / 2 + arm_t / 2)
        rest = box([arm_t, arm_t, depth * 0.85], [ax, arm_y, 0.02])
        upright = box([arm_t, arm_y - top, arm_t], [ax, (arm_y + top) / 2, depth * 0.35])
        arms.append(Piece("arm", trimesh.util.concatenate([rest, upright]), "wood"))
    return arms


def _chair_back(rng, style, width, depth, top, post, leg_t) -> trimesh.Trimesh:
    """The back, standing on the seat's rear edge and leaning back up to 14 degrees: a thin
    panel, a thick pad, or the rear legs' posts carried up with slats between them (ladder),
    sometimes under an arch."""
    back_h, tilt = uniform(rng, 0.35, 0.65), uniform(rng, 0.0, 0.25)
    if style in ("panel", "padded"):
        thick = uniform(rng, 0.025, 0.06) if style == "panel" else uniform(rng, 0.08, 0.18)
        wide = width * uniform(rng, 0.8, 1.0)
        corner = uniform(rng, 0.0, 0.5) * wide if rng.random() < 0.4 else 0.0
        back = rounded_box([wide, back_h, thick], [0, back_h / 2, 0], corner, axis=2)
        z = -depth / 2 + thick / 2
    else:
        x, z = post[0], -post[1]
        slat_h = uniform(rng, 0.03, 0.08)
        arched, n_slats = rng.random() < 0.4, int(rng.integers(1, 4))
        rows = np.linspace(back_h * uniform(rng, 0.3, 0.55), back_h - slat_h / 2, n_slats + 1)
        rows = rows[:-1] if arched else rows  # a top rail, or the arch
        parts = [box([2 * x, slat_h, leg_t * 0.5], [0, y, 0]) for y in rows]
        parts += [box([leg_t, back_h, leg_t], [sx * x, back_h / 2, 0]) for sx in (-1, 1)]
        if arched:
            rise, angles = x * uniform(rng, 0.4, 1.0), np.linspace(np.pi, 0, 13)
            arch = np.stack([x * np.cos(angles), back_h + rise * np.sin(angles), 0 * angles], 1)
            parts.append(tube(arch, leg_t * 0.55))
        back = trimesh.util.concatenate(parts)
    back.apply_transform(rotation(-tilt, [1, 0, 0]))
    back.apply_translation([0, top, z])
    return back


def _chair_legs(rng, seat_y, post, leg_t) -> list[Piece]:
    """Four legs under the seat's corners, box, round or tapered; rails low between them
    sometimes (one more ``leg`` piece)."""
    style = str(rng.choice(["box", "round", "tapered"]))
    x, z = post
    legs = []
    for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        leg = leg_mesh(rng, style, [sx * x, seat_y, sz * z], [sx * x, 0.0, sz * z], leg_t)
        legs.append(Piece("leg", leg, "wood"))
    if rng.random() < 0.4:
        y, t = seat_y * uniform(rng, 0.15, 0.45), leg_t * 0.6
        rails = [box([2 * x, t, t], [0, y, sz * z]) for sz in (-1, 1)]
        rails += [box([t, t, 2 * z], [sx * x, y, 0]) for sx in (-1, 1)]
        legs.append(Piece("leg", trimesh.util.concatenate(rails), "wood"))
    return legs


def _office_base(rng, seat_y, width) -> list[Piece]:
    """An office chair's one ``leg``: a column on a star of 4 or 5 flat spokes."""
    n_spokes, reach = int(rng.integers(4, 6)), width * uniform(rng, 0.45, 0.6)
    foot_h, column_r = uniform(rng, 0.03, 0.07), uniform(rng, 0.02, 0.05)
    parts = [rod([0, 0, 0], [0, seat_y, 0], column_r)]
    for angle in np.arange(n_spokes) * 2 * np.pi / n_spokes + uniform(rng, 0, np.pi):
        along = [np.cos(angle) * reach / 2, foot_h / 2, np.sin(angle) * reach / 2]
        parts.append(box([reach, foot_h, foot_h * 1.3], along, rotation(-angle, [0, 1, 0])))
    return [Piece("leg", trimesh.util.concatenate(parts), "metal")]


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
    """A single to king-size bed: block legs, a frame, a mattress on it (under a cover that
    hangs over its sides, sometimes: bedding is ``mattress`` too), one or two pillows at the
    head, and a thin or thick headboard rising from the floor or the frame's underside."""
    length, width = uniform(rng, 1.9, 2.3), uniform(rng, 0.9, 2.0)
    leg_h, leg_w = uniform(rng, 0.04, 0.22), uniform(rng, 0.06, 0.2)
    frame_t, mattress_t = uniform(rng, 0.08, 0.2), uniform(rng, 0.12, 0.25)
    bed_top = leg_h + frame_t + mattress_t
    pieces = [Piece("frame", box([width, frame_t, length], [0, leg_h + frame_t / 2, 0]), "wood")]
    inset = uniform(rng, 0.0, 0.06)
    size = [width - 2 * inset, mattress_t, length - 2 * inset]
    mattress = box(size, [0, bed_top - mattress_t / 2, 0])
    if rng.random() < 0.6:  # a cover over the foot end
        cover_l, cover_t = length * uniform(rng, 0.55, 0.75), uniform(rng, 0.02, 0.06)
        drop, z = mattress_t * uniform(rng, 0.3, 1.0), length / 2 - inset - cover_l / 2
        sheet = [box([width + 2 * cover_t, cover_t, cover_l], [0, bed_top + cover_t / 2, z])]
        for sx in (-1, 1):  # hanging over the sides
            side = [sx * (width + cover_t) / 2, bed_top - drop / 2, z]
            sheet.append(box([cover_t, drop, cover_l], side))
        mattress, bed_top = trimesh.util.concatenate([mattress, *sheet]), bed_top + cover_t
    pieces.append(Piece("mattress", mattress, "fabric"))
    head_t, head_bottom = uniform(rng, 0.04, 0.2), leg_h if rng.random() < 0.5 else 0.0
    head_top = bed_top + uniform(rng, 0.2, 0.65)
    head_y, head_z = (head_top + head_bottom) / 2, -length / 2 - head_t / 2
    headboard = box([width, head_top - head_bottom, head_t], [0, head_y, head_z])
    pieces.append(Piece("headboard", headboard, "wood"))
    for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        x, z = sx * (width / 2 - leg_w / 2), sz * (length / 2 - leg_w / 2)
        pieces.append(Piece("leg", box([leg_w, leg_h, leg_w], [x, leg_h / 2, z]), "wood"))
    n_pillows = 1 if width < 1.3 else 2
    pillow_w = width * (uniform(rng, 0.55, 0.75) if n_pillows == 1 else uniform(rng, 0.36, 0.45))
    pillow_t, pillow_d = uniform(rng, 0.08, 0.16), uniform(rng, 0.25, 0.4)
    pillow_z = -length / 2 + inset + uniform(rng, 0.02, 0.08) + pillow_d / 2
    for i in range(n_pillows):
        x = 0.0 if n_pillows == 1 else (i - 0.5) * width * 0.5
        centre = [x, bed_top - mattress_t * 0.1 + pillow_t / 2, pillow_z]
        pillow = rounded_box([pillow_w, pillow_t, pillow_d], centre, pillow_t / 2, axis=0)
        pieces.append(Piece("pillow", pillow, "fabric"))
    return pieces


def build_sofa(rng, style: str | None = None) -> list[Piece]:
    """A sofa: a seat block between two arms, a back along its length, four legs; or, with
    ``style`` ``chaise``, an L-shaped one whose seat runs out in front at one end (the chaise:
    seat, no arm along it, two more legs under its end). ``straight`` or None: no chaise."""
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
    if style == "chaise":
        pieces += _chaise(rng, inner, depth, leg_h, seat_t)
    return pieces


def _chaise(rng, inner: float, depth: float, leg_h: float, seat_t: float) -> list[Piece]:
    """A sofa's chaise: a seat block at one end of the seat, running out in front of it."""
    reach, share = uniform(rng, 0.5, 0.9), uniform(rng, 0.35, 0.5)
    side = 1 if rng.random() < 0.5 else -1
    chaise_w = inner * share
    x = side * (inner - chaise_w) / 2
    seat = box([chaise_w, seat_t, reach], [x, leg_h + seat_t / 2, (depth + reach) / 2])
    pieces = [Piece("seat", seat, "fabric")]
    z = depth / 2 + reach - 0.06
    for leg_x in (x - chaise_w / 2 + 0.06, x + chaise_w / 2 - 0.06):
        pieces.append(Piece("leg", rod([leg_x, 0, z], [leg_x, leg_h, z], 0.03, 8), "wood"))
    return pieces


def build_bookshelf(rng, style: str | None = None) -> list[Piece]:
    """Two side boards or four corner posts (``side`` either way); three to six shelf boards
    spanning between them, from a bottom board (on the floor or raised) to a top board; a back
    panel sometimes. ``style`` ``low``: no taller than wide, two or three boards; ``tall`` or
    None: 0.8-2.2 high."""
    width, depth, height = uniform(rng, 0.6, 1.3), uniform(rng, 0.25, 0.55), uniform(rng, 0.8, 2.2)
    if style == "low":  # the same draw, as a share of the width: 0.55-1.0
        height = width * (0.55 + 0.45 * (height - 0.8) / 1.4)
    board = uniform(rng, 0.02, 0.06)
    posts = rng.random() < 0.45
    side_t = uniform(rng, 0.04, 0.1) if posts else board
    pieces = []
    if posts:
        for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            centre = [sx * (width - side_t) / 2, height / 2, sz * (depth - side_t) / 2]
            pieces.append(Piece("side", box([side_t, height, side_t], centre), "wood"))
    else:
        for sx in (-1, 1):
            side = box([side_t, height, depth], [sx * (width - side_t) / 2, height / 2, 0])
            pieces.append(Piece("side", side, "wood"))
    bottom = height * uniform(rng, 0.02, 0.14) if rng.random() < 0.5 else 0.0
    shelf_d = depth - (side_t * 0.5 if posts else 0.0)
    boards = int(rng.integers(3, 7))
    if style == "low":
        boards = 2 + boards % 2
    for y in np.linspace(bottom + board / 2, height - board / 2, boards):
        shelf = box([width - 2 * side_t, board, shelf_d], [0, y, 0])
        pieces.append(Piece("shelf", shelf, "wood"))
    if rng.random() < (0.25 if posts else 0.6):
        back = box([width, height - bottom, 0.01], [0, (height + bottom) / 2, -depth / 2 - 0.005])
        pieces.append(Piece("back", back, "wood"))
    return pieces


def build_lamp(rng, style: str | None = None) -> list[Piece]:
    """A table lamp (a short pole on a broad base), a floor lamp (a long thin pole on a small
    base) or a column lamp (a tall, nearly straight shade, round or square, on a short stem);
    the base a flat disc or square plate; the shade an open shell (thin, or thick with flat
    rims) round a straight hole. ``style`` ``table``, ``floor`` or ``column``; None draws
    table or floor (the training corpus's lamps, which have no column)."""
    if style is None:
        style = "floor" if rng.random() < 0.5 else "table"
    if style == "column":
        return _column_lamp(rng)
    floor = style == "floor"
    base_r = uniform(rng, 0.1, 0.2) if floor else uniform(rng, 0.15, 0.25)
    pole_h = uniform(rng, 1.3, 1.9) if floor else uniform(rng, 0.5, 0.9)
    pole_r = uniform(rng, 0.012, 0.03) if floor else uniform(rng, 0.012, 0.025)
    shade_h = uniform(rng, 0.25, 0.45) if floor else uniform(rng, 0.2, 0.35)
    base_t = uniform(rng, 0.02, 0.06)
    base = _lamp_base(rng, base_r, base_t)
    pole = rod([0, base_t, 0], [0, base_t + pole_h, 0], pole_r)
    y0 = base_t + pole_h - shade_h * 0.4
    r_bottom = uniform(rng, 0.14, 0.3)
    r_top = r_bottom * uniform(rng, 0.45, 0.9)
    hole = r_top * uniform(rng, 0.6, 0.97)  # a thin shell, or a thick one with flat rims
    profile = [[r_bottom, y0], [r_top, y0 + shade_h], [hole, y0 + shade_h], [hole, y0]]
    shade = lathe(profile, sections=20)  # open at both ends
    return [
        Piece("base", base, "metal"),
        Piece("pole", pole, "metal"),
        Piece("shade", shade, "fabric"),
    ]


def _lamp_base(rng, radius: float, thickness: float) -> trimesh.Trimesh:
    """A lamp's base: a flat disc or a square plate of half-width ``radius``, on the floor."""
    if rng.random() < 0.5:
        return rod([0, 0, 0], [0, thickness, 0], radius, sections=20)
    return box([2 * radius, thickness, 2 * radius], [0, thickness / 2, 0])


def _column_lamp(rng) -> list[Piece]:
    """A column lamp: a tall open shade (round, or square: four sections) on a short stem."""
    base_r, base_t = uniform(rng, 0.1, 0.2), uniform(rng, 0.02, 0.06)
    stem_h, stem_r = uniform(rng, 0.08, 0.3), uniform(rng, 0.015, 0.035)
    shade_h, r_bottom = uniform(rng, 0.7, 1.3), uniform(rng, 0.12, 0.22)
    r_top = r_bottom * uniform(rng, 0.85, 1.0)
    sections = 4 if rng.random() < 0.5 else 20
    base = _lamp_base(rng, base_r, base_t)
    y0 = base_t + stem_h
    stem = rod([0, base_t, 0], [0, y0 + 0.05, 0], stem_r)  # into the shade a little
    wall = uniform(rng, 0.03, 0.2)  # the shell's thickness, a share of its radius
    profile = [
        [r_bottom, y0],
        [r_top, y0 + shade_h],
        [r_top * (1 - wall), y0 + shade_h],
        [r_bottom * (1 - wall), y0],
    ]
    shade = lathe(profile, sections=sections)
    return [
        Piece("base", base, "metal"),
        Piece("pole", stem, "metal"),
        Piece("shade", shade, "fabric"),
    ]


def build_cabinet(rng) -> list[Piece]:
    """A cabinet, dresser, nightstand or wardrobe: a carcass (``body``: sides, top, bottom,
    back, a plinth or legs sometimes) whose front is one to three columns of cells, each
    column doors (one or a pair, hinged side by side), a stack of drawers, drawers over
    doors, or open shelves (the carcass seen inside). A door is a panel, a drawer a front on
    a box that runs into the carcass; either carries a knob or a bar handle sometimes, part
    of it. Fronts sit flush in the carcass or overlay it."""
    width, height = uniform(rng, 0.4, 1.6), uniform(rng, 0.4, 2.0)
    depth, board = uniform(rng, 0.3, 0.6), uniform(rng, 0.015, 0.04)
    base = 0.0 if rng.random() < 0.4 else height * uniform(rng, 0.04, 0.15)
    pieces = _carcass(rng, width, height, depth, board, base)
    columns = int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
    edges = np.linspace(-width / 2 + board, width / 2 - board, columns + 1)
    overlay = rng.random() < 0.5  # fronts proud of the carcass, or flush inside it
    handle = str(rng.choice(["none", "knob", "bar"], p=[0.25, 0.35, 0.4]))
    for left, right in zip(edges[:-1], edges[1:], strict=True):
        layout = str(rng.choice(["doors", "drawers", "mixed", "open"], p=[0.55, 0.2, 0.2, 0.05]))
        cells = _front_cells(rng, layout, base + board, height - board)
        for kind, bottom, top in cells:
            frame = (left, right, bottom, top)
            if kind == "door":
                pieces += _doors(rng, frame, depth, board, overlay, handle)
                pieces += _shelves(rng, frame, depth, board)
            elif kind == "drawer":
                pieces.append(_drawer(frame, depth, board, overlay, handle))
            else:  # an open cell: shelves inside the carcass, seen from the front
                pieces += _shelves(rng, frame, depth, board, at_least=1)
    return pieces


def _shelves(rng, frame, depth, board, at_least: int = 0) -> list[Piece]:
    """Shelf boards (``body``) across a cell ``frame`` (x0, x1, y0, y1), evenly spaced."""
    x0, x1, y0, y1 = frame
    count = int(rng.integers(at_least, 4))
    return [
        Piece("body", box([x1 - x0, board, depth - board], [(x0 + x1) / 2, y, board / 2]), "wood")
        for y in np.linspace(y0, y1, count + 2)[1:-1]
    ]


def _carcass(rng, width, height, depth, board, base) -> list[Piece]:
    """Sides, top, bottom and back boards from ``base`` up to ``height``; under them a plinth
    or four legs when ``base`` > 0: all ``body``."""
    z_back = -depth / 2 + board / 2
    boards = [
        box([board, height - base, depth], [-(width - board) / 2, (height + base) / 2, 0]),
        box([board, height - base, depth], [(width - board) / 2, (height + base) / 2, 0]),
        box([width, board, depth], [0, height - board / 2, 0]),
        box([width, board, depth], [0, base + board / 2, 0]),
        box(
            [width - 2 * board, height - base - 2 * board, board], [0, (height + base) / 2, z_back]
        ),
    ]
    if base > 0 and rng.random() < 0.5:
        boards.append(box([width * 0.96, base, depth * 0.9], [0, base / 2, -depth * 0.02]))
    elif base > 0:
        leg_t = uniform(rng, 0.03, 0.06)
        for sx in (-1, 1):
            for sz in (-1, 1):
                centre = [sx * (width / 2 - leg_t), base / 2, sz * (depth / 2 - leg_t)]
                boards.append(box([leg_t, base, leg_t], centre))
    return [Piece("body", trimesh.util.concatenate(boards), "wood")]


def _front_cells(rng, layout: str, bottom: float, top: float) -> list[tuple[str, float, float]]:
    """One column's cells from ``bottom`` to ``top``, top first: ``(kind, y0, y1)``."""
    if layout == "doors":
        return [("door", bottom, top)]
    if layout == "open":
        return [("open", bottom, top)]
    count = int(rng.integers(2, 6)) if layout == "drawers" else int(rng.integers(1, 3))
    drawer_h = (top - bottom) / count if layout == "drawers" else uniform(rng, 0.12, 0.22)
    drawer_h = min(drawer_h, (top - bottom) / (count + 1)) if layout == "mixed" else drawer_h
    if layout == "mixed" and rng.random() < 0.5:  # drawers under the doors (a wardrobe)
        cells = [
            ("drawer", bottom + i * drawer_h, bottom + (i + 1) * drawer_h) for i in range(count)
        ]
        return [("door", bottom + count * drawer_h, top), *reversed(cells)]
    cells = [("drawer", top - (i + 1) * drawer_h, top - i * drawer_h) for i in range(count)]
    if layout == "mixed":  # drawers over the doors (a kitchen base cabinet)
        cells.append(("door", bottom, top - count * drawer_h))
    return cells


def _front_panel(frame, depth, board, overlay, gap=0.004) -> tuple[list[float], list[float]]:
    """Extents and centre of a front panel filling ``frame`` (x0, x1, y0, y1)."""
    x0, x1, y0, y1 = frame
    thickness = board * 0.9
    z = depth / 2 + thickness / 2 if overlay else depth / 2 - thickness / 2
    extents = [x1 - x0 - 2 * gap, y1 - y0 - 2 * gap, thickness]
    return extents, [(x0 + x1) / 2, (y0 + y1) / 2, z]


def _handle(style: str, at: list[float], along_y: bool) -> list[trimesh.Trimesh]:
    """A knob or bar on a front whose outer face is at ``at`` (x, y, z): its one mesh, or
    none for ``style`` "none"."""
    x, y, z = at
    if style == "knob":
        return [rod([x, y, z], [x, y, z + 0.03], 0.012, sections=10)]
    if style == "bar":
        half = [0, 0.06, 0] if along_y else [0.06, 0, 0]
        bar = rod(np.subtract([x, y, z + 0.03], half), np.add([x, y, z + 0.03], half), 0.008, 8)
        posts = [
            rod([x + h[0], y + h[1], z], [x + h[0], y + h[1], z + 0.03], 0.006, 6)
            for h in (half, np.negative(half))
        ]
        return [trimesh.util.concatenate([bar, *posts])]
    return []


def _doors(rng, frame, depth, board, overlay, handle) -> list[Piece]:
    """One door, or a pair side by side when the cell is wide; a handle by the free edge."""
    x0, x1, y0, y1 = frame
    pair = (x1 - x0) > 0.55 or ((x1 - x0) > 0.35 and rng.random() < 0.5)
    splits = [(x0, (x0 + x1) / 2), ((x0 + x1) / 2, x1)] if pair else [(x0, x1)]
    pieces = []
    for index, (left, right) in enumerate(splits):
        extents, centre = _front_panel((left, right, y0, y1), depth, board, overlay)
        free_x = right - 0.05 if (not pair or index == 0) else left + 0.05
        face = [free_x, (y0 + y1) / 2, centre[2] + extents[2] / 2]
        parts = [box(extents, centre), *_handle(handle, face, along_y=True)]
        pieces.append(Piece("door", trimesh.util.concatenate(parts), "wood"))
    return pieces


def _drawer(frame, depth, board, overlay, handle) -> Piece:
    """A drawer: a front filling ``frame``, a box (sides, back, bottom) behind it running
    into the carcass, and a handle in the middle of the front."""
    x0, x1, y0, y1 = frame
    extents, centre = _front_panel(frame, depth, board, overlay)
    inner_w, inner_h = x1 - x0 - 0.03, (y1 - y0) * 0.7
    run = depth * 0.8
    front_back = centre[2] - extents[2] / 2
    z_mid = front_back - run / 2
    y_low = y0 + 0.01
    parts = [
        box(extents, centre),
        box([0.012, inner_h, run], [x0 + 0.015, y_low + inner_h / 2, z_mid]),
        box([0.012, inner_h, run], [x1 - 0.015, y_low + inner_h / 2, z_mid]),
        box([inner_w, inner_h, 0.012], [(x0 + x1) / 2, y_low + inner_h / 2, front_back - run]),
        box([inner_w, 0.01, run], [(x0 + x1) / 2, y_low + 0.005, z_mid]),
        *_handle(handle, [centre[0], centre[1], centre[2] + extents[2] / 2], along_y=False),
    ]
    return Piece("drawer", trimesh.util.concatenate(parts), "wood")
