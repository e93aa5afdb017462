"""Which requested part does a piece of the asset name itself?

Artists and CAD exporters name the meshes an asset is built of: a kitchen cabinet's
``door.008`` and ``drawer.004``, a fridge's ``doorFreezer``, a washer's ``washerDoor``, a
bed's ``pillowLeft``. Such a name is evidence no point can show (a door closed flush in its
cabinet looks like the cabinet). A scene geometry instance takes a requested part when its
names (its mesh's, and those of the nodes above it) mention that part and no other one.

A file labeled in bipart's own format (its nodes named ``<part>``, as ``bipart examples``
writes shapes) is not read so: those names are its ground truth, and ``segment`` labels it
anew (its labels stay for ``eval`` and ``--labeler given``).

The object's own name says nothing about its pieces: ``kitchenCabinetDrawer`` is the whole
cabinet, not its drawer. So the file's stem, and the node that holds every piece when there
is one, are taken out of every name first (``kitchenCabinetDrawer.001`` then names nothing).
A piece named after the object alone is the object's rest: the parts other pieces are named
for are not in it (:func:`labels_following_names`).
Names match word by word, whatever the case or separators (``doorLeft``, ``door_L``,
``Door.001``, ``doors``), in any script (``Tür``, ``门``); a part of several words matches them
in order or run together (``back rest`` matches ``BackRest`` and ``backrest``). Generic
exporter words (``Mesh``, ``Object``, ``Cube``...) are no evidence, and names that would put
every face in one part describe the object, not its parts: nothing follows them. Point clouds
and one-piece meshes have no piece names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .. import kdtree
from .asset import Asset
from .labels import GENERIC_NAMES, unlabeled_for

# exporters' words for "a mesh" (io.labels' generic names, and glTF's instances), never a part
GENERIC_WORDS = frozenset([*GENERIC_NAMES, "instance"])
# the suffix trimesh adds to the node of each primitive of a multi-primitive glTF mesh
_TRIMESH_SUFFIX = re.compile(r"_(?=[0-9a-f]*\d)[0-9a-f]{6}$")
_LETTER_RUNS = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class NamedPiece:
    """One geometry instance whose names give a requested part.

    ``name`` is the name that says so (its mesh's, else a node's), ``part`` the part's
    index in the request, ``faces`` how many faces the instance has."""

    name: str
    part: int
    faces: int


def named_pieces_json(named: list[NamedPiece], part_names: list[str]) -> list[dict]:
    """The named pieces as the sidecar and ``info`` list them: one ``{"name", "part",
    "pieces", "faces"}`` per name and part, in file order (a mesh used by two nodes, or split
    into primitives that keep its name, is one entry)."""
    grouped: dict[tuple[str, int], dict] = {}
    for piece in named:
        entry = grouped.setdefault(
            (piece.name, piece.part),
            {"name": piece.name, "part": part_names[piece.part], "pieces": 0, "faces": 0},
        )
        entry["pieces"] += 1
        entry["faces"] += piece.faces
    return list(grouped.values())


def name_words(name: str) -> list[str]:
    """The words of a node or mesh name, case-folded: ``"Mesh doorLeft.001"`` ->
    ``["door", "left"]`` (generic exporter words and numbers dropped)."""
    words = []
    for run in _LETTER_RUNS.findall(_TRIMESH_SUFFIX.sub("", str(name))):
        words += [word.casefold() for word in _camel_case_words(run)]
    return [word for word in words if word not in GENERIC_WORDS]


def _camel_case_words(run: str) -> list[str]:
    """``"doorLeft"`` -> ``["door", "Left"]``; ``"HTMLPanel"`` -> ``["HTML", "Panel"]``."""
    words, start = [], 0
    for i in range(1, len(run)):
        before, here, after = run[i - 1], run[i], run[i + 1 : i + 2]
        if (before.islower() and here.isupper()) or (
            before.isupper() and here.isupper() and after.islower()
        ):
            words.append(run[start:i])
            start = i
    words.append(run[start:])
    return words


def _same_word(a: str, b: str) -> bool:
    """One word, or its plural with ``s`` / ``es``: ``door`` and ``doors``."""
    return a == b or a in (b + "s", b + "es") or b in (a + "s", a + "es")


def mentions(words: list[str], part_words: list[str]) -> bool:
    """Whether ``words`` (a name's) hold ``part_words`` in order, or run together."""
    if not part_words:
        return False
    size, whole = len(part_words), "".join(part_words)
    for start in range(len(words)):
        if start + size <= len(words) and all(
            _same_word(w, p) for w, p in zip(words[start : start + size], part_words, strict=True)
        ):
            return True
        joined = ""
        for word in words[start:]:
            joined += word
            if _same_word(joined, whole):
                return True
            if len(joined) > len(whole) + 2:  # longer than the part and its plural: no match
                break
    return False


def without(words: list[str], removed: list[str]) -> list[str]:
    """``words`` with every run of ``removed`` taken out."""
    if not removed:
        return list(words)
    out, i = [], 0
    while i < len(words):
        if words[i : i + len(removed)] == removed:
            i += len(removed)
        else:
            out.append(words[i])
            i += 1
    return out


# what a piece's names give besides a part index: nothing, or the whole object's name
UNNAMED, OBJECT = -1, -2
ANCESTORS_READ = 8  # nodes above a piece whose names are read


def piece_parts(asset: Asset, part_names: list[str]) -> tuple[np.ndarray, list[NamedPiece]]:
    """(instances,) int64: per geometry instance of ``asset`` (``asset.geometry_nodes``) the
    requested part its names give, :data:`OBJECT` when its mesh is named after the whole
    object alone, else :data:`UNNAMED` (no names, generic ones, or names of two parts); and
    the named pieces. All :data:`UNNAMED` for a point cloud, an asset without a scene, or one
    of a single instance."""
    nodes = asset.geometry_nodes
    if asset.scene is None or asset.face_geometry is None or len(nodes) < 2:
        return np.full(len(nodes), UNNAMED, dtype=np.int64), []
    graph = asset.scene.graph
    objects = [name_words(name) for name in _object_names(asset)]
    parts = [name_words(name) or [name.casefold()] for name in part_names]
    faces = np.bincount(np.asarray(asset.face_geometry, np.int64), minlength=len(nodes))
    given = np.full(len(nodes), UNNAMED, dtype=np.int64)
    named = []
    meshes = {str(graph[node][1]) for node in nodes}
    for instance, node in enumerate(nodes):
        found = {}  # part index -> the first name that gives it
        mesh_name, *node_names = _instance_names(graph, node)
        for name in (mesh_name, *node_names):
            words = _own_words(name, objects)
            for part, part_words in enumerate(parts):
                if mentions(words, part_words):
                    found.setdefault(part, name)
        if len(found) == 1:
            ((part, name),) = found.items()
            given[instance] = part
            named.append(NamedPiece(_primitive_of(name, meshes), part, int(faces[instance])))
        elif not found and _is_object_name(mesh_name, objects):
            given[instance] = OBJECT
    return given, named


def face_parts_from_names(asset: Asset, part_names: list[str]) -> tuple[np.ndarray, list]:
    """(f,) int64 what each face's piece names give (a part index, :data:`OBJECT` or
    :data:`UNNAMED`, as :func:`piece_parts`), and the named pieces.

    Nothing is named (all :data:`UNNAMED`, no pieces) when no piece names a requested part,
    when the names would put every face in one part (they then name the object), or when the
    asset is labeled for the request in bipart's own format (:func:`~.labels.unlabeled_for`:
    nodes named ``<part>``, a sidecar naming its parts): those labels are its ground truth,
    for ``eval`` and ``--labeler given``, and ``segment`` labels such a file anew."""
    count = 0 if asset.faces is None else len(asset.faces)
    if unlabeled_for(asset, part_names) is None:
        return np.full(count, UNNAMED, dtype=np.int64), []
    given, named = piece_parts(asset, part_names)
    if not named:
        return np.full(count, UNNAMED, dtype=np.int64), []
    face_parts = given[np.asarray(asset.face_geometry, np.int64)]
    if (face_parts >= 0).all() and len({piece.part for piece in named}) == 1:
        return np.full(count, UNNAMED, dtype=np.int64), []
    return face_parts, named


def labels_following_names(
    asset: Asset,
    face_index: np.ndarray | None,
    points: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    part_names: list[str],
) -> tuple[np.ndarray, np.ndarray, list[NamedPiece]]:
    """Dense labels (n,) int64 and scores (n,) float32 after the pieces' names, and the
    named pieces; unchanged for a cloud (``face_index`` None) or an asset whose pieces name
    no requested part.

    Every point of a named piece takes its part (score 1). The piece named after the whole
    object is the object's rest: a part other pieces are named for is not in it (a washer's
    ``washer`` mesh holds no door when ``washerDoor`` is the door), so its points of such a
    part take the label and score of their nearest point of that piece that has another one.

    points : (n, 3) the dense points (``face_index`` (n,) their faces).
    """
    if face_index is None or asset.faces is None:
        return labels, scores, []
    face_parts, named = face_parts_from_names(asset, part_names)
    if not named:
        return labels, scores, []
    point_parts = face_parts[np.asarray(face_index, np.int64)]  # (n,)
    labels, scores = np.array(labels, dtype=np.int64), np.array(scores, dtype=np.float32)
    follow = point_parts >= 0
    labels[follow] = point_parts[follow]
    scores[follow] = 1.0
    named_parts = np.unique(point_parts[follow])
    of_object = point_parts == OBJECT
    taken = of_object & np.isin(labels, named_parts)  # (n,) a named part inside the rest
    donors = np.flatnonzero(of_object & ~taken)
    if taken.any() and len(donors):
        from scipy.spatial import KDTree

        _, nearest = kdtree.query(KDTree(points[donors]), points[taken])
        labels[taken] = labels[donors[nearest]]
        scores[taken] = scores[donors[nearest]]
    return labels, scores, named


def _primitive_of(name: str, meshes: set[str]) -> str:
    """The mesh's own name for trimesh's name of one of its primitives (``Mesh door.008_1``
    -> ``Mesh door.008`` when ``Mesh door.008`` is among ``meshes``), else ``name``."""
    stem, _, number = name.rpartition("_")
    return stem if number.isdigit() and stem in meshes else name


def _own_words(name: str, objects: list[list[str]]) -> list[str]:
    """The words of ``name`` without the object's names (``objects``: each one's words)."""
    words = name_words(name)
    for object_words in objects:
        words = without(words, object_words)
    return words


def _is_object_name(name: str, objects: list[list[str]]) -> bool:
    """Whether ``name`` has words and all of them are the object's (``Mesh washer`` in
    ``washer.glb``): its piece is the object's own, not one of its parts."""
    return bool(name_words(name)) and not _own_words(name, objects)


def _object_names(asset: Asset) -> list[str]:
    """The whole object's names: the file's stem, and the one node under the scene's root
    when every piece hangs from it."""
    names = [asset.stem] if asset.source is not None else []
    graph = asset.scene.graph
    parents = graph.transforms.parents
    tops = _tops(parents, asset.geometry_nodes, graph.base_frame)
    if len(tops) == 1:
        names.append(str(tops.pop()))
    return names


def _tops(parents: dict, nodes: list, base_frame) -> set:
    """The ancestors of ``nodes`` right under ``base_frame`` (a node itself when it is one),
    each node's path walked once (a hostile deep or cyclic hierarchy stays linear)."""
    top_of: dict = {}
    for node in nodes:
        path, current = [], node
        while current not in top_of and len(path) <= len(parents):
            path.append(current)
            parent = parents.get(current, base_frame)
            if parent == base_frame or parent is None:
                top_of[current] = current
                break
            current = parent
        top = top_of.get(current, current)
        top_of.update(dict.fromkeys(path, top))
    return {top_of[node] for node in nodes}


def _instance_names(graph, node) -> list[str]:
    """An instance's mesh name, then its node's and the names of up to
    :data:`ANCESTORS_READ` nodes above it (names far above a piece name a group of them)."""
    names = [str(graph[node][1])]
    parents, base_frame = graph.transforms.parents, graph.base_frame
    while node != base_frame and node is not None and len(names) <= ANCESTORS_READ + 1:
        names.append(str(node))
        node = parents.get(node)
    return names
