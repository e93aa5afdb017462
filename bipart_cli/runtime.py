"""Process-wide runtime settings: device choice, seeding, logging and consoles.

Heavy modules (torch) are imported inside functions so that ``bipart --help``
stays light.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import re
import time
import types
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from .errors import UsageError

if TYPE_CHECKING:
    import torch

# Results go to stdout, progress and logs to stderr.
stdout_console = Console(soft_wrap=True)
# soft_wrap: an error stays one line when piped, whatever the terminal width.
stderr_console = Console(stderr=True, soft_wrap=True)

log = logging.getLogger("bipart")

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


# zero-width (non-)joiners spell words in several scripts: format characters, but text
_JOINERS = frozenset("\u200c\u200d")


def is_unprintable(char: str) -> bool:
    """Whether ``char`` is no text to show: a C0/C1 control (tab and line breaks too), a
    line or paragraph separator, a lone surrogate, or a format character (bidi overrides,
    BOM, soft hyphen...) other than the zero-width joiners."""
    category = unicodedata.category(char)
    return category in ("Cc", "Cs", "Zl", "Zp") or (category == "Cf" and char not in _JOINERS)


def escape_character(char: str) -> str:
    """``"\\n"`` -> ``"\\\\x0a"``: Python's ``\\xXX``, ``\\uXXXX`` or ``\\UXXXXXXXX`` escape."""
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: object) -> str:
    """``text`` safe for a terminal, on one line: control characters (ESC sequences, BEL,
    CSI, newlines, tabs...) and the other :func:`is_unprintable` characters from file or
    node names are shown as ``\\x1b``-style escapes instead of being obeyed."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(escape_character(c) if is_unprintable(c) else c for c in text)


_UNSAFE_HINT = re.compile(r"[^.;]*(allow_pickle|weights_only|pickle\.load)[^.;]*[.;]?\s*")


def scrub_hint(text: str) -> str:
    """``text`` without numpy/torch advice to load pickles unsafely (``allow_pickle=True``,
    ``weights_only=False``): bipart never does, and users must not be told to."""
    if "Weights only load failed" in text or "Unsupported global" in text:
        return "the file holds pickled Python objects, which bipart never loads"
    return _UNSAFE_HINT.sub("", text).strip() or "the file holds pickled data"


def user_message(exc: BaseException) -> str:
    """The one line the CLI prints for ``exc``: pickle advice scrubbed, control characters
    escaped, line breaks folded."""
    return printable(" ".join(scrub_hint(str(exc)).split()))


def validate_device_spec(spec: str) -> str:
    """Check the syntax of ``auto|cpu|cuda[:N]`` without importing torch."""
    spec = spec.strip().lower()
    if not _DEVICE_PATTERN.match(spec):
        raise UsageError(f"invalid --device {spec!r}: expected auto, cpu, cuda or cuda:N")
    return spec


# --points: 1M dense points took 0.65 GB in segment; past 2M a run nears the memory of a
# small machine (50M ended in a MemoryError after 24 s)
MAX_DENSE_POINTS = 2_000_000
# NumPy's legacy seeding takes 0 to 2**32 - 1; torch takes no negative seed either
MAX_SEED = 2**32 - 1


def check_count(option: str, value: int, low: int = 1, high: int = 10**9) -> int:
    """An integer option within ``[low, high]`` (a usage error otherwise)."""
    if not low <= value <= high:
        raise UsageError(f"{option} must be an integer from {low} to {high}, not {value}")
    return value


def check_rate(option: str, value: float, high: float, low_open: float = 0.0) -> float:
    """A finite float option in ``(low_open, high]`` (NaN, inf and out-of-range are usage errors)."""
    if not (math.isfinite(value) and low_open < value <= high):
        raise UsageError(
            f"{option} must be a finite number above {low_open:g} and at most {high:g}, not {value}"
        )
    return value


def check_fraction(option: str, value: float) -> float:
    """A float option in ``[0, 1]``."""
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise UsageError(f"{option} must be a number from 0 to 1, not {value}")
    return value


def check_choice(option: str, value: str, choices: Sequence[str]) -> str:
    """One of ``choices`` (a usage error naming them otherwise)."""
    if value not in choices:
        raise UsageError(f"{option} must be one of {', '.join(choices)}, not {value!r}")
    return value


def check_out_dir(option: str, value: Path | None) -> Path | None:
    """An output folder that exists as a folder or can be created (no file in the way)."""
    if value is None:
        return None
    for folder in (value, *value.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "is a file" if folder == value else f"is below {folder}, a file"
                raise UsageError(f"{option} {value} {what}, not a folder")
            break
    return value


def check_folder(option: str, value: str | Path | None) -> Path | None:
    """An existing folder; an empty name (``--support ""``, which would be the current
    folder) is refused."""
    if value is None:
        return None
    check_not_empty(option, value)
    value = Path(value)
    if not value.is_dir():
        what = "is a file" if value.exists() else "does not exist"
        raise UsageError(f"{option} {value} {what}: expected a folder")
    return value


def check_not_empty(option: str, value: str | Path) -> None:
    """Refuse an empty or blank name: ``Path("")`` is the current folder, never what was meant."""
    if not str(value).strip():
        raise UsageError(f"{option} is empty: name a folder")


def check_index_spec(option: str, value: str | None) -> str | None:
    """An index: ``hf://...`` or an existing local folder (an empty name is refused)."""
    if value is not None:
        check_not_empty(option, value)
    if value is not None and not value.startswith("hf://") and not Path(value).is_dir():
        what = "is a file" if Path(value).exists() else "does not exist"
        raise UsageError(
            f"{option} {value} {what}: expected an index folder or hf://datasets/OWNER/NAME"
        )
    return value


def resolve_device(spec: str = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda[:N]`` into a ``torch.device``; ``auto`` picks CUDA when present."""
    import torch

    spec = validate_device_spec(spec)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {spec}: CUDA is not available on this machine")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(spec)


# full collections wait for this many young ones (Python's default is 10)
FULL_COLLECTION_EVERY = 100
_tuned_for_a_command = False  # set by tune_collector_for_a_command: a CLI process


def tune_collector_for_a_command() -> None:
    """Tune the cyclic garbage collector for one command-line process (the CLI's ``main``).

    Imports grow the old generation in steps (``import torch`` alone makes ~150k
    objects), and each step triggers a full collection over everything loaded so
    far: ~0.25 s of a warm ``segment`` on 2 cores. Full collections are made ten
    times rarer; young collections are unchanged, so the cycles each asset leaves are
    still freed as it goes. At exit everything still alive is frozen
    (``gc.freeze``), so the interpreter's last collections skip it (~0.4 s).
    """
    import atexit
    import gc

    global _tuned_for_a_command
    _tuned_for_a_command = True
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    atexit.unregister(gc.freeze)  # once, however often main() runs in one process
    atexit.register(gc.freeze)


def import_pipeline_libraries(network: bool = True) -> None:
    """Import the pipeline's heavy libraries (trimesh, scipy.spatial, and torch when
    ``network``) now.

    Their imports make ~300k objects that live as long as the process; the cyclic
    collector would scan each of them twice on its way to the old generation (~0.1 s
    of a warm ``segment``). In a command-line process (after
    :func:`tune_collector_for_a_command`) they are imported with the collector paused,
    then frozen (``gc.freeze``); elsewhere, in a library user's process, they are just
    imported.
    """
    import gc

    paused = _tuned_for_a_command and gc.isenabled()
    if paused:
        gc.disable()
    try:
        import scipy.spatial  # noqa: F401
        import trimesh  # noqa: F401

        if network:
            import torch  # noqa: F401
    finally:
        if paused:
            gc.freeze()
            gc.enable()


def exit_without_teardown(code: int) -> None:
    """End a command-line process with ``code``, skipping the interpreter's teardown.

    Tearing down frees every module's objects one by one, torch's included: ~0.2 s of
    every ``bipart`` run on 2 cores, after its work is done. What a teardown would
    still do for the process is done first: the ``atexit`` hooks run (logging's flush,
    temporary folders' finalizers, the collector's freeze) and stdout and stderr are
    flushed; outputs are already renamed into place. Another thread still running, or a
    Python without the hook runner, gets the normal exit. Only the console script calls
    this; :func:`bipart_cli.cli.main` itself ends in ``SystemExit``.
    """
    import atexit
    import sys
    import threading

    run_exit_hooks = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_hooks is None or threading.active_count() > 1:
        sys.exit(code)
    run_exit_hooks()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing left to tell
            stream.flush()
    os._exit(code)


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_RETAINED_BYTES = 256 * 2**20


def keep_freed_tensor_memory() -> bool:
    """Let glibc reuse freed tensor memory instead of returning it to the OS.

    Inference allocates and frees many 1-20 MB tensors per shape. By default glibc
    serves those with fresh ``mmap`` pages, and the page faults on first touch
    cost more than the arithmetic: the extractor pass took 150 ms instead of 45 ms
    (2 cores). Raising the mmap and trim thresholds to 256 MB keeps them in the
    heap. Training is left alone: its many sizes fragment such a heap.
    Returns whether the setting took (glibc only; a no-op elsewhere).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or os.uname().sysname != "Linux":
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(
        mallopt(_M_MMAP_THRESHOLD, _RETAINED_BYTES) and mallopt(_M_TRIM_THRESHOLD, _RETAINED_BYTES)
    )


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (if already imported or importable)."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    import torch

    torch.manual_seed(seed)


def print_error(message: str, prefix: str = "error") -> None:
    """The one error style: ``error: message`` on stderr, one line (never hard-wrapped)."""
    stderr_console.print(
        f"[bold red]{prefix}:[/] {_escape(message)}", highlight=False, soft_wrap=True
    )


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class _LineHandler(logging.Handler):
    """Log records as single ``level: message`` lines on stderr (info has no prefix); line
    breaks and other control characters in a message (from a file or node name) escaped."""

    _STYLES = {"ERROR": "bold red", "CRITICAL": "bold red", "WARNING": "yellow", "DEBUG": "dim"}

    def __init__(self, verbose: bool = False) -> None:
        super().__init__()
        self.verbose = verbose  # -v: a record's exception is shown with its traceback

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = _escape(printable(record.getMessage()))  # a name's newline stays escaped
            level = record.levelname
            if level == "INFO":
                line = message
            else:
                line = f"[{self._STYLES.get(level, '')}]{level.lower()}:[/] {message}"
            stderr_console.print(line, highlight=False, soft_wrap=True)
            if record.exc_info and record.exc_info[1] is not None and self.verbose:
                # -v promises the traceback: a batch logs its inputs' internal errors here
                from rich.traceback import Traceback

                stderr_console.print(Traceback.from_exception(*record.exc_info))
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Route the ``bipart`` logger to stderr, one line per record."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = _LineHandler(verbose=verbose)
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def progress(quiet: bool = False):
    """A rich progress bar on stderr, disabled with ``--quiet``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr_console,
        disable=quiet,
        transient=False,
    )


class Stages:
    """Named pipeline stages on stderr: a live status while one runs, then one line with its time.

    Each line names what it is about, the input (set with :meth:`about`) or ``setup`` for
    the process's one-time work (libraries, weights, the support), then the stage, its time
    and what it found, in aligned columns::

        setup      load      2.2 s  torch
        chair.glb  sample    0.1 s  20000 points
        chair.glb  adapt     7.3 s  100 steps, 20000 points

    ``seconds`` keeps each stage's time. Quiet: nothing is printed, times are still kept.
    """

    SETUP = "setup"  # what a line is about outside any input
    NAME_WIDTH = 7  # the longest stage name: support, regions

    def __init__(self, quiet: bool = True, spinner: bool = True, subject_width: int = 0) -> None:
        self.quiet = quiet
        self.spinner = spinner  # off under another live display (a batch's progress bar)
        self.seconds: dict[str, float] = {}
        self.subject: str | None = None  # the input the stages are about; None: setup
        # the widest subject of the run (a batch's longest input name), so columns align
        self.subject_width = max(subject_width, len(self.SETUP))

    @contextlib.contextmanager
    def about(self, subject: str | None) -> Iterator[None]:
        """Lines inside the block are about ``subject`` (an input's name; None: setup)."""
        previous, self.subject = self.subject, subject
        try:
            yield
        finally:
            self.subject = previous

    def line(self, name: str, detail: str, elapsed: float | None = None) -> str:
        """A stage's line (rich markup): subject, stage, time (when done) and detail."""
        subject = printable(self.SETUP if self.subject is None else self.subject)
        head = f"[dim]{_escape(subject.ljust(self.subject_width))}[/]  {name:<{self.NAME_WIDTH}}"
        time_column = "" if elapsed is None else f" {elapsed:5.1f} s"
        return f"{head}{time_column}  {_escape(printable(detail))}".rstrip()

    @contextlib.contextmanager
    def __call__(self, name: str, detail: str = "") -> Iterator[types.SimpleNamespace]:
        """Yields the stage's line: set ``.detail`` to print what the stage found."""
        started = time.perf_counter()
        line = types.SimpleNamespace(detail=detail)
        status = None
        if not self.quiet and self.spinner and stderr_console.is_terminal:
            status = stderr_console.status(f"{self.line(name, detail)}...", spinner="dots")
            status.start()
        try:
            yield line
        finally:
            detail = line.detail
            if status is not None:
                status.stop()
            elapsed = time.perf_counter() - started
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
            if not self.quiet:
                stderr_console.print(
                    self.line(name, detail, elapsed), highlight=False, soft_wrap=True
                )

    def timed(self, name: str, detail: str = ""):
        """``stages.timed("adapt")(fn)(*args)``: call ``fn`` inside the stage ``name``."""

        def wrap(fn):
            def call(*args, **kwargs):
                with self(name, detail):
                    return fn(*args, **kwargs)

            return call

        return wrap
