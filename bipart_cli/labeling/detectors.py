"""Open-vocabulary part detectors (GLIP-class) through ``transformers``.

There is no GLIP in transformers, so the detectors are:

- :class:`GroundingDinoDetector`: ``GroundingDinoForObjectDetection`` (default
  ``IDEA-Research/grounding-dino-tiny`` at a pinned revision) and
  ``MMGroundingDinoForObjectDetection`` (MM-Grounding-DINO and LLMDet checkpoints),
  picked from the checkpoint's ``config.json``.
- :class:`Owlv2Detector`: ``google/owlv2-base-patch16-ensemble``.

The prompt is the bare part names, ``"back. seat. leg. arm."`` (PartSLIP: bare
names beat "X of a chair"). Each predicted box is scored on each part from the
token logits: for Grounding DINO the max sigmoid over the tokens of that part's
name, the names being the token runs between the ``.`` delimiter tokens (the
processor's decoded ``text_labels`` are not used: they merge and drop sub-words).
A box keeps its best part when that score exceeds the threshold. Boxes are clipped
to the image; views run in small batches.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelUnavailableError, UsageError

log = logging.getLogger("bipart")

GROUNDING_DINO_TINY = "IDEA-Research/grounding-dino-tiny"
GROUNDING_DINO_TINY_REVISION = "a2bb814dd30d776dcf7e30523b00659f4f141c71"
OWLV2_BASE = "google/owlv2-base-patch16-ensemble"
DEFAULT_DETECTOR = GROUNDING_DINO_TINY
PINNED_REVISIONS = {GROUNDING_DINO_TINY: GROUNDING_DINO_TINY_REVISION}
DEFAULT_THRESHOLD = 0.5
DELIMITER = "."
WAYS_FORWARD = (
    "ways forward: --labeler none with a labeled --support DIR or --index (few-shot), "
    "--detector DIR (a saved detector), or go online so the detector can be downloaded"
)
HOW_TO_GET = WAYS_FORWARD


@dataclass
class Detections:
    """The boxes of one view.

    boxes : (k, 4) float32
        ``x0, y0, x1, y1`` in pixels, top-left origin, clipped to the image.
    part_index : (k,) int64
    scores : (k,) float32
    """

    boxes: np.ndarray
    part_index: np.ndarray
    scores: np.ndarray

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32))


def part_prompt(part_names: list[str]) -> str:
    """``["back", "seat"]`` -> ``"back. seat."`` (lower case, bare names)."""
    for name in part_names:
        if DELIMITER in name:
            raise UsageError(f"part name {name!r} contains {DELIMITER!r}, the prompt delimiter")
    return " ".join(f"{name.strip().lower()}{DELIMITER}" for name in part_names)


def token_spans(
    input_ids: list[int], delimiter_ids: set[int], special_ids: set[int]
) -> list[list[int]]:
    """Token positions of each name: the runs between delimiter tokens, specials skipped."""
    spans: list[list[int]] = []
    current: list[int] = []
    for position, token in enumerate(input_ids):
        if token in special_ids:
            continue
        if token in delimiter_ids:
            if current:
                spans.append(current)
            current = []
        else:
            current.append(position)
    if current:
        spans.append(current)
    return spans


def part_scores_from_token_logits(logits: Any, spans: list[list[int]]) -> Any:
    """Per-box part scores: max sigmoid over each part's tokens.

    logits : (B, Q, T) token logits  ->  (B, Q, R) float, R = len(spans)
    """
    import torch

    probs = logits.sigmoid()
    return torch.stack([probs[..., span].amax(dim=-1) for span in spans], dim=-1)


def select_boxes(
    boxes_cxcywh: Any, part_scores: Any, image_size: tuple[int, int], threshold: float
) -> Detections:
    """Keep boxes whose best part scores above ``threshold``; to pixels, clipped.

    boxes_cxcywh : (Q, 4) normalised centre/size, part_scores : (Q, R), image_size : (H, W)
    """
    import torch

    height, width = image_size
    score, part = part_scores.max(dim=-1)  # (Q,), (Q,)
    keep = score > threshold
    cx, cy, w, h = boxes_cxcywh[keep].float().unbind(-1)
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    xyxy = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1) * scale
    xyxy[:, 0::2] = xyxy[:, 0::2].clamp(0, width)
    xyxy[:, 1::2] = xyxy[:, 1::2].clamp(0, height)
    proper = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    return Detections(
        boxes=xyxy[proper].cpu().numpy().astype(np.float32),
        part_index=part[keep][proper].cpu().numpy().astype(np.int64),
        scores=score[keep][proper].cpu().numpy().astype(np.float32),
    )


def nms_per_part(detections: Detections, iou_threshold: float = 0.5) -> Detections:
    """Greedy non-maximum suppression within each part (OWL predicts one box per patch)."""
    order = np.argsort(-detections.scores, kind="stable")
    kept: list[int] = []
    for index in order:
        same = [k for k in kept if detections.part_index[k] == detections.part_index[index]]
        if (
            not same
            or box_iou(detections.boxes[index], detections.boxes[same]).max() <= iou_threshold
        ):
            kept.append(int(index))
    kept_idx = np.array(sorted(kept), dtype=np.int64)
    return Detections(
        detections.boxes[kept_idx], detections.part_index[kept_idx], detections.scores[kept_idx]
    )


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) with boxes (k, 4), ``x0, y0, x1, y1``."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


class _HubDetector:
    """Shared loading and batching; subclasses implement ``_detect_batch``."""

    backend = ""

    def __init__(
        self,
        model: str | Path = DEFAULT_DETECTOR,
        revision: str | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        offline: bool | None = None,
        device: str = "cpu",
        batch_size: int = 2,
    ) -> None:
        import torch

        self.model_id = str(model)
        self.revision = revision if revision is not None else PINNED_REVISIONS.get(self.model_id)
        self.threshold = float(threshold)
        self.batch_size = max(1, int(batch_size))
        self.device = torch.device(device)
        self.path = resolve_detector(self.model_id, self.revision, offline)
        self.model, self.processor = self._load(self.path)
        self.model.to(self.device).eval()

    def _load(self, path: Path) -> tuple[Any, Any]:
        raise NotImplementedError

    def _detect_batch(self, images: np.ndarray, part_names: list[str]) -> list[Detections]:
        raise NotImplementedError

    @property
    def provenance(self) -> dict[str, Any]:
        return {
            "labeler": "detector",
            "backend": self.backend,
            "model_id": self.model_id,
            "revision": self.revision,
            "threshold": self.threshold,
            "simulated": False,
        }

    def detect(self, images: np.ndarray, part_names: list[str]) -> list[Detections]:
        """Boxes per view. images : (V, H, W, 3) uint8  ->  V :class:`Detections`."""
        import torch

        results: list[Detections] = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                results.extend(
                    self._detect_batch(images[start : start + self.batch_size], part_names)
                )
        return results


class GroundingDinoDetector(_HubDetector):
    """Grounding DINO / MM-Grounding-DINO / LLMDet, scored per part from token logits."""

    backend = "grounding-dino"

    def _load(self, path: Path) -> tuple[Any, Any]:
        from transformers import (
            GroundingDinoForObjectDetection,
            GroundingDinoProcessor,
            MMGroundingDinoForObjectDetection,
        )

        model_type = _model_type(path)
        model_class = (
            MMGroundingDinoForObjectDetection
            if model_type == "mm-grounding-dino"
            else GroundingDinoForObjectDetection
        )
        with _quiet_transformers():
            model = model_class.from_pretrained(str(path))
            processor = GroundingDinoProcessor.from_pretrained(str(path))
        return model, processor

    def _detect_batch(self, images: np.ndarray, part_names: list[str]) -> list[Detections]:
        height, width = images.shape[1:3]
        prompt = part_prompt(part_names)
        # Process at the render size: the default resize upsamples to 800 px.
        size = {"shortest_edge": min(height, width), "longest_edge": max(height, width)}
        pixels = self.processor.image_processor(list(images), size=size, return_tensors="pt")
        text = self.processor.tokenizer([prompt] * len(images), padding=True, return_tensors="pt")
        max_len = self.model.config.max_text_len
        if text["input_ids"].shape[1] > max_len:
            raise UsageError(
                f"the part names make a prompt longer than the detector's {max_len} tokens"
            )
        spans = self._spans(text["input_ids"][0].tolist(), len(part_names))
        inputs = {**pixels, **text}
        outputs = self.model(**{key: value.to(self.device) for key, value in inputs.items()})
        scores = part_scores_from_token_logits(outputs.logits, spans)  # (B, Q, R)
        return [
            select_boxes(
                outputs.pred_boxes[b].cpu(), scores[b].cpu(), (height, width), self.threshold
            )
            for b in range(len(images))
        ]

    def _spans(self, input_ids: list[int], num_parts: int) -> list[list[int]]:
        tokenizer = self.processor.tokenizer
        delimiter_ids = {tokenizer.convert_tokens_to_ids(DELIMITER)}
        special_ids = set(tokenizer.all_special_ids)
        spans = token_spans(input_ids, delimiter_ids, special_ids)
        if len(spans) != num_parts:
            raise UsageError(
                f"the detector's tokenizer split the {num_parts} part names into {len(spans)} phrases"
            )
        return spans


class Owlv2Detector(_HubDetector):
    """OWLv2: one text query per part, sigmoid of the per-query logits, per-part NMS."""

    backend = "owlv2"

    def _load(self, path: Path) -> tuple[Any, Any]:
        from transformers import Owlv2ForObjectDetection, Owlv2Processor

        with _quiet_transformers():
            model = Owlv2ForObjectDetection.from_pretrained(str(path))
            processor = Owlv2Processor.from_pretrained(str(path))
        return model, processor

    def _detect_batch(self, images: np.ndarray, part_names: list[str]) -> list[Detections]:
        height, width = images.shape[1:3]
        queries = [[name.strip().lower() for name in part_names]] * len(images)
        max_length = self.model.config.text_config.max_position_embeddings
        inputs = self.processor(
            text=queries,
            images=list(images),
            padding="max_length",
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        outputs = self.model(**{key: value.to(self.device) for key, value in inputs.items()})
        scores = outputs.logits.sigmoid()  # (B, P, R)
        # OWLv2 boxes are relative to the padded square input; renders are square.
        return [
            nms_per_part(
                select_boxes(
                    outputs.pred_boxes[b].cpu(), scores[b].cpu(), (height, width), self.threshold
                )
            )
            for b in range(len(images))
        ]


def resolve_detector(model: str, revision: str | None, offline: bool | None) -> Path:
    """Local folder or Hub snapshot of a detector; :class:`ModelUnavailableError` when missing."""
    from ..hub import resolve_pretrained

    path = resolve_pretrained(model, revision=revision, offline=offline, hint=HOW_TO_GET)
    if not (path / "config.json").is_file():
        raise ModelUnavailableError(
            f"detector folder {path} has no config.json: not a saved transformers model"
        )
    return path


def detector_unavailable(
    model: str, revision: str | None = None, offline: bool | None = None
) -> str | None:
    """Why the detector's weights cannot be had, or None when they can (quick: no download).

    A local folder or a Hub-cache hit is available; otherwise the Hub must be online
    and reachable (a short connection probe, never a retrying request).
    """
    from ..hub import hub_unreachable, in_hub_cache, looks_like_repo_id, offline_from_env

    revision = revision if revision is not None else PINNED_REVISIONS.get(model)
    local = Path(model).expanduser()
    if local.is_dir():
        return (
            None
            if (local / "config.json").is_file()
            else f"detector folder {local} has no config.json"
        )
    if not (model.startswith("hf://") or looks_like_repo_id(model)):
        return f"no such detector folder: {model}"
    at = model + (f"@{revision}" if revision else "")
    if in_hub_cache(model, revision):
        return None
    if offline_from_env() if offline is None else offline:
        return f"the detector {at} is not in the Hub cache and offline mode is on"
    problem = hub_unreachable()
    if problem:
        return f"the detector {at} is not in the Hub cache and {problem}"
    return None


def _model_type(path: Path) -> str:
    try:
        return str(json.loads((path / "config.json").read_text()).get("model_type", ""))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"cannot read {path / 'config.json'}: {exc}") from exc


BACKENDS = {
    "grounding-dino": GroundingDinoDetector,
    "mm-grounding-dino": GroundingDinoDetector,
    "owlv2": Owlv2Detector,
}


def load_detector(
    model: str | Path = DEFAULT_DETECTOR,
    revision: str | None = None,
    threshold: float | None = None,
    offline: bool | None = None,
    device: str = "cpu",
    batch_size: int = 2,
) -> _HubDetector:
    """The detector class that fits the checkpoint's ``model_type``, loaded and on ``device``."""
    model = str(model)
    revision = revision if revision is not None else PINNED_REVISIONS.get(model)
    path = resolve_detector(model, revision, offline)
    model_type = _model_type(path)
    if model_type not in BACKENDS:
        raise ModelUnavailableError(
            f"{model} is a {model_type or 'unknown'} model; supported: {', '.join(sorted(BACKENDS))}"
        )
    return BACKENDS[model_type](
        model,
        revision=revision,
        threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
        offline=offline,
        device=device,
        batch_size=batch_size,
    )


class _quiet_transformers:
    """Silence transformers' load-time warnings and progress bars while loading."""

    def __enter__(self) -> None:
        from transformers.utils import logging as hf_logging

        self._level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()

    def __exit__(self, *exc: object) -> None:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity(self._level)
        hf_logging.enable_progress_bar()
