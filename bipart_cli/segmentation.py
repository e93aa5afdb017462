"""The main job: segment assets into named parts (paper Sec. 3.3.2 and 3.4).

For each target: sample a dense cloud and its 2048 network points, label it
(detector, simulated or none), retrieve a support set (index, folder of labeled
assets, or the target repeated), adapt the head for K steps on the cached
support features, then predict every dense point by interpolating the
extractor features from the 2048 points. Outputs are written by
:func:`bipart_cli.io.write_outputs`.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .adapt import AdaptSettings
from .errors import BipartError, UsageError

if TYPE_CHECKING:
    import torch

    from .io import Asset, PointSample
    from .labeling.pseudo_labels import PseudoLabels


@dataclass
class SegmentOptions:
    """Everything ``bipart segment`` can be told; the Python API takes the same."""

    index: str | None = None
    support_dir: Path | None = None
    category: str | None = None
    weights: str | None = None
    weights_revision: str | None = None
    labeler: str = "detector"
    labeler_options: dict[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None
    preview: bool = False
    n_dense: int = 100_000
    n_points: int = 2048
    adapt: AdaptSettings = field(default_factory=AdaptSettings)
    up: str = "y"
    device: str = "auto"
    seed: int = 0
    write: bool = True
    # no support source even if ``index`` is set: the target's labels repeated (Sec. 5.1);
    # eval uses it with the index's pseudo labels as the target's
    zero_shot: bool = False

    def __post_init__(self) -> None:
        from .orientation import UP_CHOICES

        if self.up not in UP_CHOICES:
            raise UsageError(f"--up must be one of {', '.join(UP_CHOICES)}, not {self.up!r}")


@dataclass
class SegmentResult:
    """What happened to one input. ``dense_labels`` is (n,) int64, -1 unassigned."""

    input: str
    ok: bool
    part_names: list[str] = field(default_factory=list)
    mode: str = ""
    support: list[str] = field(default_factory=list)
    parts: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    weights: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    dense_labels: np.ndarray | None = None
    dense_scores: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        skip = {"dense_labels", "dense_scores"}
        return {k: v for k, v in self.__dict__.items() if k not in skip}


def expand_inputs(patterns: list[str]) -> list[str]:
    """Globs and plain paths, in order, without duplicates; unmatched patterns stay (and fail later)."""
    seen: dict[str, None] = {}
    for pattern in patterns:
        matches = (
            sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        )
        for path in matches or [pattern]:
            seen.setdefault(path, None)
    return list(seen)


def check_inputs(
    paths: list[str], out_dir: Path | None, collisions: bool = True, fail_fast: bool = True
) -> None:
    """Cheap checks of a batch before any model loads.

    Raises :class:`UsageError` when two inputs would write the same outputs
    (``chair.glb`` and ``chair.obj`` both make ``chair.parts.*``), and, with
    ``fail_fast`` (the CLI), the input's own one-line error when the batch is a single
    input that cannot be read (a missing file failed only after the model and support
    set had loaded). The Python API keeps returning a failed result for it.
    """
    from .errors import InvalidInputError
    from .io.load import _check_path

    owners: dict[Path, str] = {}
    for path in paths if collisions else []:
        target = Path(path)
        folder = out_dir if out_dir is not None else target.parent
        key = (Path(folder) / f"{target.stem}.parts").resolve()
        if key in owners:
            raise UsageError(
                f"{owners[key]} and {path} would both write {key.name}.*: "
                "rename one or segment them into different --out-dir folders"
            )
        owners[key] = path
    problems = []
    for path in paths if fail_fast else []:
        try:
            _check_path(Path(path))
        except InvalidInputError as exc:
            problems.append(exc)
    if problems and len(problems) == len(paths) == 1:
        raise problems[0]


def support_cache_dir(folder: Path) -> Path:
    """Where ``--support DIR`` is indexed: ``$BIPART_CACHE`` or ``~/.cache/bipart``."""
    root = Path(os.environ.get("BIPART_CACHE", Path.home() / ".cache" / "bipart"))
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return root / "support" / key


def remap_pseudo_labels(pseudo_labels: PseudoLabels, part_names: list[str]) -> PseudoLabels:
    """Re-index boxes to ``part_names`` by (case-insensitive) name; boxes of other parts are dropped."""
    lookup = {name.lower(): i for i, name in enumerate(part_names)}
    source = [lookup.get(name.lower(), -1) for name in pseudo_labels.part_names]
    new_part = np.array([source[p] for p in pseudo_labels.part_index], dtype=np.int64)
    keep = new_part >= 0
    return pseudo_labels.select_boxes(keep, part_index=new_part[keep], part_names=part_names)


@dataclass
class SupportShape:
    """One support shape, ready for the inner loop.

    points : (N, 3) float32; pseudo_labels over those N points, re-indexed to the
    target's part names; encoder_features : (N, F) or None when not cached;
    descriptors : (N, D) geometric descriptors or None when not cached.
    """

    shape_id: str
    points: np.ndarray
    pseudo_labels: PseudoLabels
    encoder_features: np.ndarray | None = None
    descriptors: np.ndarray | None = None


def shape_descriptors(points: np.ndarray, cached: np.ndarray | None, settings) -> np.ndarray | None:
    """(N, D) float32 descriptors of ``points`` (N, 3) for ``settings.descriptors``, or None."""
    if settings.descriptors == "none":
        return None
    if cached is not None:
        return np.asarray(cached, dtype=np.float32)
    from .descriptors import point_descriptors

    return point_descriptors(points)


def head_inputs(features: torch.Tensor, descriptors: torch.Tensor | None) -> torch.Tensor:
    """What the adapted head reads: features (B, N, C) ++ standardised descriptors (B, N, D)."""
    import torch

    from .model.bipart import unit_features

    if descriptors is None:
        return features
    return torch.cat([features, unit_features(descriptors)], dim=-1)  # (B, N, C + D)


class FeatureCache:
    """Head inputs per support shape, computed once per model and reused by every target."""

    def __init__(self, model, device, settings: AdaptSettings | None = None) -> None:
        self.model = model
        self.device = device
        self.settings = settings or AdaptSettings()
        self._features: dict[str, torch.Tensor] = {}

    def features(self, shapes: list[SupportShape]) -> torch.Tensor:
        """(M, N, C') head inputs of ``shapes``, computing only the missing ones."""
        import torch

        missing = [s for s in shapes if s.shape_id not in self._features]
        if missing:
            points = torch.from_numpy(np.stack([s.points for s in missing])).float().to(self.device)
            cached = [s.encoder_features for s in missing]
            encoded = None
            if all(c is not None for c in cached):
                encoded = torch.from_numpy(np.stack(cached)).float().to(self.device)
            descriptors = None
            if self.settings.descriptors != "none":
                described = [
                    shape_descriptors(s.points, s.descriptors, self.settings) for s in missing
                ]
                descriptors = torch.from_numpy(np.stack(described)).to(self.device)
            with torch.no_grad():
                extracted = self.model.extract(points, encoder_features=encoded)  # (m, N, C)
                extracted = head_inputs(extracted, descriptors)  # (m, N, C')
            for shape, feats in zip(missing, extracted, strict=True):
                self._features[shape.shape_id] = feats
        return torch.stack([self._features[s.shape_id] for s in shapes])


def adapt_and_predict(
    model,
    target_points: np.ndarray,
    dense_points: np.ndarray,
    target_labels: PseudoLabels | None,
    support: list[SupportShape],
    num_parts: int,
    settings: AdaptSettings,
    feature_cache: FeatureCache,
    chunk: int = 32768,
    target_encoder_features: np.ndarray | None = None,
    target_descriptors: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Adapt the head on (target +) support, then label every dense point.

    target_points : (N, 3) network points; dense_points : (n, 3) all points to label;
    target_encoder_features : (N, F) frozen-encoder features of the target when an index
    cached them (the encoder pass is then skipped); target_descriptors : (N, D) likewise.
    The head predicts the N network points; their probabilities are smoothed over
    the points' neighbours (``settings.smooth`` rounds) and interpolated to the
    dense points. Returns dense labels (n,) int64 and their probabilities (n,) float32.
    """
    import torch

    from .adapt import adapt_head, pack_labels, predict_probabilities, widen_head
    from .geometry import three_nn_interpolate

    device = feature_cache.device
    points = torch.from_numpy(np.ascontiguousarray(target_points, dtype=np.float32)).to(device)[
        None
    ]  # (1, N, 3)
    encoded = None
    if target_encoder_features is not None:
        encoded = torch.from_numpy(np.asarray(target_encoder_features, np.float32)).to(device)[None]
    descriptors = shape_descriptors(target_points, target_descriptors, settings)
    if descriptors is not None:
        descriptors = torch.from_numpy(descriptors).to(device)[None]  # (1, N, D)
    with torch.no_grad():
        target_features = model.extract(points, encoder_features=encoded)  # (1, N, C)
        target_features = head_inputs(target_features, descriptors)  # (1, N, C')
    feature_blocks, label_list = [], []
    if target_labels is not None:
        feature_blocks.append(target_features)
        label_list.append(target_labels)
    if support:
        feature_blocks.append(feature_cache.features(support))  # (M, N, C')
        label_list.extend(s.pseudo_labels for s in support)
    features = torch.cat(feature_blocks)  # (M', N, C')
    labels = pack_labels(label_list, num_parts, device=device)
    head_0 = model.head_params()
    head_0 = widen_head(head_0, features.shape[-1] - head_0["fc1.weight"].shape[1])
    with torch.no_grad():
        head = adapt_head(
            features,
            labels,
            head_0,
            steps=settings.steps,
            lr=settings.lr,
            box_reduction=settings.box_reduction,
            optimizer=settings.optimizer,
            batch_points=settings.batch_points,
            seed=seed,
        )
        probs = predict_probabilities(model, target_features, head, num_parts)[0]  # (N, R)
        probs = smooth_probabilities(target_points, probs, settings.smooth)
        dense = torch.from_numpy(np.ascontiguousarray(dense_points, dtype=np.float32)).to(device)
        out_labels, out_scores = [], []
        for start in range(0, len(dense), chunk):
            block = dense[start : start + chunk][None]  # (1, c, 3)
            block_probs = three_nn_interpolate(block, points, probs[None])[0]  # (c, R)
            score, label = block_probs.max(-1)
            out_labels.append(label.cpu())
            out_scores.append(score.cpu())
    return torch.cat(out_labels).numpy().astype(np.int64), torch.cat(out_scores).numpy().astype(
        np.float32
    )


def smooth_probabilities(
    points: np.ndarray, probs: torch.Tensor, rounds: int, k: int = 10
) -> torch.Tensor:
    """``rounds`` of ``p <- (p + mean of the k nearest neighbours' p) / 2``.

    points : (N, 3); probs : (N, R)  ->  (N, R), rows still summing to 1. A point's
    label then agrees with its surroundings: stray points inside a part take its label.
    """
    if rounds <= 0:
        return probs
    import torch
    from scipy.spatial import KDTree

    k = min(k, len(points))
    _, neighbours = KDTree(np.asarray(points, dtype=np.float64)).query(points, k=k)
    neighbours = torch.from_numpy(neighbours.reshape(len(points), k)).to(probs.device)
    for _ in range(rounds):
        probs = 0.5 * probs + 0.5 * probs[neighbours].mean(1)  # (N, R)
    return probs


def part_colors_for(labels: np.ndarray, num_parts: int) -> np.ndarray:
    """(n,) labels -> (n, 3) uint8 colours from the part palette (grey when unassigned)."""
    from .parts import part_colors

    palette = np.vstack([part_colors(num_parts), np.array([[160, 160, 160]], np.uint8)])
    return palette[np.where(labels >= 0, labels, num_parts)]


def write_preview(
    dense: PointSample,
    labels: np.ndarray,
    part_names: list[str],
    path: Path,
    device="cpu",
    outputs=None,
) -> Path:
    """A PNG with four views of the labeled dense cloud and a legend.

    ``outputs`` (a :class:`~bipart_cli.io.atomic.StagedOutputs`): stage the PNG there
    instead of writing it now.
    """
    from PIL import Image, ImageDraw

    from .io.atomic import atomic_path
    from .parts import part_colors
    from .render import RenderSettings, render_views

    # Elevation 30: the camera (2.2 from the centre) is then above the unit sphere, so tops
    # show; at 20 it sits at height 0.75, the horizon, where a chair back is seen edge-on.
    views = [(30.0, 30.0), (30.0, 120.0), (30.0, 210.0), (30.0, 300.0)]
    settings = RenderSettings(image_size=384, views=views)
    colors = part_colors_for(labels, len(part_names))
    rendering = render_views(dense.points, colors, dense.normals, settings=settings, device=device)
    tiles = [Image.fromarray(img) for img in rendering.images]
    size = settings.image_size
    sheet = Image.new("RGB", (size * len(tiles), size + 28), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, (i * size, 0))
    draw = ImageDraw.Draw(sheet)
    x = 8
    for name, color in zip(part_names, part_colors(len(part_names)), strict=True):
        draw.rectangle([x, size + 8, x + 14, size + 22], fill=tuple(int(c) for c in color))
        draw.text((x + 18, size + 9), name, fill="black")
        x += 26 + 7 * len(name)
    if outputs is not None:
        sheet.save(outputs.stage(path), format="PNG")
        return path
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


class Segmenter:
    """Holds the model, labeler and support source; segments one input at a time."""

    def __init__(self, part_names: list[str] | None, options: SegmentOptions) -> None:
        from .runtime import keep_freed_tensor_memory, resolve_device, seed_everything
        from .weights import resolve_weights

        self.part_names = list(part_names or [])
        self.options = options
        self.device = resolve_device(options.device)
        keep_freed_tensor_memory()
        seed_everything(options.seed)
        self.model, self.weights_info = resolve_weights(
            options.weights, options.weights_revision, seed=options.seed, device=self.device
        )
        r_max = self.model.config.r_max
        if len(self.part_names) > r_max:
            raise UsageError(
                f"--parts lists {len(self.part_names)} parts but the model has at most {r_max} (R_max)"
            )
        self.labeler = self._make_labeler()
        self.bank = self._open_support()
        self.feature_cache = FeatureCache(self.model, self.device, options.adapt)
        if self.labeler is None and self.bank is None and not options.zero_shot:
            raise UsageError(
                "nothing to adapt on: give --index or --support, or a labeler other than 'none'"
            )

    @property
    def mode(self) -> str:
        if self.bank is None:
            return "zero-shot"
        return "few-shot" if self.labeler is None else "vlm"

    def _make_labeler(self):
        if self.options.labeler == "none":
            return None
        from .labeling import make_labeler

        return make_labeler(self.options.labeler, **self.options.labeler_options)

    def _open_support(self):
        from .retrieval import SupportBank

        if self.options.zero_shot:
            return None
        if self.options.support_dir is not None:
            return SupportBank.from_folder(
                self.options.support_dir,
                support_cache_dir(self.options.support_dir),
                seed=self.options.seed,
                device=str(self.device),
                model=self.model,
            )
        if self.options.index is not None:
            return SupportBank.from_index(self.options.index, model=self.model)
        return None

    def run(self, path: str) -> SegmentResult:
        """Segment one file; any error becomes a failed result, not an exception.

        Library errors keep their message; anything else (a bug) is reported as
        ``internal error: <type>: <message>`` for this input only, so the rest of
        a batch still runs (the CLI then exits 3).
        """
        try:
            return self.segment_file(Path(path))
        except BipartError as exc:
            from .runtime import user_message

            return SegmentResult(
                input=str(path), ok=False, part_names=self.part_names, error=user_message(exc)
            )
        except Exception as exc:  # noqa: BLE001 - one input's bug must not abort the batch
            from .runtime import log

            log.debug("internal error on %s", path, exc_info=True)
            return SegmentResult(
                input=str(path),
                ok=False,
                part_names=self.part_names,
                error=f"{path}: internal error: {type(exc).__name__}: {exc} "
                "(rerun with -v for the traceback)",
            )

    def segment_file(self, path: Path) -> SegmentResult:
        from .io import load_asset

        started = time.perf_counter()
        asset = load_asset(path)
        result = self.segment_asset(asset)
        result.timings["total"] = time.perf_counter() - started
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
        from .orientation import apply_rotation, up_rotation

        up = self.options.up
        support = self.retrieve(network_points, part_names, exclude_sha256, category)
        if not support and target_labels is None:
            raise UsageError(
                f"no support shapes match the parts {', '.join(part_names)} and the target has no pseudo labels"
            )
        rotation = up_rotation(network_points, up)
        network_points = apply_rotation(network_points, rotation)
        dense_points = apply_rotation(dense_points, rotation)
        if up == "auto":
            support = [_aligned(shape) for shape in support]
        if not np.array_equal(rotation, np.eye(3)):
            target_encoder_features = None  # cached in the stored frame
        if self.bank is None:
            # Zero-shot without an index: the support set is the target itself, M times (Sec. 5.1).
            target_labels = _repeat_labels(target_labels, self.options.adapt.support_size)
        labels, scores = adapt_and_predict(
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
        return labels, scores, [s.shape_id for s in support]

    def segment_asset(self, asset: Asset) -> SegmentResult:
        from .io import sample_dense, sample_network_indices

        timings: dict[str, float] = {}
        clock = time.perf_counter()
        dense = sample_dense(asset, n_points=self.options.n_dense, seed=self.options.seed)
        network_idx = sample_network_indices(
            dense.points, self.options.n_points, seed=self.options.seed
        )
        timings["sample"] = time.perf_counter() - clock

        clock = time.perf_counter()
        target_labels = None
        if self.labeler is not None:
            dense_labels = self.labeler.label(
                dense, self.part_names, device=str(self.device), seed=self.options.seed
            )
            target_labels = dense_labels.subset(network_idx)
        timings["label"] = time.perf_counter() - clock

        clock = time.perf_counter()
        labels, scores, support_ids = self.segment_points(
            self.part_names,
            dense.points,
            dense.points[network_idx],
            target_labels,
            exclude_sha256=asset.sha256 or None,
        )
        timings["adapt_predict"] = time.perf_counter() - clock

        result = SegmentResult(
            input=str(asset.source),
            ok=True,
            part_names=self.part_names,
            mode=self.mode,
            support=support_ids,
            weights=self.weights_info.to_dict(),
            timings=timings,
            dense_labels=labels,
            dense_scores=scores,
        )
        if self.options.write:
            self._write(asset, dense, result)
        return result

    def _write(self, asset: Asset, dense: PointSample, result: SegmentResult) -> None:
        from .io import write_outputs
        from .io.atomic import staged_outputs

        out_dir = self.options.out_dir or (asset.source.parent if asset.source else Path.cwd())
        metadata = {
            "weights": result.weights,
            "mode": result.mode,
            "labeler": self.options.labeler,
            "support": result.support,
            "adapt": self.options.adapt.__dict__,
            "seed": self.options.seed,
            "device": str(self.device),
            "timings": result.timings,
        }
        with staged_outputs(f"outputs to {out_dir}") as outputs:  # all files or none
            paths = write_outputs(
                asset,
                dense,
                result.dense_labels,
                result.dense_scores,
                self.part_names,
                out_dir,
                metadata=metadata,
                outputs=outputs,
            )
            result.outputs = {k: str(v) for k, v in paths.__dict__.items() if v is not None}
            if self.options.preview:
                preview_path = Path(out_dir) / f"{asset.stem}.parts.png"
                write_preview(
                    dense,
                    result.dense_labels,
                    self.part_names,
                    preview_path,
                    device=str(self.device),
                    outputs=outputs,
                )
                result.outputs["preview"] = str(preview_path)
        counts = np.bincount(
            result.dense_labels[result.dense_labels >= 0], minlength=len(self.part_names)
        )
        result.parts = [
            {
                "id": i + 1,
                "name": name,
                "points": int(counts[i]),
                "mean_score": float(result.dense_scores[result.dense_labels == i].mean())
                if counts[i]
                else 0.0,
            }
            for i, name in enumerate(self.part_names)
        ]


def _aligned(shape: SupportShape) -> SupportShape:
    """The support shape PCA-aligned; its cached encoder features no longer apply."""
    from .orientation import apply_rotation, pca_rotation

    points = apply_rotation(shape.points, pca_rotation(shape.points.astype(np.float64)))
    # descriptors are rotation-invariant: they stay
    return SupportShape(
        f"{shape.shape_id}#pca", points, shape.pseudo_labels, None, shape.descriptors
    )


def _repeat_labels(labels: PseudoLabels, times: int) -> PseudoLabels:
    """The same boxes ``times`` times: the zero-shot support of Sec. 5.1 (the loss scales by M)."""
    return labels.select_boxes(np.repeat(np.arange(labels.num_boxes), max(times, 1)))


def segment(inputs: str | list[str], parts: str | list[str], **options: Any) -> list[SegmentResult]:
    """Python API: ``segment("chair.glb", "back,seat,leg,arm", support_dir="chairs/")``.

    Options are the fields of :class:`SegmentOptions`; adaptation settings
    (``steps``, ``lr``, ``support_size``, ``strategy``) may be given flat.
    """
    from .parts import parse_part_names

    adapt_keys = {f.name for f in dataclasses.fields(AdaptSettings)}
    adapt = AdaptSettings(**{k: options.pop(k) for k in list(options) if k in adapt_keys})
    if "support_dir" in options and options["support_dir"] is not None:
        options["support_dir"] = Path(options["support_dir"])
    if "out_dir" in options and options["out_dir"] is not None:
        options["out_dir"] = Path(options["out_dir"])
    segment_options = SegmentOptions(adapt=adapt, **options)
    part_names = parse_part_names(parts if isinstance(parts, str) else ",".join(parts))
    paths = expand_inputs([inputs] if isinstance(inputs, str) else list(inputs))
    check_inputs(paths, segment_options.out_dir, collisions=segment_options.write, fail_fast=False)
    segmenter = Segmenter(part_names, segment_options)
    return [segmenter.run(path) for path in paths]
