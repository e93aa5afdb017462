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
from .errors import BipartError, InvalidInputError, ModelUnavailableError, UsageError
from .runtime import log
from .support import SupportShape

if TYPE_CHECKING:
    import torch

    from .io import Asset, PointSample
    from .labeling.pseudo_labels import PseudoLabels


@dataclass
class SegmentOptions:
    """Everything ``bipart segment`` can be told; the Python API takes the same.

    ``n_dense`` is the CLI's ``--points`` (dense points sampled and labeled per asset);
    ``n_points`` is the network's point count (2048 by the paper), not a CLI option.
    """

    index: str | None = None
    support_dir: Path | None = None
    category: str | None = None
    weights: str | None = None
    weights_revision: str | None = None
    labeler: str = "auto"
    labeler_options: dict[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None
    preview: bool = False
    colorize: bool = False
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
        """The same checks as the CLI's, for the Python API (a :class:`UsageError` each)."""
        from .orientation import UP_CHOICES
        from .runtime import check_choice, check_count, check_out_dir, check_rate
        from .support import STRATEGIES

        check_choice("--up", self.up, UP_CHOICES)
        check_choice("--labeler", self.labeler, SEGMENT_LABELERS)
        check_count("--points (n_dense)", self.n_dense, 1, 50_000_000)
        check_count("n_points", self.n_points, 1, 1_000_000)
        check_count("--steps", self.adapt.steps, 1, 10_000)
        check_rate("--lr", self.adapt.lr, 100.0)
        check_count("--support-size", self.adapt.support_size, 1, 1_000)
        check_count("--batch-points", self.adapt.batch_points, 0, 50_000_000)
        check_count("--smooth", self.adapt.smooth, 0, 1_000)
        check_choice("--strategy", self.adapt.strategy, STRATEGIES)
        check_out_dir("--out-dir", self.out_dir)


SEGMENT_LABELERS = ("auto", "detector", "none", "given", "simulated")


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
    labeler: str = ""
    warnings: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
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


def cache_root() -> Path:
    """bipart's own cache: ``$BIPART_CACHE`` or ``~/.cache/bipart``."""
    return Path(os.environ.get("BIPART_CACHE", Path.home() / ".cache" / "bipart"))


def support_cache_dir(folder: Path) -> Path:
    """Where ``--support DIR`` is indexed: ``<cache_root>/support/<hash of the path>``."""
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return cache_root() / "support" / key


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
    """Head inputs per support shape, computed once per model and reused by every target.

    With a ``store`` folder the network's features of each support shape are also
    kept on disk (float16 safetensors, keyed by the model's sha256 and the shape's
    points and cached encoder features), so a later process runs no network pass
    over them. With a store, features are rounded to float16 whether they were
    just computed or read back, so a warm run labels exactly as the cold one did.
    An unreadable file is recomputed and replaced.
    """

    def __init__(
        self, model, device, settings: AdaptSettings | None = None, store: Path | None = None
    ) -> None:
        self.model = model
        self.device = device
        self.settings = settings or AdaptSettings()
        self.store = store
        self._model_sha256: str | None = None
        self._features: dict[str, torch.Tensor] = {}

    def features(self, shapes: list[SupportShape]) -> torch.Tensor:
        """(M, N, C') head inputs of ``shapes``, computing only the missing ones."""
        import torch

        missing = [s for s in shapes if s.shape_id not in self._features]
        if missing:
            extracted = self._network_features(missing)  # (m, N, C)
            descriptors = None
            if self.settings.descriptors != "none":
                described = [
                    shape_descriptors(s.points, s.descriptors, self.settings) for s in missing
                ]
                descriptors = torch.from_numpy(np.stack(described)).to(self.device)
            extracted = head_inputs(extracted, descriptors)  # (m, N, C')
            for shape, feats in zip(missing, extracted, strict=True):
                self._features[shape.shape_id] = feats
        return torch.stack([self._features[s.shape_id] for s in shapes])

    def _network_features(self, shapes: list[SupportShape]) -> torch.Tensor:
        """(m, N, C) extractor features, from the store where it has them."""
        import torch

        paths = [self._stored_path(s) for s in shapes]
        found = [_read_features(path) for path in paths]
        todo = [i for i, feats in enumerate(found) if feats is None]
        if todo:
            points = np.stack([shapes[i].points for i in todo])
            points = torch.from_numpy(points).float().to(self.device)
            cached = [shapes[i].encoder_features for i in todo]
            encoded = None
            if all(c is not None for c in cached):
                encoded = torch.from_numpy(np.stack(cached)).float().to(self.device)
            with torch.no_grad():
                computed = self.model.extract(points, encoder_features=encoded)  # (t, N, C)
            if self.store is not None:  # as the store will give them back
                computed = computed.to(torch.float16)
            for i, feats in zip(todo, computed, strict=True):
                found[i] = feats
                if paths[i] is not None:
                    _write_features(paths[i], feats)
        return torch.stack([f.to(self.device) for f in found]).float()  # (m, N, C)

    def _stored_path(self, shape: SupportShape) -> Path | None:
        if self.store is None:
            return None
        if self._model_sha256 is None:
            self._model_sha256 = self.model.sha256()
        digest = hashlib.sha256(np.ascontiguousarray(shape.points, dtype=np.float32).tobytes())
        if shape.encoder_features is not None:  # cached (float16) encoder features feed it
            digest.update(np.ascontiguousarray(shape.encoder_features).tobytes())
        return self.store / self._model_sha256[:16] / f"{digest.hexdigest()[:32]}.safetensors"


def _read_features(path: Path | None) -> torch.Tensor | None:
    if path is None or not path.is_file():
        return None
    from safetensors.torch import load_file

    try:
        return load_file(str(path))["features"]
    except Exception as exc:  # noqa: BLE001 - a damaged cache entry is recomputed, never fatal
        log.debug("recomputing the cached features in %s: %s", path, exc)
        return None


def _write_features(path: Path, features: torch.Tensor) -> None:
    from safetensors.torch import save_file

    from .io.atomic import atomic_path

    try:
        with atomic_path(path) as tmp:
            save_file({"features": features.cpu().contiguous()}, str(tmp))
    except OSError as exc:  # a read-only or full cache only costs speed
        log.debug("cannot cache features in %s: %s", path, exc)


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
    labels = pack_labels(label_list, num_parts, device=device, normalise=settings.normalise)
    head_0 = model.head_params()
    head_0 = widen_head(head_0, features.shape[-1] - head_0["fc1.weight"].shape[1])
    with torch.no_grad():
        head = adapt_head(
            features,
            labels,
            head_0,
            steps=settings.steps,
            lr=settings.lr,
            box_reduction=settings.shape_reduction,
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


def preview_splat_radius(points: np.ndarray, settings) -> float:
    """Splat radius (pixels) that closes the gaps between surface points (n, 3).

    Each splat reaches the median distance to a point's 6th nearest neighbour, seen at
    the nearest depth the unit sphere can have: a pixel then has ~6 points within reach,
    so a random sample leaves no holes (e^-6) for the far side to show through; the
    z-buffer keeps the nearest splat. Clipped to 1.5..10 pixels.
    """
    import math

    from scipy.spatial import cKDTree

    if len(points) < 8:
        return 1.5
    rng = np.random.default_rng(0)
    probes = points[rng.choice(len(points), min(len(points), 2000), replace=False)]
    distances, _ = cKDTree(points).query(probes, k=7)  # self + 6 neighbours
    reach = float(np.median(distances[:, -1]))
    focal = (settings.image_size / 2) / math.tan(math.radians(settings.fov_deg) / 2)
    return float(np.clip(reach * focal / max(settings.distance - 1.0, 0.1), 1.5, 10.0))


def write_preview(
    dense: PointSample,
    labels: np.ndarray,
    part_names: list[str],
    path: Path,
    device="cpu",
    up: str = "y",
    title: str | None = None,
    outputs=None,
) -> Path:
    """A PNG with four views of the labeled dense cloud, a title and a legend.

    The cloud is shown in bipart's Y-up frame after ``up`` (as the network saw it),
    with z-buffered splats sized to the point density (no pinholes, no far side).
    ``outputs`` (a :class:`~bipart_cli.io.atomic.StagedOutputs`): stage the PNG there
    instead of writing it now.
    """
    import dataclasses

    from PIL import Image, ImageDraw

    from .io.atomic import atomic_path
    from .orientation import apply_rotation, up_rotation
    from .parts import part_colors
    from .render import RenderSettings, render_views

    rotation = up_rotation(dense.points, up)
    points = apply_rotation(dense.points, rotation)
    normals = None if dense.normals is None else apply_rotation(dense.normals, rotation)
    # Elevation 30: the camera (2.2 from the centre) is then above the unit sphere, so tops
    # show; at 20 it sits at height 0.75, the horizon, where a chair back is seen edge-on.
    views = [(30.0, 30.0), (30.0, 120.0), (30.0, 210.0), (30.0, 300.0)]
    size = 384
    settings = RenderSettings(image_size=size, views=views)
    settings = dataclasses.replace(settings, point_radius=preview_splat_radius(points, settings))
    colors = part_colors_for(labels, len(part_names))
    rendering = render_views(points, colors, normals, settings=settings, device=device)
    tiles = [Image.fromarray(img) for img in rendering.images]
    top = 24
    sheet = Image.new("RGB", (size * len(tiles), top + size + 28), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, (i * size, top))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((8, 6), title, fill="black")
    x = 8
    for name, color in zip(part_names, part_colors(len(part_names)), strict=True):
        draw.rectangle(
            [x, top + size + 8, x + 14, top + size + 22], fill=tuple(int(c) for c in color)
        )
        draw.text((x + 18, top + size + 9), name, fill="black")
        x += 26 + 7 * len(name)
    if outputs is not None:
        sheet.save(outputs.stage(path), format="PNG")
        return path
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


class Segmenter:
    """Holds the model, labeler and support source; segments one input at a time."""

    def __init__(self, part_names: list[str] | None, options: SegmentOptions, stages=None) -> None:
        from .runtime import (
            Stages,
            keep_freed_tensor_memory,
            resolve_device,
            seed_everything,
        )
        from .weights import resolve_weights

        self.part_names = list(part_names or [])
        self.options = options
        self.stages = stages if stages is not None else Stages(quiet=True)
        # the labeler first: a detector that cannot be had fails here, before any heavy work
        self.labeler_name = self._choose_labeler()
        self.device = resolve_device(options.device)
        keep_freed_tensor_memory()
        seed_everything(options.seed)
        with self.stages("load", "weights"):
            self.model, self.weights_info = resolve_weights(
                options.weights, options.weights_revision, seed=options.seed, device=self.device
            )
        r_max = self.model.config.r_max
        if len(self.part_names) > r_max:
            raise UsageError(
                f"--parts lists {len(self.part_names)} parts but the model has at most {r_max} (R_max)"
            )
        with self.stages("support", str(options.support_dir or options.index or "none")):
            self.bank = self._open_support()
        if self.labeler_name == "auto-index":
            self.labeler_name = self._fallback_for_index()
        self.labeler = self._make_labeler()
        # a support folder is indexed in bipart's cache; its shapes' features are kept there too
        store = None if options.support_dir is None else cache_root() / "features"
        self.feature_cache = FeatureCache(self.model, self.device, options.adapt, store=store)
        self._unprovided: list[str] = []
        self._input_mark: tuple[float, dict[str, float]] | None = None
        if self.labeler is None and self.bank is None and not options.zero_shot:
            raise UsageError(
                "nothing to adapt on: give --index or --support, or a labeler other than 'none'"
            )

    @property
    def mode(self) -> str:
        if self.bank is None:
            return "zero-shot"
        return "few-shot" if self.labeler is None else "vlm"

    def _choose_labeler(self) -> str:
        """The labeler to use: ``auto`` becomes the detector when its weights can be had, else
        ``none`` (few-shot) with a labeled support; a detector that cannot be had fails at once."""
        from .labeling.detectors import DEFAULT_DETECTOR, WAYS_FORWARD, detector_unavailable

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
        from .labeling.detectors import WAYS_FORWARD

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
        from .labeling import make_labeler

        options = self.options.labeler_options if self.labeler_name == "detector" else {}
        return make_labeler(self.labeler_name, **options)

    def _open_support(self):
        from .support import SupportBank

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

        # the input's timings start before its load
        self._input_mark = (time.perf_counter(), dict(self.stages.seconds))
        with self.stages("load", path.name):
            asset = load_asset(path)
        return self.segment_asset(asset)

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
        with self.stages("support", f"{self.options.adapt.support_size} shapes"):
            support = self.retrieve(network_points, part_names, exclude_sha256, category)
        self._unprovided = unprovided_parts(part_names, support, target_labels)
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
        return labels, scores, [s.shape_id for s in support]

    def segment_asset(self, asset: Asset) -> SegmentResult:
        from .io import sample_dense, sample_network_indices

        mark, self._input_mark = self._input_mark, None
        started, before = mark or (time.perf_counter(), dict(self.stages.seconds))
        with self.stages("load", f"sample {self.options.n_dense} points"):
            dense = sample_dense(asset, n_points=self.options.n_dense, seed=self.options.seed)
            network_idx = sample_network_indices(
                dense.points, self.options.n_points, seed=self.options.seed
            )

        target_labels = None
        if self.labeler_name in ("given", "simulated"):  # ground truth in --parts order
            from .labeling.api import labels_for_parts

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
        warnings = [
            f"no support shape or detector box provides the part {name!r}"
            for name in self._unprovided
        ]
        for warning in warnings:
            log.warning("%s: %s", asset.source or "asset", warning)
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
        if self.options.write:
            with self.stages("write", str(self.options.out_dir or "next to the input")):
                self._write(asset, dense, result, started, before)
        else:
            self._summarize(result)
        result.timings = self._timings(started, before)
        return result

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
        from .io import write_outputs
        from .io.atomic import staged_outputs

        out_dir = self.options.out_dir or (asset.source.parent if asset.source else Path.cwd())
        self._summarize(result)
        outputs: dict[str, str] = {}
        if self.options.preview:  # staged with the other files below
            outputs["preview"] = str(Path(out_dir) / f"{asset.stem}.parts.png")
        metadata = {
            "weights": result.weights,
            "mode": result.mode,
            "labeler": self.labeler_name,
            "up": self.options.up,
            "support": result.support,
            "adapt": self.options.adapt.__dict__,
            "seed": self.options.seed,
            "device": str(self.device),
            "settings": self.settings(),
            "warnings": result.warnings,
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
            )
            if self.options.preview:
                write_preview(
                    dense,
                    result.dense_labels,
                    self.part_names,
                    Path(outputs["preview"]),
                    device=str(self.device),
                    up=self.options.up,
                    title=f"{asset.source.name if asset.source else asset.stem}, up {self.options.up}",
                    outputs=staged,
                )
        result.outputs = {
            **{k: str(v) for k, v in paths.__dict__.items() if v is not None},
            **outputs,
        }


def unprovided_parts(
    part_names: list[str], support: list[SupportShape], target_labels: PseudoLabels | None
) -> list[str]:
    """The requested parts that no support shape and no target box labels (in ``part_names`` order)."""
    provided: set[int] = set()
    for labels in [s.pseudo_labels for s in support] + (
        [] if target_labels is None else [target_labels]
    ):
        has_points = labels.masks.any(axis=1) if labels.num_boxes else np.zeros(0, bool)
        provided.update(int(p) for p in labels.part_index[has_points])
    return [name for i, name in enumerate(part_names) if i not in provided]


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
    (``steps``, ``lr``, ``support_size``, ``strategy``) may be given flat. As on the CLI,
    ``points`` (``--points``) is ``n_dense``: the dense points sampled and labeled per
    asset; ``n_points`` is the network's point count (2048), not a CLI option.
    ``write=False`` writes nothing (results only); ``out_dir`` sets where outputs go
    (default: beside each input).
    """
    from .parts import parse_part_names

    if "points" in options:
        if "n_dense" in options and options["n_dense"] != options["points"]:
            raise UsageError("give points (the CLI's --points) or n_dense, not both")
        options["n_dense"] = options.pop("points")

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
