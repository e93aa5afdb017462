"""``load_asset``: any file bipart reads -> a validated, normalised :class:`Asset`.

It checks the path, hands the file to its format's reader (:mod:`.scenes` for
GLB/GLTF, OBJ, OFF and STL; :mod:`.ply`; :mod:`.clouds` for ``.npy``, ``.npz``,
``.xyz`` and ``.txt``), reads a ``<stem>_labels.npy`` sidecar, then validates and
normalises the result (:mod:`.checks`). Every failure is one
:class:`InvalidInputError` line. The readers report every file they open
(:mod:`.sources`): ``Asset.sources`` lists them and ``Asset.sha256`` covers their bytes;
``Asset.missing`` lists the files they looked for and did not find.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BipartError, InvalidInputError
from .asset import Asset
from .checks import check_path, finalize_asset, one_line, read_npy
from .clouds import load_npy, load_npz, load_xyz
from .labels import (
    file_labels_to_library,
    integer_labels,
    read_sidecar_part_names,
)
from .ply import load_ply
from .scenes import load_scene_file, load_trimesh_file
from .sources import (
    content_identity,
    note_missing,
    ordered_missing,
    ordered_sources,
    recording_reads,
)


def load_asset(path: str | Path) -> Asset:
    """Read a mesh or point cloud, its colours and any existing part labels.

    Raises :class:`InvalidInputError` (or :class:`UnsupportedFormatError`) with one
    clear line for a missing file, a directory, an unknown extension, a corrupt or
    empty file, non-finite coordinates or a mesh of only degenerate faces.
    """
    path = Path(path)
    fmt = check_path(path)
    with recording_reads() as read:
        asset = _read(path, fmt)
        if asset.labels is None or not (asset.labels >= 0).any():
            # a parts.json naming the parts gives an OBJ/GLB all-unassigned name labels:
            # the label array beside it still holds the labels
            _read_label_array_sidecar(asset, path)
    asset.source = path
    asset.format = fmt
    # the key of every cache of this asset covers every byte its readers opened
    asset.sources = ordered_sources(path, read.files)
    asset.missing = ordered_missing(path, read.missing)
    asset.sha256 = content_identity(asset.sources)
    return finalize_asset(asset, path)


def _read(path: Path, fmt: str) -> Asset:
    """The format's reader on ``path``; anything it raises becomes one line."""
    try:
        return _LOADERS[fmt](path)
    except BipartError:
        raise
    except ImportError as exc:  # a missing optional package is not a corrupt file
        raise InvalidInputError(
            f"{path}: reading this {fmt.upper()} file needs the Python package "
            f"'{exc.name or exc}', which is not installed"
        ) from exc
    except Exception as exc:  # parsers raise anything on corrupt bytes
        raise InvalidInputError(
            f"{path}: corrupt or truncated {fmt.upper()} file ({one_line(exc)})"
        ) from exc


def _read_label_array_sidecar(asset: Asset, path: Path) -> None:
    """``<stem>_labels.npy`` (the PSB and MeshCNN layout): 0-based part per face, or per
    vertex for point clouds and face-less meshes; negative means unassigned. Names come
    from a sidecar JSON (``parts.json`` beside it), else ``part_1`` ...; values beyond
    the names are remapped densely (:func:`~bipart_cli.io.labels.file_labels_to_library`).
    """
    sidecar = path.with_name(f"{path.stem}_labels.npy")
    if not sidecar.is_file():
        note_missing(sidecar)
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
    asset.labels_from_names = False


_LOADERS = {
    "glb": load_scene_file,
    "gltf": load_scene_file,
    "obj": load_scene_file,
    "ply": load_ply,
    "off": load_trimesh_file,
    "stl": load_trimesh_file,
    "npy": load_npy,
    "npz": load_npz,
    "xyz": load_xyz,
    "txt": load_xyz,
}
