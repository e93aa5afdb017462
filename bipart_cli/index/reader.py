"""Reading an index folder, local or ``hf://datasets/<owner>/<name>[@revision]``.

Shard checksums are verified when a shard is first read (not all at open, so a
large index opens instantly); a mismatch or an unreadable shard raises
:class:`IndexCorruptError` naming the file.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorruptError, InvalidInputError
from .format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    BasisInfo,
    IndexEntry,
    ShapeRecord,
    ShardDecodeError,
    features_from_bytes,
    records_from_bytes,
    sha256_bytes,
)

HF_PREFIX = "hf://"


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

    def __init__(self, path: Path, manifest: dict[str, Any], verify: bool = True) -> None:
        self.path = path
        self.manifest = manifest
        self.verify_checksums = verify
        self.entries = [IndexEntry.from_json(entry) for entry in manifest["entries"]]
        self._shard_cache: tuple[int, list[ShapeRecord]] | None = None
        self._feature_cache: tuple[int, list[np.ndarray]] | None = None
        self._bps: np.ndarray | None = None
        self._basis: BasisInfo | None = None

    # --- opening -------------------------------------------------------------

    @classmethod
    def open(
        cls, path_or_uri: str | Path, revision: str | None = None, verify: bool = True
    ) -> ShapeIndex:
        """Open a local folder or an ``hf://datasets/...`` index.

        With ``verify`` every shard's sha256 is checked when it is first read, and
        missing shard files are reported at once.
        """
        path = resolve_index_path(path_or_uri, revision)
        manifest = read_manifest(path)
        index = cls(path, manifest, verify=verify)
        if verify:
            index._check_files_present()
        return index

    def _check_files_present(self) -> None:
        for shard in self.manifest["shards"]:
            for item in (shard, shard.get("features")):
                if item is not None and not (self.path / item["name"]).is_file():
                    raise IndexCorruptError(f"index shard {item['name']} is missing in {self.path}")

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
        record = copy.deepcopy(self._shard_records(entry.shard)[entry.slot])  # callers may edit it
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
        if self._feature_cache is None or self._feature_cache[0] != entry.shard:
            item = self.manifest["shards"][entry.shard]["features"]
            data = self._read_checked(item)
            try:
                self._feature_cache = (entry.shard, features_from_bytes(data))
            except ShardDecodeError as exc:
                raise IndexCorruptError(f"index shard {item['name']} is corrupt: {exc}") from exc
        return self._feature_cache[1][entry.slot].copy()

    def _shard_records(self, number: int) -> list[ShapeRecord]:
        if self._shard_cache is None or self._shard_cache[0] != number:
            item = self.manifest["shards"][number]
            data = self._read_checked(item)
            try:
                records = records_from_bytes(data)
            except ShardDecodeError as exc:
                raise IndexCorruptError(f"index shard {item['name']} is corrupt: {exc}") from exc
            if len(records) != item["count"]:
                raise IndexCorruptError(
                    f"index shard {item['name']} holds {len(records)} records, "
                    f"the manifest says {item['count']}"
                )
            self._shard_cache = (number, records)
        return self._shard_cache[1]

    def _read_checked(self, item: dict[str, Any], check: bool | None = None) -> bytes:
        """The bytes of a shard file; its sha256 is checked when ``check`` (default: ``verify``)."""
        path = self.path / item["name"]
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
            path = self.path / info["file"]
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

    def bps_matrix(self, indices: list[int] | None = None) -> np.ndarray:
        """BPS features of the entries (all, or ``indices``), (M, P) float32."""
        if self._bps is None:
            rows = []
            for number in range(len(self.manifest["shards"])):
                rows.extend(record.bps for record in self._shard_records(number))
            dim = self.basis.params()["n_points"]
            self._bps = np.stack(rows) if rows else np.zeros((0, dim), np.float32)
        return self._bps if indices is None else self._bps[np.asarray(indices, dtype=np.int64)]

    def bps_mean(self) -> np.ndarray:
        """The mean BPS feature over the index, (P,) float32 (centre before cosines)."""
        matrix = self.bps_matrix()
        if len(matrix) == 0:
            return np.zeros(matrix.shape[1], np.float32)
        return matrix.mean(axis=0).astype(np.float32)

    def __repr__(self) -> str:
        return f"ShapeIndex({str(self.path)!r}, {len(self)} shapes, {len(self.categories())} categories)"


def read_manifest(path: Path) -> dict[str, Any]:
    """Load and check ``manifest.json`` of the index folder ``path``."""
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        raise InvalidInputError(f"no shape index at {path} ({MANIFEST_NAME} missing)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"index manifest {manifest_path} is unreadable: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise IndexCorruptError(f"{manifest_path} is not a {FORMAT_NAME} manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise IndexCorruptError(
            f"index {path} has format version {manifest.get('version')}, "
            f"this bipart reads version {FORMAT_VERSION}: rebuild it with 'bipart index'"
        )
    return manifest
