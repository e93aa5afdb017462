"""How do the support-set size M and the inner steps K trade mIoU against time (the paper's Table 5)?

Table 5 analogue: support-set size M and inner steps K, with mIoU and time per shape.

The bi-level J model (``.bench/runs/j-bilevel``, trained on all 14 PSB categories'
train splits, trained first if missing) in the VLM protocol of ``paper_runs`` on
the PSB test split (``psb-test-simulated``, support from ``psb-train-simulated``,
part-perfect, lr 0.3). As in the paper, a cross: M in {1, 2, 4, 8, 12} at K=10,
then K in {5, 10, 15, 20} at M=8 (the M=8, K=10 cell is shared).

Time per shape (``s/shape``): the evaluation's wall time over its shapes. It
includes opening the model and indexes, retrieval, the target's network pass, the
extractor passes of support shapes not yet cached (each support shape is extracted
once per evaluation and reused by later targets), the K head steps on M+1 shapes
and the prediction. ``s/target`` is the mean of the per-target times alone (the
same without opening the model and indexes). Times come from whichever run made
the cached evaluation (see the footnotes): compare them only within one run on an
otherwise idle machine (``--refresh`` recomputes).

    python benchmarks/paper/table5_support_steps.py [--limit N] [--device cpu] [--refresh]
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

SIZES = [1, 2, 4, 8, 12]
STEPS = [5, 10, 15, 20]


def main() -> None:
    args = bench_parser(__doc__).parse_args()
    with bench_run():
        weights = j_model("j-bilevel", args.device)
        for name, values, setting, fixed in (
            ("(a) support-set size M, K=10", SIZES, "support_size", {"steps": 10}),
            ("(b) inner steps K, M=8", STEPS, "steps", {"support_size": 8}),
        ):
            rows, notes = [], []
            header = ["M" if setting == "support_size" else "K", "PSB inst", "PSB cat"]
            header += ["s/shape", "s/target"]
            for value in values:
                entry = vlm_eval("psb", weights, args, **{**fixed, setting: value})
                shapes = entry["report"]["shapes"]
                per_target = sum(s["seconds"] for s in shapes) / len(shapes)
                rows.append(
                    [
                        str(value),
                        *score_cells(entry, notes, f"{header[0]}={value}"),
                        f"{entry['wall_s'] / len(shapes):.2f}",
                        f"{per_target:.2f}",
                    ]
                )
            print_table(
                [
                    f"Table 5{name[:3]} analogue: {name[4:]}, mIoU (%) on the PSB test split "
                    "(psb-test-simulated)",
                    "labeler: simulated detector (10 views); weights: .bench/runs/j-bilevel (all "
                    f"14 PSB train splits); {VLM['strategy']} support from psb-train-simulated, "
                    f"lr {VLM['lr']}; s/shape = wall time / shapes",
                ],
                header,
                rows,
                notes,
            )


if __name__ == "__main__":
    main()
