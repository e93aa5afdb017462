"""The shape-index storage layer: records, shards, checksums, manifest, hf:// resolution.

Fixtures are small synthetic records (random arrays), so no labeler or model runs here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _synthetic_index import (
    CATEGORIES,
    ENCODER,
    N_POINTS,
    SETTINGS,
    assert_same_record,
    index_writer,
    synthetic_basis,
    synthetic_record,
    write_index,
)

from bipart_cli.errors import IndexCorruptError, InvalidInputError, UsageError
from bipart_cli.index import (
    IndexWriter,
    ShapeIndex,
    ShapeRecord,
    parse_shard_spec,
    resolve_index_path,
)
from bipart_cli.index.build import build_index
from bipart_cli.index.walk import in_shard
from bipart_cli.labeling.pseudo_labels import PseudoLabels


@pytest.fixture
def records() -> list[ShapeRecord]:
    return [synthetic_record(i) for i in range(8)]


def test_records_round_trip_through_shards(tmp_path, records):
    manifest = write_index(tmp_path / "idx", records)
    assert len(manifest["shards"]) == 3  # 8 records, 3 per shard
    index = ShapeIndex.open(tmp_path / "idx")
    by_id = {r.id: r for r in records}
    assert sorted(index.ids) == index.ids == sorted(by_id)
    assert len(index) == 8
    for i, entry in enumerate(index.entries):
        loaded = index.record(i)
        assert_same_record(loaded, by_id[entry.id])
        assert loaded.features is None and index.encoder_features(i) is None
        assert entry.has_ground_truth == (by_id[entry.id].gt_labels is not None)
        assert entry.num_boxes == by_id[entry.id].pseudo_labels.num_boxes
    assert [r.id for r in index] == index.ids


def test_manifest_part_statistics_follow_eq4(tmp_path, records):
    write_index(tmp_path / "idx", records)
    index = ShapeIndex.open(tmp_path / "idx")
    for i, entry in enumerate(index.entries):
        labels = index.record(i).pseudo_labels
        # naive Eq. 4: per point, the parts tying for the highest vote get that vote
        ratio = np.zeros(len(entry.part_names))
        for n in range(labels.num_points):
            votes = [
                sum(
                    float(labels.scores[d])
                    for d in range(labels.num_boxes)
                    if labels.masks[d, n] and labels.part_index[d] == r
                )
                for r in range(len(entry.part_names))
            ]
            for r, vote in enumerate(votes):
                if vote == max(votes):
                    ratio[r] += vote
        if ratio.sum() > 0:
            ratio /= ratio.sum()
        np.testing.assert_allclose(entry.part_ratio, ratio, atol=1e-5)
        assert entry.surviving_parts == int((ratio >= 0.01).sum())
        assert entry.surviving_part_names == [
            n for n, r in zip(entry.part_names, ratio, strict=True) if r >= 0.01
        ]


def test_shape_without_boxes_round_trips(tmp_path):
    record = synthetic_record(0)
    record.pseudo_labels = PseudoLabels(
        masks=np.zeros((0, N_POINTS), bool),
        part_index=np.zeros(0, np.int64),
        scores=np.zeros(0, np.float32),
        part_names=record.part_names,
    )
    write_index(tmp_path / "idx", [record])
    index = ShapeIndex.open(tmp_path / "idx")
    assert index.entries[0].num_boxes == 0 and index.entries[0].surviving_parts == 0
    assert_same_record(index.record(0), record)


def test_summaries_filters_and_bps(tmp_path, records):
    write_index(tmp_path / "idx", records)
    index = ShapeIndex.open(tmp_path / "idx")
    assert index.categories() == sorted(CATEGORIES)
    chairs = index.select(category="CHAIR")
    assert [index.entries[i].category for i in chairs] == ["chair"] * len(chairs)
    assert len(chairs) == sum(r.category == "chair" for r in records)
    same = index.select(part_names=["seat", "BACK"])
    assert {index.entries[i].id for i in same} == {
        r.id for r in records if sorted(r.part_names) == ["back", "seat"]
    }
    with_arm = index.select(has_parts=["arm"], ground_truth=True)
    assert {index.entries[i].id for i in with_arm} == {
        r.id for r in records if "arm" in r.part_names and r.gt_labels is not None
    }
    by_id = {r.id: r for r in records}
    expected = np.stack([by_id[i].bps for i in index.ids])
    np.testing.assert_array_equal(index.bps_matrix(), expected)
    np.testing.assert_array_equal(index.bps_matrix([2, 0]), expected[[2, 0]])
    np.testing.assert_allclose(index.bps_mean(), expected.mean(0), rtol=1e-6)
    np.testing.assert_array_equal(index.basis.points, synthetic_basis().points)
    assert index.source_path(0) == Path("/data/shapes") / index.entries[0].source


def test_encoder_features_are_cached_and_detected_stale(tmp_path):
    records = [synthetic_record(i, with_features=True) for i in range(4)]
    write_index(tmp_path / "idx", records, encoder=ENCODER)
    index = ShapeIndex.open(tmp_path / "idx")
    by_id = {r.id: r for r in records}
    for i, shape_id in enumerate(index.ids):
        cached = index.encoder_features(i)
        assert cached.dtype == np.float16 and cached.shape == (N_POINTS, 681)
        np.testing.assert_array_equal(cached, by_id[shape_id].features)
        np.testing.assert_array_equal(index.record(i).features, by_id[shape_id].features)
        assert index.encoder_features(i, expected=ENCODER) is not None
        assert index.encoder_features(i, expected={**ENCODER, "weights_sha256": "0"}) is None


def test_one_record_s_features_are_read_and_checked_alone(tmp_path):
    records = [synthetic_record(i, with_features=True) for i in range(4)]
    write_index(tmp_path / "idx", records, encoder=ENCODER)
    index = ShapeIndex.open(tmp_path / "idx")
    item = index.manifest["shards"][index.entries[1].shard]["features"]
    path = tmp_path / "idx" / item["name"]
    start, end = _array_span(path, f"{index.entries[1].slot:05d}.features")
    _flip_byte(path, (start + end) // 2)
    index = ShapeIndex.open(tmp_path / "idx")
    with pytest.raises(IndexCorruptError, match=item["name"].replace(".", r"\.")):
        index.encoder_features(1)
    by_id = {r.id: r for r in records}
    for i in (0, 2, 3):  # its shard-mates' features still read, and equal what was written
        np.testing.assert_array_equal(index.encoder_features(i), by_id[index.ids[i]].features)


def test_the_bps_matrix_is_kept_between_processes(tmp_path, records, monkeypatch):
    out, cache = tmp_path / "idx", tmp_path / "bps"
    write_index(out, records)
    fresh = ShapeIndex.open(out).bps_matrix()
    ShapeIndex.open(out, verify=False, bps_cache=cache).bps_matrix()
    assert not list(cache.glob("*.safetensors"))  # unchecked reads are never kept
    np.testing.assert_array_equal(ShapeIndex.open(out, bps_cache=cache).bps_matrix(), fresh)
    (kept,) = cache.glob("*.safetensors")

    def no_shard_read(self, number):
        raise AssertionError("a shard was read")

    with monkeypatch.context() as patched:
        patched.setattr(ShapeIndex, "_shard_bps", no_shard_read)
        np.testing.assert_array_equal(ShapeIndex.open(out, bps_cache=cache).bps_matrix(), fresh)

    _flip_byte(kept, kept.stat().st_size - 3)  # damaged: read from the shards and kept again
    np.testing.assert_array_equal(ShapeIndex.open(out, bps_cache=cache).bps_matrix(), fresh)
    with monkeypatch.context() as patched:
        patched.setattr(ShapeIndex, "_shard_bps", no_shard_read)
        np.testing.assert_array_equal(ShapeIndex.open(out, bps_cache=cache).bps_matrix(), fresh)

    write_index(out, records[:5])  # other contents, another manifest: its own matrix
    assert ShapeIndex.open(out, bps_cache=cache).bps_matrix().shape[0] == 5
    assert len(list(cache.glob("*.safetensors"))) == 2


def test_a_manifest_is_validated_once_per_content(tmp_path, records, monkeypatch):
    """With a cache folder, a manifest that passed validation is not walked again while its
    bytes stay the same; changed bytes (a hostile entry) are validated, and rejected."""
    import json

    from bipart_cli.errors import IndexCorruptError
    from bipart_cli.index import manifest as manifest_module

    out, cache = tmp_path / "idx", tmp_path / "bps"
    write_index(out, records)
    ShapeIndex.open(out, bps_cache=cache)
    calls = []
    original = manifest_module.validate_manifest
    monkeypatch.setattr(
        manifest_module, "validate_manifest", lambda *a: calls.append(1) or original(*a)
    )
    assert len(ShapeIndex.open(out, bps_cache=cache)) == len(records)
    assert calls == []
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["entries"][1]["slot"] = 99
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match=r"entries\[1\]\.slot"):
        ShapeIndex.open(out, bps_cache=cache)
    assert calls == [1]


def test_a_bank_keeps_its_centred_bps_rows_not_the_matrix(tmp_path, records, monkeypatch):
    """``SupportBank.from_index`` with a cache keeps the centred, normalised BPS rows it
    ranks by (equal to those of an open without a cache), not the BPS matrix itself: a
    second open reads no shard; a damaged entry is computed again."""
    from bipart_cli.support import SupportBank

    out, cache = tmp_path / "idx", tmp_path / "bps"
    write_index(out, records)
    fresh = SupportBank.from_index(str(out))
    first = SupportBank.from_index(str(out), bps_cache=cache)
    np.testing.assert_array_equal(first.unit_bps, fresh.unit_bps)
    np.testing.assert_array_equal(first.bps_mean, fresh.bps_mean)
    assert not list(cache.glob("*.safetensors"))  # the matrix itself is not kept
    (kept,) = (cache / "centred").glob("*.safetensors")

    def no_shard_read(self, number):
        raise AssertionError("a shard was read")

    with monkeypatch.context() as patched:
        patched.setattr(ShapeIndex, "_shard_bps", no_shard_read)
        again = SupportBank.from_index(str(out), bps_cache=cache)
    np.testing.assert_array_equal(again.unit_bps, fresh.unit_bps)
    np.testing.assert_array_equal(again.bps_mean, fresh.bps_mean)
    _flip_byte(kept, kept.stat().st_size - 3)
    np.testing.assert_array_equal(
        SupportBank.from_index(str(out), bps_cache=cache).unit_bps, fresh.unit_bps
    )


def test_manifest_entries_are_made_as_read_and_equal_the_manifest_s(tmp_path, records):
    from bipart_cli.index.format import IndexEntry

    write_index(tmp_path / "idx", records)
    index = ShapeIndex.open(tmp_path / "idx")
    expected = [IndexEntry.from_json(entry) for entry in index.manifest["entries"]]
    assert index.entries[-1] == expected[-1] and index.entries[2:5] == expected[2:5]
    assert list(index.entries) == expected and len(index.entries) == len(records)
    assert index.entries[3] is index.entries[3]  # made once
    with pytest.raises(IndexError):
        index.entries[len(records)]


def test_a_bank_keeps_its_row_lookups_and_rebuilds_ones_that_do_not_fit(tmp_path, monkeypatch):
    """The bank's lookups (rows per category, part name, surviving part name, sha256) read
    back from the cache equal freshly built ones and choose the same candidates; lookups
    naming rows past the index's are built again."""
    from bipart_cli.store import ArrayStore
    from bipart_cli.support import SupportBank
    from bipart_cli.support.lookup import STORE_KIND, RowLookups

    records = [synthetic_record(i) for i in range(8)]
    records[5].sha256 = records[1].sha256  # two entries from one file
    out, cache = tmp_path / "idx", tmp_path / "bps"
    write_index(out, records)
    fresh = SupportBank.from_index(str(out))
    SupportBank.from_index(str(out), bps_cache=cache)

    def built(*args):
        raise AssertionError("built again")

    with monkeypatch.context() as patched:
        patched.setattr(RowLookups, "of_entries", built)
        kept = SupportBank.from_index(str(out), bps_cache=cache)

    def same_choices(bank) -> None:
        for category in ("chair", "TABLE", "absent", None):
            for names in (["back"], ["SEAT", "arm"], ["nothing"]):
                for excluded in (None, records[1].sha256, "f" * 64):
                    expected = fresh.candidates(names, category, exclude_sha256=excluded)
                    assert bank.candidates(names, category, excluded) == expected
                    assert bank.part_counts(expected, names).tolist() == (
                        fresh.part_counts(expected, names).tolist()
                    )

    same_choices(kept)
    assert fresh.candidates([], "chair", records[1].sha256) == [
        i for i in fresh.candidates([], "chair") if fresh.entries[i].sha256 != records[1].sha256
    ]
    store, key = ArrayStore(cache), kept.index.manifest_sha256
    arrays = store.read(STORE_KIND, key)
    store.write(STORE_KIND, key, {**arrays, "part.rows": arrays["part.rows"] + len(records)})
    same_choices(SupportBank.from_index(str(out), bps_cache=cache))
    assert RowLookups.from_arrays(store.read(STORE_KIND, key), len(records)) is not None


def test_writer_refuses_out_of_order_or_featureless_records(tmp_path):
    writer = IndexWriter(tmp_path / "a", settings=SETTINGS, basis=synthetic_basis(), encoder=None)
    writer.add(synthetic_record(1))
    with pytest.raises(ValueError, match="increasing id order"):
        writer.add(synthetic_record(3))  # "chair/shape_003.glb" < "table/shape_001.glb"
    writer = IndexWriter(
        tmp_path / "b", settings=SETTINGS, basis=synthetic_basis(), encoder=ENCODER
    )
    with pytest.raises(ValueError, match="encoder features"):
        writer.add(synthetic_record(0))


def test_same_records_give_identical_files(tmp_path, records):
    write_index(tmp_path / "a", records)
    write_index(tmp_path / "b", list(reversed(records)))
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*"))
    assert files_a == files_b
    for rel in files_a:
        if (tmp_path / "a" / rel).is_file():
            assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def _shard_of(index: ShapeIndex, row: int) -> str:
    return index.manifest["shards"][index.entries[row].shard]["name"]


def _array_span(path: Path, name: str) -> tuple[int, int]:
    """Where the array ``name`` lies in the safetensors file ``path`` (start, end bytes)."""
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    start, end = json.loads(data[8 : 8 + size])[name]["data_offsets"]
    return 8 + size + start, 8 + size + end


def _flip_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_shard_is_reported_by_name(tmp_path, records):
    write_index(tmp_path / "idx", records)
    index = ShapeIndex.open(tmp_path / "idx")
    bad = _shard_of(index, 3)
    path = tmp_path / "idx" / bad
    start, end = _array_span(path, f"{index.entries[3].slot:05d}.points")
    _flip_byte(path, (start + end) // 2)  # inside record 3's points

    index = ShapeIndex.open(tmp_path / "idx")
    with pytest.raises(IndexCorruptError, match=bad.replace(".", r"\.") + ".*points"):
        index.record(3)
    for i in range(len(index)):  # every other record still loads, its shard-mates included
        if i != 3:
            index.record(i)
    with pytest.raises(IndexCorruptError, match="sha256 mismatch"):
        index.verify()


def test_a_damaged_shard_header_fails_every_record_of_its_shard(tmp_path, records):
    write_index(tmp_path / "idx", records)
    index = ShapeIndex.open(tmp_path / "idx")
    bad = _shard_of(index, 3)
    _flip_byte(tmp_path / "idx" / bad, 20)  # inside the header's JSON
    index = ShapeIndex.open(tmp_path / "idx")
    for i, entry in enumerate(index.entries):
        if entry.shard == index.entries[3].shard:
            with pytest.raises(IndexCorruptError, match="header"):
                index.record(i)
        else:
            index.record(i)


def test_an_index_without_header_checksums_is_read_and_checked_whole(tmp_path, records):
    """Indexes written before per-array checksums still read; each file is checked whole,
    and an unchanged rebuild rewrites the manifest so records can be read alone."""
    out = tmp_path / "idx"
    write_index(out, records)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for shard in manifest["shards"]:
        del shard["header_sha256"]
    manifest_path.write_text(json.dumps(manifest))
    index = ShapeIndex.open(out)
    by_id = {r.id: r for r in records}
    for i in range(len(index)):
        assert_same_record(index.record(i), by_id[index.entries[i].id])
    bad = _shard_of(index, 3)
    mate = next(
        i for i, e in enumerate(index.entries) if e.shard == index.entries[3].shard and i != 3
    )
    start, end = _array_span(out / bad, f"{index.entries[3].slot:05d}.points")
    _flip_byte(out / bad, (start + end) // 2)
    with pytest.raises(IndexCorruptError, match="sha256 mismatch"):
        ShapeIndex.open(out).record(mate)  # the whole file is checked

    _flip_byte(out / bad, (start + end) // 2)  # repaired
    writer = index_writer(out)
    ids = [r.id for r in records]
    assert writer.would_rewrite(manifest, ids)  # an unchanged rebuild upgrades it
    assert not writer.would_rewrite(write_index(out, records), ids)


def test_truncated_shard_without_checksum_check_is_still_reported(tmp_path, records):
    write_index(tmp_path / "idx", records)
    index = ShapeIndex.open(tmp_path / "idx")
    bad = _shard_of(index, 0)
    (tmp_path / "idx" / bad).write_bytes((tmp_path / "idx" / bad).read_bytes()[:100])
    index = ShapeIndex.open(tmp_path / "idx", verify=False)
    with pytest.raises(IndexCorruptError, match=bad.replace(".", r"\.")):
        index.record(0)


def test_missing_shard_is_reported_at_open(tmp_path, records):
    write_index(tmp_path / "idx", records)
    name = json.loads((tmp_path / "idx" / "manifest.json").read_text())["shards"][1]["name"]
    (tmp_path / "idx" / name).unlink()
    with pytest.raises(IndexCorruptError, match=f"{name}.*missing"):
        ShapeIndex.open(tmp_path / "idx")


def test_not_an_index(tmp_path):
    with pytest.raises(InvalidInputError, match="manifest.json missing"):
        ShapeIndex.open(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "something-else"}')
    with pytest.raises(IndexCorruptError, match="not a bipart-shape-index"):
        ShapeIndex.open(tmp_path)


def test_rewrite_keeps_the_old_index_valid_until_commit(tmp_path, records):
    out = tmp_path / "idx"
    write_index(out, records[:5])
    old_manifest = (out / "manifest.json").read_text()
    writer = IndexWriter(
        out, settings=SETTINGS, basis=synthetic_basis(), encoder=None, records_per_shard=2
    )
    for record in sorted(records, key=lambda r: r.id)[:4]:
        writer.add(record)  # two shards flushed, then the "crash": no commit
    assert (out / "manifest.json").read_text() == old_manifest
    old = ShapeIndex.open(out)
    old.verify()
    assert len(old) == 5

    write_index(out, records)  # a completed rewrite removes the files it no longer names
    manifest = json.loads((out / "manifest.json").read_text())
    named = {s["name"] for s in manifest["shards"]}
    on_disk = {p.relative_to(out).as_posix() for p in (out / "shards").iterdir()}
    assert on_disk == named
    assert len(ShapeIndex.open(out)) == len(records)


def test_shard_spec_parsing_and_partition():
    assert parse_shard_spec("1/4") == (1, 4)
    assert parse_shard_spec(None) is None
    for bad in ("4/4", "1", "a/2", "-1/2", "1/0"):
        with pytest.raises(UsageError):
            parse_shard_spec(bad)
    ids = [f"cat/{k}.glb" for k in range(50)]
    owners = [[i for i in range(3) if in_shard(x, (i, 3))] for x in ids]
    assert all(len(o) == 1 for o in owners)  # every file in exactly one shard
    assert len({o[0] for o in owners}) == 3  # and no shard is left empty here


def _fake_hub_cache(home: Path, index_dir: Path, commit: str, refs: dict[str, str]) -> None:
    """The Hugging Face cache layout of dataset owner/name with one snapshot."""
    repo = home / "hub" / "datasets--owner--name"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for path in index_dir.rglob("*"):
        if path.is_file():
            target = snapshot / path.relative_to(index_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    (repo / "refs").mkdir()
    for ref, sha in refs.items():
        (repo / "refs" / ref).write_text(sha)


def _open_offline(home: Path, uri: str) -> subprocess.CompletedProcess:
    code = (
        "import json, sys\n"
        "from bipart_cli.index import ShapeIndex\n"
        "from bipart_cli.errors import BipartError\n"
        "try:\n"
        f"    index = ShapeIndex.open({uri!r})\n"
        "    index.verify()\n"
        "    print(json.dumps({'path': str(index.path), 'ids': index.ids}))\n"
        "except BipartError as exc:\n"
        "    print('ERROR', exc); sys.exit(exc.exit_code)\n"
    )
    env = {
        **os.environ,
        "HF_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    env.pop("HF_HUB_CACHE", None)
    env.pop("HUGGINGFACE_HUB_CACHE", None)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_hf_uri_resolves_from_the_offline_cache(tmp_path, records):
    write_index(tmp_path / "idx", records)
    commit = "1234567890abcdef1234567890abcdef12345678"
    home = tmp_path / "hf"
    _fake_hub_cache(home, tmp_path / "idx", commit, {"main": commit, "v1": commit})
    snapshot = home / "hub" / "datasets--owner--name" / "snapshots" / commit
    for uri in (
        "hf://datasets/owner/name",
        "hf://datasets/owner/name@v1",
        f"hf://datasets/owner/name@{commit}",
    ):
        result = _open_offline(home, uri)
        assert result.returncode == 0, result.stdout + result.stderr
        opened = json.loads(result.stdout.strip().splitlines()[-1])
        assert Path(opened["path"]) == snapshot
        assert opened["ids"] == sorted(r.id for r in records)

    missing = _open_offline(home, "hf://datasets/owner/other")
    assert missing.returncode == 1
    assert "not in the Hub cache" in missing.stdout


def test_hf_uri_must_name_a_dataset():
    with pytest.raises(InvalidInputError):
        resolve_index_path("hf://owner/name")
    assert resolve_index_path("some/folder") == Path("some/folder")


def test_an_index_of_an_older_format_says_how_to_rebuild(tmp_path, records):
    write_index(tmp_path / "idx", records)
    manifest_path = tmp_path / "idx" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["version"] = 1  # before descriptors were cached
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="rebuild it with 'bipart index'"):
        ShapeIndex.open(tmp_path / "idx")


def test_built_index_caches_the_descriptors_of_its_points(tmp_path, chair_glb):
    from bipart_cli.descriptors import DESCRIPTOR_SET, point_descriptors

    folder = tmp_path / "assets" / "chair"
    folder.mkdir(parents=True)
    (folder / "chair.glb").write_bytes(chair_glb.read_bytes())
    build_index(
        tmp_path / "assets",
        tmp_path / "idx",
        labeler="given",
        no_cache_features=True,
        n_dense=3000,
        progress=False,
        names_as_parts=True,
    )
    index = ShapeIndex.open(tmp_path / "idx")
    assert index.manifest["descriptors"] == DESCRIPTOR_SET
    record = index.record(0)
    fresh = point_descriptors(record.points).astype(np.float16)
    np.testing.assert_array_equal(record.descriptors, fresh)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda m: m.pop("entries"), "'entries' is missing"),
        (lambda m: m["entries"][0].update(shard=7), r"entries\[0\].shard is 7"),
        (lambda m: m["entries"][1].update(slot=99), r"entries\[1\].slot is 99"),
        (lambda m: m["entries"][0].update(slot="0"), r"entries\[0\].slot must be an integer"),
        (lambda m: m["entries"][2].pop("category"), r"entries\[2\].category is missing"),
        (lambda m: m["shards"][0].update(count=None), r"shards\[0\].count must be an integer"),
        (lambda m: m["bps_basis"].pop("file"), "bps_basis.file must be a string"),
        (lambda m: m.update(version="1"), "has format version '1', this bipart reads version 2"),
        # issue 31's fuzz: a TypeError in source_path, and errors of two lines
        (lambda m: m.update(source_root=5), "'source_root' must be a string or null"),
        (lambda m: m["shards"][0].update(name="a\nb"), r"invalid file 'a\\nb'"),
        (lambda m: m["shards"][0].update(sha256="a\nb"), r"shards\[0\].sha256 must be a sha256"),
        (
            lambda m: m["bps_basis"].update(sha256="AB" * 32),
            r"bps_basis.sha256 must be a sha256",
        ),
        # the files a shape's load read, which a rebuild checks instead of loading it
        (lambda m: m["entries"][1].update(reads={"files": [3]}), r"entries\[1\].reads must be"),
    ],
    ids=[
        "no-entries",
        "shard",
        "slot",
        "slot-type",
        "category",
        "count",
        "basis",
        "version",
        "source-root",
        "name-line-break",
        "sha256-line-break",
        "sha256-upper-case",
        "reads",
    ],
)
def test_bad_manifests_are_one_typed_error_naming_the_field(tmp_path, records, edit, field):
    """Issue 15 items 13 and 16: a missing ``entries`` was a KeyError, an out-of-range
    shard or slot crashed ``train``; the version "1" read "version 1, ... reads version 1"."""
    write_index(tmp_path / "idx", records)
    path = tmp_path / "idx" / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match=field) as caught:
        ShapeIndex.open(tmp_path / "idx")
    assert "\n" not in str(caught.value)


def test_records_are_decoded_one_slot_at_a_time(tmp_path, records):
    """A shard's records decode when read: a record missing an array fails alone (naming
    the shard), its neighbours in the shard still read, and the BPS matrix reads only BPS."""
    from safetensors import deserialize
    from safetensors.numpy import save

    from bipart_cli.index.arrays import _DTYPES

    write_index(tmp_path / "idx", records)
    index = ShapeIndex.open(tmp_path / "idx")
    bad_row = 4
    entry = index.entries[bad_row]
    mates = [i for i, e in enumerate(index.entries) if e.shard == entry.shard and i != bad_row]
    assert mates  # the shard holds other records
    name = _shard_of(index, bad_row)
    path = tmp_path / "idx" / name
    data = path.read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    tensors = {
        key: np.frombuffer(t["data"], dtype=_DTYPES[t["dtype"]]).reshape(t["shape"])
        for key, t in deserialize(data)
        if key != f"{entry.slot:05d}.points"
    }
    path.write_bytes(save(tensors, metadata=header["__metadata__"]))
    manifest_path = tmp_path / "idx" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["shards"][entry.shard]["bytes"] = path.stat().st_size  # the sha256 is not checked
    manifest_path.write_text(json.dumps(manifest))

    index = ShapeIndex.open(tmp_path / "idx", verify=False)
    by_id = {r.id: r for r in records}
    with pytest.raises(IndexCorruptError, match=name.replace(".", r"\.")):
        index.record(bad_row)
    for row in mates:
        np.testing.assert_array_equal(index.record(row).points, by_id[index.ids[row]].points)
    expected = np.stack([by_id[shape_id].bps for shape_id in index.ids])
    np.testing.assert_array_equal(index.bps_matrix(), expected)


def test_an_array_s_offsets_past_the_end_of_its_file_are_refused_before_reading(tmp_path):
    """A stranger's index cannot make a record read allocate more than its file holds."""
    from bipart_cli.index.arrays import FileArrays, ShardDecodeError

    header = {
        "huge": {"dtype": "F32", "shape": [10**12], "data_offsets": [0, 4 * 10**12]},
        "__metadata__": {"records": json.dumps({"sha256": {}})},
    }
    body = json.dumps(header).encode()
    path = tmp_path / "shard.safetensors"
    path.write_bytes(len(body).to_bytes(8, "little") + body + bytes(16))
    arrays = FileArrays(path, "", "records", checked=False)
    with pytest.raises(ShardDecodeError, match="outside the file"):
        arrays["huge"]
    path.write_bytes((10**9).to_bytes(8, "little") + body)  # a header longer than the file
    with pytest.raises(ShardDecodeError, match="header"):
        FileArrays(path, "", "records", checked=False)


@pytest.mark.parametrize("metadata", ["1.5", "[]", '{"sha256": []}', '{"sha256": "x"}'])
def test_array_metadata_that_is_not_an_object_is_a_decode_error(tmp_path, metadata):
    """Issue 31's fuzz: metadata JSON of another type was an AttributeError, not corruption."""
    from bipart_cli.index.arrays import FileArrays, ShardDecodeError, arrays_from_bytes

    body = json.dumps({"__metadata__": {"records": metadata}}).encode()
    data = len(body).to_bytes(8, "little") + body
    (tmp_path / "shard.safetensors").write_bytes(data)
    with pytest.raises(ShardDecodeError, match="metadata is not a JSON object"):
        FileArrays(tmp_path / "shard.safetensors", "", "records", checked=False)
    with pytest.raises(ShardDecodeError, match="metadata is not a JSON object"):
        arrays_from_bytes(data, "records")


@pytest.mark.parametrize(
    "entry",
    [
        {"dtype": "F32", "shape": [1], "data_offsets": ["a", "b"]},
        {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]},
        {"dtype": "X99", "shape": [1], "data_offsets": [0, 4]},
        "not an object",
    ],
)
def test_a_malformed_array_entry_is_a_decode_error(tmp_path, entry):
    from bipart_cli.index.arrays import FileArrays, ShardDecodeError

    header = {"a": entry, "__metadata__": {"records": json.dumps({"sha256": {}})}}
    body = json.dumps(header).encode()
    path = tmp_path / "shard.safetensors"
    path.write_bytes(len(body).to_bytes(8, "little") + body + bytes(16))
    with pytest.raises(ShardDecodeError):
        FileArrays(path, "", "records", checked=False)["a"]


def test_a_folder_walk_skips_the_outputs_of_a_file_beside_them(tmp_path):
    """Issue 31 item 4: ``chair.parts.glb`` beside ``chair.glb`` is never a shape of the walk;
    outputs gathered on their own (``out/``) still are."""
    from bipart_cli.index import find_assets

    for name in ("chair.glb", "chair.parts.glb", "chair.parts.ply", "out/lamp.parts.glb"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [shape_id for shape_id, _ in find_assets(tmp_path)] == [
        "chair.glb",
        "out/lamp.parts.glb",
    ]


def test_a_folder_walk_takes_a_txt_only_when_it_is_a_point_table(tmp_path):
    """An asset pack's ``LICENSE.txt`` or ``README.txt`` is no shape (it was indexed and
    counted as failed); an x y z table in a ``.txt`` still is, comments and header aside."""
    from bipart_cli.index import find_assets

    (tmp_path / "LICENSE.txt").write_text("CC0 1.0 Universal\n\n1 2 3 are not coordinates.\n")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "scan.txt").write_text("# exported\n//X Y Z R G B\n0.1 0.2 0.3 10 20 30\n")
    (tmp_path / "table.txt").write_text("x,y,z\n1.5,-2,3e-2\n")
    (tmp_path / "cloud.xyz").write_text("anything: the extension names a cloud\n")
    assert [shape_id for shape_id, _ in find_assets(tmp_path)] == [
        "cloud.xyz",
        "scan.txt",
        "table.txt",
    ]


@pytest.mark.parametrize("how", ["copy", "same-id", "same-slot"])
def test_a_manifest_naming_a_record_twice_is_corrupt(tmp_path, records, how):
    """Issue 31 item 5: a repeated entry made ``segment`` and ``eval`` fail with an
    IndexError and ``train`` use one shape twice; now every reader refuses it at open."""
    out = tmp_path / "idx"
    write_index(out, records)
    path = out / "manifest.json"
    manifest = json.loads(path.read_text())
    entries = manifest["entries"]
    if how == "copy":
        entries.append(dict(entries[2]))
    elif how == "same-id":
        entries[4]["id"] = entries[1]["id"]
    else:
        entries[4]["shard"], entries[4]["slot"] = entries[1]["shard"], entries[1]["slot"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match=r"entries\[\d\].*(repeats|again)"):
        ShapeIndex.open(out)


@pytest.mark.slow
def test_every_command_refuses_a_repeated_entry_in_one_line(tmp_path, records):
    write_index(tmp_path / "idx", records)
    path = tmp_path / "idx" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["entries"].append(manifest["entries"][0])
    path.write_text(json.dumps(manifest))
    (tmp_path / "chair.xyz").write_text("0 0 0\n1 0 0\n0 1 0\n0 0 1\n")
    common = ["--index", "idx", "--device", "cpu", "-q"]
    random = ["--weights", "random"]
    for argv in (
        ["segment", "chair.xyz", "--parts", "back,seat", "--labeler", "none", "--points", "64"]
        + random,
        ["eval", "--labeler", "none", *random],
        ["train", "--out", "run", "--epochs", "1", "--max-steps", "1"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "bipart_cli", *argv, *common],
            capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        assert done.returncode == 1, (argv[0], done.stderr)
        (line,) = done.stderr.strip().splitlines()
        assert "].id 'chair/shape_000.glb' repeats entries[0]" in line, (argv[0], line)
