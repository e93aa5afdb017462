"""What do the support set, bi-level training and the extractor each add (the paper's Table 3)?

Table 3 analogue: ablation of the support set, bi-level training and the extractor.

The paper's four rows, on the PSB test split (``psb-test-simulated``, 56 shapes),
with J models trained on all 14 PSB categories' train splits (``paper_runs``):

1. no support set, no bi-level: the ``--no-bilevel`` model, ``--zero-shot`` (the
   head adapts on the target's own pseudo labels alone, repeated M=8 times);
2. support set, no bi-level: the same model in the VLM protocol (target pseudo
   labels + M=8 part-perfect support from ``psb-train-simulated``, K=10, lr 0.3);
3. bi-level without the category-agnostic extractor: the ``--no-extractor`` model,
   VLM protocol;
4. full: the bi-level model, VLM protocol.

In the paper rows 1-2 also lack the extractor; here they keep it (the
``j-nobilevel`` run) unless ``--no-extractor-baselines`` picks a fourth J model,
``j-nobilevel-noextractor`` (``--no-bilevel --no-extractor``, trained if missing).
Evaluations are cached under ``.bench/evals`` and shared with the other tables.

    python benchmarks/paper/table3_ablation.py [--no-extractor-baselines] [--limit N]
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


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--no-extractor-baselines",
        action="store_true",
        help="rows 1-2 without the extractor, as in the paper",
    )
    args = parser.parse_args()
    baseline = "j-nobilevel-noextractor" if args.no_extractor_baselines else "j-nobilevel"
    extractor = "x" if args.no_extractor_baselines else "yes"
    # (support set, bi-level, extractor, run, zero-shot)
    rows_spec = [
        ("x", "x", extractor, baseline, True),
        ("yes", "x", extractor, baseline, False),
        ("yes", "yes", "x", "j-noextractor", False),
        ("yes", "yes", "yes", "j-bilevel", False),
    ]
    with bench_run():
        rows, notes = [], []
        for number, (support, bilevel, has_extractor, run, zero_shot) in enumerate(rows_spec, 1):
            entry = vlm_eval("psb", j_model(run, args.device), args, zero_shot=zero_shot)
            cells = [str(number), support, bilevel, has_extractor, run]
            rows.append(cells + score_cells(entry, notes, str(number)))
        print_table(
            [
                "Table 3 analogue: ablation, mIoU (%) on the PSB test split (psb-test-simulated)",
                "labeler: simulated detector (10 views); weights: J runs (.bench/runs/<run>), "
                "trained on all 14 PSB train splits (psb-train-simulated); "
                f"M={VLM['support_size']} {VLM['strategy']}, K={VLM['steps']}, lr {VLM['lr']}",
            ],
            ["exp", "support", "bi-level", "extractor", "run", "PSB inst", "PSB cat"],
            rows,
            notes,
        )


if __name__ == "__main__":
    main()
