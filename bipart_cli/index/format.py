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
shard's other 63 (:class:`.arrays.FileArrays`). Files without them (written before) are read and
checked whole.

Labels: ``-1`` unassigned, ``0..K-1`` index ``part_names`` (stored as int16).
This module is numpy + safetensors only (no torch).

What does an index hold? This module answers that: its file names, :class:`ShapeRecord`
(one shape), :class:`IndexEntry` (the manifest's summary of it) and :class:`BasisInfo`.
How a shard's bytes hold its records is :mod:`.shards`; how a safetensors file's arrays are
read and checked, :mod:`.arrays`; whether a manifest can be trusted, :mod:`.manifest`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..labeling.pseudo_labels import PseudoLabels
from .arrays import arrays_from_bytes

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
        The content identity of every file loading the shape read (``Asset.sha256``).
    reads : dict or None
        The files loading it read besides the source and those it looked for and did not
        find, ``{"files": [...], "missing": [...]}`` relative to the source's folder
        (:func:`bipart_cli.io.sources.read_names`): a rebuild checks them instead of loading
        the shape again. None in an index written before they were kept.
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
    reads: dict[str, list[str]] | None = None

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
    the "part-perfect" criterion. ``shard`` and ``slot`` locate the record. ``reads``: the
    record's (:attr:`ShapeRecord.reads`), left out of the JSON when None.
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
    reads: dict[str, list[str]] | None = None

    @property
    def surviving_part_names(self) -> list[str]:
        return [
            name
            for name, ratio in zip(self.part_names, self.part_ratio, strict=True)
            if ratio >= PART_PERFECT_MIN_RATIO
        ]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if data["reads"] is None:  # an index written before: its manifest as it was
            del data["reads"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexEntry:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


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


def reads_are_valid(reads: Any) -> bool:
    """Whether ``reads`` is a record's :attr:`ShapeRecord.reads`: exactly ``{"files": [...],
    "missing": [...]}``, lists of strings."""
    return (
        isinstance(reads, dict)
        and set(reads) == {"files", "missing"}
        and all(
            isinstance(names, list) and all(isinstance(name, str) for name in names)
            for names in reads.values()
        )
    )


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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
        reads=record.reads,
    )
