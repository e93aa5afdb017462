"""Writing an index folder: content-named shards first, the manifest last.

A crash at any point leaves the previous manifest and every file it names
untouched (new shards get new names), so the folder is always a valid index.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import __version__
from ..descriptors import DESCRIPTOR_SET
from ..io.atomic import atomic_write_bytes, atomic_write_text
from ..io.sources import sha256_file
from .arrays import header_sha256, sha256_bytes
from .format import (
    BASIS_NAME,
    FEATURE_DIR,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    SHARD_DIR,
    BasisInfo,
    ShapeRecord,
    summarize,
)
from .shards import features_to_bytes, records_to_bytes

RECORDS_PER_SHARD = 64
LOCK_NAME = ".lock"  # the file lock of an index being written
OWNER_NAME = ".lock.owner"  # the PID holding it, for the message of a waiting writer
LOCK_TIMEOUT_ENV = "BIPART_INDEX_LOCK_TIMEOUT"  # seconds a writer waits (default 3600)


def _lock_owner(out: Path) -> str:
    try:
        return f"PID {int((out / OWNER_NAME).read_text().strip())}"
    except (OSError, ValueError):
        return "another process"


@contextlib.contextmanager
def index_lock(out: str | Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the write lock of the index folder ``out`` (``OUT/.lock``, a ``filelock``).

    Concurrent builds of one index (e.g. four ``segment --support DIR`` runs on a
    cold cache) take turns: a writer that finds the lock taken logs "being built by
    PID ..." and waits up to ``timeout`` seconds (default ``$BIPART_INDEX_LOCK_TIMEOUT``
    or 3600), then raises :class:`~bipart_cli.errors.IndexBusyError`.
    """
    from filelock import FileLock, Timeout

    from ..errors import IndexBusyError
    from ..runtime import log

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if timeout is None:
        timeout = float(os.environ.get(LOCK_TIMEOUT_ENV, "3600"))
    lock = FileLock(str(out / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        owner = _lock_owner(out)
        log.info("index %s is being built by %s: waiting for it", out, owner)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise IndexBusyError(
                f"index {out} is being built by {owner}; gave up after {timeout:g} s"
            ) from None
    try:
        with contextlib.suppress(OSError):  # only names the holder to a waiting writer
            atomic_write_text(out / OWNER_NAME, f"{os.getpid()}\n")
        yield
    finally:
        (out / OWNER_NAME).unlink(missing_ok=True)
        lock.release()


def _write_content_named(folder: Path, stem: str, data: bytes) -> dict[str, Any]:
    """Write ``data`` as ``folder/<stem>-<sha8>.safetensors`` unless it is already there.

    "There" means the same bytes (checked by sha256), not the same name and size: a
    rebuild must repair a shard with a flipped byte.
    """
    digest = sha256_bytes(data)
    path = folder / f"{stem}-{digest[:8]}.safetensors"
    if not (path.is_file() and path.stat().st_size == len(data) and sha256_file(path) == digest):
        atomic_write_bytes(path, data)
    return {
        "name": path.relative_to(folder.parent).as_posix(),
        "sha256": digest,
        "bytes": len(data),
        "header_sha256": header_sha256(data),  # a record is then read and checked alone
    }


class IndexWriter:
    """Streams records into shards, then commits the manifest.

    Records must be added in increasing ``id`` order: the layout then depends only
    on the set of records, so a resumed, incremental, sharded-and-merged or
    single build of the same files gives byte-identical folders.

    Parameters
    ----------
    out : the index folder (created if missing; an existing index there is
        replaced at :meth:`commit`, and its files are kept until then).
    settings : build settings shared by every record (recorded in the manifest).
    basis : the BPS basis the records' ``bps`` were computed on.
    encoder : identity of the frozen encoder, or None to store no features.
    source_root : folder the records' ``source`` paths are relative to.
    partial : ``{"shard": i, "of": n}`` for a ``--shard i/n`` build, else None.
    """

    def __init__(
        self,
        out: str | Path,
        *,
        settings: dict[str, Any],
        basis: BasisInfo,
        encoder: dict[str, Any] | None,
        source_root: str | None = None,
        partial: dict[str, int] | None = None,
        records_per_shard: int = RECORDS_PER_SHARD,
    ) -> None:
        self.out = Path(out)
        self.settings = settings
        self.basis = basis
        self.encoder = encoder
        self.source_root = source_root
        self.partial = partial
        self.records_per_shard = records_per_shard
        self._pending: list[ShapeRecord] = []
        self._shards: list[dict[str, Any]] = []
        self._entries: list[dict[str, Any]] = []
        self._last_id: str | None = None
        self._previous_names = _manifest_file_names(self.out)  # ours to delete at commit

    def add(self, record: ShapeRecord) -> None:
        if self._last_id is not None and record.id <= self._last_id:
            raise ValueError(f"records must be added in increasing id order ({record.id!r})")
        if self.encoder is not None and record.features is None:
            raise ValueError(f"record {record.id} lacks the encoder features this index caches")
        self._last_id = record.id
        self._pending.append(record)
        if len(self._pending) >= self.records_per_shard:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        number = len(self._shards)
        shard = _write_content_named(
            self.out / SHARD_DIR, f"shard-{number:05d}", records_to_bytes(self._pending)
        )
        shard["count"] = len(self._pending)
        shard["features"] = (
            _write_content_named(
                self.out / FEATURE_DIR, f"features-{number:05d}", features_to_bytes(self._pending)
            )
            if self.encoder is not None
            else None
        )
        for slot, record in enumerate(self._pending):
            entry = summarize(record)
            entry.shard, entry.slot = number, slot
            self._entries.append(entry.to_json())
        self._shards.append(shard)
        self._pending = []

    def manifest(self) -> dict[str, Any]:
        return {
            **self.header(),
            "num_entries": len(self._entries),
            "shards": self._shards,
            "entries": self._entries,
        }

    def header(self) -> dict[str, Any]:
        """The manifest's fields that describe the build, not its records."""
        basis_bytes = self.basis.to_bytes()
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "created_by": f"bipart {__version__}",
            "settings": self.settings,
            "bps_basis": {
                "file": BASIS_NAME,
                "sha256": sha256_bytes(basis_bytes),
                **self.basis.params(),
            },
            "encoder": self.encoder,
            "descriptors": DESCRIPTOR_SET,
            "source_root": self.source_root,
            "partial": self.partial,
        }

    def shard_counts(self, records: int) -> list[int]:
        """Records per shard when ``records`` records are added."""
        full, rest = divmod(records, self.records_per_shard)
        return [self.records_per_shard] * full + ([rest] if rest else [])

    def would_rewrite(self, previous: dict[str, Any], record_ids: list[str]) -> bool:
        """False when committing the records ``record_ids`` (all taken unchanged from the
        index whose manifest is ``previous``) would write that index again as it is."""
        header = self.header()
        if any(previous.get(key) != value for key, value in header.items()):
            return True
        if [entry["id"] for entry in previous["entries"]] != sorted(record_ids):
            return True
        if [shard["count"] for shard in previous["shards"]] != self.shard_counts(len(record_ids)):
            return True
        files = [
            item for shard in previous["shards"] for item in (shard, shard["features"]) if item
        ]
        if any("header_sha256" not in item for item in files):
            return True  # written before records could be read alone: rewrite it so they can
        try:
            return (self.out / BASIS_NAME).read_bytes() != self.basis.to_bytes()
        except OSError:
            return True

    def commit(self) -> dict[str, Any]:
        """Flush the last shard, write basis and manifest, remove unreferenced shard files."""
        self._flush()
        atomic_write_bytes(self.out / BASIS_NAME, self.basis.to_bytes())
        manifest = self.manifest()
        text = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        atomic_write_text(self.out / MANIFEST_NAME, text)
        self.remove_unreferenced(manifest)
        return manifest

    def remove_unreferenced(self, manifest: dict[str, Any]) -> None:
        """Delete the shard and feature files this index no longer names: those the
        previous manifest named and those with bipart's own content names
        (``shard-00000-<sha8>.safetensors``, left by an interrupted rebuild). Any other
        file in ``shards/`` or ``features/`` is not ours and stays."""
        keep = {shard["name"] for shard in manifest["shards"]}
        keep |= {shard["features"]["name"] for shard in manifest["shards"] if shard["features"]}
        for folder in (SHARD_DIR, FEATURE_DIR):
            for path in sorted((self.out / folder).glob("*.safetensors")):
                name = path.relative_to(self.out).as_posix()
                ours = name in self._previous_names or _OWN_NAME.match(path.name)
                if ours and name not in keep:
                    path.unlink(missing_ok=True)


_OWN_NAME = re.compile(r"^(shard|features)-\d{5}-[0-9a-f]{8}\.safetensors$")


def _manifest_file_names(out: Path) -> set[str]:
    """The shard and feature files the manifest in ``out`` names (empty when unreadable)."""
    try:
        manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
        names = set()
        for shard in manifest["shards"]:
            for item in (shard, shard.get("features")):
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    names.add(item["name"])
        return names
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


# what bipart itself keeps in an index folder besides the manifest's files
OWN_ENTRIES = {MANIFEST_NAME, BASIS_NAME, SHARD_DIR, FEATURE_DIR, LOCK_NAME, OWNER_NAME, ".staging"}


def check_writable_index_folder(out: str | Path) -> None:
    """Refuse to write an index into a folder that holds other things than an index.

    ``out`` may be missing, empty, or hold a bipart index (``manifest.json`` of
    format ``bipart-shape-index``, or only bipart's own lock, staging and hidden
    temporary files: another writer may be committing its first manifest).
    Raises :class:`~bipart_cli.errors.UsageError` otherwise, before anything is written.
    """
    from ..errors import UsageError

    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    manifest = out / MANIFEST_NAME
    if manifest.is_file():
        try:
            is_index = json.loads(manifest.read_text(encoding="utf-8")).get("format") == FORMAT_NAME
        except (OSError, ValueError, AttributeError):
            is_index = False
        if is_index:
            return
    elif not ({n for n in os.listdir(out) if not n.startswith(".")} - OWN_ENTRIES) and all(
        _OWN_NAME.match(name) or name.startswith(".")  # an interrupted first build
        for folder in (SHARD_DIR, FEATURE_DIR)
        if (out / folder).is_dir()
        for name in os.listdir(out / folder)
    ):
        return
    raise UsageError(
        f"--out {out}: the folder is not empty and holds no bipart index; "
        "refusing to write (and delete) there: give a new or empty folder"
    )
