"""Loading ../shared/data for benchmarks (read in place, never copied)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_ROOT = Path(
    os.environ.get(
        "BIPART_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)


@dataclass
class Category:
    """One category's 2048-point shapes: points (S, 2048, 3) float32, labels (S, 2048) int64."""

    dataset: str
    name: str
    part_names: list[str]
    points: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    shape_ids: list[str]

    @property
    def train(self) -> np.ndarray:
        return np.flatnonzero(self.split == 0)

    @property
    def test(self) -> np.ndarray:
        return np.flatnonzero(self.split == 2)


def load_categories(root: Path = DATA_ROOT) -> list[Category]:
    """The 14 PSB categories plus human_seg, in that order."""
    categories = []
    psb_meta = json.loads((root / "psb" / "meta.json").read_text())["categories"]
    for name in sorted(psb_meta):
        categories.append(_load(root / "psb" / f"{name}.npz", "psb", name, psb_meta[name]["parts"]))
    human_meta = json.loads((root / "human_seg" / "meta.json").read_text())["categories"]["human"]
    categories.append(
        _load(root / "human_seg" / "human.npz", "human_seg", "human", human_meta["parts"])
    )
    return categories


def _load(path: Path, dataset: str, name: str, part_names: list[str]) -> Category:
    data = np.load(path)
    return Category(
        dataset=dataset,
        name=name,
        part_names=list(part_names),
        points=data["points"].astype(np.float32),
        labels=data["labels"].astype(np.int64),
        split=data["split"].astype(np.int64),
        shape_ids=[str(s) for s in data["shape_ids"]],
    )
