"""How often does pose matching turn a support shape within one dataset's train split?

Every pair (target, another train shape of its category) of PSB (every 2nd target),
human_seg (every 16th) and pm, matched as ``segment`` matches a support shape to a target
(``orientation.best_turn``, a turn taken when it gains ``POSE_MARGIN``): the share of pairs
turned with the plain Chamfer distance alone, and when a turn must also gain
``PROPORTION_FREE_MARGIN`` with every cloud standardised per axis (the default). pm's
objects share one orientation, PSB's do not.

    python benchmarks/quality/pose_turns.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import numpy as np

from benchmarks.common.paper_runs import bench_parser, bench_run, print_table
from benchmarks.common.shared_data import DATASETS, load_categories
from bipart_cli.orientation import POSE_MARGIN, PROPORTION_FREE_MARGIN, best_turn

EVERY = {"psb": 2, "human_seg": 16, "pm": 1}


def turned_shares(category) -> tuple[int, float, float]:
    """(pairs, share turned on the plain Chamfer distance, share turned now) of a category."""
    train = np.flatnonzero(category.split == 0)
    plain = now = pairs = 0
    for target in train[:: EVERY[category.dataset]]:
        for source in train[train != target]:
            points = category.points[target], category.points[source]
            plain += best_turn(*points, proportion_margin=None)[1] > POSE_MARGIN
            now += best_turn(*points)[1] > POSE_MARGIN
            pairs += 1
    return pairs, plain / max(pairs, 1), now / max(pairs, 1)


def row(dataset: str, name: str, pairs: int, plain: float, now: float) -> list[str]:
    """A table row; the shares in (0, 1) printed as percentages."""
    return [dataset, name, str(pairs), f"{100 * plain:.1f}", f"{100 * now:.1f}"]


def main() -> None:
    bench_parser(__doc__).parse_args()
    with bench_run():
        rows, totals = [], {}
        for category in load_categories(datasets=DATASETS):
            pairs, plain, now = turned_shares(category)
            rows.append(row(category.dataset, category.name, pairs, plain, now))
            total = totals.setdefault(category.dataset, [0, 0.0, 0.0])
            total[0] += pairs
            total[1] += plain * pairs
            total[2] += now * pairs
        for dataset, (pairs, plain, now) in totals.items():
            rows.append(row(dataset, "all", pairs, plain / pairs, now / pairs))
        print_table(
            [
                "Support shapes turned by pose matching within each train split (% of pairs)",
                f"a turn gains {POSE_MARGIN} of the Chamfer distance; now: and {PROPORTION_FREE_MARGIN} "
                "with every cloud standardised per axis",
            ],
            ["dataset", "category", "pairs", "plain Chamfer", "now"],
            rows,
        )


if __name__ == "__main__":
    main()
