"""The on-disk format of a shape index: records, shard files, manifest entries.

An index is one folder (copy it, rsync it, upload it as-is to a Hugging Face
dataset repo)::

    manifest.json                      format, settings, shards + checksums, one summary per shape
    bps_basis.safetensors              the fixed BPS basis, "points" (1024, 3) float32
    shards/shard-00000-<sha8>.safetensors     per shape: points, dense subsample, BPS, labels,
                                              geometric descriptors
    features/features-00000-<sha8>.safetensors  per shape: frozen-encoder features (optional)

Shard files are named after the first 8 hex digits of their sha256, so a
rebuild never overwrites a file that the current manifest points at: the
manifest is written last, and files it no longer names are removed after.
Every string of a shard lives in one JSON metadata value (``"records"``)
because safetensors does not keep the order of several metadata keys, and the
same records must give the same bytes.

Each file's JSON metadata also records the sha256 of every array, and the manifest the
sha256 of each file's header: one record is read and checked alone, without reading its
shard's other 63 (:class:`FileArrays`). Files without them (written before) are read and
checked whole.

Labels: ``-1`` unassigned, ``0..K-1`` index ``part_names`` (stored as int16).
This module is numpy + safetensors only (no torch).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..labeling.pseudo_labels import PseudoLabels

FORMAT_NAME = "bipart-shape-index"
# 2: records carry per-point geometric descriptors (bipart_cli.descriptors)
FORMAT_VERSION = 2
SHARD_FORMAT = "bipart-shape-index-shard"
MANIFEST_NAME = "manifest.json"
BASIS_NAME = "bps_basis.safetensors"
SHARD_DIR = "shards"
FEATURE_DIR = "features"

# Eq. 4: a part survives when its normalised point share is at least this
# (the same threshold as bipart_cli.signatures.MIN_PART_RATIO).
PART_PERFECT_MIN_RATIO = 0.01

_PSEUDO_KEYS = ("masks_packed", "num_points", "part_index", "scores", "view_index", "boxes")


@dataclass
class ShapeRecord:
    """Everything the index keeps about one shape.

    Attributes
    ----------
    id : str
        Unique key: the source path relative to the indexed folder (POSIX).
    category : str
    part_names : list of str
        The names that ``pseudo_labels``, ``gt_labels`` and ``dense_gt_labels`` index.
    source : str
        Source path relative to the manifest's ``source_root``.
    sha256 : str
        Of the source file's bytes.
    points : (2048, 3) float32
        The network points, unit-sphere normalised.
    dense_points : (n, 3) float32
        A subsample of the dense cloud (n <= 8192), for kNN label transfer and previews.
    dense_colors : (n, 3) uint8
    bps : (1024,) float32
        BPS feature of ``points`` on the index's basis.
    pseudo_labels : PseudoLabels
        Boxes over the 2048 ``points``.
    gt_labels : (2048,) int64 or None
        Ground truth of ``points`` when the asset had labels.
    dense_gt_labels : (n,) int64 or None
    features : (2048, F) float16 or None
        Cached frozen-encoder features of ``points`` (F = 681).
    descriptors : (2048, D) float16 or None
        Geometric descriptors of ``points`` (:func:`bipart_cli.descriptors.point_descriptors`),
        of the set the manifest names.
    """

    id: str
    category: str
    part_names: list[str]
    source: str
    sha256: str
    points: np.ndarray
    dense_points: np.ndarray
    dense_colors: np.ndarray
    bps: np.ndarray
    pseudo_labels: PseudoLabels
    gt_labels: np.ndarray | None = None
    dense_gt_labels: np.ndarray | None = None
    features: np.ndarray | None = None
    descriptors: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float32).reshape(-1, 3)
        self.dense_points = np.asarray(self.dense_points, dtype=np.float32).reshape(-1, 3)
        self.dense_colors = np.asarray(self.dense_colors, dtype=np.uint8).reshape(-1, 3)
        self.bps = np.asarray(self.bps, dtype=np.float32).reshape(-1)
        if self.gt_labels is not None:
            self.gt_labels = np.asarray(self.gt_labels, dtype=np.int64).reshape(-1)
        if self.dense_gt_labels is not None:
            self.dense_gt_labels = np.asarray(self.dense_gt_labels, dtype=np.int64).reshape(-1)
        if self.features is not None:
            self.features = np.asarray(self.features, dtype=np.float16)
        if self.descriptors is not None:
            self.descriptors = np.asarray(self.descriptors, dtype=np.float16)
        self.part_names = list(self.part_names)

    @property
    def has_ground_truth(self) -> bool:
        return self.gt_labels is not None


@dataclass
class IndexEntry:
    """The manifest's summary of one shape (readable without opening a shard).

    ``part_ratio`` is Eq. 4's normalised point share per part (from the pseudo
    labels); ``surviving_parts`` counts the parts with a share of at least 0.01,
    the "part-perfect" criterion. ``shard`` and ``slot`` locate the record.
    """

    id: str
    category: str
    part_names: list[str]
    source: str
    sha256: str
    has_ground_truth: bool
    num_boxes: int
    part_ratio: list[float]
    surviving_parts: int
    shard: int = -1
    slot: int = -1

    @property
    def surviving_part_names(self) -> list[str]:
        return [
            name
            for name, ratio in zip(self.part_names, self.part_ratio, strict=True)
            if ratio >= PART_PERFECT_MIN_RATIO
        ]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexEntry:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})


class ManifestEntries(Sequence[IndexEntry]):
    """A manifest's entries as :class:`IndexEntry`, each made when first read.

    entries : the manifest's ``entries`` list of dicts (validated). Opening a 100k-entry
    index for retrieval reads a handful of them; making all took ~0.35 s.
    """

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self._json = entries
        self._made: list[IndexEntry | None] = [None] * len(entries)

    def __len__(self) -> int:
        return len(self._json)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        made = self._made[i]
        if made is None:
            made = self._made[i] = IndexEntry.from_json(self._json[i])
        return made


@dataclass
class BasisInfo:
    """The fixed BPS basis of an index: ``points`` (P, 3) float32 plus how it was made."""

    points: np.ndarray
    seed: int
    radius: float
    extra: dict[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        return {
            "n_points": int(len(self.points)),
            "seed": int(self.seed),
            "radius": float(self.radius),
            **self.extra,
        }

    def to_bytes(self) -> bytes:
        from safetensors.numpy import save

        points = np.ascontiguousarray(self.points, dtype=np.float32)
        return save({"points": points}, metadata={"bps": canonical_json(self.params())})

    @classmethod
    def from_bytes(cls, data: bytes) -> BasisInfo:
        tensors = arrays_from_bytes(data, "bps")
        params = tensors.metadata
        extra = {k: v for k, v in params.items() if k not in ("n_points", "seed", "radius")}
        return cls(
            points=tensors["points"],
            seed=int(params["seed"]),
            radius=float(params["radius"]),
            extra=extra,
        )


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stable_hash(text: str) -> int:
    """A process-independent 64-bit hash of ``text`` (Python's ``hash`` is salted)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


# --- manifest summaries ----------------------------------------------------------


def summarize(record: ShapeRecord) -> IndexEntry:
    """The manifest entry of ``record`` (shard and slot are filled in by the writer)."""
    from ..signatures import part_ratios

    ratio = part_ratios(record.pseudo_labels)  # Eq. 4, normalised
    return IndexEntry(
        id=record.id,
        category=record.category,
        part_names=list(record.part_names),
        source=record.source,
        sha256=record.sha256,
        has_ground_truth=record.has_ground_truth,
        num_boxes=int(record.pseudo_labels.num_boxes),
        part_ratio=[round(float(r), 6) for r in ratio],
        surviving_parts=int((ratio >= PART_PERFECT_MIN_RATIO).sum()),
    )


# --- shard (de)serialisation -------------------------------------------------


def _labels_to_disk(labels: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(labels, dtype=np.int16)


def records_to_bytes(records: list[ShapeRecord], with_features: bool = False) -> bytes:
    """One shard: the records' arrays under ``"{slot:05d}.<field>"`` and their strings as JSON.

    Index shards keep features in a separate file (:func:`features_to_bytes`);
    ``with_features`` puts them inline (a build's staged shapes).
    """
    from safetensors.numpy import save

    tensors: dict[str, np.ndarray] = {}
    metas: list[dict[str, Any]] = []
    for slot, record in enumerate(records):
        prefix = f"{slot:05d}."
        tensors[prefix + "points"] = record.points
        tensors[prefix + "dense_points"] = record.dense_points
        tensors[prefix + "dense_colors"] = record.dense_colors
        tensors[prefix + "bps"] = record.bps
        for key, array in record.pseudo_labels.to_tensors().items():
            tensors[prefix + "pl." + key] = array
        if record.gt_labels is not None:
            tensors[prefix + "gt_labels"] = _labels_to_disk(record.gt_labels)
        if record.dense_gt_labels is not None:
            tensors[prefix + "dense_gt_labels"] = _labels_to_disk(record.dense_gt_labels)
        if record.descriptors is not None:
            tensors[prefix + "descriptors"] = record.descriptors
        if with_features and record.features is not None:
            tensors[prefix + "features"] = record.features
        metas.append(
            {
                "id": record.id,
                "category": record.category,
                "part_names": record.part_names,
                "source": record.source,
                "sha256": record.sha256,
                "pseudo_labels": record.pseudo_labels.metadata(),
            }
        )
    tensors = {key: np.ascontiguousarray(value) for key, value in tensors.items()}
    header = canonical_json(
        {
            "format": SHARD_FORMAT,
            "version": FORMAT_VERSION,
            "records": metas,
            "sha256": array_digests(tensors),
        }
    )
    return save(tensors, metadata={"records": header})


def features_to_bytes(records: list[ShapeRecord]) -> bytes:
    """The features file of a shard: ``"{slot:05d}.features"`` (2048, F) float16 per record."""
    from safetensors.numpy import save

    tensors = {}
    for slot, record in enumerate(records):
        if record.features is None:
            raise ValueError(f"record {record.id} has no encoder features to write")
        tensors[f"{slot:05d}.features"] = np.ascontiguousarray(record.features, dtype=np.float16)
    ids = canonical_json(
        {"format": SHARD_FORMAT, "ids": [r.id for r in records], "sha256": array_digests(tensors)}
    )
    return save(tensors, metadata={"features": ids})


def array_digests(tensors: dict[str, np.ndarray]) -> dict[str, str]:
    """sha256 of each (C-contiguous) array's bytes, as safetensors writes them."""
    return {name: hashlib.sha256(array.data).hexdigest() for name, array in tensors.items()}


def header_sha256(data: bytes) -> str:
    """sha256 of a safetensors file's header: its 8-byte length and its JSON."""
    return sha256_bytes(data[: 8 + int.from_bytes(data[:8], "little")])


def arrays_from_bytes(data: bytes, metadata_key: str) -> _LazyArrays:
    """A whole safetensors file's arrays (each made when first read), with the JSON its
    metadata holds under ``metadata_key`` as ``.metadata``: the in-memory twin of
    :class:`FileArrays`. Malformed bytes raise :class:`ShardDecodeError`."""
    from safetensors import deserialize

    def decode() -> _LazyArrays:
        size = int.from_bytes(data[:8], "little")
        _, metadata = _split_header(data[8 : 8 + size], metadata_key)
        return _LazyArrays(dict(deserialize(data)), metadata)

    return _decoded(decode)


def _split_header(body: bytes, metadata_key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A safetensors header's JSON ``body``: its array entries, and the JSON its metadata
    holds under ``metadata_key``."""
    header = json.loads(body)
    return header, json.loads(header.pop("__metadata__")[metadata_key])


# safetensors' dtype names that NumPy has
_DTYPES = {
    "BOOL": np.bool_,
    "U8": np.uint8,
    "I8": np.int8,
    "U16": np.uint16,
    "I16": np.int16,
    "U32": np.uint32,
    "I32": np.int32,
    "U64": np.uint64,
    "I64": np.int64,
    "F16": np.float16,
    "F32": np.float32,
    "F64": np.float64,
}


class _LazyArrays(Mapping):
    """Name -> array over ``safetensors.deserialize``'s raw tensors, viewed when read: a
    shard holds 64 records of ~12 arrays, and a retrieval reads one record."""

    def __init__(self, raw: dict[str, dict[str, Any]], metadata: dict[str, Any]) -> None:
        self._raw = raw
        self.metadata = metadata

    def __getitem__(self, name: str) -> np.ndarray:
        tensor = self._raw[name]
        if tensor["dtype"] not in _DTYPES:
            raise ShardDecodeError(f"{name}: unexpected dtype {tensor['dtype']}")
        return np.frombuffer(tensor["data"], dtype=_DTYPES[tensor["dtype"]]).reshape(
            tensor["shape"]
        )

    def __iter__(self):
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


class ShardDecodeError(ValueError):
    """A shard's bytes are not a valid shard (the caller names the file)."""


MAX_HEADER_BYTES = 100 << 20  # safetensors' own bound


class FileArrays(Mapping):
    """Name -> array of a safetensors file, each read from its own byte range when asked.

    The header is read first and, with ``checked``, must have the sha256 ``header_digest``
    (the manifest's); each array read must then have the sha256 the header's JSON
    ``metadata_key`` records for it. A mismatch, a truncated file or a malformed header
    raises :class:`ShardDecodeError`.
    """

    def __init__(
        self, path: str | os.PathLike, header_digest: str, metadata_key: str, checked=True
    ):
        self._path = path
        self._checked = checked
        with open(path, "rb") as handle:
            self._file_bytes = os.fstat(handle.fileno()).st_size
            head = handle.read(8)
            size = int.from_bytes(head, "little")
            if len(head) < 8 or size > min(MAX_HEADER_BYTES, self._file_bytes - 8):
                raise ShardDecodeError("the header is truncated or too large")
            body = handle.read(size)
        if len(body) < size:
            raise ShardDecodeError("the header is truncated")
        if checked and sha256_bytes(head + body) != header_digest:
            raise ShardDecodeError("sha256 mismatch in the header")
        self._arrays, self.metadata = _decoded(lambda: _split_header(body, metadata_key))
        self._offset = 8 + size
        self._digests = self.metadata.get("sha256") or {}

    def __getitem__(self, name: str) -> np.ndarray:
        info = self._arrays[name]  # a KeyError: no such array (``get`` gives None)
        dtype, shape, start, end = _decoded(lambda: _array_layout(info))
        if not 0 <= start <= end <= self._file_bytes - self._offset:  # never read past the file
            raise ShardDecodeError(f"{name}: its offsets lie outside the file")
        with open(self._path, "rb") as handle:
            handle.seek(self._offset + start)
            data = handle.read(end - start)
        if len(data) < end - start:
            raise ShardDecodeError(f"{name}: the file is truncated")
        if self._checked and sha256_bytes(data) != self._digests.get(name):
            raise ShardDecodeError(f"sha256 mismatch in {name}")
        return _decoded(lambda: np.frombuffer(data, dtype=dtype).reshape(shape))

    def __contains__(self, name: object) -> bool:
        return name in self._arrays  # without reading it

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)


def _array_layout(info: dict[str, Any]) -> tuple[type, tuple[int, ...], int, int]:
    """(dtype, shape, start, end) of one safetensors header entry."""
    start, end = (int(offset) for offset in info["data_offsets"])
    return _DTYPES[info["dtype"]], tuple(int(n) for n in info["shape"]), start, end


class ShardRecords(Sequence):
    """The records of a shard written by :func:`records_to_bytes`, each decoded when first
    read (and kept): a retrieval reads one record of a shard's 64, the BPS matrix one array
    of each (:meth:`array`). A corrupt record raises :class:`ShardDecodeError` when read.

    ``arrays`` are the shard's, from :func:`arrays_from_bytes` or a :class:`FileArrays`
    (records then read from the file one at a time)."""

    def __init__(self, arrays: _LazyArrays | FileArrays) -> None:
        self._tensors, self._metas = arrays, _decoded(lambda: _shard_records_meta(arrays.metadata))
        self._decoded: dict[int, ShapeRecord] = {}

    def __len__(self) -> int:
        return len(self._metas)

    def __getitem__(self, slot: int) -> ShapeRecord:  # type: ignore[override]
        if not 0 <= slot < len(self._metas):
            raise IndexError(slot)
        if slot not in self._decoded:
            self._decoded[slot] = _decoded(
                lambda: _record_from(self._tensors, self._metas[slot], slot)
            )
        return self._decoded[slot]

    def __iter__(self):
        return (self[slot] for slot in range(len(self)))

    def array(self, slot: int, name: str) -> np.ndarray:
        """One array of record ``slot`` (e.g. ``"bps"``), without decoding the rest."""
        return _decoded(lambda: self._tensors[f"{slot:05d}.{name}"])


def _shard_records_meta(header: dict[str, Any]) -> list[dict[str, Any]]:
    if header.get("format") != SHARD_FORMAT:
        raise ShardDecodeError(f"not a {SHARD_FORMAT} file")
    return list(header["records"])


def _decoded(decode):
    """``decode()``, whatever it raises on corrupt bytes turned into :class:`ShardDecodeError`."""
    try:
        return decode()
    except ShardDecodeError:
        raise
    except Exception as exc:  # safetensors / json / a missing key, a bad shape or dtype
        raise ShardDecodeError(f"{type(exc).__name__}: {exc}") from exc


def records_from_bytes(data: bytes) -> list[ShapeRecord]:
    """Parse a shard written by :func:`records_to_bytes`, every record."""
    return list(ShardRecords(arrays_from_bytes(data, "records")))


def _record_from(tensors: dict[str, np.ndarray], meta: dict[str, Any], slot: int) -> ShapeRecord:
    prefix = f"{slot:05d}."
    pseudo = PseudoLabels.from_tensors(
        {key: tensors[prefix + "pl." + key] for key in _PSEUDO_KEYS}, meta["pseudo_labels"]
    )

    def optional(name: str) -> np.ndarray | None:
        array = tensors.get(prefix + name)
        return None if array is None else array.astype(np.int64)

    return ShapeRecord(
        id=meta["id"],
        category=meta["category"],
        part_names=meta["part_names"],
        source=meta["source"],
        sha256=meta["sha256"],
        points=tensors[prefix + "points"],
        dense_points=tensors[prefix + "dense_points"],
        dense_colors=tensors[prefix + "dense_colors"],
        bps=tensors[prefix + "bps"],
        pseudo_labels=pseudo,
        gt_labels=optional("gt_labels"),
        dense_gt_labels=optional("dense_gt_labels"),
        features=tensors.get(prefix + "features"),
        descriptors=tensors.get(prefix + "descriptors"),
    )
