"""Does BiPart beat its teacher and plain distillation, as in the paper's Table 1?

Table 1 analogue: quality of the teacher, plain distillation, BiPart-J and BiPart-G.

Test shapes: the PSB test split (14 categories, 56 shapes) and the human_seg test
split (18 shapes), labeled by the simulated detector (``psb-test-simulated``,
``human-test-simulated``); their ground truth only scores. Rows:

- teacher: the detector's votes alone, ``argmax_r sum_d score_d mask_d`` of each test
  shape's pseudo labels on its 2048 points; points no box covers count as wrong;
- PartDistill-J analogue: the J model trained with ``--no-bilevel``, evaluated with
  support fine-tuning off (``--zero-shot``: the head adapts on the target's own
  pseudo labels alone, repeated M=8 times, K=10, lr 0.3);
- the same model with no adaptation at all (K=0, the head as trained);
- BiPart-J: the bi-level J model in the VLM protocol of ``paper_runs`` (target
  pseudo labels + M=8 part-perfect support from the simulated-labeled train split,
  K=10, lr 0.3);
- PartDistill-G analogue and BiPart-G: the same two protocols with the G models,
  trained on the 7 seen PSB categories only (``paper_runs.seen_categories``).

J models train on all 14 PSB categories' train splits; human_seg is in no training
set. Seen/unseen columns are category means over the G split's two halves, for
every row (the J models saw all 14). Missing models are trained first (hours on a
CPU); evaluations are cached under ``.bench/evals``.

    python benchmarks/paper/table1_quality.py [--no-human] [--limit N] [--device cpu]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

from benchmarks.common.paper_runs import (
    TRAIN_INDEX,
    VLM,
    bench_parser,
    bench_run,
    describe,
    g_model,
    group_mean,
    index,
    j_model,
    pct,
    print_table,
    seen_categories,
    summary,
    teacher,
    vlm_eval,
)

MODELS = {"J": j_model, "G": g_model}
# (row label, (model family, run name) or None for the teacher, evaluation overrides)
ROWS = [
    ("teacher (detector votes)", None, {}),
    ("PartDistill-J analogue (no bi-level, zero-shot)", ("J", "j-nobilevel"), {"zero_shot": True}),
    ("no bi-level, head as trained (K=0)", ("J", "j-nobilevel"), {"zero_shot": True, "steps": 0}),
    ("BiPart-J", ("J", "j-bilevel"), {}),
    ("PartDistill-G analogue (no bi-level, zero-shot)", ("G", "no-bilevel"), {"zero_shot": True}),
    ("BiPart-G", ("G", "bi-level"), {}),
]


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--no-human", action="store_true", help="PSB only")
    args = parser.parse_args()
    datasets = ["psb"] if args.no_human else ["psb", "human"]
    with bench_run():
        seen = seen_categories(index(TRAIN_INDEX))
        rows, notes = [], []
        for number, (label, model, overrides) in enumerate(ROWS, 1):
            if model is None:
                results = {d: teacher(d, args.limit) for d in datasets}
                notes.append(
                    f"[{number}] argmax of the summed pseudo-label votes of the test shapes "
                    f"({', '.join(f'{d}-test-simulated' for d in datasets)}), no network"
                )
            else:
                weights = MODELS[model[0]](model[1], args.device)
                entries = {d: vlm_eval(d, weights, args, **overrides) for d in datasets}
                results = {d: summary(e) for d, e in entries.items()}
                notes.extend(f"[{number}] {describe(e)}" for e in entries.values())
            psb = results["psb"]
            row = [f"[{number}] {label}", pct(psb["instance_mean"]), pct(psb["category_mean"])]
            row += [pct(group_mean(psb, seen)), pct(group_mean(psb, unseen_of(psb, seen)))]
            row += [pct(results["human"]["instance_mean"])] if "human" in results else []
            rows.append(row)
        header = ["method", "PSB inst", "PSB cat", "seen cat", "unseen cat"]
        header += [] if args.no_human else ["human_seg"]
        print_table(
            [
                "Table 1 analogue: mIoU (%), PSB test split"
                + ("" if args.no_human else " and human_seg test split"),
                "labeler: simulated detector (10 views) for test and support shapes; VLM mode: "
                f"target pseudo labels + M={VLM['support_size']} {VLM['strategy']} support from "
                f"the train split's pseudo labels, K={VLM['steps']}, lr {VLM['lr']}, seed 0",
                "weights: J = .bench/runs/<run>, trained on all 14 PSB train splits; G = "
                f".bench/g_setting/<run>, trained on the 7 seen: {', '.join(seen)}; "
                "human_seg is in no training set",
            ],
            header,
            rows,
            notes,
        )


def unseen_of(result: dict, seen: list[str]) -> list[str]:
    return sorted(c for c in result["per_category"] if c not in seen)


if __name__ == "__main__":
    main()
