"""Process-wide runtime settings: device choice, seeding, logging and consoles.

Heavy modules (torch) are imported inside functions so that ``bipart --help``
stays light.
"""

from __future__ import annotations

import logging
import os
import random
import re
from typing import TYPE_CHECKING

from rich.console import Console
from rich.logging import RichHandler

from .errors import UsageError

if TYPE_CHECKING:
    import torch

# Results go to stdout, progress and logs to stderr.
stdout_console = Console(soft_wrap=True)
# soft_wrap: an error stays one line when piped, whatever the terminal width.
stderr_console = Console(stderr=True, soft_wrap=True)

log = logging.getLogger("bipart")

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """``text`` safe for a terminal: control characters (ESC sequences, BEL, CSI...) from
    file or node names are shown as ``\\x1b``-style escapes instead of being obeyed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


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


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Route the ``bipart`` logger to stderr through rich."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = RichHandler(console=stderr_console, show_time=False, show_path=verbose)
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
