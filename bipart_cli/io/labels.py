"""Existing part labels: node/geometry name rules, PLY header comments, sidecar JSON.

Rules (issue 2, item 6):

- a node or geometry named ``<part>``, ``<part>.<n>`` or ``<part>__<anything>``
  belongs to ``<part>`` (``leg.2`` -> ``leg``, ``leg__L`` -> ``leg``);
- a node named ``unassigned`` (what bipart writes for unlabeled faces) is unassigned;
- generic exporter names (``Object_3``, ``Cube.001``, ``geometry_0``...) and names
  without a letter (``2``, ``4``) are not parts;
- an asset counts as labeled when its names give at least two distinct parts, or
  when a bipart sidecar ``<stem>.parts.json`` names its parts.

PLY files store ``0`` = unassigned and ``1..K``; names come from a
``comment parts: a,b,c`` header line or a sidecar JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError

UNASSIGNED_NODE = "unassigned"

_INSTANCE_SUFFIX = re.compile(r"^(.+?)\.\d+$")
_GENERIC = re.compile(
    r"^(object|mesh|geometry|node|primitive|group|default|defaultobject|scene|root|model|"
    r"untitled|world|cube|cylinder|sphere|icosphere|plane|cone|torus|circle|suzanne)"
    r"([ _.\-]?\d+)*$",
    re.IGNORECASE,
)
_LETTER = re.compile(r"[^\W\d_]")
_UUIDISH = re.compile(r"^[0-9a-f_\-]{8,}$", re.IGNORECASE)
_UNSAFE_NODE_CHARS = re.compile(r"[\s\[\]\.:/\\,\"'#?*<>|]+")


def part_from_name(name: str | None) -> str | None:
    """The part a node or geometry name belongs to, or None for generic/unnamed ones.

    ``"leg.2"`` -> ``"leg"``, ``"leg__L"`` -> ``"leg"``, ``"seat"`` -> ``"seat"``,
    ``"Object_3"`` -> None.
    """
    if name is None:
        return None
    name = str(name).strip()
    if not name or _GENERIC.match(name) or _UUIDISH.match(name):
        return None
    if "__" in name:
        name = name.split("__", 1)[0]
    else:
        match = _INSTANCE_SUFFIX.match(name)
        if match:
            name = match.group(1)
    name = name.strip()
    if not name or _GENERIC.match(name) or not _LETTER.search(name):
        return None  # "2", "4", "_01": numbers, not part names
    return name


def sanitize_node_name(name: str) -> str:
    """A node name safe for Blender and three.js.

    three.js strips ``[]./:`` and whitespace from node names used in animation
    paths, and Blender renames ``name.001``; so those characters become ``_``,
    ``__`` (bipart's instance separator) collapses to ``_`` and names are cut to
    Blender's 63 bytes.
    """
    safe = _UNSAFE_NODE_CHARS.sub("_", name.strip())
    safe = re.sub(r"_{2,}", "_", safe).strip("_")
    safe = safe.encode("utf-8")[:63].decode("utf-8", errors="ignore")
    return safe or "part"


def ordered_unique(names: Iterable[str | None]) -> list[str]:
    """Distinct non-None names in first-appearance order."""
    seen: dict[str, None] = {}
    for name in names:
        if name is not None and name != UNASSIGNED_NODE:
            seen.setdefault(name, None)
    return list(seen)


def names_to_labels(names: list[str | None], part_names: list[str]) -> np.ndarray:
    """Per-item part name (None = unassigned) -> (n,) int64 labels into ``part_names``.

    Matches exactly first, then case-insensitively, then by sanitised node name (so
    ``back_rest`` in a GLB maps back to ``back rest`` from a sidecar).
    """
    exact = {name: i for i, name in enumerate(part_names)}
    folded = {name.casefold(): i for i, name in enumerate(part_names)}
    sanitized = {sanitize_node_name(name).casefold(): i for i, name in enumerate(part_names)}
    labels = np.full(len(names), -1, dtype=np.int64)
    for i, name in enumerate(names):
        if name is None:
            continue
        for table, key in ((exact, name), (folded, name.casefold()), (sanitized, name.casefold())):
            if key in table:
                labels[i] = table[key]
                break
    return labels


def parse_ply_comment_parts(comments: Iterable[str]) -> list[str] | None:
    """Part names from a PLY ``comment parts: a,b,c`` line, or None."""
    for comment in comments:
        text = comment.strip()
        if text.lower().startswith("parts:"):
            names = [name.strip() for name in text.split(":", 1)[1].split(",")]
            return [name for name in names if name]
    return None


def sidecar_candidates(path: Path) -> list[Path]:
    """Sidecar JSON files that may name an asset's parts, most specific first.

    ``chair.parts.ply`` -> ``chair.parts.json`` (bipart's own), ``chair.parts.ply.json``,
    then ``parts.json`` in the same folder.
    """
    return [
        path.with_suffix(".json"),
        path.with_name(path.name + ".json"),
        path.parent / "parts.json",
    ]


def read_sidecar_part_names(path: Path) -> list[str] | None:
    """Ordered part names from the first readable sidecar of ``path``, or None.

    Accepts bipart's ``.parts.json`` (``{"parts": [{"id": 1, "name": ...}]}``), a plain
    list of names, or ``{"parts": ["a", "b"]}``. Part ``id`` gives the file label.
    """
    for candidate in sidecar_candidates(path):
        if not candidate.is_file() or candidate == path:
            continue
        try:
            data = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"{candidate}: unreadable sidecar JSON ({exc})") from None
        names = _names_from_json(data)
        if names is not None:
            return names
    return None


def _names_from_json(data: object) -> list[str] | None:
    parts = data.get("parts") if isinstance(data, dict) else data
    if not isinstance(parts, list) or not parts:
        return None
    if all(isinstance(p, str) for p in parts):
        return [p.strip() for p in parts]
    if all(isinstance(p, dict) and "name" in p for p in parts):
        ordered = sorted(parts, key=lambda p: int(p.get("id", 0)))
        return [str(p["name"]) for p in ordered]
    return None


def file_labels_to_library(
    file_labels: np.ndarray, part_names: list[str] | None, source: Path
) -> tuple[np.ndarray, list[str]]:
    """File convention (0 unassigned, 1..K) -> library convention (-1, 0..K-1).

    Missing names become ``part_<k>``; negative labels are an error.
    """
    file_labels = np.asarray(file_labels).astype(np.int64).reshape(-1)
    if file_labels.size and file_labels.min() < 0:
        raise InvalidInputError(
            f"{source}: negative part labels (files store 0 = unassigned, 1..K)"
        )
    names = list(part_names or [])
    top = int(file_labels.max()) if file_labels.size else 0
    names += [f"part_{k}" for k in range(len(names) + 1, top + 1)]
    return file_labels - 1, names
