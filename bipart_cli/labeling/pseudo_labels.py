"""Pseudo labels ``C = {(M^d, Y^d)}`` of the paper (Sec. 3.2).

Each detected box ``d`` carries a point mask ``M^d`` over the points it was made
for, the part it names and its score. ``Y^d`` is the one-hot of that part times
the score, so ``H^d = score`` and ``Z^d = onehot(part)`` in Eq. 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError

FORMAT_VERSION = 1


@dataclass
class PseudoLabels:
    """Boxes back-projected to points.

    Attributes
    ----------
    masks : (D, N) bool
        ``M^d``: the points of box d.
    part_index : (D,) int64
        Index into ``part_names`` of the part box d names.
    scores : (D,) float32
        The box's score on its part (``H^d``).
    view_index : (D,) int64
        Rendered view the box came from; -1 for boxes not from a view.
    boxes : (D, 4) float32
        ``x0, y0, x1, y1`` in pixels (top-left origin); NaN when not from a view.
    part_names : list of str
    provenance : dict
        labeler, model id and revision, render settings, ``simulated`` flag.
    """

    masks: np.ndarray
    part_index: np.ndarray
    scores: np.ndarray
    part_names: list[str]
    view_index: np.ndarray | None = None
    boxes: np.ndarray | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        masks = np.asarray(self.masks, dtype=bool)
        if masks.ndim != 2:  # (D, N) expected; a flat array is reshaped, no boxes -> (0, 0)
            masks = (
                masks.reshape(len(self.part_index), -1)
                if len(self.part_index)
                else masks.reshape(0, 0)
            )
        self.masks = masks
        self.part_index = np.asarray(self.part_index, dtype=np.int64).reshape(-1)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        n = len(self.part_index)
        if self.view_index is None:
            self.view_index = np.full(n, -1, dtype=np.int64)
        if self.boxes is None:
            self.boxes = np.full((n, 4), np.nan, dtype=np.float32)
        self.view_index = np.asarray(self.view_index, dtype=np.int64)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(n, 4)

    @property
    def num_boxes(self) -> int:
        return len(self.part_index)

    @property
    def num_points(self) -> int:
        return self.masks.shape[1]

    @property
    def num_parts(self) -> int:
        return len(self.part_names)

    def subset(self, point_indices: np.ndarray) -> PseudoLabels:
        """Restrict the masks to the points ``point_indices`` (k,), e.g. the FPS subset."""
        return PseudoLabels(
            masks=self.masks[:, point_indices],
            part_index=self.part_index.copy(),
            scores=self.scores.copy(),
            part_names=list(self.part_names),
            view_index=self.view_index.copy(),
            boxes=self.boxes.copy(),
            provenance=dict(self.provenance),
        )

    def select_boxes(
        self,
        rows: np.ndarray,
        part_index: np.ndarray | None = None,
        part_names: list[str] | None = None,
    ) -> PseudoLabels:
        """The boxes at ``rows`` (k,) (a mask, or indices that may repeat), over the same points.

        ``part_index`` (k,) and ``part_names`` replace the selected boxes' parts,
        e.g. after re-indexing them to another part list.
        """
        return PseudoLabels(
            masks=self.masks[rows],
            part_index=self.part_index[rows] if part_index is None else part_index,
            scores=self.scores[rows],
            part_names=list(self.part_names if part_names is None else part_names),
            view_index=self.view_index[rows],
            boxes=self.boxes[rows],
            provenance=dict(self.provenance),
        )

    def votes(self) -> np.ndarray:
        """``W = Σ_d M^d Y^d``, the per-point part votes, (N, R) float32."""
        votes = np.zeros((self.num_points, self.num_parts), dtype=np.float32)
        for part in range(self.num_parts):
            chosen = self.part_index == part
            if chosen.any():
                votes[:, part] = self.masks[chosen].T.astype(np.float32) @ self.scores[chosen]
        return votes

    def teacher_labels(self) -> np.ndarray:
        """The detector-only segmentation ``argmax_r W_{n,r}``; -1 where no box votes. (N,) int64"""
        votes = self.votes()
        labels = votes.argmax(1).astype(np.int64)
        labels[votes.max(1, initial=0.0) <= 0] = -1
        return labels

    # --- persistence -----------------------------------------------------

    def to_tensors(self) -> dict[str, np.ndarray]:
        """Arrays for safetensors; masks are bit-packed along the points."""
        return {
            "masks_packed": np.packbits(self.masks, axis=1)
            if self.num_boxes
            else np.zeros((0, (self.num_points + 7) // 8), np.uint8),
            "num_points": np.array([self.num_points], dtype=np.int64),
            "part_index": self.part_index,
            "scores": self.scores,
            "view_index": self.view_index,
            "boxes": self.boxes,
        }

    def metadata(self) -> dict[str, str]:
        return {
            "format_version": str(FORMAT_VERSION),
            "part_names": json.dumps(self.part_names),
            "provenance": json.dumps(self.provenance, sort_keys=True),
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> PseudoLabels:
        num_points = int(tensors["num_points"][0])
        packed = tensors["masks_packed"]
        masks = (
            np.unpackbits(packed, axis=1, count=num_points).astype(bool)
            if len(packed)
            else np.zeros((0, num_points), bool)
        )
        return cls(
            masks=masks,
            part_index=tensors["part_index"],
            scores=tensors["scores"],
            part_names=json.loads(metadata["part_names"]),
            view_index=tensors["view_index"],
            boxes=tensors["boxes"],
            provenance=json.loads(metadata.get("provenance", "{}")),
        )

    def save(self, path: str | Path) -> Path:
        """Write to a safetensors file atomically."""
        from safetensors.numpy import save_file

        from ..io.atomic import atomic_path, sort_safetensors_header

        path = Path(path)
        with atomic_path(path) as tmp:
            save_file(self.to_tensors(), str(tmp), metadata=self.metadata())
            sort_safetensors_header(tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> PseudoLabels:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        except Exception as exc:  # safetensors raises several types for corrupt files
            raise InvalidInputError(f"cannot read pseudo labels {path}: {exc}") from exc
        return cls.from_tensors(tensors, metadata)
