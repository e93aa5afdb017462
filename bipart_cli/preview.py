"""PNG previews of a segmentation: the labeled points rendered in part colours."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .io import PointSample


# Fonts tried, in this order, when Pillow's own default cannot draw every legend character
# (it draws ASCII alone): found by file name in the system's font folders, absent ones
# skipped. DejaVu covers Latin, Greek and Cyrillic; the others add Chinese and Japanese.
FALLBACK_FONTS = (
    "DejaVuSans.ttf",
    "NotoSansCJK-Regular.ttc",
    "NotoSansCJKjp-Regular.otf",
    "NotoSansCJKsc-Regular.otf",
    "NotoSansCJKtc-Regular.otf",
    "wqy-microhei.ttc",
    "wqy-zenhei.ttc",
    "DroidSansFallbackFull.ttf",
    "Arial Unicode.ttf",
    "Hiragino Sans GB.ttc",
    "msyh.ttc",
    "msgothic.ttc",
)
FALLBACK_FONT_SIZE = 11
_NO_GLYPH = "\U0010fffe"  # a noncharacter: what a font draws for a glyph it lacks


def missing_characters(font: Any, text: str) -> set[str]:
    """The characters of ``text`` that ``font`` (a Pillow font) cannot draw.

    A character lacks a glyph when the font draws it exactly as it draws a noncharacter
    (its ``.notdef`` box), or fails to draw it at all (Pillow's bitmap font beyond
    Latin-1). Unprintable characters (newlines, controls) always count as missing.
    """
    from .runtime import is_unprintable

    try:
        notdef = font.getmask(_NO_GLYPH)
        no_glyph = (notdef.size, bytes(notdef))
    except (UnicodeError, OSError, ValueError):
        no_glyph = None
    missing = set()
    for char in set(text) - {" "}:
        if is_unprintable(char):
            missing.add(char)
            continue
        try:
            mask = font.getmask(char)
        except (UnicodeError, OSError, ValueError):
            missing.add(char)
            continue
        if (mask.size, bytes(mask)) == no_glyph:
            missing.add(char)
    return missing


def preview_font(texts: Iterable[str], size: int | None = None) -> Any:
    """The font to draw ``texts`` (title, part names) with: Pillow's default (at ``size``
    when given) when it can draw them all, else the first of :data:`FALLBACK_FONTS` on
    this system that can, else the one of those missing the fewest characters
    (:func:`legend_text` then escapes what it cannot draw)."""
    from PIL import ImageFont

    text = "".join(texts)
    best = ImageFont.load_default() if size is None else ImageFont.load_default(size=size)
    fewest = missing_characters(best, text)
    for name in FALLBACK_FONTS:
        if not fewest:
            break
        try:
            font = ImageFont.truetype(name, size or FALLBACK_FONT_SIZE)
        except (OSError, ValueError):
            continue
        missing = missing_characters(font, text)
        if len(missing) < len(fewest):
            best, fewest = font, missing
    return best


def legend_text(text: str, font: Any) -> str:
    """``text`` as the preview draws it with ``font``: characters the font lacks, and
    unprintable ones, as ``\\u9760``-style escapes, so that no name is drawn as boxes
    (or breaks the line) and every name stays exact."""
    from .runtime import escape_character

    missing = missing_characters(font, text)
    return "".join(escape_character(c) if c in missing else c for c in text)


def part_colors_for(labels: np.ndarray, num_parts: int) -> np.ndarray:
    """(n,) labels -> (n, 3) uint8 colours from the part palette (grey when unassigned)."""
    from .parts import part_colors

    palette = np.vstack([part_colors(num_parts), np.array([[160, 160, 160]], np.uint8)])
    return palette[np.where(labels >= 0, labels, num_parts)]


def preview_splat_radius(points: np.ndarray, settings) -> float:
    """Splat radius (pixels) that closes the gaps between surface points (n, 3).

    Each splat reaches the median distance to a point's 6th nearest neighbour, seen at
    the nearest depth the unit sphere can have: a pixel then has ~6 points within reach,
    so a random sample leaves no holes (e^-6) for the far side to show through; the
    z-buffer keeps the nearest splat. Clipped to 1.5..10 pixels.
    """
    import math

    from scipy.spatial import cKDTree

    if len(points) < 8:
        return 1.5
    rng = np.random.default_rng(0)
    probes = points[rng.choice(len(points), min(len(points), 2000), replace=False)]
    distances, _ = cKDTree(points).query(probes, k=7)  # self + 6 neighbours
    reach = float(np.median(distances[:, -1]))
    focal = (settings.image_size / 2) / math.tan(math.radians(settings.fov_deg) / 2)
    return float(np.clip(reach * focal / max(settings.distance - 1.0, 0.1), 1.5, 10.0))


def write_preview(
    dense: PointSample,
    labels: np.ndarray,
    part_names: list[str],
    path: Path,
    device="cpu",
    up: str = "y",
    title: str | None = None,
    outputs=None,
) -> Path:
    """A PNG with four views of the labeled dense cloud, a title and a legend.

    Names in any language: the legend takes a font that draws them
    (:func:`preview_font`), escaping any character no font found can draw.

    The cloud is shown in bipart's Y-up frame after ``up`` (as the network saw it),
    with z-buffered splats sized to the point density (no pinholes, no far side).
    ``outputs`` (a :class:`~bipart_cli.io.atomic.StagedOutputs`): stage the PNG there
    instead of writing it now.
    """
    import dataclasses

    from PIL import Image, ImageDraw

    from .io.atomic import atomic_path
    from .orientation import apply_rotation, up_rotation
    from .parts import part_colors
    from .render import RenderSettings, render_views

    rotation = up_rotation(dense.points, up)
    points = apply_rotation(dense.points, rotation)
    normals = None if dense.normals is None else apply_rotation(dense.normals, rotation)
    # Elevation 30: the camera (2.2 from the centre) is then above the unit sphere, so tops
    # show; at 20 it sits at height 0.75, the horizon, where a chair back is seen edge-on.
    views = [(30.0, 30.0), (30.0, 120.0), (30.0, 210.0), (30.0, 300.0)]
    size = 384
    settings = RenderSettings(image_size=size, views=views)
    settings = dataclasses.replace(settings, point_radius=preview_splat_radius(points, settings))
    colors = part_colors_for(labels, len(part_names))
    rendering = render_views(points, colors, normals, settings=settings, device=device)
    tiles = [Image.fromarray(img) for img in rendering.images]
    top = 24
    sheet = Image.new("RGB", (size * len(tiles), top + size + 28), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, (i * size, top))
    draw = ImageDraw.Draw(sheet)
    font = preview_font([title or "", *part_names])
    if title:
        draw.text((8, 6), legend_text(title, font), fill="black", font=font)
    x = 8
    for name, color in zip(part_names, part_colors(len(part_names)), strict=True):
        draw.rectangle(
            [x, top + size + 8, x + 14, top + size + 22], fill=tuple(int(c) for c in color)
        )
        label = legend_text(name, font)
        draw.text((x + 18, top + size + 9), label, fill="black", font=font)
        x += 26 + max(round(draw.textlength(label, font=font)), 7 * len(label))
    if outputs is not None:
        sheet.save(outputs.stage(path), format="PNG")
        return path
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path
