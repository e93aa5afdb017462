"""A cache that cannot be written (issue 31 items 1 and 2): read-only, or a full disk.

The README promises that this only costs speed: a support index that is complete is
used as it is, what cannot be stored is computed again, and one warning says so.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from _chairs import PARTS, write_chair

from bipart_cli.procedural import write_examples

ARGS = ["--parts", ",".join(PARTS), "--labeler", "none", "--weights", "random"]
ARGS += ["--points", "2048", "--device", "cpu", "-q"]


def _segment(root: Path, cache: Path, target: str, support: str, *, read_only: bool):
    """``bipart segment`` in a subprocess, its temporary files in ``root/tmp``. ``read_only``:
    as a user who may not write the chmod-ed cache; root passes any mode bits, so root runs
    it without the capabilities that let it (``setpriv``), which makes the mode bits bind
    it too."""
    command = [sys.executable, "-m", "bipart_cli", "segment", target, "--support", support]
    command += [*ARGS, "-o", "out"]
    if read_only and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: mode bits cannot make a folder read-only")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", *command]
    (root / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "NO_COLOR": "1", "BIPART_CACHE": str(cache), "TMPDIR": str(root / "tmp")}
    return subprocess.run(command, capture_output=True, text=True, cwd=root, env=env)


def _set_writable(folder: Path, writable: bool) -> None:
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~bits)


@pytest.fixture
def chairs(tmp_path):
    write_examples(tmp_path, categories=(), n_chairs=3)
    write_chair(tmp_path / "target.glb", 11)
    write_chair(tmp_path / "other.glb", 12)
    return tmp_path


@pytest.mark.slow
def test_a_read_only_cache_costs_only_speed(chairs):
    """Issue 31 item 1: the support index's lock could not be created: internal error. A
    complete index is used as it is; a folder never indexed is indexed in a temporary
    folder, removed at the end (it ended in 'cannot write the index in ...')."""
    cache = chairs / "cache"
    first = _segment(chairs, cache, "target.glb", "chairs", read_only=False)
    assert first.returncode == 0, first.stderr
    _set_writable(cache, False)
    try:
        again = _segment(chairs, cache, "other.glb", "chairs", read_only=True)
        (chairs / "more").mkdir()
        write_chair(chairs / "more" / "chair.glb", 3)
        shutil.rmtree(chairs / "out")
        cold = _segment(chairs, cache, "other.glb", "more", read_only=True)
    finally:
        _set_writable(cache, True)
    assert again.returncode == 0, again.stderr
    (warning,) = again.stderr.strip().splitlines()
    assert warning.startswith("warning: cannot write bipart's cache (")
    assert "only costs speed" in warning
    assert cold.returncode == 0, cold.stderr
    assert (chairs / "out" / "other.parts.glb").is_file()
    # once (one support chair may also be warned as a poor fit)
    lines = cold.stderr.strip().splitlines()
    assert all(line.startswith("warning: ") for line in lines), lines
    (warning,) = [line for line in lines if "cannot write" in line]
    assert warning.startswith("warning: cannot write bipart's cache (")
    assert warning.endswith("Permission denied): going on without storing, which only costs speed")
    assert not list((chairs / "tmp").iterdir())  # the temporary index is gone


@pytest.mark.slow
def test_a_full_cache_disk_costs_only_speed(chairs, monkeypatch, capsys):
    """Issue 31 item 2: the disk under the cache is full for every write there: the store's
    (safetensors wraps ENOSPC in a SafetensorError, which the store let through: it caught
    OSError only) and the support index's (a folder never indexed ended in 'cannot write the
    index in ...'). The support is indexed in a temporary folder, removed at the end."""
    import tempfile

    import safetensors.numpy
    from safetensors import SafetensorError

    from bipart_cli import segment
    from bipart_cli.runtime import setup_logging

    cache = chairs / "cache"

    def full_store(*args, **kwargs):
        message = os.strerror(errno.ENOSPC)
        raise SafetensorError(f"Error while serializing: I/O error: {message} (os error 28)")

    write_bytes = Path.write_bytes

    def full_disk(path: Path, data) -> int:
        if path.resolve().is_relative_to(cache.resolve()):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return write_bytes(path, data)

    monkeypatch.setenv("BIPART_CACHE", str(cache))
    monkeypatch.setattr(safetensors.numpy, "save_file", full_store)
    monkeypatch.setattr(Path, "write_bytes", full_disk)
    (chairs / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(chairs / "tmp"))
    monkeypatch.setattr("bipart_cli.store._warned_unwritable", False, raising=False)
    setup_logging(quiet=True)
    targets = [str(chairs / "target.glb"), str(chairs / "other.glb")]
    results = segment(
        targets, PARTS, support_dir=chairs / "chairs", labeler="none", weights="random",
        points=2048, device="cpu", out_dir=chairs / "out",
    )  # fmt: skip
    assert [r.ok for r in results] == [True, True], [r.error for r in results]
    assert (chairs / "out" / "other.parts.glb").is_file()
    lines = capsys.readouterr().err.strip().splitlines()
    # once, for every write (three generated chairs may also be warned as a poor fit)
    (warning,) = [line for line in lines if "cannot write" in line]
    assert warning.startswith("warning: cannot write bipart's cache (")
    assert "No space left on device" in warning
    assert not list(cache.rglob("*.safetensors"))
    assert not list((chairs / "tmp").iterdir())  # the temporary index is gone
