"""Do a mesh's face labels get better when the per-face vote is smoothed over face adjacency?

Face labels on real meshes: the per-face vote with and without smoothing over face adjacency.

Validation only (train splits): each ``--every``-th train mesh of PSB's 14 categories
(``../shared/data/psb/meshes``) and each ``--human-every``-th of human_seg is segmented
by the tool's code path (``Segmenter.segment_asset``, the tool's defaults, ``labeler
none``), with M=8 ground-truth support shapes from the train-split index of its
category, the target itself left out. The dense labels of that one run are then
turned into face labels (``io.faces.face_labels_from_points``) with 0, 2, 4 and 8
rounds of smoothing over face adjacency, and scored against the mesh's own per-face
labels (mIoU over faces, %; a part absent from both counts as 1).

    python benchmarks/quality/face_smoothing.py [--every 4] [--human-every 32] [--rounds 0,2,4,8]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse
import dataclasses
import time

import numpy as np

from benchmarks.common.paper_runs import bench_run, index, print_table
from benchmarks.common.shared_data import DATA_ROOT, load_categories
from bipart_cli.evaluate import shape_miou
from bipart_cli.io import load_asset, sample_dense
from bipart_cli.io.faces import face_labels_from_points
from bipart_cli.segmentation import Segmenter, SegmentOptions


def mesh_paths(category) -> tuple[str, str]:
    """Folder of the category's meshes and the index key prefix of its records."""
    key = f"{category.dataset}-{category.name}"  # as benchmarks/common/shared_index.py writes it
    if category.dataset == "psb":
        return str(DATA_ROOT / "psb" / "meshes" / category.name), key
    return str(DATA_ROOT / "human_seg" / "meshes" / "human"), key


def score_category(category, every: int, rounds: list[int], device: str) -> dict[int, list[float]]:
    folder, key = mesh_paths(category)
    support_index = index("psb-train" if category.dataset == "psb" else "human-train")
    options = SegmentOptions(
        index=str(support_index),
        category=category.name,
        labeler="none",
        write=False,
        device=device,
    )
    segmenter = Segmenter(category.part_names, options)
    scores: dict[int, list[float]] = {r: [] for r in rounds}
    for row in category.train[::every]:
        shape_id = category.shape_ids[row]
        asset = load_asset(f"{folder}/{shape_id}.ply")
        # the index's record of this very shape carries this key: leave it out of the support
        asset = dataclasses.replace(asset, sha256=f"{key}-{shape_id}")
        result = segmenter.segment_asset(asset)
        dense = sample_dense(asset, n_points=options.n_dense, seed=options.seed)
        truth = np.load(f"{folder}/{shape_id}_labels.npy").astype(np.int64)
        for r in rounds:
            faces = face_labels_from_points(asset, dense, result.dense_labels, smooth=r)
            scores[r].append(shape_miou(faces, truth, len(category.part_names)))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=4, help="PSB: every n-th train mesh")
    parser.add_argument("--human-every", type=int, default=32, help="human_seg: every n-th")
    parser.add_argument("--rounds", default="0,2,4,8")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    rounds = [int(r) for r in args.rounds.split(",")]
    with bench_run():
        per_category, started, count = {}, time.perf_counter(), 0
        for category in load_categories():
            every = args.every if category.dataset == "psb" else args.human_every
            per_category[category.name] = score_category(category, every, rounds, args.device)
            count += len(per_category[category.name][rounds[0]])
            print(f"{category.name}: {count} meshes so far", flush=True)
        rows = [
            [name, *(f"{100 * np.mean(s[r]):.1f}" for r in rounds)]
            for name, s in per_category.items()
        ]
        rows.append(
            [
                f"mean of {len(per_category)}",
                *(
                    f"{100 * np.mean([np.mean(s[r]) for s in per_category.values()]):.1f}"
                    for r in rounds
                ),
            ]
        )
        print_table(
            [
                "Face mIoU (%) on train-split meshes (validation), by rounds of smoothing over face adjacency",
                f"tool defaults, labeler none, M=8 ground-truth support from the other train shapes; "
                f"PSB every {args.every}th, human_seg every {args.human_every}th train mesh; "
                f"{count} meshes, {time.perf_counter() - started:.0f} s",
            ],
            ["category", *(f"rounds {r}" for r in rounds)],
            rows,
            [],
        )


if __name__ == "__main__":
    main()
