"""Point-cloud arrays and text: ``.npy``, ``.npz`` (size-checked before loading) and ``.xyz``/``.txt``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from .asset import Asset
from .checks import DEFAULT_GREY, one_line, read_npy, to_rgb_uint8
from .labels import (
    file_labels_to_library,
    read_sidecar_part_names,
)


def _cloud_from_array(array: np.ndarray, path: Path) -> Asset:
    array = np.asarray(array)
    if array.ndim != 2 or array.shape[1] not in (3, 6) or array.dtype.kind not in "fiu":
        raise InvalidInputError(
            f"{path}: expected an N x 3 (xyz) or N x 6 (xyz rgb) numeric array, got shape "
            f"{tuple(array.shape)} of {array.dtype}"
        )
    xyz = array[:, :3].astype(np.float64)
    colors = to_rgb_uint8(array[:, 3:6], len(array)) if array.shape[1] == 6 else None
    return Asset(
        vertices=xyz,
        vertex_colors=colors if colors is not None else np.tile(DEFAULT_GREY, (len(xyz), 1)),
    )


def load_npy(path: Path) -> Asset:
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
        raise InvalidInputError(f"{path}: not a readable .npz archive ({one_line(exc)})") from None


def load_npz(path: Path) -> Asset:
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
            colors = to_rgb_uint8(data[colors_key], len(asset.vertices))
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


# what separates the values of a text row: commas, semicolons or whitespace
_SEPARATORS = re.compile(r"[,;\s]+")


def load_xyz(path: Path) -> Asset:
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
            header = _SEPARATORS.split(stripped[2:].strip())
            continue
        tokens = _SEPARATORS.split(stripped)
        if not rows and not _is_number(tokens[0]):
            header = tokens
            continue
        rows.append(tokens)
    if not rows:
        raise InvalidInputError(f"{path}: no rows of numbers: not an x y z point table")
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
# bytes of a .txt a folder walk reads to tell a point table from a licence or a read-me
TEXT_PEEK_BYTES = 64 * 1024


def is_point_table(path: Path) -> bool:
    """Whether the text file ``path`` reads as an x y z table: a line of at least three
    numbers (comments aside) within its first :data:`TEXT_PEEK_BYTES`. Asset packs hold
    licences and read-mes as ``.txt`` too; a folder walk takes a ``.txt`` only when this
    holds."""
    with open(path, "rb") as file:
        head = file.read(TEXT_PEEK_BYTES).decode("utf-8", errors="replace")
    for line in head.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "//")):
            continue
        tokens = _SEPARATORS.split(stripped)
        if len(tokens) >= 3 and all(_is_number(token) for token in tokens):
            return True
    return False


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
