"""Part-name lists (``--parts``) and the fixed part colour palette.

Light module: imported by the CLI, so no torch here.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np

from .errors import UsageError
from .runtime import escape_character, is_unprintable

# Distinct, colour-blind-friendly first colours (Okabe-Ito, then Tableau-like);
# more parts get golden-ratio hues.
_PALETTE = np.array(
    [
        [230, 159, 0],
        [86, 180, 233],
        [0, 158, 115],
        [213, 94, 0],
        [0, 114, 178],
        [204, 121, 167],
        [240, 228, 66],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [127, 127, 127],
        [188, 189, 34],
        [23, 190, 207],
        [214, 39, 40],
        [44, 160, 44],
        [31, 119, 180],
    ],
    dtype=np.uint8,
)


def parse_part_names(text: str | Sequence[str], max_parts: int | None = None) -> list[str]:
    """``"back, seat,leg"`` -> ``["back", "seat", "leg"]``.

    Names are stripped and may be in any language (``"dossier,siège,pied"``,
    ``"靠背,座位"``). Raises :class:`UsageError` (exit 2) with one clear line for
    an empty list, an empty name, a name holding a newline, tab, other control or
    unprintable character (:func:`~bipart_cli.runtime.is_unprintable`), a duplicate
    (case-insensitive) or more than ``max_parts`` names.
    """
    raw = text.split(",") if isinstance(text, str) else list(text)
    names = [str(name).strip() for name in raw]
    if not any(names):
        raise UsageError('--parts is empty: give comma-separated part names, e.g. "back,seat,leg"')
    for position, name in enumerate(names, start=1):
        if not name:
            raise UsageError(f"--parts has an empty name at position {position}")
        bad = next((char for char in name if is_unprintable(char)), None)
        if bad is not None:
            raise UsageError(
                f"--parts name {position} ({name!r}) holds the unprintable character "
                f"{escape_character(bad)} (U+{ord(bad):04X}): part names are printable text"
            )
    seen: dict[str, str] = {}
    for name in names:
        key = name.casefold()
        if key in seen:
            raise UsageError(f"--parts names {name!r} twice (as {seen[key]!r} and {name!r})")
        seen[key] = name
    if max_parts is not None and len(names) > max_parts:
        raise UsageError(
            f"--parts has {len(names)} names but the model handles at most {max_parts}"
        )
    return names


def check_part_names(option: str, value: str) -> str:
    """Parse-time check of ``--parts`` (:func:`parse_part_names`); returns ``value``."""
    parse_part_names(value)
    return value


def part_colors(k: int) -> np.ndarray:
    """A fixed palette of ``k`` distinct colours: (k, 3) uint8, the same for every call."""
    if k <= len(_PALETTE):
        return _PALETTE[:k].copy()
    extra = []
    for i in range(k - len(_PALETTE)):
        hue = (0.13 + i * 0.618033988749895) % 1.0
        value = 0.95 if i % 2 == 0 else 0.7
        extra.append([round(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.75, value)])
    return np.concatenate([_PALETTE, np.array(extra, dtype=np.uint8)])
