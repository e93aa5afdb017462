"""Labeled outputs: ``<stem>.parts.ply``, ``<stem>.parts.glb`` and ``<stem>.parts.json``.

All three are built in memory first and then written through
:func:`bipart_cli.io.atomic.staged_outputs` together: on any failure no output (and
no temporary file) is left behind. Files store labels as ``0`` = unassigned and
``1..K`` in ``part_names`` order; node extras and JSON part ``id`` use the same.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import BipartError
from ..parts import part_colors
from .asset import Asset, PointSample
from .atomic import StagedOutputs, staged_outputs
from .faces import face_labels_from_points
from .labels import UNASSIGNED_NODE, ply_comment_parts, sanitize_node_name

SCHEMA_VERSION = 1
UNASSIGNED_COLOR = np.array([200, 200, 200], dtype=np.uint8)


@dataclass
class OutputPaths:
    """Where :func:`write_outputs` wrote its three files."""

    ply: Path
    glb: Path
    json: Path


def planned_outputs(source: Path, out_dir: str | Path | None, preview: bool = False) -> list[Path]:
    """The files ``segment`` writes for ``source``: ``<stem>.parts.{ply,glb,json[,png]}``
    in ``out_dir`` (default: beside the source), ``<stem>`` being the full stem (as :attr:`Asset.stem`)."""
    folder = Path(out_dir) if out_dir is not None else source.parent
    stem = source.stem
    kinds = ("ply", "glb", "json", "png") if preview else ("ply", "glb", "json")
    return [folder / f"{stem}.parts.{kind}" for kind in kinds]


def write_outputs(
    asset: Asset,
    dense: PointSample,
    point_labels: np.ndarray,
    point_scores: np.ndarray,
    part_names: list[str],
    out_dir: str | Path,
    *,
    stem: str | None = None,
    metadata: dict[str, Any] | None = None,
    outputs: StagedOutputs | None = None,
    colorize: bool = False,
    extra_files: dict[str, Path] | None = None,
    face_smooth: int = 0,
    named_faces: np.ndarray | None = None,
) -> OutputPaths:
    """Write the labeled PLY, GLB and JSON of one asset.

    Parameters
    ----------
    asset : the loaded asset (original coordinates, scene kept for GLB output)
    dense : PointSample with n points in unit-sphere coordinates
    point_labels : (n,) int64, ``-1`` unassigned, else an index into ``part_names``
    point_scores : (n,) float, confidence of each point's label
    part_names : K names, in ``--parts`` order
    metadata : extra top-level JSON fields (weights id/revision, seed, device, timings)
    outputs : stage the three files into this set (renamed with the caller's other
        outputs) instead of writing them now
    colorize : paint the GLB's parts in the part colours (default: keep the asset's
        materials, UVs and textures per part)
    extra_files : other outputs of the run (the preview) to list under ``files``
    face_smooth : rounds of smoothing of a mesh's face labels over face adjacency
        (:func:`smooth_over_faces`; ``segment`` passes ``--smooth``)
    named_faces : (f,) int64 the part each face's piece is named for, ``-1`` for none
        (:func:`~bipart_cli.io.piece_names.face_parts_from_names`): those faces take it
        whatever their samples vote
    """
    point_labels = np.asarray(point_labels, dtype=np.int64).reshape(-1)
    point_scores = np.asarray(point_scores, dtype=np.float64).reshape(-1)
    _check_arguments(dense, point_labels, point_scores, part_names)
    stem = stem or asset.stem
    out_dir = Path(out_dir)
    paths = OutputPaths(
        ply=out_dir / f"{stem}.parts.ply",
        glb=out_dir / f"{stem}.parts.glb",
        json=out_dir / f"{stem}.parts.json",
    )
    if asset.source is not None and asset.source.resolve() in {
        p.resolve() for p in (paths.ply, paths.glb, paths.json)
    }:
        raise BipartError(f"{asset.source}: writing outputs here would overwrite the input")

    colors = part_colors(len(part_names))
    xyz = asset.denormalize(dense.points)  # (n, 3) original coordinates
    face_labels = None
    if asset.is_mesh:
        face_labels = face_labels_from_points(asset, dense, point_labels, smooth=face_smooth)
        if named_faces is not None:
            face_labels = np.where(named_faces >= 0, named_faces, face_labels)
    part_scores = _mean_per_part(point_labels, point_scores, len(part_names))
    ply_bytes = _ply_bytes(xyz, dense.colors, point_labels, part_names, colors)
    glb_bytes = _glb_bytes(
        asset, xyz, point_labels, face_labels, part_names, colors, part_scores, colorize
    )
    summary = _summary(
        asset, xyz, point_labels, face_labels, part_names, colors, part_scores, paths, metadata
    )
    summary["files"].update({key: Path(value).name for key, value in (extra_files or {}).items()})
    json_text = json.dumps(summary, indent=2, allow_nan=False, default=_jsonable) + "\n"

    with contextlib.ExitStack() as stack:
        if outputs is None:
            outputs = stack.enter_context(staged_outputs(f"outputs to {out_dir}"))
        for target, data in (
            (paths.json, json_text.encode("utf-8")),
            (paths.glb, glb_bytes),
            (paths.ply, ply_bytes),
        ):
            outputs.stage(target).write_bytes(data)
    return paths


def dropped_features(asset: Asset) -> str | None:
    """The one warning for what the labeled GLB leaves out of ``asset``'s file (its glTF
    animations and skins: the parts are static meshes in world space, which no node
    animation or joint can drive), or None when it leaves nothing out."""
    counts = [(asset.animations, "animation"), (asset.skins, "skin")]
    left_out = [f"{n} {what}{'' if n == 1 else 's'}" for n, what in counts if n]
    if not left_out:
        return None
    return (
        f"{asset.stem}.parts.glb leaves out the file's {' and '.join(left_out)}: "
        "its parts are static meshes in world space"
    )


def _jsonable(value: Any) -> Any:
    """numpy scalars/arrays and paths in ``metadata`` -> JSON types; anything else fails."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"metadata value of type {type(value).__name__} is not JSON serialisable")


# --- argument checks -----------------------------------------------------------


def _check_arguments(
    dense: PointSample, labels: np.ndarray, scores: np.ndarray, part_names: list[str]
) -> None:
    n = len(dense.points)
    if len(labels) != n or len(scores) != n:
        raise ValueError(f"{n} points but {len(labels)} labels and {len(scores)} scores")
    if not part_names:
        raise ValueError("part_names is empty")
    if len(labels) and (labels.min() < -1 or labels.max() >= len(part_names)):
        raise ValueError(f"labels must lie in -1..{len(part_names) - 1}")
    if not np.isfinite(scores).all():
        raise ValueError("point_scores hold NaN or inf")


def _mean_per_part(labels: np.ndarray, scores: np.ndarray, k: int) -> list[float | None]:
    means: list[float | None] = []
    for part in range(k):
        mask = labels == part
        means.append(float(scores[mask].mean()) if mask.any() else None)
    return means


def _node_names(part_names: list[str]) -> list[str]:
    """Sanitised, unique node names (``unassigned`` is reserved)."""
    used = {UNASSIGNED_NODE}
    names = []
    for name in part_names:
        node = sanitize_node_name(name)
        base, i = node, 1
        while node.casefold() in {u.casefold() for u in used}:
            node, i = f"{base}_{i}", i + 1
        used.add(node)
        names.append(node)
    return names


# --- PLY -------------------------------------------------------------------------


def _ply_bytes(
    xyz: np.ndarray,
    sample_colors: np.ndarray,
    labels: np.ndarray,
    part_names: list[str],
    colors: np.ndarray,
) -> bytes:
    """Binary little-endian PLY of ``x y z red green blue label`` (label 0 = unassigned).

    The names go in one header comment, ASCII whatever the names
    (:func:`~bipart_cli.io.labels.ply_comment_parts`).
    """
    from plyfile import PlyData, PlyElement

    rgb = np.where(labels[:, None] >= 0, colors[np.maximum(labels, 0)], sample_colors)
    vertex = np.empty(
        len(xyz),
        dtype=[
            ("x", "<f4"),
            ("y", "<f4"),
            ("z", "<f4"),
            ("red", "u1"),
            ("green", "u1"),
            ("blue", "u1"),
            ("label", "<i4"),
        ],
    )
    for i, axis in enumerate("xyz"):
        vertex[axis] = xyz[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        vertex[channel] = rgb[:, i]
    vertex["label"] = labels + 1
    comments = [ply_comment_parts(part_names), f"generator: bipart {__version__}"]
    ply = PlyData(
        [PlyElement.describe(vertex, "vertex")], text=False, byte_order="<", comments=comments
    )
    buffer = io.BytesIO()
    ply.write(buffer)
    return buffer.getvalue()


# --- GLB -------------------------------------------------------------------------


def _glb_bytes(
    asset: Asset,
    xyz: np.ndarray,
    point_labels: np.ndarray,
    face_labels: np.ndarray | None,
    part_names: list[str],
    colors: np.ndarray,
    part_scores: list[float | None],
    colorize: bool = False,
) -> bytes:
    import trimesh

    scene = trimesh.Scene()
    nodes = _node_names(part_names)
    groups = [(i + 1, nodes[i], colors[i], part_scores[i]) for i in range(len(part_names))]
    groups.append((0, UNASSIGNED_NODE, UNASSIGNED_COLOR, None))
    for label, node, color, score in groups:
        extras = {
            "label": label,
            "mean_score": score,
            "name": part_names[label - 1] if label else None,
        }
        if face_labels is None:
            mask = point_labels == label - 1
            if mask.any():
                rgba = np.tile(np.append(color, 255).astype(np.uint8), (int(mask.sum()), 1))
                cloud = trimesh.PointCloud(xyz[mask], colors=rgba)
                scene.add_geometry(cloud, node_name=node, geom_name=node, metadata=extras)
            continue
        chunks = _part_chunks(asset, np.nonzero(face_labels == label - 1)[0], color, colorize)
        _add_part_node(scene, node, chunks, extras)
    return scene.export(file_type="glb")


def _part_chunks(
    asset: Asset, faces: np.ndarray, color: np.ndarray, colorize: bool = False
) -> list:
    """World-space submeshes holding ``faces`` (global indices), one per source geometry.

    By default each chunk keeps its geometry's visual: UVs with the very same material
    object (so the exporter writes each image once, shared by every part), or its
    vertex/face colours. ``colorize`` paints chunks in the part colour instead (textured
    ones through a tinted copy of the material's base-colour factor).
    """
    import trimesh

    if len(faces) == 0:
        return []
    rgba = np.append(color, 255).astype(np.uint8)
    if asset.scene is None or asset.face_geometry is None:
        mesh = trimesh.Trimesh(asset.vertices, asset.faces, process=False, validate=False)
        sub = mesh.submesh([faces], append=True)
        sub.visual = trimesh.visual.ColorVisuals(
            sub, face_colors=np.tile(rgba, (len(sub.faces), 1))
        )
        return [sub]
    chunks = []
    first_face = np.searchsorted(asset.face_geometry, np.arange(len(asset.geometry_nodes)))
    for instance in np.unique(asset.face_geometry[faces]):
        local = faces[asset.face_geometry[faces] == instance] - first_face[instance]
        transform, geom_name = asset.scene.graph[asset.geometry_nodes[instance]]
        source = asset.scene.geometry[geom_name]
        sub = source.submesh([local], append=True)
        sub.apply_transform(transform)
        _keep_material(sub, source)
        if not colorize:
            chunks.append(sub)
            continue
        if getattr(sub.visual, "kind", None) == "texture":
            material = sub.visual.material
            material = material.to_pbr() if hasattr(material, "to_pbr") else material.copy()
            material.baseColorFactor = rgba
            sub.visual.material = material
        else:
            sub.visual = trimesh.visual.ColorVisuals(
                sub, face_colors=np.tile(rgba, (len(sub.faces), 1))
            )
        chunks.append(sub)
    return chunks


def _keep_material(sub: Any, source: Any) -> None:
    """Give ``sub`` (a submesh of ``source``) the very material object of ``source``.

    trimesh's ``submesh`` keeps a textured visual's UVs but drops a material that has no
    UVs (a plain ``baseColorFactor``, as glTF exporters write for untextured primitives):
    such a piece would be written without a material and render white. Sharing the
    object (not a copy) lets the exporter write each material and image once.
    """
    import trimesh

    visual = getattr(source, "visual", None)
    if getattr(visual, "kind", None) != "texture" or visual.material is None:
        return
    if getattr(sub.visual, "kind", None) == "texture":
        sub.visual.material = visual.material
    else:
        sub.visual = trimesh.visual.TextureVisuals(material=visual.material)


def _add_part_node(scene: Any, node: str, chunks: list, extras: dict) -> None:
    """One node per part: the mesh itself, or children ``<node>__<k>`` for textured chunks."""
    import trimesh

    if not chunks:
        return
    if len(chunks) > 1 and all(c.visual.kind != "texture" for c in chunks):
        chunks = [trimesh.util.concatenate(chunks)]
    if len(chunks) == 1:
        scene.add_geometry(chunks[0], node_name=node, geom_name=node, metadata=extras)
        return
    scene.graph.update(frame_to=node, frame_from=scene.graph.base_frame, metadata=extras)
    for k, chunk in enumerate(chunks):
        name = f"{node}__{k}"
        scene.add_geometry(chunk, node_name=name, geom_name=name, parent_node_name=node)


# --- JSON ------------------------------------------------------------------------


def _summary(
    asset: Asset,
    xyz: np.ndarray,
    point_labels: np.ndarray,
    face_labels: np.ndarray | None,
    part_names: list[str],
    colors: np.ndarray,
    part_scores: list[float | None],
    paths: OutputPaths,
    metadata: dict[str, Any] | None,
) -> dict[str, Any]:
    nodes = _node_names(part_names)
    parts = []
    for i, name in enumerate(part_names):
        mask = point_labels == i
        faces = None if face_labels is None else int((face_labels == i).sum())
        part = {
            "id": i + 1,
            "name": name,
            "node": nodes[i],  # the GLB node, only for parts that have one
            "color": colors[i].tolist(),
            "points": int(mask.sum()),
            "faces": faces,
            "bbox": {"min": xyz[mask].min(0).tolist(), "max": xyz[mask].max(0).tolist()}
            if mask.any()
            else None,
            "mean_score": part_scores[i],
        }
        if (faces if faces is not None else part["points"]) == 0:
            del part["node"]
        parts.append(part)
    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "bipart", "version": __version__},
        "input": {
            "path": str(asset.source) if asset.source is not None else None,
            "sha256": asset.sha256,
            "format": asset.format,
            "kind": "mesh" if asset.is_mesh else "point_cloud",
            "vertices": len(asset.vertices),
            "faces": 0 if asset.faces is None else len(asset.faces),
        },
        "normalization": {"center": np.asarray(asset.center).tolist(), "scale": asset.scale},
        "label_convention": "files store 0 = unassigned, 1..K = parts[id - 1]",
        "points": len(point_labels),
        "parts": parts,
        "unassigned": {
            "points": int((point_labels < 0).sum()),
            "faces": None if face_labels is None else int((face_labels < 0).sum()),
        },
        "files": {"ply": paths.ply.name, "glb": paths.glb.name, "json": paths.json.name},
    }
    clash = set(summary) & set(metadata or {})
    if clash:
        raise ValueError(f"metadata may not override {sorted(clash)}")
    summary.update(metadata or {})
    return summary
