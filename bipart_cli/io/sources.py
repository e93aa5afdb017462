"""Which files loading an asset read, and one identity over all their bytes.

Every reader reports the files it opens with :func:`note_read`: the asset's own file, a
glTF's buffers and textures and an OBJ's materials (through :class:`RecordingResolver`),
a ``<stem>_labels.npy`` array, a ``parts.json`` or ``.parts.json`` sidecar.
:func:`~bipart_cli.io.load.load_asset` collects the reports in ``Asset.sources`` and hashes
them (:func:`content_identity`) into ``Asset.sha256``: the key of every cache of what an
asset gives (stored runs, an index's unchanged shapes, the support's records), so a key
covers every byte the computation read, not the main file alone.

Every reader also reports the files it looked for and did not find (:func:`note_missing`:
a ``<stem>_labels.npy``, a sidecar JSON, a buffer name), ``Asset.missing``. A load is a
function of the bytes of the files it read and of which files it found, so those two lists
(:func:`read_names`) tell without parsing anything whether loading again would give the
same asset: :func:`identity_if_unchanged` hashes the files read and checks that the
missing ones are still missing. The readers stay the one place that says which files an
asset is read from.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Reads:
    """What readers reported inside :func:`recording_reads`: ``files`` they opened and
    ``missing`` files they looked for and did not find, each in report order."""

    files: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)


_READS: ContextVar[Reads | None] = ContextVar("bipart_reads", default=None)


@contextmanager
def recording_reads() -> Iterator[Reads]:
    """Collect what :func:`note_read` and :func:`note_missing` report inside the block."""
    reads = Reads()
    token = _READS.set(reads)
    try:
        yield reads
    finally:
        _READS.reset(token)


def note_read(path: str | Path) -> None:
    """Report that a reader opened ``path`` (a no-op outside :func:`recording_reads`)."""
    reads = _READS.get()
    if reads is not None:
        reads.files.append(Path(path))


def note_missing(path: str | Path) -> None:
    """Report that a reader looked for ``path`` and found no file there: one that appears
    there later would be read (a no-op outside :func:`recording_reads`)."""
    reads = _READS.get()
    if reads is not None:
        reads.missing.append(Path(path))


def ordered_sources(main: Path, files: Iterable[Path]) -> list[Path]:
    """``main`` first, then every other file read once, in the order of its name relative to
    ``main``'s folder (a stable order, whatever order the readers opened them in)."""
    main_key = main.resolve()
    others: dict[Path, Path] = {}
    for path in files:
        key = path.resolve()
        if key != main_key:
            others.setdefault(key, path)
    return [main, *sorted(others.values(), key=lambda p: _relative_name(main, p))]


def ordered_missing(main: Path, files: Iterable[Path]) -> list[Path]:
    """The files looked for and not found, each once, in the order of their names."""
    unique = {path.resolve(): path for path in files}
    return sorted(unique.values(), key=lambda p: _relative_name(main, p))


def read_names(sources: list[Path], missing: list[Path]) -> dict[str, list[str]]:
    """What a load of ``sources[0]`` read besides it and looked for in vain, as kept beside
    what it gave (an index's record): ``{"files": [...], "missing": [...]}``, names relative
    to the main file's folder (POSIX, ``../`` for a file above it), in ``sources`` order."""
    main = sources[0]
    folder = main.resolve().parent
    return {
        "files": [_name_below(folder, path) for path in sources[1:]],
        "missing": [_name_below(folder, path) for path in missing],
    }


def identity_if_unchanged(main: Path, names: dict[str, list[str]]) -> str | None:
    """The content identity a load of ``main`` would give now, when it would read the same
    files as the load that :func:`read_names` described (``names``): each of them is still
    a file, hashed here, and none of the files it looked for in vain is there now. None
    otherwise (or when a file cannot be read): the asset must be loaded again.

    Hashes the files, parses none: a load's result depends on nothing else than the bytes
    it read and which files it found.
    """
    folder = Path(main).resolve().parent
    if any((folder / name).exists() for name in names["missing"]):
        return None
    files = [Path(main), *(folder / name for name in names["files"])]
    if not all(path.is_file() for path in files):  # gone, or a folder or device now
        return None
    try:
        return content_identity(files)
    except OSError:
        return None


def _name_below(folder: Path, path: Path) -> str:
    return Path(os.path.relpath(path.resolve(), folder)).as_posix()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_identity(sources: list[Path]) -> str:
    """Hex sha256 of everything a load read: ``sources`` as :func:`ordered_sources` gives them.

    A file read alone has its own sha256 (what ``sha256sum`` prints); with other files, the
    sha256 over each file's name relative to the first one's folder and its sha256, in order.
    """
    main = sources[0]
    if len(sources) == 1:
        return sha256_file(main)
    digest = hashlib.sha256(b"bipart sources v1\0")
    digest.update(f"{sha256_file(main)}\0".encode())
    for path in sources[1:]:
        digest.update(f"{_relative_name(main, path)} {sha256_file(path)}\0".encode())
    return digest.hexdigest()


def _relative_name(main: Path, path: Path) -> str:
    folder = main.resolve().parent
    resolved = path.resolve()
    try:
        return resolved.relative_to(folder).as_posix()
    except ValueError:  # outside the asset's folder: its whole path
        return resolved.as_posix()


def recording_resolver(path: Path):
    """A trimesh resolver for the files beside ``path`` that reports each file it reads."""
    import trimesh

    class RecordingResolver(trimesh.resolvers.FilePathResolver):
        def get(self, name: str):
            for candidate in (name.strip(), name.strip().lstrip("/"), Path(name).name):
                try:
                    found = self.absolute(candidate)
                except ValueError:
                    continue
                if found.exists():  # trimesh reads the first name that exists
                    if found.is_file():
                        note_read(found)
                    break
                note_missing(found)
            return super().get(name)

    return RecordingResolver(path)
