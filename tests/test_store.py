"""bipart's store of per-shape arrays: keyed files, checked on read, trimmed by last use."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bipart_cli.store import ArrayStore, array_key, trim_store


def test_arrays_are_kept_per_key_and_recomputed_when_damaged_or_invalid(tmp_path):
    store = ArrayStore(tmp_path)
    points = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    key = array_key(points, "64 0")
    calls = []

    def compute():
        calls.append(1)
        return {"indices": np.arange(64, dtype=np.int64)}

    def valid(arrays):
        return arrays["indices"].shape == (64,)

    first = store.fetch("fps", key, compute, valid)["indices"]
    again = ArrayStore(tmp_path).fetch("fps", key, compute, valid)["indices"]
    assert len(calls) == 1  # a second store on the folder (a later process) reads it back
    np.testing.assert_array_equal(again, first)
    assert again.dtype == np.int64

    other = array_key(points, "64 1")  # another seed: another entry
    assert other != key
    ArrayStore(tmp_path).fetch("fps", other, compute, valid)
    assert len(calls) == 2

    path = store.path("fps", key)
    path.write_bytes(b"damaged")
    np.testing.assert_array_equal(store.fetch("fps", key, compute, valid)["indices"], first)
    store.write("fps", key, {"indices": np.arange(3, dtype=np.int64)})  # invalid content
    np.testing.assert_array_equal(store.fetch("fps", key, compute, valid)["indices"], first)
    assert len(calls) == 4
    assert store.read("fps", key)["indices"].shape == (64,)  # replaced, not left damaged


def test_a_changed_byte_or_a_file_of_another_key_is_not_read(tmp_path):
    """Each file records its key and the sha256 of its arrays: a flipped bit in the data,
    or a valid file of another key put in its place, reads as absent."""
    store = ArrayStore(tmp_path)
    key, other = "a" * 64, "b" * 64
    store.write("kind", key, {"x": np.arange(100, dtype=np.float32)})
    assert store.read("kind", key) is not None
    path = store.path("kind", key)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # inside the array's bytes: safetensors itself cannot tell
    path.write_bytes(bytes(data))
    assert store.read("kind", key) is None

    store.write("kind", other, {"x": np.zeros(100, dtype=np.float32)})
    path.write_bytes(store.path("kind", other).read_bytes())
    assert store.read("kind", key) is None
    assert store.read("kind", other) is not None


def test_keys_name_every_input():
    points = np.zeros((4, 3), np.float32)
    moved = points.copy()
    moved[0, 0] = 1e-6
    assert array_key(points) != array_key(moved)
    assert array_key(points, np.ones(2, np.float16)) != array_key(points, np.zeros(2, np.float16))
    assert array_key(points.astype(np.float64)) == array_key(points)  # points hash as float32


def test_an_unwritable_store_costs_only_speed(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = ArrayStore(blocker / "store")
    arrays = store.fetch("fps", "0" * 64, lambda: {"a": np.ones(3)})
    np.testing.assert_array_equal(arrays["a"], np.ones(3))
    assert store.read("fps", "0" * 64) is None


def test_the_store_drops_the_least_recently_used_files(tmp_path):
    for i in range(8):
        path = tmp_path / "key" / f"{i}.safetensors"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(bytes(100))
        os.utime(path, ns=(i * 10**9, i * 10**9))  # 0 is the least recently used
    os.utime(tmp_path / "key" / "0.safetensors")  # ... until it is read again now
    trim_store(tmp_path, max_bytes=800)
    assert len(list(tmp_path.rglob("*.safetensors"))) == 8  # they fit: nothing goes
    trim_store(tmp_path, max_bytes=500)  # down to 3/4 of it: 375 bytes, three files
    left = sorted(p.name for p in tmp_path.rglob("*.safetensors"))
    assert left == ["0.safetensors", "6.safetensors", "7.safetensors"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "-5", "abc"])
def test_a_bad_feature_cache_limit_is_one_clear_line(tmp_path, value):
    """Issue 31 item 4: ``nan``, ``inf`` and ``1e400`` were internal errors (int() of them);
    a word silently kept the default."""
    import os
    import subprocess
    import sys

    from bipart_cli.procedural import write_examples

    write_examples(tmp_path, categories=(), n_chairs=2)
    result = subprocess.run(
        [sys.executable, "-m", "bipart_cli", "segment", "chairs/chair_0.glb",
         "--parts", "back,seat", "--support", "chairs", "--labeler", "none", "-q"],
        capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "BIPART_FEATURE_CACHE_MB": value},
    )  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: BIPART_FEATURE_CACHE_MB must be a number of megabytes")
    assert repr(value) in lines[0]


def test_the_feature_cache_limit_is_read_in_megabytes(monkeypatch):
    from bipart_cli.store import feature_cache_bytes

    monkeypatch.setenv("BIPART_FEATURE_CACHE_MB", "1.5")
    assert feature_cache_bytes() == 3 * 2**19
    monkeypatch.delenv("BIPART_FEATURE_CACHE_MB")
    assert feature_cache_bytes() == 2048 * 2**20
