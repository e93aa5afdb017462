"""Few-shot runs kept for reuse: ``segment`` given the same file and settings again reads the
labels an earlier process stored, and needs no model, no support features and no torch.

A few-shot run (``--labeler none`` with ``--support DIR`` or a local ``--index``) keeps its
dense labels and scores in ``$BIPART_CACHE/features/segment/``, under a sha256 of all they
depend on (:func:`run_key`):

- the input's content identity (``Asset.sha256``: every file loading it read, its
  buffers, textures and label sidecars too), the part names and every setting of
  ``Segmenter.settings``, with the ``--device`` asked for (the stored run records the
  device it ran on);
- the weights (:func:`bipart_cli.weights.weights_identity`);
- the support: the sha256 of every file under ``--support DIR`` but bipart's outputs of a
  file beside them, or of a local index's manifest (which holds its shards' checksums);
- bipart itself: the sha256 of its source files, and the versions of the libraries that
  compute (numpy, scipy, torch, trimesh).

Anything else is computed every time: a detector's or a simulated labeler's run, Hub weights
or an ``hf://`` index (whose identity needs the Hub), and ``--device cuda`` (whose check
needs torch). An entry is checked on read (lengths, label range, finite scores); one that
fails is computed again and replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..store import code_identity

if TYPE_CHECKING:
    from ..store import ArrayStore
    from .request import SegmentOptions, SegmentResult

KIND = "segment"
# the fields of a SegmentResult a stored run keeps besides its arrays, and their types
RECORD_FIELDS = {
    "mode": str,
    "support": list,
    "weights": dict,
    "labeler": str,
    "up_axis": str,
    "settings": dict,
    "warnings": list,
    "support_fit": (dict, type(None)),
    "named_pieces": list,
}
# what computes a run's labels besides bipart's own code


@dataclass
class StoredRun:
    """One stored run: dense labels (n,) int64 (-1 unassigned), scores (n,) float32, and the
    result's other fields (:data:`RECORD_FIELDS`)."""

    labels: np.ndarray
    scores: np.ndarray
    record: dict[str, Any]


def run_key(
    asset_sha256: str,
    settings: dict[str, Any],
    requested_device: str,
    weights: str,
    support: str,
    code: str,
) -> str:
    """sha256 hex of everything a few-shot run's labels depend on (see the module's text).

    settings : ``Segmenter.settings()`` without its ``device`` (the one it ran on).
    """
    described = json.dumps(
        {
            "asset": asset_sha256,
            "settings": settings,
            "device": requested_device,
            "weights": weights,
            "support": support,
            "code": code,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(described.encode()).hexdigest()


def folder_identity(folder: Path) -> str:
    """sha256 of every file under ``folder``: relative paths and contents, in path order.

    bipart's outputs of a file beside them are left out, as the support's walk leaves them
    out (:func:`bipart_cli.index.walk.is_own_output`): a target segmented inside its own
    support folder keeps its key when its outputs appear there.
    """
    from ..index.walk import is_own_output
    from ..io import sha256_file

    digest = hashlib.sha256()
    files = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        files.extend(
            Path(root) / name for name in names if not is_own_output(Path(root) / name, names)
        )
    for path in sorted(files):
        if path.is_file():
            digest.update(f"{path.relative_to(folder).as_posix()} {sha256_file(path)}\0".encode())
    return digest.hexdigest()


def support_identity(options: SegmentOptions) -> str | None:
    """What fixes the support set: the files of ``--support DIR`` or a local index's manifest;
    None for an ``hf://`` index, or a support that is not there (opening it reports that)."""
    from ..index.format import MANIFEST_NAME
    from ..index.reader import HF_PREFIX
    from ..io import sha256_file

    if options.support_dir is not None:
        folder = Path(options.support_dir)
        return f"folder {folder_identity(folder)}" if folder.is_dir() else None
    if options.index is None or options.index.startswith(HF_PREFIX):
        return None
    manifest = Path(options.index).expanduser() / MANIFEST_NAME
    return f"index {sha256_file(manifest)}" if manifest.is_file() else None


class RunStore:
    """The stored few-shot runs of one segmenter's settings; :meth:`key` names an input's."""

    def __init__(self, store: ArrayStore, identity: dict[str, str]) -> None:
        self.store = store
        self.identity = identity  # run_key's arguments that are fixed per process

    @classmethod
    def for_options(
        cls, options: SegmentOptions, labeler_name: str, store: ArrayStore
    ) -> RunStore | None:
        """The store when runs with ``options`` can be reused, else None (see the module's text)."""
        from ..weights import weights_identity

        if (
            not options.reuse
            or labeler_name != "none"
            or options.zero_shot
            or options.device not in ("auto", "cpu")
            or (options.support_dir is None and options.index is None)
        ):
            return None
        try:  # an unreadable file is reported by the run that computes, not here
            weights = weights_identity(options.weights, options.weights_revision, options.seed)
            support = support_identity(options) if weights is not None else None
        except OSError:
            return None
        if support is None:
            return None
        identity = {"requested_device": options.device, "weights": weights, "support": support}
        return cls(store, {**identity, "code": code_identity()})

    def key(self, asset_sha256: str, settings: dict[str, Any]) -> str:
        """The key of one input's run; ``settings`` as :func:`run_key` takes them."""
        return run_key(asset_sha256, settings, **self.identity)

    def read(self, key: str, n_points: int, n_parts: int) -> StoredRun | None:
        """The run stored under ``key`` if it labels ``n_points`` points with ``n_parts`` parts."""
        arrays = self.store.read(KIND, key)
        if arrays is None:
            return None
        labels, scores, record = arrays.get("labels"), arrays.get("scores"), arrays.get("record")
        if labels is None or scores is None or record is None:
            return None
        if labels.shape != (n_points,) or scores.shape != (n_points,) or record.dtype != np.uint8:
            return None
        if labels.dtype != np.int16 or scores.dtype != np.float32:
            return None
        if len(labels) and (labels.min() < -1 or labels.max() >= n_parts):
            return None
        if not np.isfinite(scores).all():
            return None
        try:
            described = json.loads(record.tobytes().decode())
        except (UnicodeDecodeError, ValueError):
            return None
        if not _is_record(described):
            return None
        record = {name: described[name] for name in RECORD_FIELDS}
        return StoredRun(labels.astype(np.int64), scores, record)

    def keep(self, key: str, result: SegmentResult) -> None:
        """Store a computed result's labels, scores and record under ``key``."""
        record = {name: getattr(result, name) for name in RECORD_FIELDS}
        encoded = json.dumps(record, default=str).encode()
        arrays = {
            "labels": np.asarray(result.dense_labels).astype(np.int16),
            "scores": np.asarray(result.dense_scores).astype(np.float32),
            "record": np.frombuffer(encoded, dtype=np.uint8),
        }
        self.store.write(KIND, key, arrays)


def _is_record(described: Any) -> bool:
    """Whether a stored record has every field of :data:`RECORD_FIELDS`, of its type, and
    the device the run was computed on."""
    return (
        isinstance(described, dict)
        and all(isinstance(described.get(name), kind) for name, kind in RECORD_FIELDS.items())
        and isinstance(described["settings"].get("device"), str)
    )
