""":class:`Segmenter`: holds the model, the labeler and the support source, and segments one
input at a time (load, label, retrieve, adapt and predict, write). A few-shot run of a file it
has segmented before with the same settings is read back (:mod:`.reuse`), and the model is
loaded only for the first input that must be computed.

How does one input go through? This module answers that (:meth:`Segmenter.run`); each step
lives in its own module, as one base class of :class:`Segmenter`:

- :mod:`.loading`: the weights, support source and labeler, loaded once, when first needed;
- :mod:`.stored`: an input loaded, and its stored run read back when there is one;
- :mod:`.stages`: the stage sequence of an input that must be computed;
- :mod:`.outputs`: the written outputs, the run's settings and the input's timings.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import BipartError
from ..orientation import UpReading
from ..runtime import log
from .inputs import cache_root
from .loading import NetworkLoading
from .outputs import Outputs
from .request import SegmentOptions, SegmentResult
from .stages import StageSequence
from .stored import StoredRuns


class Segmenter(NetworkLoading, StoredRuns, StageSequence, Outputs):
    """Holds the model, labeler and support source; segments one input at a time."""

    def __init__(self, part_names: list[str] | None, options: SegmentOptions, stages=None) -> None:
        from ..runtime import Stages, import_pipeline_libraries

        started = time.perf_counter()
        self.part_names = list(part_names or [])
        self.options = options
        self.stages = stages if stages is not None else Stages(quiet=True)
        # the labeler first: a detector that cannot be had fails here, before any heavy work
        self.labeler_name = self._choose_labeler()
        with self.stages("load", "libraries"):
            # the asset readers' and the geometry's, once per process: an input's timings
            # are then its own work, the first input's as the hundredth's
            import_pipeline_libraries(network=False)
        self.device = None  # set by load_network
        self.runs = None
        self._support_gap: str | None = None  # the support's missing parts, one line
        self._support_shapes: list = []  # the last input's support set (segment_points)
        self._up = UpReading(options.up, "not settled yet")  # settle_up's, per input
        self.support_fit = None  # the last computed input's (bipart_cli.fit.SupportFit)
        self._input_mark: tuple[float, dict[str, float]] | None = None
        self._setup_seconds = 0.0  # the process's one-time work told with the current input
        if self.part_names:
            from ..store import ArrayStore
            from .reuse import RunStore

            with self.stages("reuse", "stored runs: support files and weights hashed"):
                store = ArrayStore(cache_root() / "features")
                self.runs = RunStore.for_options(options, self.labeler_name, store)
        if self.runs is None:  # every input computes: the model now, and its errors now
            self.load_network()
        # the process's one-time work, told as the first input's "setup" (outside its total)
        self._setup_pending = time.perf_counter() - started

    def run(self, path: str) -> SegmentResult:
        """Segment one file; any error becomes a failed result, not an exception.

        Library errors keep their message; anything else (a bug) is reported as
        ``internal error: <type>: <message>`` for this input only, so the rest of
        a batch still runs (the CLI then exits 3). The model is loaded for the first input
        that is not a stored run; an error loading it ends the whole run, as at start.
        """
        loaded = self._as_result(path, self._load_or_reuse, Path(path))
        if isinstance(loaded, SegmentResult):
            return loaded  # reused, or failed
        self._load_network_for_input()
        result = self._as_result(path, self.segment_asset, loaded)
        if result.ok and self.runs is not None:
            self.runs.keep(self._run_key(loaded), result)
        return result

    def _as_result(self, path: str, step, *args) -> Any:
        """``step(*args)``, or the failed :class:`SegmentResult` its error makes."""
        try:
            return step(*args)
        except BipartError as exc:
            from ..runtime import user_message

            return SegmentResult(
                input=str(path), ok=False, part_names=self.part_names, error=user_message(exc)
            )
        except Exception as exc:  # noqa: BLE001 - one input's bug must not abort the batch
            log.debug("internal error on %s", path, exc_info=True)
            return SegmentResult(
                input=str(path),
                ok=False,
                part_names=self.part_names,
                error=f"{path}: internal error: {type(exc).__name__}: {exc} "
                "(rerun with -v for the traceback)",
            )
