"""What every reader shares: the supported formats, path checks, text decoding, colour
conversion, and the validation and unit-sphere normalisation of a loaded :class:`Asset`.

Normalisation to the unit sphere: the centre is the area-weighted surface
centroid for meshes (so dense vertex regions do not pull it; the same centre as
the mean of an area-weighted sample) and the vertex mean for point clouds; the
scale is the largest distance from that centre to a (used) vertex.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, UnsupportedFormatError
from ..runtime import scrub_hint
from .asset import Asset
from .sources import note_read

MESH_FORMATS = ("glb", "gltf", "obj", "off", "stl")


CLOUD_FORMATS = ("npy", "npz", "xyz", "txt")


SUPPORTED_FORMATS = ("glb", "gltf", "obj", "ply", "off", "stl", "npy", "npz", "xyz", "txt")


DEFAULT_GREY = np.array([128, 128, 128], dtype=np.uint8)


MAX_COORDINATE = 1e30  # squared (areas) and summed it stays far from float64's 1.8e308


def read_npy(path: Path, what: str = "array") -> np.ndarray:
    """A ``.npy`` file's array, never pickled objects, allocating no more than the file holds.

    The header's shape is checked against the file size first (through a read-only
    memory map), so a 100-byte file declaring 10**12 elements is an error, not an
    allocation. Raises :class:`InvalidInputError`.
    """
    note_read(path)
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
            reason = scrub_hint(one_line(exc))
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


def utf8_copy(path: Path, binary_stl: bool = False) -> bytes | None:
    """None when ``path`` is UTF-8 text (or a binary STL); else its text re-encoded as UTF-8."""
    raw = path.read_bytes()
    if binary_stl and len(raw) >= 84 and len(raw) == 84 + 50 * int.from_bytes(raw[80:84], "little"):
        return None
    try:
        raw.decode("utf-8")
        return None
    except UnicodeDecodeError:
        return decode_text_bytes(raw).encode("utf-8")


def check_path(path: Path) -> str:
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


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = scrub_hint(text[0]) if text else ""
    first = first if len(first) <= 160 else first[:157] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


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


def used_vertices(asset: Asset) -> np.ndarray:
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
    scale = float(np.linalg.norm(used_vertices(asset) - center, axis=1).max())
    if not scale > 0:
        raise InvalidInputError(f"{path}: all points coincide; cannot normalise")
    return center.astype(np.float64), scale


def to_rgb_uint8(colors: Any, n: int) -> np.ndarray | None:
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
