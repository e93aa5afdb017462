"""The inputs of a batch (globs, outputs that would collide, a single unreadable file), and
the folders of bipart's own cache (``$BIPART_CACHE``).
"""

from __future__ import annotations

import glob
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidInputError, UsageError
from ..store import cache_root

if TYPE_CHECKING:
    pass


def expand_inputs(patterns: list[str]) -> list[str]:
    """Globs and plain paths, in order, without duplicates; unmatched patterns stay (and fail later)."""
    seen: dict[str, None] = {}
    for pattern in patterns:
        matches = (
            sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        )
        for path in matches or [pattern]:
            seen.setdefault(path, None)
    return list(seen)


def check_inputs(
    paths: list[str], out_dir: Path | None, collisions: bool = True, fail_fast: bool = True
) -> None:
    """Cheap checks of a batch before any model loads.

    Raises :class:`UsageError` when two inputs would write the same outputs
    (``chair.glb`` and ``chair.obj`` both make ``chair.parts.*``), and, with
    ``fail_fast`` (the CLI), the input's own one-line error when the batch is a single
    input that cannot be read (a missing file failed only after the model and support
    set had loaded). The Python API keeps returning a failed result for it.
    """
    from ..io.checks import check_path

    owners: dict[Path, str] = {}
    for path in paths if collisions else []:
        target = Path(path)
        folder = out_dir if out_dir is not None else target.parent
        key = (Path(folder) / f"{target.stem}.parts").resolve()
        if key in owners:
            raise UsageError(
                f"{owners[key]} and {path} would both write {key.name}.*: "
                "rename one or segment them into different --out-dir folders"
            )
        owners[key] = path
    problems = []
    for path in paths if fail_fast else []:
        try:
            check_path(Path(path))
        except InvalidInputError as exc:
            problems.append(exc)
    if problems and len(problems) == len(paths) == 1:
        raise problems[0]


def support_cache_dir(folder: Path) -> Path:
    """Where ``--support DIR`` is indexed: ``<cache_root>/support/<hash of the path>``."""
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return cache_root() / "support" / key
