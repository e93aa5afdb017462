"""The no-learning floor: nearest-neighbour label transfer from the train split.

Each test point takes the label of its nearest point among all train shapes of
its category (unit-sphere-normalised coordinates), with and without PCA
alignment of every shape. Prints mIoU per category, each dev set's category
mean (PSB, human_seg, pm), and the mean over PSB's 14 categories plus human_seg.

    python benchmarks/nn_transfer.py
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.spatial import KDTree
from shared_data import DATA_ROOT, DATASETS, load_categories

from bipart_cli.evaluate import shape_miou
from bipart_cli.orientation import apply_rotation, pca_rotation


def transfer(train_points: np.ndarray, train_labels: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Labels (q,) for query (q, 3) from the nearest of train_points (S, N, 3)."""
    tree = KDTree(train_points.reshape(-1, 3))
    _, nearest = tree.query(query)
    return train_labels.reshape(-1)[nearest]


def aligned(points: np.ndarray) -> np.ndarray:
    return np.stack([apply_rotation(p, pca_rotation(p)) for p in points])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    rows = []
    for category in load_categories(datasets=DATASETS):
        scores = {}
        for mode in ("raw", "pca"):
            points = aligned(category.points) if mode == "pca" else category.points
            train = category.train
            mious = [
                shape_miou(
                    transfer(points[train], category.labels[train], points[i]),
                    category.labels[i],
                    len(category.part_names),
                )
                for i in category.test
            ]
            scores[mode] = 100 * float(np.mean(mious))
        rows.append(
            (category.dataset, category.name, len(category.test), scores["raw"], scores["pca"])
        )

    print(f"nearest-neighbour label transfer, train split as support ({DATA_ROOT})")
    print(f"{'dataset':<10} {'category':<10} {'test':>4} {'raw mIoU':>9} {'PCA mIoU':>9}")
    for dataset, name, count, raw, pca in rows:
        print(f"{dataset:<10} {name:<10} {count:>4} {raw:>9.1f} {pca:>9.1f}")
    groups = {dataset: [r for r in rows if r[0] == dataset] for dataset in ("psb", "pm")}
    groups["psb+human"] = [r for r in rows if r[0] != "pm"]
    for name, group in groups.items():
        raw, pca = np.mean([r[3] for r in group]), np.mean([r[4] for r in group])
        print(f"{name:<10} {'mean':<10} {'':>4} {raw:>9.1f} {pca:>9.1f}")


if __name__ == "__main__":
    main()
