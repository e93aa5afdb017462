"""May bipart read what an index's manifest names? An index may come from a stranger:
:func:`read_manifest` loads ``manifest.json`` and checks every field that later code indexes
(:func:`validate_manifest`; with a cache folder, once per content), and :func:`index_file`
checks each file it names before any read: inside the index folder, a regular file, of the
size the manifest gives and within bounds. A bad one is one :class:`IndexCorruptError`
naming it.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorruptError, InvalidInputError
from .arrays import sha256_bytes
from .format import FORMAT_NAME, FORMAT_VERSION, MANIFEST_NAME, IndexEntry, reads_are_valid

# bounds on what a manifest may make bipart read (an index made by a stranger)
MAX_MANIFEST_BYTES = 1 << 30
MAX_SHARD_BYTES = 16 << 30
MAX_BASIS_BYTES = 64 << 20


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
    if not isinstance(name, str) or not name or not name.isprintable() or "\\" in name:
        # not printable: a NUL, or a line break that would split the error's one line
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


# the store's sub-folder of manifests that passed validation, by the rules' version: a
# manifest noted under older rules is checked again (2: 'source_root', printable file
# names, sha256 fields of 64 hex digits)
VALIDATED_KIND = "validated/2"


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
    check(manifest.get("source_root"), (str, type(None)), "'source_root'")

    def check_digest(value: Any, field: str) -> None:
        check(value, str, field)
        if not _HEX_DIGEST.fullmatch(value):
            fail(field, f"must be a sha256 (64 hex digits), got {value[:80]!r}")

    basis = manifest["bps_basis"]
    check(basis.get("file"), str, "bps_basis.file")
    check_digest(basis.get("sha256"), "bps_basis.sha256")
    counts = []
    for i, shard in enumerate(manifest["shards"]):
        check(shard, dict, f"shards[{i}]")
        check(shard.get("name"), str, f"shards[{i}].name")
        check_digest(shard.get("sha256"), f"shards[{i}].sha256")
        if "header_sha256" in shard:
            check_digest(shard["header_sha256"], f"shards[{i}].header_sha256")
        check(shard.get("count"), int, f"shards[{i}].count")
        check(shard.get("bytes", 0), int, f"shards[{i}].bytes")
        if shard["count"] < 0:
            fail(f"shards[{i}].count", "is negative")
        features = shard.get("features")
        check(features, (dict, type(None)), f"shards[{i}].features")
        if features is not None:
            check(features.get("name"), str, f"shards[{i}].features.name")
            check_digest(features.get("sha256"), f"shards[{i}].features.sha256")
            if "header_sha256" in features:
                check_digest(features["header_sha256"], f"shards[{i}].features.header_sha256")
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
            if key not in entry and key != "reads":  # written only since they were kept
                fail(f"entries[{i}].{key}", "is missing")
        if "reads" in entry and not reads_are_valid(entry["reads"]):
            fail(f"entries[{i}].reads", 'must be {"files": [names], "missing": [names]}')
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


_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


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
