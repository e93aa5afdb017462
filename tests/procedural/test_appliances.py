"""The appliance builder (issue 30, ready-made support for objects with doors): a cabinet
open at the front whose doors close it, beside or under control panels that are body."""

from __future__ import annotations

from collections import Counter

import numpy as np

from bipart_cli.procedural import make_pieces
from bipart_cli.procedural.registry import CATEGORIES, DEFAULT_CATEGORIES

SEEDS = range(60)


def test_appliance_doors_close_the_front_and_every_kind_appears():
    """Each door lies on the body's front (at or proud of z = depth / 2), within its width
    and height; wide and tall shapes, round doors, pairs of doors and handles all appear."""
    kinds = Counter()
    for seed in SEEDS:
        pieces = make_pieces("appliance", seed)
        assert pieces[0].part == "body" and {p.part for p in pieces[1:]} == {"door"}
        (body,) = [p.mesh for p in pieces if p.part == "body"]
        doors = [p.mesh for p in pieces if p.part == "door"]
        (x0, y0, z0), (x1, y1, z1) = body.bounds
        depth = -2 * z0  # the shell is centred on z = 0, its back at -depth / 2
        for door in doors:
            (dx0, dy0, dz0), (dx1, dy1, dz1) = door.bounds
            assert x0 - 1e-9 <= dx0 and dx1 <= x1 + 1e-9
            assert y0 - 1e-9 <= dy0 and dy1 <= y1 + 1e-9
            # on the front: proud of it, or sunk into it by at most its thickness (0.1 depth)
            assert dz0 >= depth / 2 - 0.1 * depth - 1e-9
        height, width = y1 - y0, x1 - x0
        kinds["tall"] += height > 1.2
        kinds["wide"] += width > height
        kinds["pair"] += len(doors) == 2
        kinds["round"] += any(
            np.isclose(d.extents[0], d.extents[1], rtol=0.02) and len(d.vertices) > 40
            for d in doors
        )
        kinds["handle"] += any(d.body_count > 1 for d in doors)
    assert min(kinds.values()) >= 5 and len(kinds) == 5, kinds


def test_appliance_is_written_only_when_named():
    """Like the cabinet: named in the categories, never in the defaults (the corpus the
    shipped weights were trained on stays as it was)."""
    assert CATEGORIES["appliance"] == ["body", "door"]
    assert "appliance" not in DEFAULT_CATEGORIES
