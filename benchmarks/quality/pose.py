"""What does a target in a random pose cost, and does ``--up pca`` win it back?

Targets in random poses: few-shot mIoU with ``--up y`` (as given) and ``--up pca`` (PCA-aligned;
called ``--up auto`` until issue 32).

Users' assets arrive in any orientation. Each test shape of PSB and human_seg is
rotated by a seeded uniformly random rotation (``scipy.spatial.transform.Rotation.random``,
seed = row) and indexed as ``<name>-rotated`` under ``.bench/indexes``; the support
shapes (the train splits, ground-truth labels) stay as the dataset gives them. Each
row evaluates with the tool's default adaptation settings.

    python benchmarks/quality/pose.py [--weights bipart-default]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse
import dataclasses

import numpy as np
from scipy.spatial.transform import Rotation

from benchmarks.common.paper_runs import bench_run, index, print_table
from benchmarks.common.shared_index import DEFAULT_OUT
from bipart_cli.index import IndexWriter, ShapeIndex


def rotated_index(name: str) -> str:
    """``<name>-rotated``: ``name``'s records with every shape randomly rotated (built once)."""
    from bipart_cli.descriptors import point_descriptors
    from bipart_cli.support import bps_features

    out = DEFAULT_OUT / f"{name}-rotated"
    if (out / "manifest.json").is_file():
        return str(out)
    source = ShapeIndex.open(index(name))
    writer = IndexWriter(
        out,
        settings={**source.manifest["settings"], "rotated": "Rotation.random(random_state=row)"},
        basis=source.basis,
        encoder=None,
    )
    for row in range(len(source.entries)):
        record = source.record(row)
        rotation = Rotation.random(random_state=row).as_matrix().astype(np.float32)
        points = record.points @ rotation.T
        writer.add(
            dataclasses.replace(
                record,
                points=points,
                dense_points=record.dense_points @ rotation.T,
                bps=bps_features(points, source.basis.points),
                descriptors=point_descriptors(points),
                features=None,
            )
        )
    writer.commit()
    return str(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="bipart-default")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    from bipart_cli.evaluate import evaluate_index

    with bench_run():
        rows = []
        for test, up in (("", "y"), ("-rotated", "y"), ("-rotated", "pca"), ("", "pca")):
            cells = []
            for dataset in ("psb", "human"):
                path = index(f"{dataset}-test") if not test else rotated_index(f"{dataset}-test")
                report = evaluate_index(
                    str(path),
                    str(index(f"{dataset}-train")),
                    labeler="none",
                    weights=args.weights,
                    up=up,
                    device=args.device,
                )
                summary = report.summary
                per_category = summary["per_category"].values()
                cells.append((100 * summary["category_mean"], list(per_category)))
            mean15 = 100 * np.mean(cells[0][1] + cells[1][1])
            rows.append(
                [
                    "random rotation" if test else "as given",
                    up,
                    f"{cells[0][0]:.1f}",
                    f"{cells[1][0]:.1f}",
                    f"{mean15:.1f}",
                ]
            )
        print_table(
            [
                "Few-shot mIoU (%) of targets in random poses, default adaptation settings",
                f"weights {args.weights}; support: M=8 from the train split (ground truth), as given",
            ],
            ["targets", "--up", "PSB (14 cat.)", "human_seg", "mean of 15"],
            rows,
        )


if __name__ == "__main__":
    main()
