"""Loading ../shared/data for benchmarks (read in place, never copied)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_ROOT = Path(
    os.environ.get(
        "BIPART_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
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


# dataset folder -> the short name of its indexes (``<prefix>-train``, ``<prefix>-test``)
INDEX_PREFIX = {"psb": "psb", "human_seg": "human", "pm": "pm"}
# the dev sets: PSB's 14 categories, human_seg, and the 6 PartNet-Mobility (articulated) ones
DATASETS = tuple(INDEX_PREFIX)


def load_categories(
    root: Path = DATA_ROOT, datasets: tuple[str, ...] = ("psb", "human_seg")
) -> list[Category]:
    """The categories of ``datasets`` (``psb``, ``human_seg``, ``pm``), in that order:
    PSB's 14 and pm's 6 alphabetically, human_seg's one."""
    categories = []
    for dataset in (d for d in DATASETS if d in datasets):
        meta = json.loads((root / dataset / "meta.json").read_text())["categories"]
        for name in sorted(meta):
            file = "human.npz" if dataset == "human_seg" else f"{name}.npz"
            categories.append(_load(root / dataset / file, dataset, name, meta[name]["parts"]))
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
