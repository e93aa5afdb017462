"""bipart's store of per-shape arrays on disk: what a later process need not compute again.

Arrays that a later run would compute again from the same inputs (a shape's network
features and geometric descriptors, an asset's farthest-point picks, a support set's
adapted head, its poses and labels for a target) are kept as small safetensors files
under ``$BIPART_CACHE/features``, a folder per kind, each named by a sha256 of
everything the arrays depend on (:func:`array_key`). A changed input is another
name, so a stale entry is never read. Each file records its full key and the sha256 of
its arrays, checked on every read: a missing, damaged or misshapen file is recomputed
and replaced. The store is kept under ``$BIPART_FEATURE_CACHE_MB``
(default 2048 MB): the least recently used files go first (:func:`trim_store`).
A read-only or full disk only costs speed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import UsageError
from .runtime import log, printable

# what a stored result also depends on: bipart's code and the libraries that compute
COMPUTING_LIBRARIES = ("numpy", "scipy", "torch", "trimesh", "safetensors", "fpsample")


@functools.cache
def code_identity() -> str:
    """sha256 of bipart's source files (by relative path) and the computing libraries' versions."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    digest.update(library_versions())
    return digest.hexdigest()


@functools.cache
def library_versions() -> bytes:
    """``name version`` of each of :data:`COMPUTING_LIBRARIES` (``absent`` when not
    installed), NUL-terminated: what a stored result's numbers also depend on."""
    return b"".join(f"{name} {library_version(name)}\0".encode() for name in COMPUTING_LIBRARIES)


@functools.cache
def library_version(name: str) -> str:
    """The installed version of the distribution ``name``, or ``absent`` (read once a
    process: ``importlib.metadata`` scans the environment)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def cache_root() -> Path:
    """bipart's own cache: ``$BIPART_CACHE`` or ``~/.cache/bipart``."""
    return Path(os.environ.get("BIPART_CACHE", Path.home() / ".cache" / "bipart"))


if TYPE_CHECKING:
    from collections.abc import Callable

FEATURE_CACHE_ENV = "BIPART_FEATURE_CACHE_MB"
TRIM_EVERY = 64  # files written between two looks at the store's size
MAX_FEATURE_CACHE_MB = 1e9  # a petabyte: any real disk, and an int the limit can be held in


def array_key(points: np.ndarray, *parts: np.ndarray | str) -> str:
    """sha256 hex of points (n, 3) as float32 and then each of ``parts`` (arrays or text)."""
    digest = hashlib.sha256(np.ascontiguousarray(points, dtype=np.float32).tobytes())
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else np.ascontiguousarray(part))
    return digest.hexdigest()


def arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    """sha256 hex of named arrays: names, dtypes, shapes and bytes, by name."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name} {array.dtype.str} {array.shape}".encode())
        digest.update(array)
    return digest.hexdigest()


class ArrayStore:
    """Named arrays per ``(kind, key)``, kept on disk between processes.

    folder : the store's root; kind : a sub-folder (``"fps"``, a model's key, ...), or
    ``""`` for the root itself; key : a sha256 hex (:func:`array_key`, or a file's).
    """

    def __init__(self, folder: Path, max_bytes: int | None = None) -> None:
        self.folder = folder
        self.max_bytes = feature_cache_bytes() if max_bytes is None else max_bytes
        self._written = 0  # files written by this process: the store is trimmed every so many

    def path(self, kind: str, key: str) -> Path:
        return (self.folder / kind if kind else self.folder) / f"{key[:32]}.safetensors"

    def read(self, kind: str, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored for ``(kind, key)``, or None (absent or unreadable)."""
        path = self.path(kind, key)
        if not path.is_file():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="np") as handle:
                recorded = handle.metadata() or {}
                arrays = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        except Exception as exc:  # noqa: BLE001 - a damaged entry is recomputed, never fatal
            log.debug("recomputing the stored arrays in %s: %s", path, exc)
            return None
        if recorded.get("key") != key or recorded.get("sha256") != arrays_sha256(arrays):
            log.debug(
                "recomputing the stored arrays in %s: not the arrays it was written with", path
            )
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # used now: the last to go when the store is trimmed
        return arrays

    def write(self, kind: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        from safetensors.numpy import save_file

        from .io.atomic import atomic_path, is_write_error

        path = self.path(kind, key)
        arrays = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
        metadata = {"key": key, "sha256": arrays_sha256(arrays)}
        try:
            with atomic_path(path) as tmp:
                save_file(arrays, str(tmp), metadata=metadata)
        except Exception as exc:
            if not is_write_error(exc):  # a bug, not the disk
                raise
            warn_unwritable_cache(path, exc)
            return
        if self._written % TRIM_EVERY == 0:
            trim_store(self.folder, self.max_bytes)
        self._written += 1

    def fetch(
        self,
        kind: str,
        key: str,
        compute: Callable[[], dict[str, np.ndarray]],
        valid: Callable[[dict[str, np.ndarray]], bool] = lambda arrays: True,
        keep: bool = True,
    ) -> dict[str, np.ndarray]:
        """The stored arrays when present and ``valid``, else ``compute()``, stored unless
        not ``keep``."""
        arrays = self.read(kind, key)
        if arrays is not None and valid(arrays):
            return arrays
        arrays = compute()
        if keep:
            self.write(kind, key, arrays)
        return arrays


_warned_unwritable = False  # set once this process has said that its cache cannot be written


def warn_unwritable_cache(path: Path, exc: BaseException) -> None:
    """Say once per process that bipart's cache cannot be written (a read-only folder, a
    full disk): the run goes on, and only computes again what it could not keep. Later
    failures are debug lines."""
    global _warned_unwritable
    from .io.atomic import write_error_reason

    reason = write_error_reason(exc)
    if _warned_unwritable:
        log.debug("cannot store %s: %s", path, reason)
        return
    _warned_unwritable = True
    log.warning(
        "cannot write bipart's cache (%s: %s): going on without storing, which only costs speed",
        path,
        reason,
    )


def feature_cache_bytes() -> int:
    """The store's size limit: ``$BIPART_FEATURE_CACHE_MB`` (default 2048) in bytes.

    Anything but a number of megabytes from 0 to :data:`MAX_FEATURE_CACHE_MB` (``nan``,
    ``inf``, ``1e400``, ``-5``, ``abc``) is a :class:`~bipart_cli.errors.UsageError`: a typo
    must not silently keep the default, nor end in an internal error."""
    text = os.environ.get(FEATURE_CACHE_ENV) or "2048"  # set but empty: the default
    try:
        megabytes = float(text)
    except ValueError:
        megabytes = math.nan
    if not (math.isfinite(megabytes) and 0.0 <= megabytes <= MAX_FEATURE_CACHE_MB):
        raise UsageError(
            f"{FEATURE_CACHE_ENV} must be a number of megabytes from 0 to "
            f"{MAX_FEATURE_CACHE_MB:g}, not {printable(text)!r}"
        )
    return int(megabytes * 2**20)


def trim_store(folder: Path, max_bytes: int) -> None:
    """Delete the least recently used ``*.safetensors`` under ``folder`` (by modification
    time, which a read renews) until they take at most 3/4 of ``max_bytes``; nothing when
    they already fit. A file that vanishes or cannot be removed is skipped."""
    files = []
    for path in folder.rglob("*.safetensors"):
        try:
            info = path.stat()
        except OSError:
            continue
        files.append((info.st_mtime_ns, info.st_size, path))
    total = sum(size for _, size, _ in files)
    if total <= max_bytes:
        return
    for _, size, path in sorted(files, key=lambda item: item[0]):
        if total <= max_bytes * 3 // 4:
            break
        try:
            os.unlink(path)
            total -= size
        except OSError:
            continue
