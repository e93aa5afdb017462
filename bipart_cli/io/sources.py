"""Which files loading an asset read, and one identity over all their bytes.

Every reader reports the files it opens with :func:`note_read`: the asset's own file, a
glTF's buffers and textures and an OBJ's materials (through :class:`RecordingResolver`),
a ``<stem>_labels.npy`` array, a ``parts.json`` or ``.parts.json`` sidecar.
:func:`~bipart_cli.io.load.load_asset` collects the reports in ``Asset.sources`` and hashes
them (:func:`content_identity`) into ``Asset.sha256``: the key of every cache of what an
asset gives (stored runs, an index's unchanged shapes, the support's records), so a key
covers every byte the computation read, not the main file alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

_READS: ContextVar[list[Path] | None] = ContextVar("bipart_reads", default=None)


@contextmanager
def recording_reads() -> Iterator[list[Path]]:
    """Collect the paths :func:`note_read` reports inside the block, in order (a list)."""
    files: list[Path] = []
    token = _READS.set(files)
    try:
        yield files
    finally:
        _READS.reset(token)


def note_read(path: str | Path) -> None:
    """Report that a reader opened ``path`` (a no-op outside :func:`recording_reads`)."""
    files = _READS.get()
    if files is not None:
        files.append(Path(path))


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
                if found.is_file():
                    note_read(found)
                    break
            return super().get(name)

    return RecordingResolver(path)
