"""Loading meshes and point clouds into :class:`Asset`, with colours, labels and normalisation.

Meshes: GLB/GLTF (scene-graph transforms applied, geometries concatenated), OBJ,
PLY with faces, OFF, STL. Point clouds: PLY without faces, ``.npy``/``.npz``
(N x 3 or N x 6 with RGB), ``.xyz``/``.txt``.

Normalisation to the unit sphere: the centre is the area-weighted surface
centroid for meshes (so dense vertex regions do not pull it; the same centre as
the mean of an area-weighted sample) and the vertex mean for point clouds; the
scale is the largest distance from that centre to a (used) vertex.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BipartError, InvalidInputError, UnsupportedFormatError
from ..runtime import scrub_hint
from .asset import Asset
from .labels import (
    file_labels_to_library,
    integer_labels,
    names_to_labels,
    ordered_unique,
    parse_ply_comment_parts,
    part_from_name,
    read_sidecar_part_names,
)

MESH_FORMATS = ("glb", "gltf", "obj", "off", "stl")
CLOUD_FORMATS = ("npy", "npz", "xyz", "txt")
SUPPORTED_FORMATS = ("glb", "gltf", "obj", "ply", "off", "stl", "npy", "npz", "xyz", "txt")

DEFAULT_GREY = np.array([128, 128, 128], dtype=np.uint8)
MAX_COORDINATE = 1e30  # squared (areas) and summed it stays far from float64's 1.8e308


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_asset(path: str | Path) -> Asset:
    """Read a mesh or point cloud, its colours and any existing part labels.

    Raises :class:`InvalidInputError` (or :class:`UnsupportedFormatError`) with one
    clear line for a missing file, a directory, an unknown extension, a corrupt or
    empty file, non-finite coordinates or a mesh of only degenerate faces.
    """
    path = Path(path)
    fmt = _check_path(path)
    try:
        asset = _LOADERS[fmt](path)
    except BipartError:
        raise
    except ImportError as exc:  # a missing optional package is not a corrupt file
        raise InvalidInputError(
            f"{path}: reading this {fmt.upper()} file needs the Python package "
            f"'{exc.name or exc}', which is not installed"
        ) from exc
    except Exception as exc:  # parsers raise anything on corrupt bytes
        raise InvalidInputError(
            f"{path}: corrupt or truncated {fmt.upper()} file ({_one_line(exc)})"
        ) from exc
    asset.source = path
    asset.format = fmt
    asset.sha256 = sha256_file(path)
    if asset.labels is None or not (asset.labels >= 0).any():
        # a parts.json naming the parts gives an OBJ/GLB all-unassigned name labels:
        # the label array beside it still holds the labels
        _read_label_array_sidecar(asset, path)
    return finalize_asset(asset, path)


def _read_label_array_sidecar(asset: Asset, path: Path) -> None:
    """``<stem>_labels.npy`` (the PSB and MeshCNN layout): 0-based part per face, or per
    vertex for point clouds and face-less meshes; negative means unassigned. Names come
    from a sidecar JSON (``parts.json`` beside it), else ``part_1`` ...; values beyond
    the names are remapped densely (:func:`~bipart_cli.io.labels.file_labels_to_library`).
    """
    sidecar = path.with_name(f"{path.stem}_labels.npy")
    if not sidecar.is_file():
        return
    raw = read_npy(sidecar, "label array")
    has_faces = asset.faces is not None and len(asset.faces) > 0
    expected = len(asset.faces) if has_faces else len(asset.vertices)
    if raw.size != expected:
        what = "faces" if has_faces else "vertices"
        raise InvalidInputError(
            f"{sidecar}: {raw.size} labels for the {expected} {what} of {path.name}"
        )
    if raw.dtype.fields is not None or raw.dtype.kind not in "biu":
        raise InvalidInputError(f"{sidecar}: part labels must be an integer array, not {raw.dtype}")
    labels = integer_labels(raw, sidecar)
    names = read_sidecar_part_names(path)
    asset.labels, asset.part_names = file_labels_to_library(
        np.where(labels >= 0, labels + 1, 0), names, sidecar
    )


def read_npy(path: Path, what: str = "array") -> np.ndarray:
    """A ``.npy`` file's array, never pickled objects, allocating no more than the file holds.

    The header's shape is checked against the file size first (through a read-only
    memory map), so a 100-byte file declaring 10**12 elements is an error, not an
    allocation. Raises :class:`InvalidInputError`.
    """
    try:
        with open(path, "rb") as handle:
            if handle.read(6) != b"\x93NUMPY":
                raise InvalidInputError(f"{path}: not a .npy {what} (bad magic bytes)")
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        array = np.array(mapped)
        del mapped
    except InvalidInputError:
        raise
    except Exception as exc:  # numpy parses the header with ast/tokenize: anything goes
        text = str(exc)
        if "object" in text or "pickle" in text:
            reason = "it holds Python objects (pickle), which bipart never loads"
        elif "length is greater than file size" in text:
            reason = "its header declares more data than the file holds"
        else:
            reason = scrub_hint(_one_line(exc))
        raise InvalidInputError(f"{path}: unreadable {what}: {reason}") from None
    return array


def finalize_asset(asset: Asset, where: object = "asset") -> Asset:
    """Validate an in-memory asset and fill its unit-sphere ``center`` and ``scale``.

    Raises :class:`InvalidInputError` ("<where>: ...") for no vertices, NaN/inf
    coordinates, bad face indices or only degenerate faces.
    """
    _validate(asset, where)
    asset.center, asset.scale = _normalization(asset, where)
    return asset


def describe_asset(asset: Asset) -> dict[str, Any]:
    """A JSON-ready summary: format, sizes, colours, labeled parts, bbox, normalisation."""
    counts = None if asset.labels is None else np.bincount(asset.labels + 1, minlength=1)
    unit = "faces" if asset.is_mesh else "points"
    parts = []
    for i, name in enumerate(asset.part_names if asset.has_labels else []):
        parts.append(
            {"id": i + 1, "name": name, unit: int(counts[i + 1]) if i + 1 < len(counts) else 0}
        )
    used = _used_vertices(asset)
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
        "labeled": asset.has_labels,
        "parts": parts,
        "unassigned_" + unit: int(counts[0]) if counts is not None and asset.has_labels else None,
        "bbox": {"min": used.min(0).tolist(), "max": used.max(0).tolist()},
        "normalization": {"center": np.asarray(asset.center).tolist(), "scale": asset.scale},
    }


def _only_default_grey(colors: np.ndarray) -> bool:
    """Whether every vertex colour (v, 3) is bipart's fill-in grey (the file had none)."""
    return bool(len(colors) == 0 or (np.asarray(colors)[:, :3] == DEFAULT_GREY).all())


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
    if not facts["parts"]:
        return [*lines, f"{'parts':>14}: none (unlabeled)"]
    unit = "faces" if facts["kind"] == "mesh" else "points"
    lines.append(f"{'parts':>14}: {len(facts['parts'])} labeled")
    for part in facts["parts"]:
        lines.append(f"{part['id']:>16}  {printable(part['name']):<20} {part[unit]:>8} {unit}")
    lines.append(f"{'':>16}  {'(unassigned)':<20} {facts['unassigned_' + unit]:>8} {unit}")
    return lines


# --- text encodings ---------------------------------------------------------------


def decode_text_bytes(raw: bytes) -> str:
    """Text of a mesh file: UTF-8 (a BOM dropped), else Windows-1252, else Latin-1.

    trimesh guesses non-UTF-8 encodings with ``charset_normalizer``, which is not
    installed (and guessed ``tęte`` for the Latin-1 ``tête``); Latin-1 never fails.
    """
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _utf8_copy(path: Path, binary_stl: bool = False) -> bytes | None:
    """None when ``path`` is UTF-8 text (or a binary STL); else its text re-encoded as UTF-8."""
    raw = path.read_bytes()
    if binary_stl and len(raw) >= 84 and len(raw) == 84 + 50 * int.from_bytes(raw[80:84], "little"):
        return None
    try:
        raw.decode("utf-8")
        return None
    except UnicodeDecodeError:
        return decode_text_bytes(raw).encode("utf-8")


# --- path and format checks -------------------------------------------------


def _check_path(path: Path) -> str:
    if not path.exists():
        raise InvalidInputError(f"{path}: no such file")
    if path.is_dir():
        raise InvalidInputError(f"{path}: is a directory, expected a mesh or point-cloud file")
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in SUPPORTED_FORMATS:
        shown = f"'.{fmt}'" if fmt else "no extension"
        raise UnsupportedFormatError(
            f"{path}: unsupported file type ({shown}); expected one of "
            + ", ".join(f".{f}" for f in SUPPORTED_FORMATS)
        )
    if path.stat().st_size == 0:
        raise InvalidInputError(f"{path}: file is empty (0 bytes)")
    return fmt


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = scrub_hint(text[0]) if text else ""
    first = first if len(first) <= 160 else first[:157] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


# --- validation and normalisation -------------------------------------------


def _validate(asset: Asset, path: object) -> None:
    vertices = asset.vertices
    if len(vertices) == 0:
        raise InvalidInputError(f"{path}: empty mesh: no vertices or points")
    bad = ~np.isfinite(vertices).all(axis=1)
    if bad.any():
        raise InvalidInputError(
            f"{path}: {int(bad.sum())} of {len(vertices)} vertices are NaN or inf"
        )
    if np.abs(vertices).max() > MAX_COORDINATE:  # areas and norms would overflow
        raise InvalidInputError(
            f"{path}: coordinates reach {np.abs(vertices).max():.3g}, beyond +-{MAX_COORDINATE:g}"
        )
    if asset.faces is None:
        return
    if len(asset.faces) == 0:
        raise InvalidInputError(f"{path}: empty mesh: no faces")
    if asset.faces.min() < 0 or asset.faces.max() >= len(vertices):
        raise InvalidInputError(f"{path}: faces index vertices that do not exist")
    areas = _face_areas(asset)
    extent = float(np.ptp(vertices[asset.faces.reshape(-1)], axis=0).max())
    if not (areas > 1e-12 * max(extent, 1e-300) ** 2).any():
        raise InvalidInputError(
            f"{path}: all {len(asset.faces)} faces are degenerate (zero area); nothing to sample"
        )


def _face_areas(asset: Asset) -> np.ndarray:
    tri = asset.vertices[asset.faces]  # (f, 3, 3)
    return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)


def _used_vertices(asset: Asset) -> np.ndarray:
    if asset.faces is None:
        return asset.vertices
    return asset.vertices[np.unique(asset.faces.reshape(-1))]


def _normalization(asset: Asset, path: object) -> tuple[np.ndarray, float]:
    if asset.faces is None:
        center = asset.vertices.mean(axis=0)
    else:
        areas = _face_areas(asset)
        centroids = asset.vertices[asset.faces].mean(axis=1)  # (f, 3)
        center = (centroids * areas[:, None]).sum(0) / areas.sum()
    scale = float(np.linalg.norm(_used_vertices(asset) - center, axis=1).max())
    if not scale > 0:
        raise InvalidInputError(f"{path}: all points coincide; cannot normalise")
    return center.astype(np.float64), scale


# --- colours ------------------------------------------------------------------


def _to_rgb_uint8(colors: Any, n: int) -> np.ndarray | None:
    """(n, 3|4) uint8 or float in [0, 1] -> (n, 3) uint8, or None when absent."""
    if colors is None:
        return None
    colors = np.asarray(colors)
    if colors.ndim != 2 or len(colors) != n or colors.shape[1] < 3:
        return None
    colors = colors[:, :3]
    if colors.dtype.kind == "f":
        if colors.size and np.nanmax(colors) <= 1.0:
            colors = colors * 255.0
        colors = np.nan_to_num(colors)
    return np.clip(np.round(colors), 0, 255).astype(np.uint8)


def _material_image(visual: Any) -> Any:
    material = getattr(visual, "material", None)
    image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
    return image.convert("RGB") if image is not None else None


def _visual_colors(geom: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, Any]:
    """A trimesh geometry's colours.

    Returns vertex_colors (v, 3) uint8, face_colors (f, 3) uint8 or None,
    uv (v, 2) or None, and the base-colour image (PIL) or None.
    """
    n_vertices = len(geom.vertices)
    visual = getattr(geom, "visual", None)
    grey = np.tile(DEFAULT_GREY, (n_vertices, 1))
    if visual is None:
        return grey, None, None, None
    kind = getattr(visual, "kind", None)
    if kind == "texture":
        uv = getattr(visual, "uv", None)
        image = _material_image(visual)
        try:
            vertex_colors = _to_rgb_uint8(visual.to_color().vertex_colors, n_vertices)
        except Exception:  # a material trimesh cannot bake: keep grey
            vertex_colors = None
        if uv is None or len(uv) != n_vertices:
            uv, image = None, None
        return (grey if vertex_colors is None else vertex_colors), None, uv, image
    if kind == "face":
        face_colors = _to_rgb_uint8(visual.face_colors, len(geom.faces))
        return _to_rgb_uint8(visual.vertex_colors, n_vertices), face_colors, None, None
    if kind == "vertex":
        colors = _to_rgb_uint8(visual.vertex_colors, n_vertices)
        return (grey if colors is None else colors), None, None, None
    return grey, None, None, None


# --- scenes (GLB, GLTF, OBJ) -------------------------------------------------


def _load_scene_file(path: Path) -> Asset:
    import trimesh

    fmt = path.suffix.lower().lstrip(".")
    if fmt == "obj":
        recoded = _utf8_copy(path)
        source = path if recoded is None else io.BytesIO(recoded)
        scene = trimesh.load_scene(
            source,
            file_type="obj",
            resolver=trimesh.resolvers.FilePathResolver(path),  # materials beside the file
            split_objects=True,
            split_groups=True,
            process=False,
        )
        name_of, order = _obj_names(path)
        return asset_from_scene(scene, path, name_of, node_order=order)
    scene = trimesh.load_scene(path, file_type=fmt, process=False)
    return asset_from_scene(scene, path, node_order=_gltf_node_order(path))


def _gltf_node_order(path: Path) -> list[str]:
    """Node names in file order (trimesh's scene graph does not keep it)."""
    import json
    import struct

    raw = path.read_bytes()
    if raw[:4] == b"glTF":
        (length,) = struct.unpack("<I", raw[12:16])
        header = json.loads(raw[20 : 20 + length])
    else:
        header = json.loads(raw)
    return [str(node.get("name")) for node in header.get("nodes", [])]


def asset_from_scene(
    scene: Any, path: Path | None = None, name_of: Any = None, node_order: list[str] | None = None
) -> Asset:
    """Concatenate a ``trimesh.Scene``'s geometry instances (world coordinates) into an
    Asset, validated and with its normalisation filled (see :func:`finalize_asset`).

    Instances follow ``node_order`` (file order) where given, else the scene graph's
    order. Faces keep each instance's own order; ``face_geometry`` records the
    instance. Part labels come from node (else geometry) names, see
    :mod:`bipart_cli.io.labels`.
    """
    import trimesh

    node_data = scene.graph.transforms.node_data
    nodes = [node for node in node_data if "geometry" in node_data[node]]
    if node_order:
        rank = {name: i for i, name in enumerate(node_order)}
        nodes.sort(key=lambda node: rank.get(str(node), len(rank)))
    meshes, clouds = [], []
    for node in nodes:
        transform, geom_name = scene.graph[node]
        geom = scene.geometry.get(geom_name)
        raw_name = name_of(node, geom_name) if name_of else None
        part = raw_name or part_from_name(str(node)) or part_from_name(geom_name)
        if isinstance(geom, trimesh.Trimesh) and len(geom.faces) > 0:
            meshes.append((str(node), part, transform, geom))
        elif isinstance(geom, trimesh.PointCloud | trimesh.Trimesh) and len(geom.vertices) > 0:
            clouds.append((str(node), part, transform, geom))
    if meshes:
        asset = _concat_meshes(meshes)
        item_instance = asset.face_geometry
    elif clouds:
        asset = _concat_clouds(clouds)
        item_instance = np.repeat(np.arange(len(clouds)), [len(c[3].vertices) for c in clouds])
    else:
        where = f"{path}: " if path else ""
        raise InvalidInputError(f"{where}empty mesh: the file holds no triangles or points")
    asset.scene = scene if meshes else None
    _attach_name_labels(asset, [part for _, part, _, _ in (meshes or clouds)], item_instance, path)
    return finalize_asset(asset, path or "scene")


def _concat_meshes(meshes: list) -> Asset:
    import trimesh

    vertices, faces, vcolors, fcolors, uvs, ftex, fgeom, textures = [], [], [], [], [], [], [], []
    any_face_colors = any_texture = False
    offset = 0
    for index, (_, _, transform, geom) in enumerate(meshes):
        v = trimesh.transform_points(np.asarray(geom.vertices, dtype=np.float64), transform)
        f = np.asarray(geom.faces, dtype=np.int64)
        vc, fc, uv, image = _visual_colors(geom)
        vertices.append(v)
        faces.append(f + offset)
        vcolors.append(vc)
        fcolors.append(fc if fc is not None else vc[f].mean(axis=1).astype(np.uint8))
        any_face_colors |= fc is not None
        if image is not None:
            any_texture = True
            textures.append(image)
            uvs.append(np.asarray(uv, dtype=np.float64))
            ftex.append(np.full(len(f), len(textures) - 1, dtype=np.int64))
        else:
            uvs.append(np.zeros((len(v), 2)))
            ftex.append(np.full(len(f), -1, dtype=np.int64))
        fgeom.append(np.full(len(f), index, dtype=np.int64))
        offset += len(v)
    return Asset(
        vertices=np.concatenate(vertices),
        faces=np.concatenate(faces),
        vertex_colors=np.concatenate(vcolors),
        face_colors=np.concatenate(fcolors) if any_face_colors else None,
        face_geometry=np.concatenate(fgeom),
        geometry_nodes=[node for node, _, _, _ in meshes],
        vertex_uv=np.concatenate(uvs) if any_texture else None,
        face_texture=np.concatenate(ftex) if any_texture else None,
        textures=textures,
    )


def _concat_clouds(clouds: list) -> Asset:
    import trimesh

    vertices, colors = [], []
    for _, _, transform, geom in clouds:
        points = np.asarray(geom.vertices, dtype=np.float64)
        vertices.append(trimesh.transform_points(points, transform))
        raw = getattr(geom, "colors", None)
        if raw is None or len(raw) == 0:
            raw = getattr(getattr(geom, "visual", None), "vertex_colors", None)
        rgb = _to_rgb_uint8(raw, len(points))
        colors.append(np.tile(DEFAULT_GREY, (len(points), 1)) if rgb is None else rgb)
    return Asset(vertices=np.concatenate(vertices), vertex_colors=np.concatenate(colors))


def _attach_name_labels(
    asset: Asset, instance_parts: list[str | None], item_instance: np.ndarray, path: Path | None
) -> None:
    """Per-instance part names -> face (mesh) or point (cloud) labels.

    item_instance : (f,) or (v,) int64, the instance of each face or point.
    """
    sidecar = read_sidecar_part_names(path) if path is not None else None
    part_names = sidecar or ordered_unique(instance_parts)
    if sidecar is None and len(part_names) < 2:
        return  # one name (or none) is just an object name, not a labeling
    asset.labels = names_to_labels(instance_parts, part_names)[item_instance]
    asset.part_names = part_names


def _obj_names(path: Path):
    """OBJ ``o``/``g`` names: a resolver for trimesh's geometry names and their file order.

    trimesh names a geometry ``<o>_<g>`` when both exist; the group then gives the part.
    """
    objects, groups, order = set(), set(), {}
    current_o = current_g = None
    for line in decode_text_bytes(path.read_bytes()).splitlines():  # as trimesh sees it
        if line.startswith("o "):
            current_o = line[2:].strip()
            objects.add(current_o)
        elif line.startswith("g "):
            current_g = line[2:].strip()
            groups.add(current_g)
        elif line.startswith("f "):
            for key in (f"{current_o}_{current_g}", current_g, current_o):
                order.setdefault(str(key), len(order))

    def name_of(node: str, geom_name: str) -> str | None:
        for name in (str(node), str(geom_name)):
            for obj in objects:
                rest = name[len(obj) + 1 :]
                if name.startswith(obj + "_") and rest in groups:
                    return part_from_name(rest)
        return None

    return name_of, sorted(order, key=order.get)


# --- PLY ------------------------------------------------------------------------


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


def _load_ply(path: Path) -> Asset:
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
    part_names = parse_ply_comment_parts(ply.comments) or read_sidecar_part_names(path)

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
            return _to_rgb_uint8(np.stack([vertex[c] for c in names], axis=1), len(vertex))
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


# --- meshes through trimesh (OFF, STL) ------------------------------------------


def _load_trimesh_file(path: Path) -> Asset:
    import trimesh

    fmt = path.suffix.lower().lstrip(".")
    recoded = _utf8_copy(path, binary_stl=fmt == "stl")
    source = path if recoded is None else io.BytesIO(recoded)
    mesh = trimesh.load_mesh(source, file_type=fmt, process=False)
    if not isinstance(mesh, trimesh.Trimesh):  # a multi-body file came back as a scene
        return asset_from_scene(trimesh.Scene(mesh), path)
    if len(mesh.faces) == 0:
        raise InvalidInputError(f"{path}: empty mesh: no faces")
    vertex_colors, face_colors, _, _ = _visual_colors(mesh)
    return Asset(
        vertices=np.asarray(mesh.vertices, dtype=np.float64),
        faces=np.asarray(mesh.faces, dtype=np.int64),
        vertex_colors=vertex_colors,
        face_colors=face_colors,
    )


# --- point clouds (npy, npz, xyz, txt) -------------------------------------------


def _cloud_from_array(array: np.ndarray, path: Path) -> Asset:
    array = np.asarray(array)
    if array.ndim != 2 or array.shape[1] not in (3, 6) or array.dtype.kind not in "fiu":
        raise InvalidInputError(
            f"{path}: expected an N x 3 (xyz) or N x 6 (xyz rgb) numeric array, got shape "
            f"{tuple(array.shape)} of {array.dtype}"
        )
    xyz = array[:, :3].astype(np.float64)
    colors = _to_rgb_uint8(array[:, 3:6], len(array)) if array.shape[1] == 6 else None
    return Asset(
        vertices=xyz,
        vertex_colors=colors if colors is not None else np.tile(DEFAULT_GREY, (len(xyz), 1)),
    )


def _load_npy(path: Path) -> Asset:
    return _cloud_from_array(read_npy(path, "point array"), path)


# an .npz may expand (deflate) to at most this many times its size, or NPZ_MIN_BUDGET
NPZ_EXPANSION = 32
NPZ_MIN_BUDGET = 256 << 20


def _check_npz(path: Path) -> None:
    """Bound what an ``.npz`` may allocate by its file size, before numpy reads it.

    The members' declared sizes may total at most ``max(256 MiB, 32 x file size)``,
    each member's ``.npy`` header may declare no more than its member holds, and
    object (pickle) members are refused.
    """
    import zipfile

    size = path.stat().st_size
    budget = max(NPZ_MIN_BUDGET, NPZ_EXPANSION * size)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            total = sum(info.file_size for info in infos)
            if total > budget:
                raise InvalidInputError(
                    f"{path}: the archive expands to {total} bytes, more than bipart reads "
                    f"from a {size}-byte .npz (at most {budget})"
                )
            for info in infos:
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                if dtype.hasobject:
                    raise InvalidInputError(
                        f"{path}: {info.filename} holds Python objects (pickle), "
                        "which bipart never loads"
                    )
                if int(np.prod(shape, dtype=object)) * dtype.itemsize > info.file_size:
                    raise InvalidInputError(
                        f"{path}: {info.filename} declares more data than the archive holds"
                    )
    except InvalidInputError:
        raise
    except Exception as exc:  # zipfile and numpy's header parser raise many types
        raise InvalidInputError(f"{path}: not a readable .npz archive ({_one_line(exc)})") from None


def _load_npz(path: Path) -> Asset:
    """Keys: ``points`` (or ``xyz``, else the first array), optional ``colors``,
    ``labels`` (0 = unassigned, 1..K, like every file bipart reads) and ``part_names``."""
    _check_npz(path)
    with np.load(path, allow_pickle=False) as data:
        keys = list(data.keys())
        if not keys:
            raise InvalidInputError(f"{path}: the .npz archive holds no arrays")
        key = next((k for k in ("points", "xyz", "pos") if k in keys), keys[0])
        asset = _cloud_from_array(data[key], path)
        colors_key = next((k for k in ("colors", "rgb") if k in keys), None)
        if colors_key is not None:
            colors = _to_rgb_uint8(data[colors_key], len(asset.vertices))
            if colors is not None:
                asset.vertex_colors = colors
        if "labels" in keys:
            labels = np.asarray(data["labels"]).reshape(-1)
            if len(labels) != len(asset.vertices):
                raise InvalidInputError(
                    f"{path}: {len(labels)} labels for {len(asset.vertices)} points"
                )
            names = [str(n) for n in data["part_names"]] if "part_names" in keys else None
            asset.labels, asset.part_names = file_labels_to_library(
                labels, names or read_sidecar_part_names(path), path
            )
    return asset


def _load_xyz(path: Path) -> Asset:
    """Whitespace-, comma- or semicolon-separated ``x y z [r g b] [more...]`` rows.

    ``#`` and ``//`` comment lines are skipped; a header line (``//X Y Z R G B ...``,
    CloudCompare's, or a first line of names) picks the R, G, B columns by name.
    Without names, columns 4-6 are colours when they are all 0..255 (CloudCompare's
    ``X Y Z R G B SF`` 7-column export, or ``x y z r g b``); any further columns
    (scalar fields, normals) are ignored, as are 6 columns that hold negative values
    (normals).
    """
    text = path.read_text(encoding="utf-8", errors="replace")
    header: list[str] | None = None
    rows: list[list[str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("//"):
            header = re.split(r"[,;\s]+", stripped[2:].strip())
            continue
        tokens = re.split(r"[,;\s]+", stripped)
        if not rows and not _is_number(tokens[0]):
            header = tokens
            continue
        rows.append(tokens)
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        raise InvalidInputError(f"{path}: rows have different numbers of columns {sorted(widths)}")
    try:
        array = np.array(rows, dtype=np.float64)
    except ValueError as exc:
        raise InvalidInputError(f"{path}: not a numeric x y z table ({exc})") from exc
    if array.ndim != 2 or array.shape[1] < 3:
        return _cloud_from_array(array, path)  # reports the shape
    color_columns = [3, 4, 5]
    if header is not None and len(header) == array.shape[1]:
        names = [name.lower() for name in header]
        found = [next((i for i, n in enumerate(names) if n in keys), None) for keys in _RGB_NAMES]
        color_columns = found if None not in found else []
    colors = array[:, color_columns] if array.shape[1] >= 6 and color_columns else None
    if colors is not None and not ((colors >= 0) & (colors <= 255)).all():
        colors = None  # normals or other fields, not colours
    return _cloud_from_array(
        array[:, :3] if colors is None else np.hstack([array[:, :3], colors]), path
    )


_RGB_NAMES = (("r", "red"), ("g", "green"), ("b", "blue"))


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


_LOADERS = {
    "glb": _load_scene_file,
    "gltf": _load_scene_file,
    "obj": _load_scene_file,
    "ply": _load_ply,
    "off": _load_trimesh_file,
    "stl": _load_trimesh_file,
    "npy": _load_npy,
    "npz": _load_npz,
    "xyz": _load_xyz,
    "txt": _load_xyz,
}
