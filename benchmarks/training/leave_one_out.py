"""Does bi-level training on real labels help, and on a category it never saw?

Two tables on the PartNet-Mobility dev set (``pm``), few-shot with the tool's
adaptation defaults (M=8 support from ``pm-train``, ground-truth labels, ``labeler
none``), scored on ``pm-test``:

1. trained against ``bipart-default`` and ``--weights random``: a model trained with
   the bi-level algorithm (Algorithm 1) on the real labels of the train split of all six
   pm categories (``pm-train``, the ``given`` labeler), scored on every dev set; with
   ``--joint-epochs N``, also one trained on the train splits of PSB, human_seg and pm
   together (``psb+human+pm-train``, 655 shapes, N epochs);
2. leave one category out (the paper's unseen-category setting): for each pm category,
   a model trained on the other five, scored on the held-out one.

Training is ``bipart_cli.train.train`` with the paper's settings except ``--epochs``
(default 2) and outer lr 1e-3, seed 0; a run folder that already holds a final model is
reused (``.bench/loo/<name>``). Nothing is tuned on a test split.

    python benchmarks/training/leave_one_out.py [--epochs 2] [--datasets pm,psb,human]
        [--joint-epochs 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

from benchmarks.common.paper_runs import (
    BENCH,
    JOINT_TRAIN,
    bench_parser,
    bench_run,
    evaluation,
    index,
    pct,
    print_table,
    train_if_missing,
)
from benchmarks.common.shared_data import load_categories
from benchmarks.quality.few_shot import DATASETS

RUNS = BENCH / "loo"


def trained(
    name: str, categories: list[str] | None, epochs: int, device: str, shapes: str = "pm-train"
) -> str:
    """The model folder of run ``name``, trained on the index ``shapes`` (its ``categories``,
    or all) if missing."""
    from bipart_cli.train import TrainSettings

    settings = TrainSettings(epochs=epochs, outer_lr=1e-3, categories=categories, seed=0)
    return train_if_missing(RUNS / name, settings, index(shapes), device)


def scores(weights: str, dataset: str, args) -> dict[str, float]:
    """Per-category mIoU of few-shot ``weights`` on ``dataset``'s test split."""
    test, support = DATASETS[dataset]
    entry = evaluation(
        test,
        support,
        weights,
        labeler="none",
        support_size=8,
        device=args.device,
        limit=args.limit,
        refresh=args.refresh,
    )
    return entry["report"]["summary"]["per_category"]


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--datasets", default="pm,psb,human", help="table 1's dev sets")
    parser.add_argument(
        "--joint-epochs",
        type=int,
        default=0,
        help="also a model trained on the train splits of PSB, human_seg and pm together "
        "(655 shapes), for this many epochs (0: not)",
    )
    args = parser.parse_args()
    device = "cpu" if args.device == "auto" else args.device
    pm = [c.name for c in load_categories(datasets=("pm",))]
    with bench_run():
        models = {"trained on pm-train": trained("pm-all", pm, args.epochs, device)}
        if args.joint_epochs > 0:
            models["trained on all three"] = trained(
                f"joint-{args.joint_epochs}", None, args.joint_epochs, device, JOINT_TRAIN
            )
        models |= {"bipart-default": "bipart-default", "random": "random"}
        rows = []
        for dataset in args.datasets.split(","):
            results = {name: scores(w, dataset, args) for name, w in models.items()}
            for category in sorted(results["bipart-default"]):
                rows.append([f"{dataset}/{category}"] + [pct(results[m][category]) for m in models])
            rows.append(
                [f"{dataset} mean"] + [pct(sum(r.values()) / len(r)) for r in results.values()]
            )
        print_table(
            [
                "Trained on real labels against the default and random weights: few-shot mIoU "
                "(%) on the test splits, the tool's adaptation defaults, M=8, seed 0",
                f"trained: bi-level, pm-train (given labels), {args.epochs} epochs, outer lr 1e-3"
                + (
                    f"; all three: the train splits of PSB, human_seg and pm, "
                    f"{args.joint_epochs} epochs"
                    if args.joint_epochs
                    else ""
                ),
            ],
            ["category", *models],
            rows,
        )
        rows = []
        for held_out in pm:
            seen = [c for c in pm if c != held_out]
            model = trained(f"without-{held_out}", seen, args.epochs, device)
            unseen = scores(model, "pm", args)[held_out]
            rows.append(
                [
                    held_out,
                    pct(unseen),
                    pct(scores(models["trained on pm-train"], "pm", args)[held_out]),
                    pct(scores("bipart-default", "pm", args)[held_out]),
                    pct(scores("random", "pm", args)[held_out]),
                ]
            )
        print_table(
            [
                "Leave one category out on pm: trained without the category, then few-shot on "
                "it (M=8 from pm-train, the tool's defaults), mIoU (%) on pm-test",
            ],
            ["held out", "trained without it", "trained with it", "bipart-default", "random"],
            rows,
        )


if __name__ == "__main__":
    main()
