"""Walking a folder of assets: which files are shapes, their ids, categories and part names,
and which ``--shard i/n`` each belongs to.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import InvalidInputError, UsageError
from .format import (
    stable_hash,
)


def parse_shard_spec(spec: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``; None stays None."""
    if spec is None:
        return None
    if isinstance(spec, tuple):
        i, n = spec
    else:
        left, sep, right = str(spec).partition("/")
        if not sep or not left.strip().isdigit() or not right.strip().isdigit():
            raise UsageError(f"--shard {spec!r}: expected i/n, e.g. 0/4")
        i, n = int(left), int(right)
    if n < 1 or not 0 <= i < n:
        raise UsageError(f"--shard {i}/{n}: need 0 <= i < n")
    return i, n


def in_shard(shape_id: str, shard: tuple[int, int] | None) -> bool:
    """Whether the file ``shape_id`` (its relative path) belongs to shard ``(i, n)``."""
    return shard is None or stable_hash(shape_id) % shard[1] == shard[0]


def _is_label_sidecar(path: Path) -> bool:
    # PSB-style per-face label arrays next to meshes: "<id>_labels.npy"
    return path.stem.endswith("_labels") and path.suffix.lower() in (".npy", ".txt")


def is_own_output(path: Path, names: Iterable[str]) -> bool:
    """Whether ``path`` is ``segment``'s output of a file beside it: ``<stem>.parts.<ext>``
    when ``names`` (the files of its folder) hold a supported ``<stem>.<ext>`` that is not an
    output itself.

    A folder walk never takes such a file: a target segmented inside its own support folder
    would otherwise be its own support the next time. Outputs gathered on their own (an
    ``-o`` folder, a support set made of them) stay labeled shapes.
    """
    from ..io.checks import SUPPORTED_FORMATS

    stem = Path(path.stem)
    if stem.suffix != ".parts":
        return False
    for name in names:
        other = Path(name)
        if (
            other.stem == stem.stem
            and other.suffix.lower().lstrip(".") in SUPPORTED_FORMATS
            and Path(other.stem).suffix != ".parts"
        ):
            return True
    return False


def find_assets(folder: Path, exclude: Iterable[Path] = ()) -> list[tuple[str, Path]]:
    """Supported assets under ``folder`` as ``(relative POSIX path, path)``, sorted.

    Hidden files and folders, label sidecars (``*_labels.npy``), bipart's outputs of a
    file beside them (``chair.parts.glb`` next to ``chair.glb``: :func:`is_own_output`),
    ``.txt`` files that are no point table (a licence, a read-me: :func:`~bipart_cli.io.clouds.is_point_table`)
    and the folders in ``exclude`` (e.g. the index being written inside ``folder``) are skipped.
    """
    from ..io.checks import SUPPORTED_FORMATS
    from ..io.clouds import is_point_table

    excluded = {Path(p).resolve() for p in exclude}
    found = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and (root_path / d).resolve() not in excluded
        )
        for name in files:
            path = root_path / name
            if name.startswith(".") or _is_label_sidecar(path) or is_own_output(path, files):
                continue
            suffix = path.suffix.lower().lstrip(".")
            if suffix == "txt" and not is_point_table(path):
                continue
            if suffix in SUPPORTED_FORMATS:
                found.append((path.relative_to(folder).as_posix(), path))
    return sorted(found)


def category_for(shape_id: str, folder: Path, override: str | None) -> str:
    """``--category``, else the first sub-folder of the path, else the folder's own name."""
    if override:
        return override
    head, sep, _ = shape_id.partition("/")
    return head if sep else folder.resolve().name


def folder_part_names(path: Path, folder: Path) -> list[str] | None:
    """Names from the nearest ``parts.json`` between the asset's folder and ``folder``.

    Accepts a list of names or ``{"parts": [...]}``.
    """
    from ..parts import parse_part_names

    current, top = path.parent.resolve(), folder.resolve()
    while True:
        candidate = current / "parts.json"
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InvalidInputError(f"{candidate}: unreadable parts.json ({exc})") from None
            names = data.get("parts") if isinstance(data, dict) else data
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise InvalidInputError(f"{candidate}: expected a list of part names")
            try:
                return parse_part_names(names)
            except UsageError as exc:  # "--parts names ... twice" would blame the wrong place
                message = str(exc).replace("--parts", "the list", 1)
                raise InvalidInputError(f"{candidate}: {message}") from None
        if current == top or current.parent == current:
            return None
        current = current.parent


def file_seed(seed: int, shape_id: str) -> int:
    """The seed of one shape: from the build seed and its id, not the processing order."""
    return stable_hash(f"{seed}:{shape_id}") % (2**31)
