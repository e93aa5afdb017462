"""The journal of a build in progress: each finished shape is one small file in
``OUT/.staging/``, so a killed build resumes where it stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from ..errors import OutputWriteError
from ..io.atomic import atomic_write_bytes, atomic_write_text
from .format import (
    ShapeRecord,
    stable_hash,
)
from .shards import records_from_bytes, records_to_bytes

STAGING_DIR = ".staging"


# Test hook: "interrupt@K" raises KeyboardInterrupt, "kill@K" SIGKILLs the
# process, right after the K-th shape of a build has been staged.
FAULT_ENV = "BIPART_TEST_INDEX_FAULT"


class Staging:
    """Finished shapes of an unfinished build: ``OUT/.staging/<hash(id)>-<sha256>.safetensors``.

    ``settings.json`` holds the build fingerprint; staged shapes of a build with
    other settings are discarded.
    """

    def __init__(self, out: Path, fingerprint: str) -> None:
        self.folder = out / STAGING_DIR
        self.fingerprint = fingerprint
        marker = self.folder / "settings.json"
        # made on the first save, not here: a build that stages nothing (an index that is
        # up to date) writes nothing, so it also runs on a read-only or full disk
        self._ready = marker.is_file() and marker.read_text(encoding="utf-8") == fingerprint

    def _prepare(self) -> None:
        """The journal folder for this build: one of other settings (or a damaged one) goes."""
        if self._ready:
            return
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        atomic_write_text(self.folder / "settings.json", self.fingerprint)
        self._ready = True

    def _path(self, shape_id: str, sha256: str) -> Path:
        return self.folder / f"{stable_hash(shape_id):016x}-{sha256[:16]}.safetensors"

    def load(self, shape_id: str, sha256: str) -> ShapeRecord | None:
        path = self._path(shape_id, sha256)
        if not self._ready or not path.is_file():
            return None
        try:
            (record,) = records_from_bytes(path.read_bytes())
        except Exception:  # noqa: BLE001 - a damaged staged file is simply redone
            path.unlink(missing_ok=True)
            return None
        return record if record.id == shape_id and record.sha256 == sha256 else None

    def save(self, record: ShapeRecord) -> None:
        data = records_to_bytes([record], with_features=True)
        try:
            self._prepare()
            atomic_write_bytes(self._path(record.id, record.sha256), data)
        except OSError as exc:  # a full or read-only disk stops the build, not one file
            raise OutputWriteError(
                f"cannot write the index in {self.folder.parent}: {exc.strerror or exc}"
            ) from exc

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def fault_hook(done: int) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    kind, _, count = spec.partition("@")
    if done == int(count):
        if kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise KeyboardInterrupt
