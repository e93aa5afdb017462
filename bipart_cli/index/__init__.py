"""Shape index: the support-set source of ``bipart segment`` (paper Sec. 3.4).

One folder (manifest + checksummed safetensors shards), built from a folder of
assets by :func:`build_index`, merged with :func:`merge_indexes`, read with
:class:`ShapeIndex` (local path or ``hf://datasets/<owner>/<name>[@revision]``).
See :mod:`bipart_cli.index.format` for the layout.

No torch at import time: the heavy imports live inside the build functions.
"""

from __future__ import annotations

from .build import BuildSummary, build_index
from .format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    PART_PERFECT_MIN_RATIO,
    BasisInfo,
    IndexEntry,
    ShapeRecord,
)
from .merge import merge_indexes
from .reader import ShapeIndex, resolve_index_path
from .shape import encoder_identity
from .walk import find_assets, parse_shard_spec
from .writer import IndexWriter

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "PART_PERFECT_MIN_RATIO",
    "BasisInfo",
    "BuildSummary",
    "IndexEntry",
    "IndexWriter",
    "ShapeIndex",
    "ShapeRecord",
    "build_index",
    "encoder_identity",
    "find_assets",
    "merge_indexes",
    "parse_shard_spec",
    "resolve_index_path",
]
