"""What happens to a loaded input that must be computed? The stage sequence: sample, label,
support (retrieve, pose), adapt and predict, regions; and the result it makes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidInputError, UsageError
from ..fit import calibrated_scores, measure_fit
from ..io.piece_names import labels_following_names, named_pieces_json
from ..io.regions import labels_following_regions
from ..predict import adapt_and_predict
from ..support import SupportShape, support_gap_warning, unfound_parts_warning
from .request import SegmentResult

if TYPE_CHECKING:
    from ..io import Asset
    from ..labeling.pseudo_labels import PseudoLabels


class StageSequence:
    """The :class:`~.segmenter.Segmenter`'s stages of one computed input."""

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
        file_format: str | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Core shared by ``segment`` and ``eval``: dense labels (n,), scores (n,) and support ids.

        The network sees the target in bipart's Y-up frame (``--up``; ``auto`` settles Y or
        Z from ``file_format`` and the support, :func:`~bipart_cli.orientation.settle_up`,
        kept in ``self._up``); with ``--up pca`` target and support shapes are each
        PCA-aligned. Labels are per point, so they need no rotating back.
        """
        from ..orientation import apply_rotation, settle_up, up_rotation

        up = self.options.up
        with self.stages("support", f"up to {self.options.adapt.support_size} shapes") as line:
            support = self.retrieve(network_points, part_names, exclude_sha256, category)
            line.detail = f"{len(support)} shapes"
        self._support_gap = support_gap_warning(
            part_names, support, target_labels, zero_shot=self.bank is None
        )
        self._support_shapes = support
        if not support and target_labels is None:
            raise UsageError(
                f"no support shape labels at least half of the parts {', '.join(part_names)} "
                "(a shape that labels fewer is another kind of object, never support) and the "
                "target has no pseudo labels"
            )
        with self.stages("up", up) as line:
            sources = [shape.points for shape in support]
            self._up = settle_up(network_points, up, sources, file_format)
            line.detail = f"{self._up.axis} ({self._up.reason})"
        rotation = up_rotation(network_points, self._up.axis)
        network_points = apply_rotation(network_points, rotation)
        dense_points = apply_rotation(dense_points, rotation)
        support_ids = [s.shape_id for s in support]
        if self._up.axis == "pca":
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
        self.support_fit = None
        if support:
            with self.stages("fit", "the support against the target") as line:
                fit = measure_fit(network_points, dense_points, labels, support)
                line.detail = f"distance {fit.distance:.2f}, agreement {fit.agreement:.0%}"
            self.support_fit = fit
        return labels, scores, support_ids

    def _network_indices(self, points: np.ndarray) -> np.ndarray:
        """The network's ``n_points`` farthest-point picks of points (n, 3), int64, from the
        store when an earlier process picked them from the same points."""
        from ..fps import picks_identity
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
            array_key(points, f"{count} {seed} {picks_identity()}"),
            lambda: {"indices": sample_network_indices(points, count, seed=seed)},
            valid,
        )
        return stored["indices"]

    def _matching_rotations(
        self, network_points: np.ndarray, support: list[SupportShape]
    ) -> np.ndarray:
        """(M, 3, 3) rotations that lay each support shape as the target's points (N, 3) lie
        (:func:`~bipart_cli.orientation.matching_rotations`: decided as a set), from the
        store when an earlier process of the same bipart matched the same shapes to the same
        points (the key holds the margins and bipart's code: another rule matches anew)."""
        from ..orientation import ALIGNED_SHARE, PROPORTION_FREE_MARGIN, matching_rotations
        from ..store import array_key, code_identity

        margin = self.options.adapt.pose_margin
        aligned_margin = self.options.adapt.aligned_pose_margin
        sizes = [len(shape.points) for shape in support]

        def match() -> dict[str, np.ndarray]:
            sources = [shape.points for shape in support]
            rotations = matching_rotations(network_points, sources, margin, aligned_margin)
            return {"rotations": rotations.astype(np.float64)}

        def valid(arrays: dict[str, np.ndarray]) -> bool:
            found = arrays.get("rotations")
            return (
                found is not None
                and found.shape == (len(support), 3, 3)
                and found.dtype == np.float64
                and np.allclose(found @ found.transpose(0, 2, 1), np.eye(3), atol=1e-6)
            )

        rule = f"{margin} {aligned_margin} {ALIGNED_SHARE} {PROPORTION_FREE_MARGIN} {sizes}"
        rule += f" {code_identity()}"
        key = array_key(network_points, *[s.points for s in support], rule)
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
            file_format=asset.format,
        )
        agreement = self.options.adapt.region_agreement
        with self.stages("regions", f"agreement {agreement:g}") as line:
            labels, scores, changed = labels_following_regions(
                asset, dense.face_index, labels, scores, len(self.part_names), agreement
            )
            line.detail = f"{changed} points follow their piece"
        fit = self.support_fit
        scores = calibrated_scores(scores, fit)  # before names: a named piece's points score 1
        named = []
        if self.options.names and asset.is_mesh:
            with self.stages("names", "pieces named for a part") as line:
                labels, scores, named = labels_following_names(
                    asset, dense.face_index, dense.points, labels, scores, self.part_names
                )
                line.detail = _named_detail(named, self.part_names)
        warnings = [self._support_gap] if self._support_gap else []
        unfound = unfound_parts_warning(self.part_names, self._support_shapes, labels)
        if unfound:
            warnings.append(unfound)
        if self._up.warning:
            warnings.append(self._up.warning)
        warnings += self._fit_warnings(fit)
        self._warn(asset, warnings)
        result = SegmentResult(
            input=str(asset.source),
            ok=True,
            part_names=self.part_names,
            mode=self.mode,
            support=support_ids,
            weights=self.weights_info.to_dict(),
            labeler=self.labeler_name,
            up_axis=self._up.axis,
            warnings=warnings,
            settings=self.settings(),
            dense_labels=labels,
            dense_scores=scores,
            support_fit=None if fit is None else fit.to_json(support_ids),
            named_pieces=named_pieces_json(named, self.part_names),
        )
        self._finish(asset, dense, result, started, before)
        return result

    def _fit_warnings(self, fit) -> list[str]:
        """The one warning of a support that fits the target poorly (:mod:`bipart_cli.fit`)."""
        options = self.options
        if options.support_dir is not None:
            source = f"the shapes in {options.support_dir}"
        else:
            source = f"the index {options.index}" + (
                f", category {options.category}" if options.category else ""
            )
        warning = None if fit is None else fit.warning(source)
        return [] if warning is None else [warning]


def _named_detail(named: list, part_names: list[str]) -> str:
    """``2 pieces: door, drawer`` (the parts the pieces' names gave), or ``none``."""
    if not named:
        return "none"
    from ..runtime import printable

    parts = list(dict.fromkeys(part_names[piece.part] for piece in named))
    return f"{len(named)} pieces: {printable(', '.join(parts))}"


def _repeat_labels(labels: PseudoLabels, times: int) -> PseudoLabels:
    """The same boxes ``times`` times: the zero-shot support of Sec. 5.1 (the loss scales by M)."""
    return labels.select_boxes(np.repeat(np.arange(labels.num_boxes), max(times, 1)))
