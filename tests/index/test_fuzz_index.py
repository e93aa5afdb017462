"""Seeded fuzz of an index from a stranger (issue 31): no untyped exception, whatever its
files hold.

A small synthetic index (three records in two shards, cached encoder features) has one
file mutated per case: ``manifest.json`` (a field of the wrong type, huge, negative or NaN,
a key dropped, an entry repeated, or its bytes), a shard, a features file or the BPS
basis (the safetensors header's JSON, still well framed, or the bytes). The manifest is
then signed again half the time (sizes and sha256 that match the mutated file), as a
hostile index would be. Opening it, with or without checksums, and reading every record,
feature, the basis and the BPS matrix returns or raises a one-line
:class:`~bipart_cli.errors.BipartError`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _fuzz import (
    address_space_cap,
    mutate_bytes,
    mutate_json,
    mutate_json_value,
    run_cases,
)
from _synthetic_index import ENCODER, synthetic_record, write_index

from bipart_cli.index import ShapeIndex
from bipart_cli.index.arrays import header_sha256, sha256_bytes

FUZZ_SEED = 31
FUZZ_CASES = 1000

needs_procfs = pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """The index every case starts from (features 8 wide, not 681: small files)."""
    records = [synthetic_record(i, with_features=True) for i in range(3)]
    for record in records:
        record.features = np.ascontiguousarray(record.features[:, :8])
    out = tmp_path_factory.mktemp("fuzz-index") / "index"
    write_index(out, records, encoder=ENCODER, per_shard=2)
    return out


def _files(index: Path) -> dict[str, bytes]:
    return {
        path.relative_to(index).as_posix(): path.read_bytes()
        for path in sorted(index.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def _mutate_safetensors(rng: np.random.Generator, data: bytes) -> bytes:
    """The header's JSON mutated and framed again (its length fixed), or the bytes."""
    if rng.random() < 0.3:
        return mutate_bytes(rng, data)
    size = int.from_bytes(data[:8], "little")
    header = mutate_json_value(rng, json.loads(data[8 : 8 + size]))
    if isinstance(header, dict) and isinstance(header.get("__metadata__"), dict):
        metadata = header["__metadata__"]  # the JSON texts inside it, mutated as JSON too
        for key, text in list(metadata.items()):
            if isinstance(text, str) and rng.random() < 0.5:
                with contextlib.suppress(ValueError):  # not JSON: left as it is
                    metadata[key] = mutate_json(rng, text.encode()).decode("utf-8", "replace")
    body = json.dumps(header).encode()
    return len(body).to_bytes(8, "little") + body + data[8 + size :]


def _signed(manifest: bytes, name: str, data: bytes) -> bytes:
    """``manifest`` with the size and sha256 of the file ``name`` set to those of ``data``."""
    try:
        document = json.loads(manifest)
        items = [document["bps_basis"]]
        for shard in document["shards"]:
            items += [shard, shard.get("features")]
        for item in items:
            if isinstance(item, dict) and name in (item.get("name"), item.get("file")):
                item["sha256"] = sha256_bytes(data)
                if "bytes" in item:
                    item["bytes"] = len(data)
                if "header_sha256" in item:
                    item["header_sha256"] = header_sha256(data)
        return json.dumps(document).encode()
    except (ValueError, KeyError, TypeError, AttributeError):
        return manifest  # a manifest the mutation broke is left as it is


def _index_case(seed: int, files: dict[str, bytes]) -> tuple[str, dict[str, bytes], bool]:
    """What one case writes over the pristine files, its kind and whether to verify."""
    rng = np.random.default_rng([FUZZ_SEED, seed])
    names = sorted(files)
    if rng.random() < 0.6:
        name = "manifest.json"
    else:
        name = str(rng.choice([n for n in names if n != "manifest.json"]))
    if name == "manifest.json":
        changed = {name: mutate_json(rng, files[name])}
        kind = "manifest"
    else:
        data = _mutate_safetensors(rng, files[name])
        changed = {name: data}
        if rng.random() < 0.5:
            changed["manifest.json"] = _signed(files["manifest.json"], name, data)
        kind = name.split("/")[0].split("-")[0].removesuffix(".safetensors")
    return kind, changed, bool(rng.random() < 0.5)


def _read_everything(index: Path, verify: bool, cache: Path) -> None:
    """What ``segment`` and ``eval`` read of an index: open it, every entry's record and
    features, the basis and the BPS matrix (kept in ``cache``)."""
    opened = ShapeIndex.open(index, verify=verify, bps_cache=cache)
    opened.categories()
    opened.select(category="chair", has_parts=["back"], ground_truth=True)
    for i in range(len(opened)):
        record = opened.record(i)
        assert record.id == opened.entries[i].id
        opened.encoder_features(i, expected=opened.encoder)
        opened.source_path(i)
    opened.basis.params()
    opened.bps_mean()
    if verify:
        opened.verify()


@needs_procfs
def test_seeded_fuzz_of_index_files_raises_only_typed_errors(pristine, tmp_path):
    """1,000 seeded cases of a mutated index (see the module's docstring)."""
    index = tmp_path / "index"
    shutil.copytree(pristine, index)
    files = _files(index)
    cache = tmp_path / "cache"

    def make_case(seed: int):
        kind, changed, verify = _index_case(seed, files)

        def run() -> None:
            try:
                for name, data in changed.items():
                    (index / name).write_bytes(data)
                _read_everything(index, verify, cache)
            finally:
                for name in changed:
                    (index / name).write_bytes(files[name])

        return kind, run

    _read_everything(index, True, cache)  # the pristine index reads whole
    with address_space_cap():
        outcomes, failures = run_cases(make_case, range(FUZZ_CASES))
    assert not failures, f"{len(failures)} of {FUZZ_CASES} cases:\n" + "\n".join(failures[:40])
    assert outcomes.get("ok", 0) > 50 and outcomes.get("IndexCorruptError", 0) > 200, outcomes
