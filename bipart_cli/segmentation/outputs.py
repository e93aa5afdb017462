"""What does a segmented input leave behind? Its outputs written (or only its parts summed
up), the settings that reproduce the run, and the input's timings.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..runtime import log
from .request import SegmentResult

if TYPE_CHECKING:
    from ..io import Asset, PointSample


class Outputs:
    """The :class:`~.segmenter.Segmenter`'s outputs, settings and timings of an input."""

    def _warn(self, asset: Asset, warnings: list[str]) -> None:
        for warning in warnings:
            log.warning("%s: %s", asset.source or "asset", warning)

    def _finish(
        self,
        asset: Asset,
        dense: PointSample,
        result: SegmentResult,
        started: float,
        before: dict[str, float],
    ) -> None:
        """Write the outputs (or only sum up the parts) and record the input's timings."""
        if self.options.write:
            self._warn_dropped_features(asset, result)
            with self.stages("write", str(self.options.out_dir or "next to the input")):
                self._write(asset, dense, result, started, before)
        else:
            self._summarize(result)
        result.timings = self._timings(started, before)

    def _warn_dropped_features(self, asset: Asset, result: SegmentResult) -> None:
        """One warning (log and sidecar) when the labeled GLB leaves out animations or skins;
        a stored run already carries it in its warnings."""
        from ..io.write import dropped_features

        warning = dropped_features(asset)
        if warning is not None and warning not in result.warnings:
            result.warnings = [*result.warnings, warning]
            self._warn(asset, [warning])

    def _timings(
        self, started: float, before: dict[str, float], running: tuple[str, float] | None = None
    ) -> dict[str, float]:
        """Seconds per stage spent on the current input, ``other`` (the work between
        stages) and ``total``, their sum: the input's wall time from its load on.

        ``running``: a stage still under way and its seconds so far (the sidecar is written
        inside ``write``). ``setup``, outside ``total``, on the process's first input: its
        one-time work (libraries, torch, the weights, the support), before or during it.
        """
        spent = {
            name: seconds - before.get(name, 0.0) for name, seconds in self.stages.seconds.items()
        }
        if running is not None:
            spent[running[0]] = spent.get(running[0], 0.0) + running[1]
        timings = {name: round(seconds, 4) for name, seconds in spent.items() if seconds > 0}
        wall = time.perf_counter() - started
        timings["other"] = round(max(0.0, wall - sum(timings.values())), 4)
        timings["total"] = round(sum(timings.values()), 4)
        if self._setup_seconds:
            timings["setup"] = round(self._setup_seconds, 4)
        return timings

    def _summarize(self, result: SegmentResult) -> None:
        counts = np.bincount(
            result.dense_labels[result.dense_labels >= 0], minlength=len(self.part_names)
        )
        result.parts = [
            {
                "id": i + 1,
                "name": name,
                "points": int(counts[i]),
                "mean_score": float(
                    result.dense_scores[result.dense_labels == i].astype(np.float64).mean()
                )
                if counts[i]
                else None,
            }
            for i, name in enumerate(self.part_names)
        ]

    def _named_faces(self, asset: Asset) -> np.ndarray | None:
        """(f,) int64 the part each face's piece is named for (-1: none), or None when
        ``--no-names`` or no piece is named (:mod:`bipart_cli.io.piece_names`)."""
        if not self.options.names or not asset.is_mesh:
            return None
        from ..io.piece_names import face_parts_from_names

        face_parts, named = face_parts_from_names(asset, self.part_names)
        return np.maximum(face_parts, -1) if named else None

    def settings(self) -> dict[str, Any]:
        """Every setting needed to reproduce a run (recorded in the sidecar)."""
        options = self.options
        return {
            "parts": self.part_names,
            "labeler": self.labeler_name,
            "labeler_requested": options.labeler,
            "labeler_options": {k: v for k, v in options.labeler_options.items() if v is not None},
            "index": options.index,
            "support_dir": None if options.support_dir is None else str(options.support_dir),
            "category": options.category,
            "weights": options.weights,
            "weights_revision": options.weights_revision,
            "adapt": dict(options.adapt.__dict__),
            "up": options.up,
            "points": options.n_dense,
            "network_points": options.n_points,
            "zero_shot": options.zero_shot,
            "names": options.names,
            "colorize": options.colorize,
            "seed": options.seed,
            "device": str(self.device),
        }

    def _write(
        self,
        asset: Asset,
        dense: PointSample,
        result: SegmentResult,
        started: float,
        before: dict[str, float],
    ) -> None:
        from ..io import write_outputs
        from ..io.atomic import staged_outputs

        out_dir = self.options.out_dir or (asset.source.parent if asset.source else Path.cwd())
        self._summarize(result)
        outputs: dict[str, str] = {}
        if self.options.preview:  # staged with the other files below
            outputs["preview"] = str(Path(out_dir) / f"{asset.stem}.parts.png")
        metadata = {
            "weights": result.weights,
            "mode": result.mode,
            "labeler": result.labeler,
            "up": self.options.up,
            "up_axis": result.up_axis,
            "support": result.support,
            "adapt": self.options.adapt.__dict__,
            "seed": self.options.seed,
            "device": result.settings["device"],
            "settings": result.settings,
            "warnings": result.warnings,
            "support_fit": result.support_fit,
            "named_pieces": result.named_pieces,
            "reused": result.reused,
            "timings": {},  # filled in last, with the write stage's own time
        }
        writing = time.perf_counter()
        with staged_outputs(f"outputs to {out_dir}") as staged:  # all files or none
            paths = write_outputs(
                asset,
                dense,
                result.dense_labels,
                result.dense_scores,
                self.part_names,
                out_dir,
                metadata=metadata,
                outputs=staged,
                colorize=self.options.colorize,
                extra_files={k: Path(v) for k, v in outputs.items()},
                face_smooth=self.options.adapt.smooth,
                named_faces=self._named_faces(asset),
            )
            if self.options.preview:
                from ..preview import write_preview

                write_preview(
                    dense,
                    result.dense_labels,
                    self.part_names,
                    Path(outputs["preview"]),
                    up=result.up_axis,
                    title=f"{asset.source.name if asset.source else asset.stem}, up {result.up_axis}",
                    outputs=staged,
                )
            timings = self._timings(started, before, ("write", time.perf_counter() - writing))
            _set_sidecar_timings(staged.staged(paths.json), timings)
        result.outputs = {
            **{k: str(v) for k, v in paths.__dict__.items() if v is not None},
            **outputs,
        }


def _set_sidecar_timings(path: Path, timings: dict[str, float]) -> None:
    """Put ``timings`` in the staged sidecar at ``path``: known only once the other files
    are written, they take the place ``write_outputs`` kept for them (a few KB rewritten)."""
    import json

    summary = json.loads(path.read_text(encoding="utf-8"))
    summary["timings"] = timings
    path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8")
