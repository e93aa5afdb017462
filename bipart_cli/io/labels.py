"""Existing part labels: node/geometry name rules, PLY header comments, sidecar JSON.

Rules (issue 2, item 6):

- a node or geometry named ``<part>``, ``<part>.<n>`` or ``<part>__<anything>``
  belongs to ``<part>`` (``leg.2`` -> ``leg``, ``leg__L`` -> ``leg``);
- a node named ``unassigned`` (what bipart writes for unlabeled faces) is unassigned;
- generic exporter names (``Object_3``, ``Cube.001``, ``geometry_0``...) and names
  without a letter (``2``, ``4``) are not parts;
- an asset counts as labeled when its names give at least two distinct parts, or
  when a bipart sidecar ``<stem>.parts.json`` names its parts;
- exporters name nodes too (``bedDouble_2a4d3a``, ``cover.001``), so names alone are part
  labels only for a request that names them (``--parts``, an index's ``parts.json``), or
  when a ``parts.json`` beside the file names them (issue 32 item 3, :func:`unlabeled_for`).

PLY files store ``0`` = unassigned and ``1..K``; names come from a header comment
or a sidecar JSON. PLY comments hold printable ASCII alone (plyfile refuses anything
else), so bipart writes (:func:`ply_comment_parts`):

- ``comment parts: a,b,c`` when every name is printable ASCII without a comma or
  surrounding spaces (the form other tools read too);
- else ``comment parts-json: ["dossier", "si\\u00e8ge", "pied"]``: the names as a
  JSON list with every non-ASCII character ``\\uXXXX``-escaped (``json.dumps``'
  ``ensure_ascii``), which reads back to the exact names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .sources import note_missing, note_read

UNASSIGNED_NODE = "unassigned"

_INSTANCE_SUFFIX = re.compile(r"^(.+?)\.\d+$")
# exporters' names for "a mesh" (Blender's default objects too), never a part's
GENERIC_NAMES = (
    *("object", "mesh", "geometry", "node", "primitive", "group", "default", "defaultobject"),
    *("scene", "root", "model", "untitled", "world", "cube", "cylinder", "sphere", "icosphere"),
    *("plane", "cone", "torus", "circle", "suzanne"),
)
_GENERIC = re.compile(rf"^({'|'.join(GENERIC_NAMES)})([ _.\-]?\d+)*$", re.IGNORECASE)
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


# why an asset's labels are no part labels for a request (Unlabeled.why)
NO_LABELS = "no part labels"
NAMES_UNCONFIRMED = "node names are part labels only when --parts or a parts.json names them"
NAMES_UNREQUESTED = "none of its node names is a requested part"
PARTS_UNREQUESTED = "none of its labeled parts is a requested part"
SHOWN_NAMES = 4  # node names a message lists before "..."


@dataclass(frozen=True)
class Unlabeled:
    """Why an asset has no part labels for a request: ``why``, one of the rules above (the
    same text for every file it applies to), and the asset's distinct node names."""

    why: str
    node_names: tuple[str, ...] = ()

    def names_text(self) -> str:
        """``node names: a, b, c, d, ... (9 in all)``, or ``no node names``."""
        if not self.node_names:
            return "no node names"
        shown = ", ".join(self.node_names[:SHOWN_NAMES])
        more = len(self.node_names) - SHOWN_NAMES
        return f"node names: {shown}" + (
            f", ... ({len(self.node_names)} in all)" if more > 0 else ""
        )

    def __str__(self) -> str:
        return f"unlabeled ({self.names_text()}): {self.why}"


def unlabeled_for(asset: Any, requested: list[str] | None = None) -> Unlabeled | None:
    """Why ``asset``'s labels are no part labels for the ``requested`` part names (None: no
    request), or None when they are.

    Labels from a file (a PLY label property, ``<stem>_labels.npy``) or named by a sidecar
    JSON always count; labels from node names alone (``asset.labels_from_names``) count only
    when a requested part is among them. With a request, at least one requested part must
    be among the asset's parts (whether it labels any face is for the labeler to judge).
    """
    nodes = tuple(ordered_unique(asset.geometry_nodes or []))
    if not asset.has_labels:  # names that label no face (a PSB file missing its array) count
        return Unlabeled(NO_LABELS, nodes)
    if requested is None:
        return Unlabeled(NAMES_UNCONFIRMED, nodes) if asset.labels_from_names else None
    wanted = {name.casefold() for name in requested}  # as labels_for_parts matches them
    if any(name.casefold() in wanted for name in asset.part_names):
        return None
    return Unlabeled(NAMES_UNREQUESTED if asset.labels_from_names else PARTS_UNREQUESTED, nodes)


PLY_PARTS_KEY = "parts:"
PLY_PARTS_JSON_KEY = "parts-json:"


def _plain_ply_name(name: str) -> bool:
    """Printable ASCII, no comma, no surrounding space: the names ``parts: a,b,c`` keeps."""
    return name.isascii() and name.isprintable() and "," not in name and name == name.strip()


def ply_comment_parts(part_names: list[str]) -> str:
    """The PLY header comment naming ``part_names``, printable ASCII whatever the names.

    ``parts: a,b,c`` when every name is plain printable ASCII (no comma, no
    surrounding space), else ``parts-json: [...]`` with ``\\uXXXX`` escapes.
    """
    if all(_plain_ply_name(name) for name in part_names):
        return f"{PLY_PARTS_KEY} {','.join(part_names)}"
    return f"{PLY_PARTS_JSON_KEY} {json.dumps(part_names, ensure_ascii=True)}"


def parse_ply_comment_parts(
    comments: Iterable[str], source: Path | str = "PLY header"
) -> list[str] | None:
    """Part names from a PLY ``comment parts-json: [...]`` or ``comment parts: a,b,c``
    line (the JSON one first: it holds the exact names), or None.

    A ``parts-json`` comment that is not a JSON list of strings is an
    :class:`InvalidInputError` naming ``source``.
    """
    comments = [comment.strip() for comment in comments]
    for text in comments:
        if text.lower().startswith(PLY_PARTS_JSON_KEY):
            try:
                names = json.loads(text[len(PLY_PARTS_JSON_KEY) :])
            except ValueError:
                names = None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise InvalidInputError(
                    f"{source}: the PLY comment {PLY_PARTS_JSON_KEY} is not a JSON list of names"
                )
            return [name.strip() for name in names if name.strip()]
    for text in comments:
        if text.lower().startswith(PLY_PARTS_KEY):
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
        if candidate == path:
            continue
        if not candidate.is_file():
            note_missing(candidate)  # one that appears later would be read
            continue
        note_read(candidate)
        try:
            data = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"{candidate}: unreadable sidecar JSON ({exc})") from None
        names = _names_from_json(data, candidate)
        if names is not None:
            return names
    return None


def _names_from_json(data: object, source: Path) -> list[str] | None:
    """Part names of a sidecar JSON, or None when it does not name parts.

    A ``parts`` list that is there but malformed (not names, bad ``id``, an empty or a
    duplicate name, case-insensitive) is an :class:`InvalidInputError` naming the file,
    the same rule as ``--parts`` and the index's ``parts.json``.
    """
    parts = data.get("parts") if isinstance(data, dict) else data
    if not isinstance(parts, list) or not parts:
        return None
    if all(isinstance(p, str) for p in parts):
        names = [p.strip() for p in parts]
    elif all(isinstance(p, dict) and "name" in p for p in parts):
        try:
            ordered = sorted(parts, key=lambda p: int(p.get("id", 0)))
        except (TypeError, ValueError, OverflowError):  # OverflowError: an id of Infinity
            raise InvalidInputError(f"{source}: a part 'id' is not an integer") from None
        names = [str(p["name"]).strip() for p in ordered]
    else:
        raise InvalidInputError(
            f'{source}: \'parts\' must be a list of names or of {{"id", "name"}} objects'
        )
    seen: dict[str, str] = {}
    for name in names:
        if not name:
            raise InvalidInputError(f"{source}: a part name is empty")
        if name.casefold() in seen:
            raise InvalidInputError(
                f"{source}: names the part {name!r} twice (as {seen[name.casefold()]!r} too)"
            )
        seen[name.casefold()] = name
    return names


# the largest label value a file may hold: values are remapped densely, this only keeps
# ``label + 1`` and int64 arithmetic exact
MAX_LABEL_VALUE = 2**62


def integer_labels(values: np.ndarray, source: Path) -> np.ndarray:
    """Labels read from a file -> (n,) int64; only integer (or integral float) values.

    Raises :class:`InvalidInputError` for structured, complex, string or object arrays,
    non-integral or non-finite floats and values beyond +-2**62.
    """
    values = np.asarray(values)
    kind = values.dtype.kind
    if values.dtype.fields is not None or kind not in "biuf":
        raise InvalidInputError(
            f"{source}: part labels must be integers, not {values.dtype} values"
        )
    if kind == "f":
        if not np.isfinite(values).all() or (values != np.round(values)).any():
            raise InvalidInputError(f"{source}: part labels must be whole numbers")
        if values.size and np.abs(values).max() >= MAX_LABEL_VALUE:
            raise InvalidInputError(f"{source}: part label value out of range")
    elif kind == "u" and values.size and int(values.max()) >= MAX_LABEL_VALUE:
        raise InvalidInputError(f"{source}: part label value {int(values.max())} is out of range")
    labels = values.astype(np.int64).reshape(-1)
    if labels.size and (labels.max() >= MAX_LABEL_VALUE or labels.min() <= -MAX_LABEL_VALUE):
        raise InvalidInputError(f"{source}: part label value out of range")
    return labels


def file_labels_to_library(
    file_labels: np.ndarray, part_names: list[str] | None, source: Path
) -> tuple[np.ndarray, list[str]]:
    """File convention (0 unassigned, 1..K) -> library convention (-1, 0..K-1).

    file_labels : (n,) integer labels. Values ``1..len(part_names)`` index the given
    names; larger values (or all of them when no names are given) are remapped
    densely, in increasing order, to parts named ``part_<value>``. So the part list
    grows with the distinct values present (at most n), never with the largest
    value: a label of 30000000 in a 200-byte file makes one part, not 30 million.
    Negative labels are an error. Returns (n,) int64 labels and the part names.
    """
    file_labels = integer_labels(file_labels, source)
    if file_labels.size and file_labels.min() < 0:
        raise InvalidInputError(
            f"{source}: negative part labels (files store 0 = unassigned, 1..K)"
        )
    names = list(part_names or [])
    labels = file_labels - 1
    beyond = file_labels > len(names)
    if beyond.any():
        extra, dense = np.unique(file_labels[beyond], return_inverse=True)
        labels[beyond] = len(names) + dense.reshape(-1)
        names += [f"part_{int(value)}" for value in extra]
    return labels, names
