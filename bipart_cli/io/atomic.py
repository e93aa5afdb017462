"""Atomic writes: write to a temporary sibling, then rename over the target.

:func:`staged_outputs` does the same for a set of files (a command's outputs): all
are written to temporaries first, then renamed; on any error none is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it to ``target`` on success.

    On any exception the temporary file is removed and ``target`` is untouched,
    so no partial output is ever left behind.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes 0600 (and some writers recreate the file): outputs get the usual mode
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sort_safetensors_header(path: str | Path) -> None:
    """Rewrite a safetensors file's JSON header with sorted keys, in place.

    safetensors writes its ``__metadata__`` in a per-process hash order, so the same
    tensors and metadata gave files with different sha256s; sorted, equal content gives
    equal bytes. Offsets are relative to the data block, so only the header changes
    (padded with spaces to 8 bytes, as safetensors does).
    """
    path = Path(path)
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + length])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + length :])


def atomic_write_bytes(target: str | Path, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | Path, text: str) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"))


class StagedOutputs:
    """A set of outputs written as one unit: :meth:`stage` a temporary per target,
    write them all, then :meth:`commit` renames them all (see :func:`staged_outputs`)."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []  # (temporary, target)

    def stage(self, target: str | Path) -> Path:
        """A temporary path next to ``target`` (``.<name>.<random>.tmp``) to write to."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        self._staged.append((Path(tmp_name), target))
        return Path(tmp_name)

    def staged(self, target: str | Path) -> Path | None:
        """The temporary staged for ``target`` (the last one), or None."""
        target = Path(target)
        for tmp, staged_target in reversed(self._staged):
            if staged_target == target:
                return tmp
        return None

    def commit(self) -> None:
        """Rename every temporary over its target; on a failure remove the targets
        renamed so far, so the outputs appear all together or not at all."""
        mode = 0o666 & ~_umask()
        done: list[Path] = []
        try:
            for tmp, _ in self._staged:
                os.chmod(tmp, mode)
            for tmp, target in self._staged:
                os.replace(tmp, target)
                done.append(target)
        except BaseException:
            for target in done:
                target.unlink(missing_ok=True)
            raise
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove every temporary still on disk."""
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged = []


def is_write_error(exc: BaseException) -> bool:
    """An OSError, or safetensors' wrapped I/O error (a full disk while saving)."""
    return isinstance(exc, OSError) or (
        type(exc).__name__ == "SafetensorError" and "I/O error" in str(exc)
    )


def write_error_reason(exc: BaseException) -> str:
    """``No space left on device``-style text of a write error, or of the write error that
    caused it (an :class:`~bipart_cli.errors.OutputWriteError` raised from one)."""
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    if exc.__cause__ is not None and is_write_error(exc.__cause__):
        return write_error_reason(exc.__cause__)
    text = str(exc)
    return text.split("I/O error:", 1)[-1].strip() if "I/O error:" in text else text


@contextlib.contextmanager
def staged_outputs(where: object = "outputs") -> Iterator[StagedOutputs]:
    """Write several files as one unit: ``with staged_outputs() as out: out.stage(path)``.

    The files are renamed into place when the block ends without error; on any
    error no output and no temporary is left, and an ``OSError`` (read-only folder,
    no space left, a folder in the way) becomes one
    :class:`~bipart_cli.errors.OutputWriteError` line.
    """
    from ..errors import OutputWriteError

    outputs = StagedOutputs()
    try:
        yield outputs
        outputs.commit()
    except Exception as exc:
        if not is_write_error(exc):
            raise
        targets = {str(tmp): str(target) for tmp, target in outputs._staged}
        path = getattr(exc, "filename2", None) or getattr(exc, "filename", None)
        name = f" {targets.get(str(path), path)}:" if path else ""
        raise OutputWriteError(
            f"cannot write {where}:{name} {write_error_reason(exc)} (nothing was written)"
        ) from exc
    finally:
        outputs.discard()
