"""Shape indexes of ../shared/data's train and test splits, built through the library's IndexWriter.

Each split of PSB (14 categories) and human_seg becomes an index whose records
hold the dataset's own 2048 points and ground truth, with ``given`` pseudo
labels (one full-mask box per part). ``--labeler simulated`` writes
``<name>-simulated`` indexes instead, whose pseudo labels come from the simulated
detector over 10 rendered views (for training, as the paper trains on VLM labels).
They are written under ``.bench/`` (git ignored), never into the repository's
tracked files.

    python benchmarks/shared_index.py [--out .bench/indexes] [--labeler given|simulated]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from shared_data import Category, load_categories

from bipart_cli.index import IndexWriter, ShapeRecord
from bipart_cli.index.build import default_basis
from bipart_cli.io.asset import PointSample
from bipart_cli.labeling import make_labeler
from bipart_cli.support import bps_features

GREY = np.array([180, 180, 180], dtype=np.uint8)
DEFAULT_OUT = Path(__file__).resolve().parents[1] / ".bench" / "indexes"


def records(
    category: Category, rows: np.ndarray, basis_points: np.ndarray, labeler_name: str = "given"
) -> list[ShapeRecord]:
    labeler = make_labeler(labeler_name)
    out = []
    for row in rows:
        points = category.points[row]
        labels = category.labels[row]
        dense = PointSample(points=points, colors=np.tile(GREY, (len(points), 1)), labels=labels)
        pseudo = labeler.label(dense, category.part_names, seed=int(row))
        out.append(
            ShapeRecord(
                id=f"{category.name}/{category.shape_ids[row]}",
                category=category.name,
                part_names=category.part_names,
                source=f"{category.dataset}/{category.name}.npz#{category.shape_ids[row]}",
                sha256=f"{category.dataset}-{category.name}-{category.shape_ids[row]}",
                points=points,
                dense_points=points,
                dense_colors=dense.colors,
                bps=bps_features(points, basis_points),
                pseudo_labels=pseudo,
                gt_labels=labels,
                dense_gt_labels=labels,
            )
        )
    return out


def build(out_root: Path = DEFAULT_OUT, labeler: str = "given") -> dict[str, Path]:
    """Write ``psb-train``, ``psb-test``, ``human-train``, ``human-test`` (with a
    ``-simulated`` suffix unless ``labeler`` is ``given``); returns their paths."""
    suffix = "" if labeler == "given" else f"-{labeler}"
    basis = default_basis()
    categories = load_categories()
    paths = {}
    for dataset, prefix in (("psb", "psb"), ("human_seg", "human")):
        for split, code in (("train", 0), ("test", 2)):
            path = out_root / f"{prefix}-{split}{suffix}"
            writer = IndexWriter(
                path,
                settings={"source": f"shared/data {dataset} {split}", "labeler": labeler},
                basis=basis,
                encoder=None,
            )
            batch = []
            for category in categories:
                if category.dataset == dataset:
                    batch.extend(
                        records(
                            category, np.flatnonzero(category.split == code), basis.points, labeler
                        )
                    )
            for record in sorted(batch, key=lambda r: r.id):
                writer.add(record)
            writer.commit()
            paths[path.name] = path
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--labeler", default="given", choices=["given", "simulated"])
    args = parser.parse_args()
    for name, path in build(args.out, args.labeler).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
