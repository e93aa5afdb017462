"""Does part-perfect support selection beat random and plain similarity (the paper's Table 4)?

Table 4 analogue: support-set selection strategies, random / similarity / part-perfect.

The bi-level J model (``.bench/runs/j-bilevel``, trained on all 14 PSB categories'
train splits, trained first if missing) in the VLM protocol of ``paper_runs`` on
the PSB test split (``psb-test-simulated``): target pseudo labels + M=8 support
shapes of the target's category from ``psb-train-simulated``, K=10, lr 0.3, seed 0;
only the selection rule changes (Sec. 3.4: ``random``, BPS cosine ``similarity``,
``part-perfect``; random draws are seeded per target).

    python benchmarks/paper/table4_selection.py [--limit N] [--device cpu]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

from benchmarks.common.paper_runs import (
    VLM,
    bench_parser,
    bench_run,
    j_model,
    print_table,
    score_cells,
    vlm_eval,
)

STRATEGIES = ["random", "similarity", "part-perfect"]


def main() -> None:
    args = bench_parser(__doc__).parse_args()
    with bench_run():
        weights = j_model("j-bilevel", args.device)
        rows, notes = [], []
        for number, strategy in enumerate(STRATEGIES, 1):
            entry = vlm_eval("psb", weights, args, strategy=strategy)
            rows.append([f"[{number}] {strategy}", *score_cells(entry, notes, str(number))])
        print_table(
            [
                "Table 4 analogue: support selection, mIoU (%) on the PSB test split "
                "(psb-test-simulated)",
                "labeler: simulated detector (10 views); weights: .bench/runs/j-bilevel (all 14 "
                f"PSB train splits); M={VLM['support_size']}, K={VLM['steps']}, lr {VLM['lr']}",
            ],
            ["selection", "PSB inst", "PSB cat"],
            rows,
            notes,
        )


if __name__ == "__main__":
    main()
