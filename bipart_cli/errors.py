"""Typed exceptions of the library.

Every error a user can cause or fix is a :class:`BipartError`. The CLI maps
them to one line on stderr and the exit code in ``exit_code``; tracebacks are
shown only with ``-v``.
"""

from __future__ import annotations


class BipartError(Exception):
    """Base class for errors that the CLI reports as one clear line."""

    exit_code: int = 1


class InvalidInputError(BipartError):
    """An input asset is missing, unreadable, empty, corrupt or non-finite."""


class UnsupportedFormatError(InvalidInputError):
    """The file extension is not one bipart can read."""


class UsageError(BipartError):
    """The options are inconsistent (empty or duplicated --parts, too many parts...)."""

    exit_code = 2


class ModelUnavailableError(BipartError):
    """A model (detector, weights, encoder) is neither local nor in the Hub cache."""


class CheckpointError(BipartError):
    """A checkpoint does not match the architecture (missing key, wrong shape)."""


class IndexCorruptError(BipartError):
    """A shape index or one of its shards failed validation."""


class OutputWriteError(BipartError):
    """An output cannot be written (read-only folder, no space left, a folder in the way)."""


class IndexBusyError(BipartError):
    """Another process holds the lock of the index being written, past the wait limit."""


class TrainingDivergedError(BipartError):
    """The training loss became NaN or inf."""


class NotImplementedYetError(BipartError):
    """The requested command exists in the CLI but is not built yet."""
