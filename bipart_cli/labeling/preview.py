"""Contact sheet: the rendered views with the pseudo-label boxes drawn and named."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..render import Rendering
from .pseudo_labels import PseudoLabels


def contact_sheet(
    rendering: Rendering, pseudo_labels: PseudoLabels, columns: int = 5, tile: int | None = None
):
    """A PIL image: views in a grid (``columns`` wide), boxes coloured per part with
    ``name score`` tags, the view number and (elevation, azimuth) in each corner. Names
    in any language: a font that draws them, else escapes
    (:func:`~bipart_cli.preview.legend_text`)."""
    from PIL import Image, ImageDraw

    from ..parts import part_colors
    from ..preview import legend_text, preview_font

    views = rendering.num_views
    size = rendering.settings.image_size
    tile = tile or min(size, 384)
    scale = tile / size
    columns = max(1, min(columns, views))
    rows = math.ceil(views / columns)
    sheet = Image.new("RGB", (columns * tile, rows * tile), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = preview_font(pseudo_labels.part_names, size=max(10, tile // 28))
    names = [legend_text(name, font) for name in pseudo_labels.part_names]
    colors = [tuple(int(c) for c in rgb) for rgb in part_colors(max(1, pseudo_labels.num_parts))]

    for view in range(views):
        left, top = (view % columns) * tile, (view // columns) * tile
        sheet.paste(Image.fromarray(rendering.images[view]).resize((tile, tile)), (left, top))
        elevation, azimuth = rendering.settings.views[view]
        draw.text(
            (left + 4, top + 2),
            f"view {view} ({elevation:g}, {azimuth:g})",
            fill=(90, 90, 90),
            font=font,
        )
        draw.rectangle([left, top, left + tile - 1, top + tile - 1], outline=(220, 220, 220))
        for box_id in np.flatnonzero(pseudo_labels.view_index == view):
            x0, y0, x1, y1 = (pseudo_labels.boxes[box_id] * scale).tolist()
            part = int(pseudo_labels.part_index[box_id])
            color = colors[part]
            draw.rectangle([left + x0, top + y0, left + x1, top + y1], outline=color, width=2)
            tag = f"{names[part]} {pseudo_labels.scores[box_id]:.2f}"
            text_box = draw.textbbox((left + x0 + 2, top + y0 + 1), tag, font=font)
            draw.rectangle(text_box, fill=color)
            draw.text((left + x0 + 2, top + y0 + 1), tag, fill=(255, 255, 255), font=font)
    return sheet


def write_contact_sheet(
    rendering: Rendering, pseudo_labels: PseudoLabels, path: str | Path, columns: int = 5
) -> Path:
    """Write :func:`contact_sheet` as a PNG, atomically."""
    from ..io.atomic import atomic_path

    path = Path(path)
    image = contact_sheet(rendering, pseudo_labels, columns=columns)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
