"""Asset I/O: loading, existing labels, sampling and labeled outputs.

Importing this package does not import torch (FPS imports it when called).
"""

from __future__ import annotations

from .asset import UNASSIGNED, Asset, PointSample
from .atomic import atomic_path, atomic_write_bytes, atomic_write_text
from .checks import SUPPORTED_FORMATS, finalize_asset
from .describe import describe_asset, format_asset_summary
from .faces import face_labels_from_points
from .labels import part_from_name, sanitize_node_name
from .load import load_asset
from .sample import sample_dense, sample_network_indices
from .scenes import asset_from_scene
from .sources import sha256_file
from .write import OutputPaths, write_outputs

__all__ = [
    "SUPPORTED_FORMATS",
    "UNASSIGNED",
    "Asset",
    "OutputPaths",
    "PointSample",
    "asset_from_scene",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "describe_asset",
    "face_labels_from_points",
    "finalize_asset",
    "format_asset_summary",
    "load_asset",
    "part_from_name",
    "sample_dense",
    "sample_network_indices",
    "sanitize_node_name",
    "sha256_file",
    "write_outputs",
]
