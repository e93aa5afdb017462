"""What bipart reads from an asset, as JSON facts and as lines for ``bipart info ASSET``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .asset import Asset
from .checks import DEFAULT_GREY, used_vertices
from .labels import NO_LABELS, unlabeled_for


def describe_asset(asset: Asset, requested: list[str] | None = None) -> dict[str, Any]:
    """A JSON-ready summary: format, sizes, colours, labeled parts, bbox, normalisation.

    ``requested``: the part names of a request (``info --parts``); node names are part
    labels only when it names them, or a sidecar JSON does (:func:`~.labels.unlabeled_for`).
    ``unlabeled`` then says why the asset counts as unlabeled, with its node names, and
    ``named_pieces`` which pieces ``segment`` gives a requested part by their own names
    (:mod:`~.piece_names`; None without a request).
    """
    unlabeled = unlabeled_for(asset, requested)
    labeled = unlabeled is None
    counts = None if asset.labels is None else np.bincount(asset.labels + 1, minlength=1)
    unit = "faces" if asset.is_mesh else "points"
    parts = []
    for i, name in enumerate(asset.part_names if labeled else []):
        parts.append(
            {"id": i + 1, "name": name, unit: int(counts[i + 1]) if i + 1 < len(counts) else 0}
        )
    used = used_vertices(asset)
    if asset.textures:
        colors = "texture"
    elif asset.face_colors is not None:
        colors = "face"
    elif asset.vertex_colors is not None and not _only_default_grey(asset.vertex_colors):
        colors = "vertex"
    else:  # STL and other colourless files get bipart's default grey: no colours of their own
        colors = "none"
    return {
        "path": str(asset.source) if asset.source else None,
        "format": asset.format,
        "kind": "mesh" if asset.is_mesh else "point_cloud",
        "sha256": asset.sha256,
        "vertices": len(asset.vertices),
        "faces": 0 if asset.faces is None else len(asset.faces),
        "geometries": len(asset.geometry_nodes) if asset.geometry_nodes else 1,
        "colors": colors,
        "labeled": labeled,
        "parts": parts,
        "unassigned_" + unit: int(counts[0]) if counts is not None and labeled else None,
        "node_names": list(dict.fromkeys(asset.geometry_nodes)),
        "unlabeled": None if labeled else {"why": unlabeled.why, "text": unlabeled.names_text()},
        "named_pieces": None if requested is None else _named_pieces(asset, requested),
        "bbox": {"min": used.min(0).tolist(), "max": used.max(0).tolist()},
        "normalization": {"center": np.asarray(asset.center).tolist(), "scale": asset.scale},
    }


def _named_pieces(asset: Asset, requested: list[str]) -> list[dict[str, Any]]:
    """The pieces whose own names give a requested part (``segment``'s ``named_pieces``)."""
    from .piece_names import face_parts_from_names, named_pieces_json

    return named_pieces_json(face_parts_from_names(asset, requested)[1], requested)


def _only_default_grey(colors: np.ndarray) -> bool:
    """Whether every vertex colour (v, 3) is bipart's fill-in grey (the file had none)."""
    return bool(len(colors) == 0 or (np.asarray(colors)[:, :3] == DEFAULT_GREY).all())


def _named_text(named: list[dict[str, Any]]) -> str:
    """``door 3, drawer 3 (segment gives them these parts; ...)``: the pieces per part, or
    ``none (...)``."""
    from ..runtime import printable

    if not named:
        return "none (segment labels every piece from its points)"
    counts: dict[str, int] = {}
    for entry in named:
        counts[entry["part"]] = counts.get(entry["part"], 0) + entry["pieces"]
    listed = ", ".join(f"{printable(part)} {count}" for part, count in counts.items())
    return f"{listed} (segment gives them these parts; --no-names leaves them to the points)"


def _padded(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal columns (CJK characters take two, combining
    accents none)."""
    import unicodedata

    columns = sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )
    return text + " " * max(0, width - columns)


def format_asset_summary(facts: dict[str, Any]) -> list[str]:
    """Human-readable lines for a :func:`describe_asset` dict."""

    from ..runtime import printable

    def vec(values: list[float]) -> str:
        return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"

    lines = [
        f"{'path':>14}: {printable(facts['path'])}",
        f"{'format':>14}: {facts['format']} ({facts['kind'].replace('_', ' ')})",
        f"{'vertices':>14}: {facts['vertices']}",
        f"{'faces':>14}: {facts['faces']}",
        f"{'geometries':>14}: {facts['geometries']}",
        f"{'colors':>14}: {facts['colors']}",
        f"{'bbox':>14}: {vec(facts['bbox']['min'])} .. {vec(facts['bbox']['max'])}",
        f"{'normalization':>14}: center {vec(facts['normalization']['center'])}, "
        f"scale {facts['normalization']['scale']:.4g}",
        f"{'sha256':>14}: {facts['sha256']}",
    ]
    if facts.get("named_pieces") is not None:
        lines.append(f"{'named pieces':>14}: {_named_text(facts['named_pieces'])}")
    if not facts["labeled"]:
        unlabeled = facts["unlabeled"]
        why = "" if unlabeled["why"] == NO_LABELS else f"; {unlabeled['why']}"
        return [*lines, f"{'parts':>14}: unlabeled ({printable(unlabeled['text'])}){why}"]
    unit = "faces" if facts["kind"] == "mesh" else "points"
    lines.append(f"{'parts':>14}: {len(facts['parts'])} labeled")
    for part in facts["parts"]:
        name = printable(part["name"])  # a node name's newline or ESC shown escaped
        lines.append(f"{part['id']:>16}  {_padded(name, 20)} {part[unit]:>8} {unit}")
    lines.append(f"{'':>16}  {'(unassigned)':<20} {facts['unassigned_' + unit]:>8} {unit}")
    return lines
