"""How far does copying labels get with no learning at all? The nearest-neighbour floor.

Each test point takes the label of its nearest point among all train shapes of
its category (unit-sphere-normalised coordinates), with and without PCA
alignment of every shape. Prints mIoU per category, each dev set's category
mean (PSB, human_seg, pm), and the mean over PSB's 14 categories plus human_seg.
(``quality/few_shot.py`` prints the floor on each target's own support shapes instead.)

    python benchmarks/quality/nn_transfer.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse

import numpy as np

from benchmarks.common.floor import aligned, transfer
from benchmarks.common.paper_runs import print_table
from benchmarks.common.shared_data import DATA_ROOT, DATASETS, load_categories
from bipart_cli.evaluate import shape_miou


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

    table = [[d, n, str(c), f"{raw:.1f}", f"{pca:.1f}"] for d, n, c, raw, pca in rows]
    groups = {dataset: [r for r in rows if r[0] == dataset] for dataset in ("psb", "pm")}
    groups["psb+human"] = [r for r in rows if r[0] != "pm"]
    for name, group in groups.items():
        raw, pca = np.mean([r[3] for r in group]), np.mean([r[4] for r in group])
        table.append([name, "mean", "", f"{raw:.1f}", f"{pca:.1f}"])
    print_table(
        [f"nearest-neighbour label transfer, train split as support ({DATA_ROOT})"],
        ["dataset", "category", "test", "raw mIoU", "PCA mIoU"],
        table,
    )


if __name__ == "__main__":
    main()
