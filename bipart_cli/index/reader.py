"""Reading an index folder, local or ``hf://datasets/<owner>/<name>[@revision]``.

Checksums are verified when data is first read (not all at open, so a large index
opens instantly): a record's arrays against the sha256s its shard's header records
(the header against the manifest), or, for files written before those, the whole
shard file. A mismatch or an unreadable shard raises :class:`IndexCorruptError`
naming the file.
"""

from __future__ import annotations

import copy
import json
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorruptError, InvalidInputError
from .format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    BasisInfo,
    FileArrays,
    IndexEntry,
    ManifestEntries,
    ShapeRecord,
    ShardDecodeError,
    ShardRecords,
    arrays_from_bytes,
    sha256_bytes,
)

HF_PREFIX = "hf://"
# bounds on what a manifest may make bipart read (an index made by a stranger)
MAX_MANIFEST_BYTES = 1 << 30
MAX_SHARD_BYTES = 16 << 30
MAX_BASIS_BYTES = 64 << 20


def resolve_index_path(path_or_uri: str | Path, revision: str | None = None) -> Path:
    """A local index folder for ``path_or_uri``.

    ``hf://datasets/<owner>/<name>[@revision]`` is fetched with
    ``huggingface_hub.snapshot_download`` (through :mod:`bipart_cli.hub`) into the
    normal Hugging Face cache; once there it resolves offline too
    (``HF_HUB_OFFLINE=1``). A revision in the URI wins over ``revision``.
    """
    text = str(path_or_uri)
    if not text.startswith(HF_PREFIX):
        return Path(text).expanduser()
    from ..hub import parse_hf_uri, resolve_pretrained

    repo_type, repo_id, uri_revision = parse_hf_uri(text)
    if repo_type != "dataset":
        raise InvalidInputError(f"an index lives in a dataset repo: use hf://datasets/{repo_id}")
    return resolve_pretrained(text, revision=uri_revision or revision, repo_type="dataset")


class ShapeIndex:
    """A read-only shape index.

    ``entries`` are the manifest summaries (no shard read); ``record(i)`` loads
    one :class:`ShapeRecord`. Open with :meth:`open`.
    """

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        verify: bool = True,
        manifest_sha256: str | None = None,
        bps_cache: Path | None = None,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.verify_checksums = verify
        self.manifest_sha256 = manifest_sha256  # of the bytes ``manifest`` was parsed from
        self.bps_cache = bps_cache
        self.entries = ManifestEntries(manifest["entries"])
        self._shard_cache: tuple[int, ShardRecords] | None = None
        self._feature_cache: tuple[int, Mapping[str, np.ndarray]] | None = None
        self._bps: np.ndarray | None = None
        self._basis: BasisInfo | None = None

    # --- opening -------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path_or_uri: str | Path,
        revision: str | None = None,
        verify: bool = True,
        bps_cache: Path | None = None,
    ) -> ShapeIndex:
        """Open a local folder or an ``hf://datasets/...`` index.

        With ``verify`` every shard's sha256 is checked when it is first read, and
        missing shard files are reported at once. With a ``bps_cache`` folder the BPS
        matrix is kept there after it is first read (:meth:`bps_matrix`), and so is the
        fact that a manifest passed :func:`validate_manifest`: the same bytes (by sha256)
        are not walked entry by entry again (1.8 s at 100k entries).
        """
        path = resolve_index_path(path_or_uri, revision)
        store = None
        if bps_cache is not None:
            from ..store import ArrayStore

            store = ArrayStore(Path(bps_cache))
        manifest, digest = _load_manifest(path, store)
        index = cls(path, manifest, verify=verify, manifest_sha256=digest, bps_cache=bps_cache)
        if verify:
            index._check_files_present()
        return index

    def _check_files_present(self) -> None:
        for shard in self.manifest["shards"]:
            for item in (shard, shard.get("features")):
                if item is not None:
                    index_file(self.path, item["name"], item.get("bytes"), MAX_SHARD_BYTES)

    # --- summaries -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def settings(self) -> dict[str, Any]:
        return self.manifest["settings"]

    @property
    def encoder(self) -> dict[str, Any] | None:
        """Identity of the encoder whose features are cached, or None."""
        return self.manifest.get("encoder")

    @property
    def has_features(self) -> bool:
        return self.encoder is not None

    @property
    def ids(self) -> list[str]:
        return [entry.id for entry in self.entries]

    def categories(self) -> list[str]:
        return sorted({entry.category for entry in self.entries})

    def select(
        self,
        category: str | None = None,
        part_names: list[str] | None = None,
        has_parts: list[str] | None = None,
        ground_truth: bool | None = None,
    ) -> list[int]:
        """Positions of the entries that match every given filter (names case-insensitive).

        ``part_names``: the same set of names; ``has_parts``: at least these names;
        ``ground_truth``: whether the shape has ground-truth labels.
        """
        wanted_set = None if part_names is None else {n.lower() for n in part_names}
        needed = set() if has_parts is None else {n.lower() for n in has_parts}
        chosen = []
        for i, entry in enumerate(self.entries):
            names = {n.lower() for n in entry.part_names}
            if category is not None and entry.category.lower() != category.lower():
                continue
            if wanted_set is not None and names != wanted_set:
                continue
            if not needed <= names:
                continue
            if ground_truth is not None and entry.has_ground_truth != ground_truth:
                continue
            chosen.append(i)
        return chosen

    def source_path(self, i: int) -> Path | None:
        """Where entry i was read from, when the index knows its source root."""
        root = self.manifest.get("source_root")
        return None if root is None else Path(root) / self.entries[i].source

    # --- records ---------------------------------------------------------------

    def record(self, i: int) -> ShapeRecord:
        """The full record of entry i, with its cached encoder features when present."""
        entry = self.entries[i]
        records = self._shard_records(entry.shard)
        record = self._corrupt_as_index_error(entry.shard, lambda: records[entry.slot])
        record = copy.deepcopy(record)  # callers may edit it
        if record.id != entry.id:
            raise IndexCorruptError(
                f"index shard {self.manifest['shards'][entry.shard]['name']} does not match the "
                f"manifest (slot {entry.slot} holds {record.id!r}, expected {entry.id!r})"
            )
        record.features = self.encoder_features(i)
        return record

    def __getitem__(self, i: int) -> ShapeRecord:
        return self.record(i)

    def __iter__(self) -> Iterator[ShapeRecord]:
        for i in range(len(self)):
            yield self.record(i)

    def encoder_features(self, i: int, expected: dict[str, Any] | None = None) -> np.ndarray | None:
        """Cached frozen-encoder features of entry i, (2048, F) float16.

        None when the index caches none, or when ``expected`` (an encoder identity)
        differs from the one the cache was built with (a stale cache).
        """
        if self.encoder is None or (expected is not None and expected != self.encoder):
            return None
        entry = self.entries[i]
        item = self.manifest["shards"][entry.shard]["features"]
        if self._feature_cache is None or self._feature_cache[0] != entry.shard:
            self._feature_cache = (entry.shard, self._file_arrays(item, "features"))
        features, name = self._feature_cache[1], f"{entry.slot:05d}.features"
        if name not in features:
            raise IndexCorruptError(f"index shard {item['name']} lacks {name}")
        return self._corrupt_as_index_error(item, lambda: features[name]).copy()

    def _shard_records(self, number: int) -> ShardRecords:
        if self._shard_cache is None or self._shard_cache[0] != number:
            item = self.manifest["shards"][number]
            arrays = self._file_arrays(item, "records")
            records = self._corrupt_as_index_error(number, lambda: ShardRecords(arrays))
            if len(records) != item["count"]:
                raise IndexCorruptError(
                    f"index shard {item['name']} holds {len(records)} records, "
                    f"the manifest says {item['count']}"
                )
            self._shard_cache = (number, records)
        return self._shard_cache[1]

    def _corrupt_as_index_error(self, shard: int | dict[str, Any], decode):
        """``decode()`` of part of a file (shard number ``shard``, or its manifest item);
        corrupt or unreadable bytes raise :class:`IndexCorruptError` naming the file."""
        name = (self.manifest["shards"][shard] if isinstance(shard, int) else shard)["name"]
        try:
            return decode()
        except ShardDecodeError as exc:
            raise IndexCorruptError(f"index shard {name} is corrupt: {exc}") from exc
        except OSError as exc:
            raise IndexCorruptError(f"index shard {name} cannot be read: {exc}") from exc

    def _file_arrays(self, item: dict[str, Any], metadata_key: str) -> Mapping[str, np.ndarray]:
        """The arrays of the manifest-named file ``item``: each read from the file and
        checked when asked, or, for a file written before per-array checksums
        (no ``header_sha256``), the whole file read and checked now."""
        if "header_sha256" not in item:
            data = self._read_checked(item)
            return self._corrupt_as_index_error(item, lambda: arrays_from_bytes(data, metadata_key))
        path = index_file(self.path, item["name"], item.get("bytes"), MAX_SHARD_BYTES)
        return self._corrupt_as_index_error(
            item,
            lambda: FileArrays(
                path, item["header_sha256"], metadata_key, checked=self.verify_checksums
            ),
        )

    def _read_checked(self, item: dict[str, Any], check: bool | None = None) -> bytes:
        """The bytes of a shard file; its sha256 is checked when ``check`` (default: ``verify``)."""
        path = index_file(self.path, item["name"], item.get("bytes"), MAX_SHARD_BYTES)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IndexCorruptError(f"index shard {item['name']} cannot be read: {exc}") from exc
        check = self.verify_checksums if check is None else check
        if check and sha256_bytes(data) != item["sha256"]:
            raise IndexCorruptError(
                f"index shard {item['name']} is corrupt: sha256 mismatch "
                f"(expected {item['sha256'][:12]}…, got {sha256_bytes(data)[:12]}…)"
            )
        return data

    def verify(self) -> None:
        """Check every shard and features file against its checksum now."""
        for shard in self.manifest["shards"]:
            for item in (shard, shard.get("features")):
                if item is not None:
                    self._read_checked(item, check=True)

    # --- BPS -----------------------------------------------------------------------

    @property
    def basis(self) -> BasisInfo:
        """The index's BPS basis (points (P, 3) float32, seed, radius)."""
        if self._basis is None:
            info = self.manifest["bps_basis"]
            path = index_file(self.path, info["file"], None, MAX_BASIS_BYTES)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise IndexCorruptError(f"index file {info['file']} cannot be read: {exc}") from exc
            if sha256_bytes(data) != info["sha256"]:
                raise IndexCorruptError(f"index file {info['file']} is corrupt: sha256 mismatch")
            try:
                self._basis = BasisInfo.from_bytes(data)
            except Exception as exc:  # noqa: BLE001 - any parse failure is corruption
                raise IndexCorruptError(f"index file {info['file']} is corrupt: {exc}") from exc
        return self._basis

    def bps_matrix(self, indices: list[int] | None = None, keep: bool = True) -> np.ndarray:
        """BPS features of the entries (all, or ``indices``), (M, P) float32.

        Read from every shard once per process, or from the ``bps_cache`` folder, where it
        is kept (unless not ``keep``) under the sha256 of the manifest (which names every
        shard's sha256): a 100k-entry index reads 100k small arrays out of 1563 shards
        otherwise.
        """
        if self._bps is None:
            store = self.derived_store()
            if store is None:
                self._bps = self._read_bps()
            else:
                shape = (len(self.entries), self.basis.params()["n_points"])

                def fits(arrays: dict[str, np.ndarray]) -> bool:
                    bps = arrays.get("bps")
                    return bps is not None and bps.dtype == np.float32 and bps.shape == shape

                kept = store.fetch(
                    "", self.manifest_sha256, lambda: {"bps": self._read_bps()}, fits, keep
                )
                self._bps = kept["bps"]
        return self._bps if indices is None else self._bps[np.asarray(indices, dtype=np.int64)]

    def derived_store(self):
        """Where what is derived from this index's checked data is kept between processes
        (:class:`~bipart_cli.store.ArrayStore`; key: :attr:`manifest_sha256`), or None."""
        # only checked reads are kept: a later checked open must not trust unchecked ones
        if self.bps_cache is None or self.manifest_sha256 is None or not self.verify_checksums:
            return None
        from ..store import ArrayStore

        return ArrayStore(Path(self.bps_cache))

    def _read_bps(self) -> np.ndarray:
        """(E, P) float32: every record's BPS, read from the shards."""
        rows = []
        for number in range(len(self.manifest["shards"])):
            rows.extend(self._shard_bps(number))
        dim = self.basis.params()["n_points"]
        return np.stack(rows) if rows else np.zeros((0, dim), np.float32)

    def _shard_bps(self, number: int) -> list[np.ndarray]:
        """The (P,) float32 BPS of each record of shard ``number``; nothing else is decoded."""
        records = self._shard_records(number)
        return self._corrupt_as_index_error(
            number,
            lambda: [
                np.asarray(records.array(slot, "bps"), np.float32).ravel()
                for slot in range(len(records))
            ],
        )

    def bps_mean(self) -> np.ndarray:
        """The mean BPS feature over the index, (P,) float32 (centre before cosines)."""
        matrix = self.bps_matrix()
        if len(matrix) == 0:
            return np.zeros(matrix.shape[1], np.float32)
        return matrix.mean(axis=0).astype(np.float32)

    def __repr__(self) -> str:
        return f"ShapeIndex({str(self.path)!r}, {len(self)} shapes, {len(self.categories())} categories)"


def _allowed_roots(root: Path) -> list[Path]:
    """Where files of the index folder ``root`` may really live: the folder itself, and
    for a Hugging Face cache snapshot (``.../snapshots/<commit>``) that repo's ``blobs``."""
    real = root.resolve()
    roots = [real]
    if root.parent.name == "snapshots":
        roots.append((root.parent.parent / "blobs").resolve())
    return roots


def index_file(root: Path, name: object, expected_bytes: object, max_bytes: int) -> Path:
    """The path of the manifest-named file ``name`` of the index at ``root``, checked.

    ``name`` must be a relative POSIX path that stays inside the index folder (after
    resolving links; Hub cache snapshots may link into their repo's ``blobs``), name
    a regular file, and have a size of at most ``max_bytes`` (and equal to
    ``expected_bytes`` when the manifest gives it). ``../../x``, ``/etc/passwd`` and
    ``/dev/zero`` are refused with :class:`IndexCorruptError` before any read.
    """
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
        raise IndexCorruptError(f"index {root}: manifest names an invalid file {name!r}")
    parts = name.split("/")
    if name.startswith("/") or os.path.isabs(name) or ".." in parts:
        raise IndexCorruptError(
            f"index {root}: manifest file {name!r} points outside the index folder"
        )
    path = root.joinpath(*parts)
    real = path.resolve()
    if not any(real == base or base in real.parents for base in _allowed_roots(root)):
        raise IndexCorruptError(
            f"index {root}: manifest file {name!r} points outside the index folder"
        )
    try:
        info = real.stat()
    except OSError:
        raise IndexCorruptError(f"index shard {name} is missing in {root}") from None
    if not stat.S_ISREG(info.st_mode):
        raise IndexCorruptError(f"index {root}: manifest file {name!r} is not a regular file")
    if info.st_size > max_bytes or (
        isinstance(expected_bytes, int) and info.st_size != expected_bytes
    ):
        want = expected_bytes if isinstance(expected_bytes, int) else f"at most {max_bytes}"
        raise IndexCorruptError(
            f"index {root}: file {name} has {info.st_size} bytes, the manifest allows {want}"
        )
    return path


def read_manifest(path: Path) -> dict[str, Any]:
    """Load and check ``manifest.json`` of the index folder ``path``.

    Every field that later code indexes is validated here (types, shard and slot
    ranges, file names inside the folder), so a bad manifest is one
    :class:`IndexCorruptError` naming the field.
    """
    return _load_manifest(path)[0]


def _load_manifest(path: Path, store=None) -> tuple[dict[str, Any], str]:
    """:func:`read_manifest`, and the sha256 of the bytes it parsed. A manifest that
    ``store`` (:class:`~bipart_cli.store.ArrayStore`) has seen pass
    :func:`validate_manifest` is not validated again; one that passes now is noted there."""
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        raise InvalidInputError(f"no shape index at {path} ({MANIFEST_NAME} missing)")
    try:
        if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
            raise IndexCorruptError(f"index manifest {manifest_path} is larger than 1 GiB")
        raw = manifest_path.read_bytes()
        manifest = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise IndexCorruptError(f"index manifest {manifest_path} is unreadable: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise IndexCorruptError(f"{manifest_path} is not a {FORMAT_NAME} manifest")
    version = manifest.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise IndexCorruptError(
            f"index {path} has format version {version!r}, "
            f"this bipart reads version {FORMAT_VERSION}: rebuild it with 'bipart index'"
        )
    digest = sha256_bytes(raw)
    if not _validated_before(store, digest, manifest):
        validate_manifest(manifest, manifest_path)
        if store is not None:
            store.write(VALIDATED_KIND, digest, {"entries": _entry_count(manifest)})
    return manifest, digest


VALIDATED_KIND = "validated"  # the store's sub-folder of manifests that passed validation


def _entry_count(manifest: dict[str, Any]) -> np.ndarray:
    entries = manifest.get("entries")
    return np.array([len(entries) if isinstance(entries, list) else -1], dtype=np.int64)


def _validated_before(store, digest: str, manifest: dict[str, Any]) -> bool:
    """Whether ``store`` notes that the manifest with sha256 ``digest`` passed validation."""
    if store is None:
        return False
    noted = store.read(VALIDATED_KIND, digest)
    return noted is not None and np.array_equal(noted.get("entries"), _entry_count(manifest))


def validate_manifest(manifest: dict[str, Any], where: object) -> None:
    """Check the fields of a manifest; raise :class:`IndexCorruptError` naming the bad one."""

    def fail(field: str, why: str) -> None:
        raise IndexCorruptError(f"index manifest {where}: {field} {why}")

    def check(value: Any, kinds: Any, field: str) -> None:
        ok = isinstance(value, kinds) and not (
            isinstance(value, bool) and bool not in _tuple(kinds)
        )
        if not ok:
            fail(field, f"must be {_kind_names(kinds)}, got {type(value).__name__}")

    for key, kinds in (("settings", dict), ("bps_basis", dict), ("shards", list)):
        if key not in manifest:
            fail(f"'{key}'", "is missing")
        check(manifest[key], kinds, f"'{key}'")
    if "entries" not in manifest:
        fail("'entries'", "is missing")
    check(manifest["entries"], list, "'entries'")
    check(manifest.get("encoder"), (dict, type(None)), "'encoder'")
    check(manifest.get("partial"), (dict, type(None)), "'partial'")
    basis = manifest["bps_basis"]
    for key in ("file", "sha256"):
        check(basis.get(key), str, f"bps_basis.{key}")
    counts = []
    for i, shard in enumerate(manifest["shards"]):
        check(shard, dict, f"shards[{i}]")
        for key in ("name", "sha256"):
            check(shard.get(key), str, f"shards[{i}].{key}")
        check(shard.get("header_sha256", ""), str, f"shards[{i}].header_sha256")
        check(shard.get("count"), int, f"shards[{i}].count")
        check(shard.get("bytes", 0), int, f"shards[{i}].bytes")
        if shard["count"] < 0:
            fail(f"shards[{i}].count", "is negative")
        features = shard.get("features")
        check(features, (dict, type(None)), f"shards[{i}].features")
        if features is not None:
            for key in ("name", "sha256"):
                check(features.get(key), str, f"shards[{i}].features.{key}")
            check(features.get("header_sha256", ""), str, f"shards[{i}].features.header_sha256")
            check(features.get("bytes", 0), int, f"shards[{i}].features.bytes")
        if (features is None) != (manifest.get("encoder") is None):
            fail(f"shards[{i}].features", "does not match 'encoder'")
        counts.append(shard["count"])
    texts = ("id", "category", "source", "sha256")
    seen_ids: dict[str, int] = {}
    seen_slots: dict[tuple[int, int], int] = {}
    for i, entry in enumerate(manifest["entries"]):
        check(entry, dict, f"entries[{i}]")
        for key in IndexEntry.__dataclass_fields__:
            if key not in entry:
                fail(f"entries[{i}].{key}", "is missing")
        for key in texts:
            check(entry[key], str, f"entries[{i}].{key}")
        for key in ("num_boxes", "surviving_parts", "shard", "slot"):
            check(entry[key], int, f"entries[{i}].{key}")
        check(entry["has_ground_truth"], bool, f"entries[{i}].has_ground_truth")
        check(entry["part_names"], list, f"entries[{i}].part_names")
        check(entry["part_ratio"], list, f"entries[{i}].part_ratio")
        if not all(isinstance(name, str) for name in entry["part_names"]):
            fail(f"entries[{i}].part_names", "must be a list of strings")
        if len(entry["part_ratio"]) != len(entry["part_names"]) or not all(
            isinstance(r, int | float) and not isinstance(r, bool) for r in entry["part_ratio"]
        ):
            fail(f"entries[{i}].part_ratio", "must give one number per part name")
        if not 0 <= entry["shard"] < len(counts):
            fail(f"entries[{i}].shard", f"is {entry['shard']}, the index has {len(counts)} shards")
        if not 0 <= entry["slot"] < counts[entry["shard"]]:
            fail(
                f"entries[{i}].slot",
                f"is {entry['slot']}, shard {entry['shard']} holds {counts[entry['shard']]} records",
            )
        # one entry per record: a repeated one made rows and records disagree (IndexError)
        first = seen_ids.setdefault(entry["id"], i)
        if first != i:
            fail(f"entries[{i}].id", f"{entry['id']!r} repeats entries[{first}]")
        first = seen_slots.setdefault((entry["shard"], entry["slot"]), i)
        if first != i:
            fail(f"entries[{i}]", f"names the record of entries[{first}] again (shard and slot)")


def _tuple(kinds: Any) -> tuple:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _kind_names(kinds: Any) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        int: "an integer",
        bool: "true or false",
    }
    return " or ".join(names.get(kind, "null") for kind in _tuple(kinds))
