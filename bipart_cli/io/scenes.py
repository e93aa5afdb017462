"""Meshes through trimesh: GLB/GLTF scenes (node transforms, names, colours), OBJ groups, OFF and STL."""

from __future__ import annotations

import io
import json
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..runtime import log
from .asset import Asset
from .checks import DEFAULT_GREY, decode_text_bytes, finalize_asset, to_rgb_uint8, utf8_copy
from .labels import (
    names_to_labels,
    ordered_unique,
    part_from_name,
    read_sidecar_part_names,
)
from .sources import recording_resolver


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
            vertex_colors = to_rgb_uint8(visual.to_color().vertex_colors, n_vertices)
        except Exception:  # a material trimesh cannot bake: keep grey
            vertex_colors = None
        if uv is None or len(uv) != n_vertices:
            uv, image = None, None
        return (grey if vertex_colors is None else vertex_colors), None, uv, image
    if kind == "face":
        face_colors = to_rgb_uint8(visual.face_colors, len(geom.faces))
        return to_rgb_uint8(visual.vertex_colors, n_vertices), face_colors, None, None
    if kind == "vertex":
        colors = to_rgb_uint8(visual.vertex_colors, n_vertices)
        return (grey if colors is None else colors), None, None, None
    return grey, None, None, None


def load_scene_file(path: Path) -> Asset:
    import trimesh
    from PIL import Image

    fmt = path.suffix.lower().lstrip(".")
    if fmt == "obj":
        recoded = utf8_copy(path)
        source = path if recoded is None else io.BytesIO(recoded)
        with warnings.catch_warnings():  # an MTL's huge texture: dropped, not decoded
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            scene = trimesh.load_scene(
                source,
                file_type="obj",
                resolver=recording_resolver(path),  # materials beside the file, reported
                split_objects=True,
                split_groups=True,
                process=False,
            )
        _drop_oversized_textures(scene, path)
        name_of, order = _obj_names(path)
        return asset_from_scene(scene, path, name_of, node_order=order)
    # checked first: trimesh blames a broken container on a missing charset_normalizer
    header = read_gltf_json(path)
    # a glTF's buffers and textures are files beside it: the resolver reports each one read
    scene = _load_scene(path, fmt)
    node_order = [str(node.get("name")) for node in _json_list(header, "nodes")]
    asset = asset_from_scene(scene, path, node_order=node_order)
    asset.animations = len(_json_list(header, "animations"))
    asset.skins = len(_json_list(header, "skins"))
    return asset


def _load_scene(path: Path, fmt: str) -> Any:
    """trimesh's scene of a GLB/GLTF, textures over :data:`MAX_TEXTURE_PIXELS` left out."""
    import trimesh
    from PIL import Image

    with warnings.catch_warnings():
        # images are opened lazily (header only); too large ones are dropped below, so
        # PIL's warning about their size is noise on stderr
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        scene = trimesh.load_scene(
            path, file_type=fmt, resolver=recording_resolver(path), process=False
        )
    _drop_oversized_textures(scene, path)
    return scene


def read_gltf_json(path: Path) -> dict[str, Any]:
    """The JSON of a ``.gltf``, or of a ``.glb``'s first chunk, as a dict.

    Raises :class:`InvalidInputError` ("corrupt or truncated GLB file (...)") for a bad
    magic, a JSON chunk that runs past the end of the file, bytes that are not UTF-8
    (glTF's only encoding) or text that is not a JSON object.
    """
    raw = path.read_bytes()
    kind = "GLB" if path.suffix.lower() == ".glb" else "GLTF"

    def corrupt(why: str) -> InvalidInputError:
        return InvalidInputError(f"{path}: corrupt or truncated {kind} file ({why})")

    if kind == "GLB":
        if raw[:4] != b"glTF" or len(raw) < 20:
            raise corrupt("no GLB header")
        length, chunk_type = struct.unpack("<I4s", raw[12:20])
        if chunk_type != b"JSON":
            raise corrupt("its first chunk is not JSON")
        if 20 + length > len(raw):
            raise corrupt(
                f"its JSON chunk of {length} bytes runs past the end of the {len(raw)}-byte file"
            )
        raw = raw[20 : 20 + length]
    try:
        header = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise corrupt(f"its JSON is not UTF-8, byte {exc.start}") from None
    except ValueError as exc:
        raise corrupt(f"bad JSON: {exc}") from None
    if not isinstance(header, dict):
        raise corrupt("its JSON is not an object")
    return header


def _json_list(header: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """``header[key]``'s objects (a malformed entry is left to trimesh to judge)."""
    items = header.get(key)
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


MAX_TEXTURE_PIXELS = 4096 * 4096  # a 4K texture (1.4 GB for info at 8K); 12000x12000 took ~3 GB
_TEXTURE_SLOTS = (
    "baseColorTexture",
    "image",
    "metallicRoughnessTexture",
    "normalTexture",
    "emissiveTexture",
    "occlusionTexture",
)


def _drop_oversized_textures(scene: Any, path: Path) -> None:
    """Remove every texture of more than :data:`MAX_TEXTURE_PIXELS` from the scene's
    materials, with one warning: trimesh opens images lazily, so only the header's size
    has been read, and the mesh is then read (and written back) without them."""
    dropped = set()
    for geom in scene.geometry.values():
        material = getattr(getattr(geom, "visual", None), "material", None)
        for slot in _TEXTURE_SLOTS:
            size = getattr(getattr(material, slot, None), "size", None)
            if (
                isinstance(size, tuple)
                and len(size) == 2
                and size[0] * size[1] > MAX_TEXTURE_PIXELS
            ):
                setattr(material, slot, None)
                dropped.add(f"{size[0]}x{size[1]}")
    if dropped:
        log.warning(
            "%s: skipped %s texture(s) of %s pixels, past the limit of %d megapixels; the "
            "mesh is read without them",
            path,
            len(dropped),
            ", ".join(sorted(dropped)),
            MAX_TEXTURE_PIXELS // 10**6,
        )


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
    _check_scene_size(meshes, clouds, path)
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


MAX_SCENE_FACES = 2_000_000  # triangles over every instance (5M took 1.5 GB in info)
MAX_SCENE_POINTS = 5_000_000  # points over every point-cloud instance


def _check_scene_size(meshes: list, clouds: list, path: Path | None) -> None:
    """Refuse a scene whose instances add up to more than :data:`MAX_SCENE_FACES` triangles
    (or :data:`MAX_SCENE_POINTS` points) before anything is copied into world coordinates:
    40,000 nodes instancing one 2,000-triangle mesh fit in a small GLB, and took 3.8 GB."""
    faces = sum(len(geom.faces) for *_, geom in meshes)
    points = 0 if meshes else sum(len(geom.vertices) for *_, geom in clouds)
    for count, limit, what in (
        (faces, MAX_SCENE_FACES, "triangles"),
        (points, MAX_SCENE_POINTS, "points"),
    ):
        if count > limit:
            where = f"{path}: " if path else ""
            instances = len(meshes) if meshes else len(clouds)
            raise InvalidInputError(
                f"{where}{count} {what} over its {instances} mesh instances, past bipart's "
                f"limit of {limit}"
            )


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
        rgb = to_rgb_uint8(raw, len(points))
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
    asset.labels_from_names = sidecar is None


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


def load_trimesh_file(path: Path) -> Asset:
    import trimesh

    fmt = path.suffix.lower().lstrip(".")
    recoded = utf8_copy(path, binary_stl=fmt == "stl")
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
