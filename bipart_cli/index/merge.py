"""Merging the partial indexes of ``bipart index --shard i/n`` runs into one index."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .build import BuildSummary
from .reader import ShapeIndex
from .writer import RECORDS_PER_SHARD, IndexWriter, check_writable_index_folder, index_lock


def merge_indexes(
    parts: list[str | Path],
    out: str | Path,
    *,
    revision: str | None = None,
    progress: bool = True,
    records_per_shard: int = RECORDS_PER_SHARD,
) -> BuildSummary:
    """Merge indexes (e.g. the ``--shard i/n`` parts of one folder) into ``out``.

    The parts must share settings, BPS basis and encoder. The result does not
    depend on the order of ``parts`` and equals a single build of the same files.
    A shape present in several parts is kept once when identical (same sha256)
    and is an error otherwise.
    """
    from ..runtime import progress as progress_bar

    started = time.perf_counter()
    if not parts:
        raise UsageError("index merge: give the partial indexes to merge")
    check_writable_index_folder(out)
    opened = sorted(
        (ShapeIndex.open(part, revision=revision, verify=True) for part in parts),
        key=lambda index: str(index.path),
    )
    first = opened[0]
    for other in opened[1:]:
        for what, key in (("build settings", "settings"), ("encoder", "encoder")):
            if other.manifest[key] != first.manifest[key]:
                raise UsageError(f"cannot merge {first.path} and {other.path}: their {what} differ")
        if other.manifest["bps_basis"]["sha256"] != first.manifest["bps_basis"]["sha256"]:
            raise UsageError(f"cannot merge {first.path} and {other.path}: their BPS bases differ")

    where: dict[str, tuple[int, int]] = {}  # id -> (part, row)
    for p, index in enumerate(opened):
        for row, entry in enumerate(index.entries):
            if entry.id in where:
                seen = opened[where[entry.id][0]].entries[where[entry.id][1]]
                if seen.sha256 != entry.sha256:
                    raise UsageError(
                        f"cannot merge: {entry.id} differs between {opened[where[entry.id][0]].path} "
                        f"and {index.path}"
                    )
                continue
            where[entry.id] = (p, row)

    with index_lock(out):
        roots = {index.manifest.get("source_root") for index in opened}
        writer = IndexWriter(
            out,
            settings=first.settings,
            basis=first.basis,
            encoder=first.encoder,
            source_root=roots.pop() if len(roots) == 1 else None,
            partial=_merged_partial([index.manifest.get("partial") for index in opened]),
            records_per_shard=records_per_shard,
        )
        with progress_bar(quiet=not progress) as bar:
            task = bar.add_task("merging", total=len(where))
            for shape_id in sorted(where):
                p, row = where[shape_id]
                writer.add(opened[p].record(row))
                bar.advance(task)
        manifest = writer.commit()
    return BuildSummary(
        out=str(out),
        unchanged=manifest["num_entries"],
        entries=manifest["num_entries"],
        shards=len(manifest["shards"]),
        features_cached=manifest["encoder"] is not None,
        partial=manifest["partial"],
        elapsed_s=round(time.perf_counter() - started, 3),
    )


def _merged_partial(partials: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """None when the parts are (or cover) a whole build, else the shards they cover."""
    if any(p is None for p in partials):
        return None
    counts = {p["of"] for p in partials}
    if len(counts) != 1:
        raise UsageError("cannot merge partial indexes of different --shard i/n splits")
    total = counts.pop()
    covered = sorted({i for p in partials for i in p["shards"]})
    return None if covered == list(range(total)) else {"shards": covered, "of": total}
