"""PLY meshes and point clouds through plyfile: colours, faces and per-vertex or per-face part labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .asset import Asset
from .checks import DEFAULT_GREY, to_rgb_uint8
from .labels import (
    file_labels_to_library,
    parse_ply_comment_parts,
    read_sidecar_part_names,
)


def _check_ply_header(path: Path) -> None:
    """Refuse element counts the file is too small to hold, before plyfile allocates them.

    Every value of a row takes at least one byte (ASCII: a digit or a separator), so
    ``count * max(1, properties)`` may not exceed the bytes after the header.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        header = handle.read(min(size, 1 << 20))
    end = header.find(b"end_header")
    if not header.startswith(b"ply") or end < 0:
        return  # plyfile names the problem
    body = size - (header.find(b"\n", end) + 1 if header.find(b"\n", end) >= 0 else size)
    elements: list[list[int]] = []  # [count, properties]
    for line in header[:end].decode("latin-1").splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "element":
            try:
                elements.append([int(words[2]), 0])
            except ValueError:
                return
        elif words[:1] == ["property"] and elements:
            elements[-1][1] += 1
    for count, properties in elements:
        if count < 0 or count * max(1, properties) > body:
            raise InvalidInputError(
                f"{path}: the PLY header declares {count} rows of {properties} properties, "
                f"more than its {body} bytes of data can hold"
            )


def load_ply(path: Path) -> Asset:
    from plyfile import PlyData

    _check_ply_header(path)
    ply = PlyData.read(str(path))
    names = [element.name for element in ply.elements]
    if "vertex" not in names:
        raise InvalidInputError(f"{path}: PLY file has no 'vertex' element")
    vertex = ply["vertex"].data
    fields = vertex.dtype.names or ()
    if not {"x", "y", "z"} <= set(fields):
        raise InvalidInputError(f"{path}: PLY vertices lack x, y, z")
    xyz = np.stack([vertex[c] for c in "xyz"], axis=1).astype(np.float64)
    vertex_colors = _ply_colors(vertex, fields)
    faces, face_of_poly = _ply_faces(ply) if "face" in names else (None, None)
    part_names = parse_ply_comment_parts(ply.comments, path) or read_sidecar_part_names(path)

    file_labels = None
    if faces is not None:
        face_fields = ply["face"].data.dtype.names or ()
        if "label" in face_fields:
            file_labels = np.asarray(ply["face"].data["label"]).astype(np.int64)[face_of_poly]
        elif "label" in fields:
            file_labels = _majority_of_corners(np.asarray(vertex["label"], np.int64)[faces])
    elif "label" in fields:
        file_labels = np.asarray(vertex["label"]).astype(np.int64)

    asset = Asset(
        vertices=xyz,
        faces=faces,
        vertex_colors=vertex_colors
        if vertex_colors is not None
        else np.tile(DEFAULT_GREY, (len(xyz), 1)),
    )
    if file_labels is not None:
        asset.labels, asset.part_names = file_labels_to_library(file_labels, part_names, path)
    return asset


def _ply_colors(vertex: Any, fields: tuple) -> np.ndarray | None:
    for names in (
        ("red", "green", "blue"),
        ("r", "g", "b"),
        ("diffuse_red", "diffuse_green", "diffuse_blue"),
    ):
        if set(names) <= set(fields):
            return to_rgb_uint8(np.stack([vertex[c] for c in names], axis=1), len(vertex))
    return None


def _ply_faces(ply: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Polygon lists -> fan triangles (t, 3) int64 and the polygon of each triangle (t,)."""
    face = ply["face"].data
    if len(face) == 0:
        return None, None
    key = next(
        (k for k in ("vertex_indices", "vertex_index") if k in (face.dtype.names or ())), None
    )
    if key is None:
        raise InvalidInputError("PLY faces have no vertex_indices property")
    polygons = face[key]
    triangles, owner = [], []
    lengths = np.array([len(p) for p in polygons])
    for n in np.unique(lengths):
        if n < 3:
            continue
        rows = np.nonzero(lengths == n)[0]
        block = np.stack([np.asarray(polygons[i], dtype=np.int64) for i in rows])  # (m, n)
        for k in range(1, n - 1):
            triangles.append(block[:, [0, k, k + 1]])
            owner.append(rows)
    if not triangles:
        return None, None
    order = np.argsort(np.concatenate(owner), kind="stable")
    return np.concatenate(triangles)[order], np.concatenate(owner)[order]


def _majority_of_corners(corner_labels: np.ndarray) -> np.ndarray:
    """(f, 3) labels -> (f,): the label two corners share, else the first corner's."""
    a, b, c = corner_labels.T
    return np.where((b == c) & (a != b), b, a)
