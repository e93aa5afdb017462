"""``label_asset``: an asset and part names -> dense points and pseudo labels ``C = {(M^d, Y^d)}``."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, UsageError
from ..io.asset import Asset, PointSample
from ..render import Rendering, RenderSettings
from .pseudo_labels import FORMAT_VERSION, PseudoLabels

log = logging.getLogger("bipart")

LABELERS = ("detector", "given", "simulated", "none")
# segment's --labeler: these, or "auto" (segment picks one from what it has)
SEGMENT_LABELERS = ("auto", "detector", "none", "given", "simulated")


@dataclass
class LabelResult:
    """dense : PointSample (n points); pseudo_labels over those n points; rendering or None."""

    dense: PointSample
    pseudo_labels: PseudoLabels
    rendering: Rendering | None = None


class NoLabeler:
    """``none``: no boxes (for shapes that are segmented without pseudo labels)."""

    name = "none"

    def __init__(self, **options: Any) -> None:
        if options:
            raise TypeError(f"the none labeler takes no options, got {sorted(options)}")

    @property
    def config(self) -> dict[str, Any]:
        return {"labeler": self.name}

    def run(self, dense: PointSample, part_names: list[str], *, device: str = "cpu", seed: int = 0):
        empty = PseudoLabels(
            masks=np.zeros((0, len(dense)), bool),
            part_index=np.zeros(0, np.int64),
            scores=np.zeros(0, np.float32),
            part_names=list(part_names),
            provenance={**self.config, "simulated": False},
        )
        return empty, None

    def label(
        self, dense: PointSample, part_names: list[str], *, device: str = "cpu", seed: int = 0
    ):
        return self.run(dense, part_names, device=device, seed=seed)[0]


class DetectorLabeler:
    """Render the views, detect part boxes, back-project them (the paper's labeler).

    Options: ``detector`` (Hub id or folder), ``revision``, ``threshold``, ``offline``,
    ``batch_size``, ``render_settings``. The detector is loaded on first use.
    """

    name = "detector"

    def __init__(
        self,
        detector: str | Path | None = None,
        revision: str | None = None,
        threshold: float | None = None,
        offline: bool | None = None,
        batch_size: int = 2,
        render_settings: RenderSettings | None = None,
    ) -> None:
        from .detectors import DEFAULT_DETECTOR, PINNED_REVISIONS

        self.detector_id = str(detector or DEFAULT_DETECTOR)
        self.revision = revision if revision is not None else PINNED_REVISIONS.get(self.detector_id)
        self.threshold = threshold
        self.offline = offline
        self.batch_size = batch_size
        self.render_settings = render_settings or RenderSettings()
        self._detector = None

    @property
    def config(self) -> dict[str, Any]:
        return {
            "labeler": self.name,
            "model_id": self.detector_id,
            "revision": self.revision,
            "threshold": self.threshold,
            "render": self.render_settings.to_dict(),
        }

    def _load(self, device: str):
        from .detectors import load_detector

        if self._detector is None:
            self._detector = load_detector(
                self.detector_id,
                self.revision,
                self.threshold,
                self.offline,
                device,
                self.batch_size,
            )
        return self._detector

    def run(self, dense: PointSample, part_names: list[str], *, device: str = "cpu", seed: int = 0):
        """(PseudoLabels over the dense points, the Rendering the detector saw)."""
        from ..render import render_views
        from .backproject import backproject_boxes

        detector = self._load(device)
        rendering = render_views(
            dense.points, dense.colors, dense.normals, self.render_settings, device
        )
        detections = detector.detect(rendering.images, part_names)  # V x Detections
        projected = backproject_boxes(rendering, [d.boxes for d in detections], len(dense))
        boxes = np.concatenate([d.boxes for d in detections])
        pseudo = PseudoLabels(
            masks=projected.masks,
            part_index=np.concatenate([d.part_index for d in detections])[projected.box_index],
            scores=np.concatenate([d.scores for d in detections])[projected.box_index],
            part_names=list(part_names),
            view_index=projected.view_index,
            boxes=boxes[projected.box_index],
            provenance={
                **self.config,
                **detector.provenance,
                "render": self.render_settings.to_dict(),
                "path": str(detector.path),
            },
        )
        return pseudo, rendering

    def label(
        self, dense: PointSample, part_names: list[str], *, device: str = "cpu", seed: int = 0
    ):
        return self.run(dense, part_names, device=device, seed=seed)[0]


def make_labeler(name: str, **options: Any):
    """A labeler by name: ``detector``, ``given``, ``simulated`` or ``none``.

    Every labeler has ``label(dense, part_names, *, device, seed) -> PseudoLabels``,
    ``run(...) -> (PseudoLabels, Rendering | None)`` and ``config`` (a JSON dict).
    """
    from .given import GivenLabeler
    from .simulated import SimulatedLabeler

    classes = {
        "detector": DetectorLabeler,
        "given": GivenLabeler,
        "simulated": SimulatedLabeler,
        "none": NoLabeler,
    }
    if name not in classes:
        raise UsageError(f"unknown labeler {name!r}: choose one of {', '.join(LABELERS)}")
    try:
        return classes[name](**options)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"bad options for the {name} labeler: {exc}") from exc


def labels_for_parts(asset: Asset, dense: PointSample, part_names: list[str]) -> np.ndarray | None:
    """The dense points' labels (n,) int64 re-indexed to ``part_names`` (case-insensitive).

    Asset parts not in ``part_names`` become -1. None when the asset has no labels.
    """
    if dense.labels is None or not asset.part_names:
        return None
    wanted = {name.casefold(): index for index, name in enumerate(part_names)}
    mapping = np.array([wanted.get(name.casefold(), -1) for name in asset.part_names] + [-1])
    return mapping[np.asarray(dense.labels, dtype=np.int64)]  # -1 picks the trailing -1


def cache_key(
    asset: Asset, part_names: list[str], labeler_config: dict[str, Any], n_dense: int, seed: int
) -> str:
    """Hex key of (asset content, parts, labeler config, sampling) for the pseudo-label cache."""
    digest = hashlib.sha256()
    if asset.sha256:
        digest.update(asset.sha256.encode())
    else:  # built in memory: hash the geometry and labels
        for array in (asset.vertices, asset.faces, asset.labels):
            if array is not None:
                digest.update(np.ascontiguousarray(array).tobytes())
    payload = {
        "parts": list(part_names),
        "labeler": labeler_config,
        "n_dense": n_dense,
        "seed": seed,
        "format": FORMAT_VERSION,
    }
    digest.update(json.dumps(payload, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


def label_asset(
    asset: Asset,
    part_names: list[str],
    labeler: str | Any = "detector",
    *,
    n_dense: int = 100_000,
    seed: int = 0,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    **labeler_options: Any,
) -> LabelResult:
    """Sample the asset densely and make its pseudo labels.

    asset : a loaded Asset; part_names : R names (the prompt, in order)
    labeler : ``detector`` | ``given`` | ``simulated`` | ``none`` (options go to it), or a
        labeler made by :func:`make_labeler`, so a batch loads its detector once
    cache_dir : when set, pseudo labels are cached there as safetensors by
        (asset sha256, parts, labeler config, n_dense, seed); a hit skips the labeler
        and returns ``rendering=None``.
    Returns :class:`LabelResult` (dense PointSample of n points, PseudoLabels (D, n)).
    """
    from ..io.sample import sample_dense
    from ..runtime import resolve_device

    torch_device = str(resolve_device(device))
    worker = make_labeler(labeler, **labeler_options) if isinstance(labeler, str) else labeler
    dense = sample_dense(asset, n_dense, seed=seed)
    dense.labels = labels_for_parts(asset, dense, part_names)
    if worker.name in ("given", "simulated") and dense.labels is None:
        raise InvalidInputError(
            f"--labeler {worker.name} needs an asset with ground-truth part labels; this one has none"
        )
    if worker.name in ("given", "simulated") and not (dense.labels >= 0).any():
        raise InvalidInputError(
            f"--labeler {worker.name}: none of the parts {', '.join(part_names)} is labeled "
            f"in this asset (its parts: {', '.join(asset.part_names)})"
        )

    cached = None
    if cache_dir is not None:
        cached = (
            Path(cache_dir)
            / f"{cache_key(asset, part_names, worker.config, n_dense, seed)}.pseudo.safetensors"
        )
        if cached.is_file():
            log.debug("pseudo labels from cache %s", cached)
            return LabelResult(dense, PseudoLabels.load(cached), None)
    pseudo, rendering = worker.run(dense, part_names, device=torch_device, seed=seed)
    if cached is not None:
        pseudo.save(cached)
    return LabelResult(dense, pseudo, rendering)


def summarize_pseudo_labels(pseudo: PseudoLabels) -> dict[str, Any]:
    """JSON summary: box counts per part and per view, and every box with its score."""
    names = pseudo.part_names
    num_views = (
        int(pseudo.view_index.max()) + 1 if pseudo.num_boxes and pseudo.view_index.max() >= 0 else 0
    )
    covered = pseudo.masks.any(axis=0).mean() if pseudo.num_points else 0.0
    return {
        "num_boxes": pseudo.num_boxes,
        "num_points": pseudo.num_points,
        "covered_fraction": float(covered),
        "boxes_per_part": {
            name: int((pseudo.part_index == r).sum()) for r, name in enumerate(names)
        },
        "boxes_per_view": [int((pseudo.view_index == v).sum()) for v in range(num_views)],
        "boxes": [
            {
                "part": names[int(pseudo.part_index[d])],
                "view": int(pseudo.view_index[d]),
                "score": round(float(pseudo.scores[d]), 4),
                "box": None
                if np.isnan(pseudo.boxes[d]).any()
                else [round(float(x), 2) for x in pseudo.boxes[d]],
                "num_points": int(pseudo.masks[d].sum()),
            }
            for d in range(pseudo.num_boxes)
        ],
    }


def label_file(
    asset_path: str | Path,
    parts: str | list[str] | None,
    labeler: str = "detector",
    *,
    out_dir: str | Path | None = None,
    preview: str | Path | None = None,
    n_dense: int = 100_000,
    seed: int = 0,
    device: str = "auto",
    **labeler_options: Any,
) -> dict[str, Any]:
    """``bipart label``: load, label, write ``<stem>.pseudo.safetensors``, the preview PNG
    (default ``<stem>.pseudo.png``) and ``<stem>.pseudo.json``; returns the JSON summary."""
    from ..io import load_asset
    from ..io.atomic import staged_outputs
    from ..parts import parse_part_names
    from ..render import render_views
    from .preview import write_contact_sheet

    asset = load_asset(asset_path)
    if parts is None:
        if labeler != "given" or not asset.part_names:
            raise UsageError('--parts is required, e.g. --parts "back,seat,leg,arm"')
        parts = list(asset.part_names)
    part_names = parse_part_names(parts)
    labeler_options = {key: value for key, value in labeler_options.items() if value is not None}
    result = label_asset(
        asset, part_names, labeler, n_dense=n_dense, seed=seed, device=device, **labeler_options
    )

    folder = Path(out_dir) if out_dir is not None else Path(asset_path).resolve().parent
    stem = asset.stem
    paths = {
        "pseudo_labels": folder / f"{stem}.pseudo.safetensors",
        "summary": folder / f"{stem}.pseudo.json",
    }
    rendering = result.rendering
    if rendering is None and labeler != "none":  # given labels: still show the asset's views
        rendering = render_views(result.dense.points, result.dense.colors, result.dense.normals)
    if rendering is not None:
        paths["preview"] = Path(preview) if preview is not None else folder / f"{stem}.pseudo.png"
    summary = {
        "asset": str(asset_path),
        "sha256": asset.sha256,
        "parts": part_names,
        "labeler": labeler,
        "seed": seed,
        "provenance": result.pseudo_labels.provenance,
        **summarize_pseudo_labels(result.pseudo_labels),
        "outputs": {key: str(value) for key, value in paths.items()},
    }
    with staged_outputs(f"outputs to {folder}") as outputs:  # all three files or none
        result.pseudo_labels.save(outputs.stage(paths["pseudo_labels"]))
        if "preview" in paths:
            write_contact_sheet(rendering, result.pseudo_labels, outputs.stage(paths["preview"]))
        outputs.stage(paths["summary"]).write_text(
            json.dumps(summary, indent=2, default=str), encoding="utf-8"
        )
    return summary
