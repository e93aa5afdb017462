"""Is there a stored run of this input? Each input is loaded, and when a few-shot run of
the same file with the same settings was kept (:mod:`.reuse`), its labels are read back and
written again instead of computed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from .request import SegmentResult

if TYPE_CHECKING:
    from ..io import Asset


class StoredRuns:
    """The :class:`~.segmenter.Segmenter`'s loading of an input, and its stored runs."""

    def _load_or_reuse(self, path: Path) -> Asset | SegmentResult:
        """The asset at ``path``, or its result when a stored run of it can be reused."""
        from ..io import load_asset

        # the input's timings start before its load
        self._input_mark = (time.perf_counter(), dict(self.stages.seconds))
        self._setup_seconds, self._setup_pending = self._setup_pending, 0.0
        with self.stages("load", "the asset") as line:
            asset = load_asset(path)
            count, unit = (
                (len(asset.faces), "faces") if asset.is_mesh else (len(asset.vertices), "points")
            )
            line.detail = f"{count} {unit}"
        if self.runs is None or not asset.sha256:
            return asset
        return self._reused_result(asset) or asset

    def _run_key(self, asset: Asset) -> str:
        settings = {k: v for k, v in self.settings().items() if k != "device"}
        return self.runs.key(asset.sha256, settings)

    def _reused_result(self, asset: Asset) -> SegmentResult | None:
        """The result of a stored run of ``asset`` with these settings, written again; None
        when there is none (or it does not fit the asset's dense points)."""
        from ..io import sample_dense

        started, before = self._input_mark or (time.perf_counter(), dict(self.stages.seconds))
        with self.stages("reuse", "a stored run of the same file and settings") as line:
            stored = self.runs.read(
                self._run_key(asset), self.options.n_dense, len(self.part_names)
            )
            line.detail = "read back" if stored is not None else "none stored, computing"
        if stored is None:
            return None
        with self.stages("sample", f"{self.options.n_dense} points"):
            dense = sample_dense(asset, n_points=self.options.n_dense, seed=self.options.seed)
        if len(dense.points) != len(stored.labels):
            return None
        self._input_mark = None
        result = SegmentResult(
            input=str(asset.source),
            ok=True,
            part_names=self.part_names,
            dense_labels=stored.labels,
            dense_scores=stored.scores,
            reused=True,
            **stored.record,
        )
        self._warn(asset, result.warnings)
        self._finish(asset, dense, result, started, before)
        return result
