"""Does the coarse-to-fine pose matching choose the turn a full search chooses, and how much faster?

Pose matching, coarse to fine, against scoring every candidate on every point.

``orientation.matching_rotation`` scores its 48 candidate turns on every fourth
matched point and rescores only the identity and the ``SHORTLIST`` best on all of
them. This checks that it picks what the full search picks, on real shapes: every
train shape (where the constants were chosen) and test shape of PSB and human_seg,
as given and randomly rotated, against the first 8 other train shapes of its
category: the support ``segment`` would turn. Prints the pairs, how many choices differ, and the
time per pair of each search.

    python benchmarks/speed/pose_shortlist.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import time

import numpy as np
from scipy.spatial.transform import Rotation

from benchmarks.common.paper_runs import bench_parser, bench_run, index, print_table
from bipart_cli.index import ShapeIndex
from bipart_cli.orientation import POSE_MARGIN, SHORTLIST, matching_rotation, pose_costs

SUPPORT = 8


def full_search(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    rotations, costs = pose_costs(target, source)
    best = int(np.argmin(costs))
    return rotations[best] if costs[best] < (1.0 - POSE_MARGIN) * costs[0] else np.eye(3)


def compare(
    test_name: str, train_name: str, rotated: bool, args_limit: int | None = None
) -> list[str]:
    """One row: every target of ``test_name`` against the first 8 other shapes of its
    category in ``train_name``; ``rotated`` turns target ``row`` by Rotation.random(row)."""
    test, train = ShapeIndex.open(index(test_name)), ShapeIndex.open(index(train_name))
    support: dict[str, list[tuple[str, np.ndarray]]] = {}
    for row, entry in enumerate(train.entries):
        shapes = support.setdefault(entry.category, [])
        if len(shapes) <= SUPPORT:  # one spare: a target is not its own support
            shapes.append((entry.id, train.record(row).points))
    pairs = differ = turned = 0
    fast_s = full_s = 0.0
    for row, record in enumerate(test):
        if args_limit is not None and row >= args_limit:
            break
        target = record.points
        if rotated:
            target = target @ Rotation.random(random_state=row).as_matrix().T
        sources = [p for shape_id, p in support.get(record.category, []) if shape_id != record.id]
        for source in sources[:SUPPORT]:
            start = time.perf_counter()
            fast = matching_rotation(target, source)
            fast_s += time.perf_counter() - start
            start = time.perf_counter()
            full = full_search(target, source)
            full_s += time.perf_counter() - start
            pairs += 1
            differ += not np.array_equal(fast, full)
            turned += not np.array_equal(full, np.eye(3))
    return [
        test_name + (", rotated" if rotated else ""),
        str(pairs),
        str(turned),
        str(differ),
        f"{1000 * fast_s / pairs:.1f}",
        f"{1000 * full_s / pairs:.1f}",
    ]


def main() -> None:
    parser = bench_parser(__doc__)
    args = parser.parse_args()
    with bench_run():
        rows = [
            compare(test, train, rotated, args.limit)
            for test, train in (
                ("psb-train", "psb-train"),
                ("human-train", "human-train"),
                ("psb-test", "psb-train"),
                ("human-test", "human-train"),
            )
            for rotated in (False, True)
        ]
        print_table(
            [f"pose matching, shortlist of {SHORTLIST} against all 48 candidates"],
            ["targets", "pairs", "turned", "differ", "shortlist ms", "full ms"],
            rows,
        )


if __name__ == "__main__":
    main()
