"""How does a shard's bytes hold its records? :func:`records_to_bytes` writes them (the
arrays under ``"{slot:05d}.<field>"``, their strings as one JSON metadata value),
:func:`features_to_bytes` a shard's features file, and :class:`ShardRecords` reads them
back, each record decoded when first read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..labeling.pseudo_labels import PseudoLabels
from .arrays import (
    FileArrays,
    ShardDecodeError,
    _decoded,
    _LazyArrays,
    array_digests,
    arrays_from_bytes,
)
from .format import FORMAT_VERSION, SHARD_FORMAT, ShapeRecord, canonical_json, reads_are_valid

_PSEUDO_KEYS = ("masks_packed", "num_points", "part_index", "scores", "view_index", "boxes")


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
        meta = {
            "id": record.id,
            "category": record.category,
            "part_names": record.part_names,
            "source": record.source,
            "sha256": record.sha256,
            "pseudo_labels": record.pseudo_labels.metadata(),
        }
        if record.reads is not None:
            meta["reads"] = record.reads
        metas.append(meta)
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
        reads=_checked_reads(meta.get("reads")),
    )


def _checked_reads(reads: Any) -> dict[str, list[str]] | None:
    """A record's ``reads`` as written, or None when it is not ``{"files": [str...],
    "missing": [str...]}`` (the shape is then loaded again, never trusted)."""
    return reads if reads_are_valid(reads) else None
