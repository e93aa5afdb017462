"""A bank's row lookups: which entries have a category, a part name, a surviving part
name (Eq. 4) or a file sha256, built once per index and kept with it between processes.

A loop over 100k entries builds them in ~0.5 s (and making those entries takes another
~0.35 s); reading them back from the index's derived store takes a few milliseconds.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import numpy as np

TABLES = ("category", "part", "surviving")  # name -> ascending rows, names lower-cased
STORE_KIND = "lookups"


def lower_names(names) -> set[str]:
    return {name.lower() for name in names}


@dataclass
class RowLookups:
    """Rows (ascending int64 arrays) per lower-cased category, part name and surviving
    part name, and each row's file sha256 as bytes (E,)."""

    category: dict[str, np.ndarray]
    part: dict[str, np.ndarray]
    surviving: dict[str, np.ndarray]
    sha256: np.ndarray

    def rows_with_sha256(self, sha256: str) -> np.ndarray:
        """(k,) int64 rows of the entries made from the file with this sha256."""
        return np.flatnonzero(self.sha256 == sha256.encode())

    @classmethod
    def of_entries(cls, entries) -> RowLookups:
        """Built from :class:`~bipart_cli.index.format.IndexEntry` items, in row order."""
        tables: dict[str, dict[str, list[int]]] = {name: {} for name in TABLES}
        lowered = functools.cache(lower_names)  # shapes of a category share their part names
        hashes = []
        for row, entry in enumerate(entries):
            tables["category"].setdefault(entry.category.lower(), []).append(row)
            hashes.append(entry.sha256.encode())
            for name in lowered(tuple(entry.part_names)):
                tables["part"].setdefault(name, []).append(row)
            for name in lowered(tuple(entry.surviving_part_names)):
                tables["surviving"].setdefault(name, []).append(row)
        arrays = {
            name: {key: np.asarray(rows, dtype=np.int64) for key, rows in table.items()}
            for name, table in tables.items()
        }
        return cls(**arrays, sha256=np.array(hashes, dtype=np.bytes_).reshape(len(hashes)))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Numeric arrays only (what the store keeps): per table its keys as JSON bytes,
        its rows end to end and where each key's rows end; the hashes as (E, L) bytes."""
        arrays = {}
        for name in TABLES:
            table = getattr(self, name)
            keys = list(table)
            rows = [table[key] for key in keys]
            arrays[f"{name}.keys"] = np.frombuffer(json.dumps(keys).encode(), dtype=np.uint8)
            arrays[f"{name}.rows"] = np.concatenate(rows) if rows else np.zeros(0, np.int64)
            arrays[f"{name}.ends"] = np.cumsum([len(r) for r in rows], dtype=np.int64)
        width = max(self.sha256.dtype.itemsize, 1)
        arrays["sha256"] = self.sha256.astype(f"S{width}").view(np.uint8).reshape(-1, width)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], count: int) -> RowLookups | None:
        """The lookups :meth:`to_arrays` wrote, for ``count`` entries; None when the arrays
        are not such lookups."""
        try:
            tables = {}
            for name in TABLES:
                keys = json.loads(arrays[f"{name}.keys"].tobytes().decode())
                rows, ends = arrays[f"{name}.rows"], arrays[f"{name}.ends"]
                ok = (
                    isinstance(keys, list)
                    and all(isinstance(key, str) for key in keys)
                    and rows.dtype == ends.dtype == np.int64
                    and len(ends) == len(keys)
                    and (len(ends) == 0 or ends[-1] == len(rows))
                    and bool(((rows >= 0) & (rows < count)).all())
                    and bool((np.diff(ends, prepend=0) >= 0).all())
                )
                if not ok:
                    return None
                split = np.split(rows, ends[:-1]) if keys else []
                tables[name] = dict(zip(keys, split, strict=True))
            hashes = arrays["sha256"]
            if hashes.dtype != np.uint8 or hashes.ndim != 2 or len(hashes) != count:
                return None
            sha256 = np.ascontiguousarray(hashes).view(f"S{hashes.shape[1]}").reshape(count)
        except (KeyError, ValueError, UnicodeDecodeError):
            return None
        return cls(**tables, sha256=sha256)


def row_lookups(index) -> RowLookups:
    """The lookups of an index's entries, from its derived store when it has them
    (:meth:`~bipart_cli.index.ShapeIndex.derived_store`), else built (and kept there)."""
    store = index.derived_store()
    if store is None:
        return RowLookups.of_entries(index.entries)
    count = len(index.entries)
    arrays = store.read(STORE_KIND, index.manifest_sha256)
    kept = None if arrays is None else RowLookups.from_arrays(arrays, count)
    if kept is not None:
        return kept
    lookups = RowLookups.of_entries(index.entries)
    store.write(STORE_KIND, index.manifest_sha256, lookups.to_arrays())
    return lookups
