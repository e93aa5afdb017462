"""One random shape of a category: its pieces, their node names, and a coloured scene.

:func:`make_shape` puts the pieces in a ``trimesh.Scene`` with one node per instance
named ``<part>`` (single instance) or ``<part>.<i>`` (``leg.0`` .. ``leg.3``), which
:func:`bipart_cli.io.load_asset` reads back as ground truth.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import trimesh

from ..parts import part_colors
from .primitives import Piece
from .registry import BUILDERS, CATEGORIES, STYLES

ColorMode = str  # "natural" | "parts" | "grey"

# Plausible material colours for the "natural" colour mode.
_MATERIALS: dict[str, list[tuple[int, int, int]]] = {
    "wood": [(133, 94, 66), (164, 116, 73), (193, 154, 107), (101, 67, 33), (222, 184, 135)],
    "fabric": [(70, 90, 140), (150, 40, 40), (90, 110, 80), (200, 190, 170), (60, 60, 60)],
    "metal": [(170, 170, 175), (120, 120, 128), (200, 200, 205), (60, 60, 66)],
    "ceramic": [(240, 240, 235), (40, 80, 150), (180, 60, 50), (230, 200, 80)],
    "plastic": [(30, 30, 30), (220, 220, 220), (200, 50, 50), (50, 120, 200)],
    "paint": [(190, 30, 40), (30, 70, 160), (235, 235, 235), (40, 40, 40), (20, 110, 70)],
    "glass": [(120, 170, 160), (90, 60, 30), (150, 190, 210)],
    "rubber": [(25, 25, 25), (45, 45, 45)],
    "skin": [(255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36)],
    "fur": [(110, 75, 45), (160, 120, 80), (60, 50, 45), (200, 190, 170), (140, 140, 140)],
    "feathers": [(90, 110, 160), (200, 60, 40), (60, 60, 60), (230, 200, 70), (120, 90, 60)],
    "keratin": [(230, 170, 60), (200, 120, 60), (80, 70, 60)],
    "scales": [(200, 140, 60), (90, 130, 170), (150, 160, 150), (220, 90, 50), (240, 200, 80)],
    "mollusc": [(180, 80, 70), (150, 70, 110), (210, 120, 80), (120, 90, 80)],
}
_GREY = (160, 160, 160)


def make_pieces(category: str, seed: int = 0, style: str | None = None) -> list[Piece]:
    """The part instances of one random ``category`` shape (same seed, same shape);
    ``style`` one of the category's :data:`~.registry.STYLES` (None: the builder draws)."""
    if category not in BUILDERS:
        raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    rng = np.random.default_rng(seed)
    if style is None:
        return BUILDERS[category](rng)
    if style not in STYLES.get(category, ()):
        known = ", ".join(STYLES.get(category, ())) or "none"
        raise ValueError(f"unknown {category} style {style!r}; known: {known}")
    return BUILDERS[category](rng, style=style)


def node_names(pieces: Iterable[Piece]) -> list[str]:
    """``<part>`` for a single instance, ``<part>.<i>`` when the part repeats."""
    pieces = list(pieces)
    totals: dict[str, int] = {}
    for piece in pieces:
        totals[piece.part] = totals.get(piece.part, 0) + 1
    seen: dict[str, int] = {}
    names = []
    for piece in pieces:
        i = seen.get(piece.part, 0)
        seen[piece.part] = i + 1
        names.append(piece.part if totals[piece.part] == 1 else f"{piece.part}.{i}")
    return names


def make_shape(
    category: str, seed: int = 0, colors: ColorMode = "natural", style: str | None = None
) -> trimesh.Scene:
    """A ``trimesh.Scene`` of one random shape: one node per part instance.

    colors : ``"natural"`` (seeded material colours, shared by a part's instances),
    ``"parts"`` (the fixed part palette, in ``CATEGORIES`` order) or ``"grey"``;
    style : as :func:`make_pieces`.
    """
    if colors not in ("natural", "parts", "grey"):
        raise ValueError(f"colors must be natural, parts or grey, not {colors!r}")
    pieces = make_pieces(category, seed, style)
    palette = part_colors(len(CATEGORIES[category]))
    color_rng = np.random.default_rng([seed, 7919])
    part_color: dict[str, np.ndarray] = {}
    scene = trimesh.Scene()
    for piece, name in zip(pieces, node_names(pieces), strict=True):
        if piece.part not in part_color:
            if colors == "parts":
                rgb = palette[CATEGORIES[category].index(piece.part)]
            elif colors == "grey":
                rgb = np.array(_GREY)
            else:
                options = _MATERIALS[piece.material]
                base = np.array(options[int(color_rng.integers(len(options)))], dtype=float)
                rgb = np.clip(base + color_rng.normal(0, 8, 3), 0, 255)
            part_color[piece.part] = np.append(np.round(rgb), 255).astype(np.uint8)
        mesh = piece.mesh.copy()
        mesh.visual = trimesh.visual.ColorVisuals(
            mesh, vertex_colors=np.tile(part_color[piece.part], (len(mesh.vertices), 1))
        )
        mesh.metadata = {}
        scene.add_geometry(mesh, node_name=name, geom_name=name)
    return scene
