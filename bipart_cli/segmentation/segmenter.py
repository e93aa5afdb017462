""":class:`Segmenter`: holds the model, the labeler and the support source, and segments one
input at a time (load, label, retrieve, adapt and predict, write). A few-shot run of a file it
has segmented before with the same settings is read back (:mod:`.reuse`), and the model is
loaded only for the first input that must be computed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BipartError, InvalidInputError, ModelUnavailableError, UsageError
from ..io.regions import labels_following_regions
from ..predict import FeatureCache, adapt_and_predict
from ..runtime import log
from ..support import SupportShape, unprovided_parts

if TYPE_CHECKING:
    from ..io import Asset, PointSample
    from ..labeling.pseudo_labels import PseudoLabels

from .inputs import cache_root, support_cache_dir
from .request import SegmentOptions, SegmentResult


class Segmenter:
    """Holds the model, labeler and support source; segments one input at a time."""

    def __init__(self, part_names: list[str] | None, options: SegmentOptions, stages=None) -> None:
        from ..runtime import Stages, import_pipeline_libraries

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
        self._unprovided: list[str] = []
        self._input_mark: tuple[float, dict[str, float]] | None = None
        if self.part_names:
            from ..store import ArrayStore
            from .reuse import RunStore

            with self.stages("support", "hashing its files and the weights'"):
                store = ArrayStore(cache_root() / "features")
                self.runs = RunStore.for_options(options, self.labeler_name, store)
        if self.runs is None:  # every input computes: the model now, and its errors now
            self.load_network()

    def load_network(self) -> None:
        """Load the weights, open the support and make the labeler (once; a stored run needs none)."""
        if self.device is not None:
            return
        from ..index import encoder_identity
        from ..runtime import (
            import_pipeline_libraries,
            keep_freed_tensor_memory,
            resolve_device,
            seed_everything,
        )
        from ..weights import resolve_weights

        options = self.options
        with self.stages("load", "torch"):
            import_pipeline_libraries()
        device = resolve_device(options.device)
        keep_freed_tensor_memory()
        seed_everything(options.seed)
        with self.stages("load", "weights"):
            self.model, self.weights_info = resolve_weights(
                options.weights, options.weights_revision, seed=options.seed, device=device
            )
        r_max = self.model.config.r_max
        if len(self.part_names) > r_max:
            raise UsageError(
                f"--parts lists {len(self.part_names)} parts but the model has at most {r_max} (R_max)"
            )
        # what cached encoder features must match: the sha256 checked at load (hashed here only
        # for --weights random), the model is never changed here
        self.encoder = None
        with self.stages("support", str(options.support_dir or options.index or "none")):
            if not options.zero_shot and (
                options.support_dir is not None or options.index is not None
            ):
                self.encoder = encoder_identity(self.model, self.weights_info.encoder_sha256)
            self.bank = self._open_support(device)
        if self.labeler_name == "auto-index":
            self.labeler_name = self._fallback_for_index()
        self.labeler = self._make_labeler()
        # the network's features and descriptors of every shape, support or target, the
        # target's farthest-point picks and the heads adapted on a support set are kept in
        # bipart's cache: a later process does not compute them again. Weights read from
        # files are fixed by the sha256 of model.safetensors and config.json: no state hash
        self.feature_cache = FeatureCache(
            self.model,
            device,
            options.adapt,
            store=cache_root() / "features",
            model_key=self.weights_info.files_key,
        )
        if self.labeler is None and self.bank is None and not options.zero_shot:
            raise UsageError(
                "nothing to adapt on: give --index or --support, or a labeler other than 'none'"
            )
        self.device = device  # last: loaded only when nothing above failed

    @property
    def mode(self) -> str:
        if self.bank is None:
            return "zero-shot"
        return "few-shot" if self.labeler is None else "vlm"

    def _choose_labeler(self) -> str:
        """The labeler to use: ``auto`` becomes the detector when its weights can be had, else
        ``none`` (few-shot) with a labeled support; a detector that cannot be had fails at once."""
        from ..labeling.detectors import DEFAULT_DETECTOR, WAYS_FORWARD, detector_unavailable

        name = self.options.labeler
        if name not in ("auto", "detector"):
            return name
        detector_options = self.options.labeler_options
        detector = str(detector_options.get("detector") or DEFAULT_DETECTOR)
        why = detector_unavailable(
            detector, detector_options.get("revision"), detector_options.get("offline")
        )
        if why is None:
            return "detector"
        if name == "auto" and self.options.support_dir is not None:
            log.info(
                "notice: %s; segmenting few-shot from the labeled --support %s (--labeler none)",
                why,
                self.options.support_dir,
            )
            return "none"
        if name == "auto" and self.options.index is not None and not self.options.zero_shot:
            self._detector_problem = why
            return "auto-index"
        raise ModelUnavailableError(f"{why}; {WAYS_FORWARD}")

    def _fallback_for_index(self) -> str:
        """``auto`` without detector weights and with an ``--index``: few-shot when it is labeled."""
        from ..labeling.detectors import WAYS_FORWARD

        settings = self.bank.index.settings if self.bank is not None else {}
        if settings.get("labeler") != "given":
            raise ModelUnavailableError(
                f"{self._detector_problem} and the --index holds {settings.get('labeler')} "
                f"pseudo labels, not labeled shapes; {WAYS_FORWARD}"
            )
        log.info(
            "notice: %s; segmenting few-shot from the labeled --index %s (--labeler none)",
            self._detector_problem,
            self.options.index,
        )
        return "none"

    def _make_labeler(self):
        if self.labeler_name == "none":
            return None
        from ..labeling import make_labeler

        options = self.options.labeler_options if self.labeler_name == "detector" else {}
        return make_labeler(self.labeler_name, **options)

    def _open_support(self, device):
        from ..support import SupportBank

        if self.options.zero_shot:
            return None
        if self.options.support_dir is not None:
            return SupportBank.from_folder(
                self.options.support_dir,
                support_cache_dir(self.options.support_dir),
                seed=self.options.seed,
                device=str(device),
                model=self.model,
                encoder=self.encoder,
            )
        if self.options.index is not None:
            return SupportBank.from_index(
                self.options.index,
                model=self.model,
                encoder=self.encoder,
                bps_cache=cache_root() / "bps",
            )
        return None

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

    def _load_network_for_input(self) -> None:
        """:meth:`load_network` for the first input computed, kept out of its timings: loading
        is the process's work, and the first input's times compare with the hundredth's."""
        mark = self._input_mark
        if self.device is not None or mark is None:
            self.load_network()
            return
        clock, seconds = time.perf_counter(), dict(self.stages.seconds)
        self.load_network()
        started, before = mark
        spent = {
            name: total - seconds.get(name, 0.0) for name, total in self.stages.seconds.items()
        }
        names = set(before) | set(spent)
        moved = {name: before.get(name, 0.0) + spent.get(name, 0.0) for name in names}
        self._input_mark = (started + time.perf_counter() - clock, moved)

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

    def _load_or_reuse(self, path: Path) -> Asset | SegmentResult:
        """The asset at ``path``, or its result when a stored run of it can be reused."""
        from ..io import load_asset

        # the input's timings start before its load
        self._input_mark = (time.perf_counter(), dict(self.stages.seconds))
        with self.stages("load", path.name):
            asset = load_asset(path)
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

    def retrieve(
        self,
        target_points: np.ndarray,
        part_names: list[str],
        exclude_sha256: str | None = None,
        category: str | None = None,
    ) -> list[SupportShape]:
        """The support set for a target (Sec. 3.4); empty when there is no bank."""
        if self.bank is None:
            return []
        return self.bank.retrieve(
            target_points,
            part_names,
            m=self.options.adapt.support_size,
            strategy=self.options.adapt.strategy,
            category=category or self.options.category,
            exclude_sha256=exclude_sha256,
            rng=np.random.default_rng(self.options.seed),
            any_turn=self.options.adapt.match_pose,
        )

    def segment_points(
        self,
        part_names: list[str],
        dense_points: np.ndarray,
        network_points: np.ndarray,
        target_labels: PseudoLabels | None,
        exclude_sha256: str | None = None,
        category: str | None = None,
        target_encoder_features: np.ndarray | None = None,
        target_descriptors: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Core shared by ``segment`` and ``eval``: dense labels (n,), scores (n,) and support ids.

        The network sees the target in bipart's Y-up frame (``--up``); with ``--up auto``
        target and support shapes are each PCA-aligned. Labels are per point, so they
        need no rotating back.
        """
        from ..orientation import apply_rotation, up_rotation

        up = self.options.up
        with self.stages("support", f"up to {self.options.adapt.support_size} shapes") as line:
            support = self.retrieve(network_points, part_names, exclude_sha256, category)
            line.detail = f"{len(support)} shapes"
        self._unprovided = unprovided_parts(part_names, support, target_labels)
        if not support and target_labels is None:
            raise UsageError(
                f"no support shapes match the parts {', '.join(part_names)} and the target has no pseudo labels"
            )
        rotation = up_rotation(network_points, up)
        network_points = apply_rotation(network_points, rotation)
        dense_points = apply_rotation(dense_points, rotation)
        support_ids = [s.shape_id for s in support]
        if up == "auto":
            support = [shape.principal_aligned() for shape in support]
        if support and self.options.adapt.match_pose:
            with self.stages("pose", "matching the support to the target") as line:
                rotations = self._matching_rotations(network_points, support)
                posed = [shape.turned(r) for shape, r in zip(support, rotations, strict=True)]
                turned = sum(a is not b for a, b in zip(posed, support, strict=True))
                line.detail = f"{turned} of {len(support)} turned"
                support = posed
        if not np.array_equal(rotation, np.eye(3)):
            target_encoder_features = None  # cached in the stored frame
        if self.bank is None:
            # Zero-shot without an index: the support set is the target itself, M times (Sec. 5.1).
            target_labels = _repeat_labels(target_labels, self.options.adapt.support_size)
        adapt = self.stages.timed(
            "adapt", f"{self.options.adapt.steps} steps, {len(dense_points)} points"
        )
        labels, scores = adapt(adapt_and_predict)(
            self.model,
            network_points,
            dense_points,
            target_labels,
            support,
            len(part_names),
            self.options.adapt,
            self.feature_cache,
            target_encoder_features=target_encoder_features,
            target_descriptors=target_descriptors,
            seed=self.options.seed,
        )
        return labels, scores, support_ids

    def _network_indices(self, points: np.ndarray) -> np.ndarray:
        """The network's ``n_points`` farthest-point picks of points (n, 3), int64, from the
        store when an earlier process picked them from the same points."""
        from ..io import sample_network_indices
        from ..store import array_key

        count, seed = self.options.n_points, self.options.seed
        if len(points) < count:  # every point kept (and a warning logged): nothing to keep
            return sample_network_indices(points, count, seed=seed)

        def valid(arrays: dict[str, np.ndarray]) -> bool:
            picks = arrays.get("indices")
            return (
                picks is not None
                and picks.shape == (count,)
                and picks.dtype == np.int64
                and bool((picks >= 0).all() and (picks < len(points)).all())
            )

        stored = self.feature_cache.store.fetch(
            "fps",
            array_key(points, f"{count} {seed}"),
            lambda: {"indices": sample_network_indices(points, count, seed=seed)},
            valid,
        )
        return stored["indices"]

    def _matching_rotations(
        self, network_points: np.ndarray, support: list[SupportShape]
    ) -> np.ndarray:
        """(M, 3, 3) rotations that lay each support shape as the target's points (N, 3) lie
        (:meth:`SupportShape.posed_like`), from the store when an earlier process matched
        the same shapes to the same points."""
        from ..orientation import matching_rotation
        from ..store import array_key

        margin = self.options.adapt.pose_margin
        sizes = [len(shape.points) for shape in support]

        def match() -> dict[str, np.ndarray]:
            rotations = [matching_rotation(network_points, s.points, margin) for s in support]
            return {"rotations": np.stack(rotations).astype(np.float64)}

        def valid(arrays: dict[str, np.ndarray]) -> bool:
            found = arrays.get("rotations")
            return (
                found is not None
                and found.shape == (len(support), 3, 3)
                and found.dtype == np.float64
                and np.allclose(found @ found.transpose(0, 2, 1), np.eye(3), atol=1e-6)
            )

        key = array_key(network_points, *[s.points for s in support], f"{margin} {sizes}")
        return self.feature_cache.store.fetch("pose", key, match, valid)["rotations"]

    def segment_asset(self, asset: Asset) -> SegmentResult:
        """Segment a loaded asset: sample, label, retrieve, adapt and predict, write."""
        from ..io import sample_dense

        self.load_network()
        mark, self._input_mark = self._input_mark, None
        started, before = mark or (time.perf_counter(), dict(self.stages.seconds))
        with self.stages("sample", f"{self.options.n_dense} points"):
            dense = sample_dense(asset, n_points=self.options.n_dense, seed=self.options.seed)
            network_idx = self._network_indices(dense.points)

        target_labels = None
        if self.labeler_name in ("given", "simulated"):  # ground truth in --parts order
            from ..labeling.api import labels_for_parts

            dense.labels = labels_for_parts(asset, dense, self.part_names)
            if dense.labels is None or not (dense.labels >= 0).any():
                raise InvalidInputError(
                    f"--labeler {self.labeler_name}: none of the parts {', '.join(self.part_names)} "
                    f"is labeled in {asset.source or 'the asset'}"
                )
        if self.labeler is not None:
            with self.stages("label", self.labeler_name):
                dense_labels = self.labeler.label(
                    dense, self.part_names, device=str(self.device), seed=self.options.seed
                )
                target_labels = dense_labels.subset(network_idx)

        labels, scores, support_ids = self.segment_points(
            self.part_names,
            dense.points,
            dense.points[network_idx],
            target_labels,
            exclude_sha256=asset.sha256 or None,
        )
        agreement = self.options.adapt.region_agreement
        with self.stages("regions", f"agreement {agreement:g}") as line:
            labels, scores, changed = labels_following_regions(
                asset, dense.face_index, labels, scores, len(self.part_names), agreement
            )
            line.detail = f"{changed} points follow their piece"
        warnings = [
            f"no support shape or detector box provides the part {name!r}"
            for name in self._unprovided
        ]
        self._warn(asset, warnings)
        result = SegmentResult(
            input=str(asset.source),
            ok=True,
            part_names=self.part_names,
            mode=self.mode,
            support=support_ids,
            weights=self.weights_info.to_dict(),
            labeler=self.labeler_name,
            warnings=warnings,
            settings=self.settings(),
            dense_labels=labels,
            dense_scores=scores,
        )
        self._finish(asset, dense, result, started, before)
        return result

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
            with self.stages("write", str(self.options.out_dir or "next to the input")):
                self._write(asset, dense, result, started, before)
        else:
            self._summarize(result)
        result.timings = self._timings(started, before)

    def _timings(self, started: float, before: dict[str, float]) -> dict[str, float]:
        """Seconds per stage spent on the current input, and ``total``."""
        timings = {
            name: round(seconds - before.get(name, 0.0), 4)
            for name, seconds in self.stages.seconds.items()
            if seconds - before.get(name, 0.0) > 0
        }
        timings["total"] = round(time.perf_counter() - started, 4)
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
            "support": result.support,
            "adapt": self.options.adapt.__dict__,
            "seed": self.options.seed,
            "device": result.settings["device"],
            "settings": result.settings,
            "warnings": result.warnings,
            "reused": result.reused,
            "timings": self._timings(started, before),
        }
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
            )
            if self.options.preview:
                from ..preview import write_preview

                write_preview(
                    dense,
                    result.dense_labels,
                    self.part_names,
                    Path(outputs["preview"]),
                    device=result.settings["device"],
                    up=self.options.up,
                    title=f"{asset.source.name if asset.source else asset.stem}, up {self.options.up}",
                    outputs=staged,
                )
        result.outputs = {
            **{k: str(v) for k, v in paths.__dict__.items() if v is not None},
            **outputs,
        }


def _repeat_labels(labels: PseudoLabels, times: int) -> PseudoLabels:
    """The same boxes ``times`` times: the zero-shot support of Sec. 5.1 (the loss scales by M)."""
    return labels.select_boxes(np.repeat(np.arange(labels.num_boxes), max(times, 1)))
