"""The furniture builders' variants (issue 30 item 6): chairs of several styles, bookcases with
board shelves between their sides, beds with pillows and a headboard, floor and table lamps;
cabinets with doors and drawers."""

from __future__ import annotations

from collections import Counter

import numpy as np

from bipart_cli.procedural import make_pieces

SEEDS = range(60)


def _meshes(pieces, part):
    return [p.mesh for p in pieces if p.part == part]


def _chair_styles(pieces) -> set[str]:
    """What a chair shows: its base, back, seat and arms."""
    (back,), (seat,), legs = (
        _meshes(pieces, "back"),
        _meshes(pieces, "seat"),
        _meshes(pieces, "leg"),
    )
    styles = {"office" if len(legs) == 1 else "four legs"}
    if len(legs) == 5:
        styles.add("rails")
    if back.body_count >= 3:  # two posts and slats
        styles.add("ladder")
    elif back.bounding_box_oriented.primitive.extents.min() >= 0.08:
        styles.add("padded")
    else:
        styles.add("panel")
    if seat.body_count == 2:
        styles.add("cushioned")
    if len(seat.vertices) > 8 * seat.body_count:
        styles.add("rounded")
    if _meshes(pieces, "arm"):
        styles.add("arms")
    return styles


def test_every_chair_style_appears_and_stands_on_its_legs():
    seen = Counter()
    for seed in SEEDS:
        pieces = make_pieces("chair", seed)
        seen.update(_chair_styles(pieces))
        (back,), (seat,) = _meshes(pieces, "back"), _meshes(pieces, "seat")
        legs = np.concatenate([m.vertices for m in _meshes(pieces, "leg")])
        assert abs(legs[:, 1].min()) < 1e-9  # on the floor
        np.testing.assert_allclose(legs[:, 1].max(), seat.bounds[0, 1])  # up to the seat
        assert back.bounds[0, 1] >= seat.bounds[1, 1] - 0.02  # the back stands on the seat
        assert back.bounds[1, 1] > seat.bounds[1, 1] + 0.3
    styles = ["office", "four legs", "rails", "ladder", "padded", "panel", "cushioned", "rounded"]
    assert all(seen[style] >= 3 for style in styles + ["arms"]), seen


def test_a_ladder_back_carries_the_rear_legs_up():
    ladders = 0
    for seed in SEEDS:
        pieces = make_pieces("chair", seed)
        if "ladder" not in _chair_styles(pieces):
            continue
        ladders += 1
        (back,) = _meshes(pieces, "back")
        rear = [m for m in _meshes(pieces, "leg")[:4] if m.centroid[2] < 0]
        posts = sorted(back.split(only_watertight=False), key=lambda m: -m.extents[1])[:2]
        for post in posts:  # the two tallest bodies stand on the rear legs
            below = min(rear, key=lambda m: abs(m.centroid[0] - post.centroid[0]))
            assert abs(post.bounds[0, 0] - below.bounds[0, 0]) < 0.02, seed
    assert ladders >= 5


def test_bookshelf_boards_span_between_the_sides():
    kinds = Counter()
    for seed in SEEDS:
        pieces = make_pieces("bookshelf", seed)
        sides, shelves = _meshes(pieces, "side"), _meshes(pieces, "shelf")
        kinds["posts" if len(sides) == 4 else "panels"] += 1
        assert len(sides) in (2, 4) and len(shelves) >= 3
        left = max(m.bounds[1, 0] for m in sides if m.centroid[0] < 0)
        right = min(m.bounds[0, 0] for m in sides if m.centroid[0] > 0)
        height = max(m.bounds[1, 1] for m in sides)
        for shelf in shelves:  # a full-width board from side to side
            np.testing.assert_allclose(shelf.bounds[:, 0], [left, right], atol=1e-9)
            assert shelf.extents[1] <= 0.06 < shelf.extents[2]
        tops = sorted(m.bounds[1, 1] for m in shelves)
        np.testing.assert_allclose(tops[-1], height)  # a top board
        assert sorted(m.bounds[0, 1] for m in shelves)[0] < 0.15 * height  # and a bottom one
        kinds["raised"] += sorted(m.bounds[0, 1] for m in shelves)[0] > 0
        kinds["back"] += bool(_meshes(pieces, "back"))
    assert min(kinds["posts"], kinds["panels"], kinds["raised"], kinds["back"]) >= 5, kinds


def test_bed_has_a_headboard_and_pillows_on_the_mattress():
    kinds = Counter()
    for seed in SEEDS:
        pieces = make_pieces("bed", seed)
        (frame,), (mattress,) = _meshes(pieces, "frame"), _meshes(pieces, "mattress")
        (headboard,), pillows = _meshes(pieces, "headboard"), _meshes(pieces, "pillow")
        assert len(_meshes(pieces, "leg")) == 4 and len(pillows) in (1, 2)
        assert headboard.bounds[1, 2] <= frame.bounds[0, 2] + 1e-9  # at the head end
        assert headboard.bounds[1, 1] > mattress.bounds[1, 1] + 0.15
        for pillow in pillows:  # on the mattress, at the head
            assert pillow.bounds[0, 1] > frame.bounds[1, 1]
            assert pillow.bounds[1, 1] > mattress.bounds[1, 1] + 0.05
            assert pillow.centroid[2] < frame.bounds[0, 2] + 0.3 * frame.extents[2]
        kinds["covered" if mattress.body_count > 1 else "bare"] += 1
        kinds["thick headboard" if headboard.extents[2] > 0.12 else "thin headboard"] += 1
        kinds[f"{len(pillows)} pillows"] += 1
    assert min(kinds.values()) >= 5 and len(kinds) == 6, kinds


def test_lamp_base_is_flat_at_the_bottom_and_the_pole_a_long_thin_rod():
    kinds = Counter()
    for seed in SEEDS:
        pieces = make_pieces("lamp", seed)
        (base,), (pole,), (shade,) = (_meshes(pieces, part) for part in ("base", "pole", "shade"))
        assert abs(base.bounds[0, 1]) < 1e-9 and base.extents[1] <= 0.25 * base.extents[0]
        np.testing.assert_allclose(pole.bounds[0, 1], base.bounds[1, 1])  # on the base
        assert pole.extents[1] > 10 * pole.extents[0]
        assert shade.bounds[0, 1] < pole.bounds[1, 1] < shade.bounds[1, 1]  # in the shade
        floor = pole.extents[1] > 1.2  # table lamps' poles are under 1
        kinds["floor" if floor else "table"] += 1
        if floor:  # a floor lamp's base is small
            assert base.extents[0] < 0.25 * shade.bounds[1, 1]
    assert min(kinds["floor"], kinds["table"]) >= 15, kinds


def test_cabinet_fronts_close_the_carcass_and_drawers_run_into_it():
    """Doors and drawer fronts lie on the carcass's front (z = depth / 2, flush or proud),
    within its width and height; a drawer's box runs back into the carcass; doors, drawers,
    both and open cells all appear, with and without handles."""
    kinds = Counter()
    for seed in SEEDS:
        pieces = make_pieces("cabinet", seed)
        (carcass, *shelves) = _meshes(pieces, "body")
        doors, drawers = _meshes(pieces, "door"), _meshes(pieces, "drawer")
        (x0, y0, z0), (x1, y1, z1) = carcass.bounds
        for front in doors + drawers:
            assert x0 - 1e-9 <= front.bounds[0, 0] and front.bounds[1, 0] <= x1 + 1e-9
            assert y0 - 1e-9 <= front.bounds[0, 1] and front.bounds[1, 1] <= y1 + 1e-9
            assert front.bounds[1, 2] >= z1 - 0.05  # at the front (a handle may stand out)
        for drawer in drawers:
            assert drawer.bounds[0, 2] < z1 - 0.5 * (z1 - z0)  # its box runs in
            assert drawer.body_count >= 2  # front and box, a handle sometimes
        for shelf in shelves:  # inside the carcass
            assert z0 - 1e-9 <= shelf.bounds[0, 2] and shelf.bounds[1, 2] <= z1 + 1e-9
        kinds["doors"] += bool(doors)
        kinds["drawers"] += bool(drawers)
        kinds["both"] += bool(doors) and bool(drawers)
        kinds["shelves"] += bool(shelves)
        kinds["handles"] += any(m.body_count > 1 for m in doors)
    assert min(kinds.values()) >= 5 and len(kinds) == 5, kinds
