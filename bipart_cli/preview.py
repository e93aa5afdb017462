"""PNG previews of a segmentation: the labeled points rendered in part colours."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .io import PointSample
    from .preview_views import PreviewPanels


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


def legend_entries(labels: np.ndarray, part_names: list[str]) -> list[tuple[str, int]]:
    """The legend's entries: each part's name and its point count, in ``part_names`` order
    (a part no point took included, with 0), then ``unassigned`` when points are.

    labels : (n,) int64, ``-1`` unassigned, else an index into ``part_names``
    """
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels[labels >= 0], minlength=len(part_names))
    entries = [(name, int(count)) for name, count in zip(part_names, counts, strict=True)]
    unassigned = int((labels < 0).sum())
    return entries + [("unassigned", unassigned)] if unassigned else entries


PANEL_SIZE = 384  # pixels of each square view
TITLE_HEIGHT = 24
LEGEND_ROW = 22
FONT_SIZE = 13


def write_preview(
    dense: PointSample,
    labels: np.ndarray,
    part_names: list[str],
    path: Path,
    up: str = "y",
    title: str | None = None,
    outputs=None,
) -> Path:
    """A PNG of the labeled dense cloud: a title, the :data:`~.preview_views.PREVIEW_VIEWS`
    side by side (each captioned and framed to fill its panel), and a legend of every part's
    colour and point count (:func:`legend_entries`).

    Names in any language: the legend takes a font that draws them
    (:func:`preview_font`), escaping any character no font found can draw.

    The cloud is shown in bipart's Y-up frame after ``up`` (as the network saw it),
    with z-buffered splats sized to the point density (no pinholes, no far side). No torch:
    a stored run's preview costs only its drawing. ``outputs`` (a
    :class:`~bipart_cli.io.atomic.StagedOutputs`): stage the PNG there instead of writing
    it now.
    """
    from .io.atomic import atomic_path
    from .orientation import up_rotation
    from .preview_views import render_panels

    frame = up_rotation(dense.points, up)
    panels = render_panels(
        dense.points, labels, len(part_names), dense.normals, frame=frame, size=PANEL_SIZE
    )
    sheet = _sheet(panels, legend_entries(labels, part_names), len(part_names), title)
    if outputs is not None:
        sheet.save(outputs.stage(path), format="PNG")
        return path
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


def _sheet(
    panels: PreviewPanels, entries: list[tuple[str, int]], num_parts: int, title: str | None
) -> Any:
    """The PIL image: title band, the panels in a row with their captions, and the legend
    (swatch, name, count), wrapped onto as many rows as it needs."""
    from PIL import Image, ImageDraw

    from .preview_views import label_colors

    size = PANEL_SIZE
    width = size * len(panels.images)
    captions = [view.caption for view in panels.views]
    font = preview_font([title or "", *captions, *(name for name, _ in entries)], size=FONT_SIZE)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    # entry num_parts, when there, is "unassigned": the palette's grey after the parts
    swatches = label_colors(np.arange(len(entries)), num_parts)
    items, x, row = [], 8, 0
    for (name, count), color in zip(entries, swatches, strict=True):
        text = f"{legend_text(name, font)} {count:,}"
        advance = 26 + max(round(measure.textlength(text, font=font)), 7 * len(text))
        if x > 8 and x + advance > width:
            x, row = 8, row + 1
        items.append((x, row, text, tuple(int(c) for c in color)))
        x += advance
    legend_top = TITLE_HEIGHT + size + 6
    sheet = Image.new("RGB", (width, legend_top + (row + 1) * LEGEND_ROW + 4), "white")
    draw = ImageDraw.Draw(sheet)
    for v, (image, caption) in enumerate(zip(panels.images, captions, strict=True)):
        sheet.paste(Image.fromarray(image), (v * size, TITLE_HEIGHT))
        caption = legend_text(caption, font)
        draw.text((v * size + 6, TITLE_HEIGHT + 4), caption, fill=(110, 110, 110), font=font)
        if v:  # a thin rule between panels
            draw.line(
                [(v * size, TITLE_HEIGHT), (v * size, TITLE_HEIGHT + size - 1)],
                fill=(225, 225, 225),
            )
    if title:
        draw.text((8, 6), legend_text(title, font), fill="black", font=font)
    for x, row, text, color in items:
        y = legend_top + row * LEGEND_ROW
        draw.rectangle([x, y + 2, x + 14, y + 16], fill=color)
        draw.text((x + 18, y + 3), text, fill="black", font=font)
    return sheet
