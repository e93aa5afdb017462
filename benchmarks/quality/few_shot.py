"""How well does few-shot segmentation label each dev set's test split, against the nearest-neighbour floor?

Few-shot, no detector: M labeled support shapes beside nearest-neighbour label transfer.

For M in {1, 4, 8, 16}, each test shape of the PSB test split (``psb-test``, 56
shapes), of the human_seg test split (``human-test``, 18) and of the PartNet-Mobility
test split (``pm-test``, 47) is segmented with
``evaluate_index(..., labeler="none")``: no pseudo labels of the target, only M
support shapes of its category, retrieved (part-perfect, BPS similarity) from the
train split labeled with its ground truth (``psb-train``, ``human-train``, ``pm-train``: the
``given`` labeler, one full-mask box per part); K=10 inner steps, lr 0.3, seed 0.
``--weights`` is repeatable (default ``bipart-default``).

The floor beside it, "NN", needs no network: every test point takes the ground-truth
label of its nearest point (raw coordinates) among the very support shapes the
evaluation used for that target (the ids its report lists), so both columns see
the same labeled shapes. PSB has 16 train shapes per category, so M=16 is all of them.

    python benchmarks/quality/few_shot.py [--weights bipart-default] [--weights DIR] [--sizes 1,4,8,16]
        [--datasets psb,human,pm]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import numpy as np

from benchmarks.common.floor import transfer
from benchmarks.common.paper_runs import (
    PAPER_ADAPT,
    bench_parser,
    bench_run,
    evaluation,
    index,
    pct,
    print_table,
    score_cells,
)

# dev set -> (test index, support index)
DATASETS = {
    "psb": ("psb-test", "psb-train"),
    "human": ("human-test", "human-train"),
    "pm": ("pm-test", "pm-train"),
}
COLUMNS = {"psb": ["PSB inst", "PSB cat"], "human": ["human"], "pm": ["pm inst", "pm cat"]}


def nn_floor(entry: dict) -> dict:
    """summarize() of nearest-neighbour transfer from each target's support shapes in ``entry``."""
    from bipart_cli.evaluate import category_part_names, remap_labels, shape_miou, summarize
    from bipart_cli.index import ShapeIndex

    test = ShapeIndex.open(index(entry["key"]["test"]))
    support = ShapeIndex.open(index(entry["key"]["support"]))
    test_rows = {e.id: i for i, e in enumerate(test.entries)}
    support_rows = {e.id: i for i, e in enumerate(support.entries)}
    parts = category_part_names(test.entries)
    scores = []
    for shape in entry["report"]["shapes"]:
        record = test.record(test_rows[shape["shape_id"]])
        names = parts[record.category]
        chosen = [support.record(support_rows[s]) for s in shape["support"]]
        points = np.stack([r.points for r in chosen])
        labels = np.stack([remap_labels(r.gt_labels, r.part_names, names) for r in chosen])
        predicted = transfer(points, labels, record.points)
        truth = remap_labels(record.gt_labels, record.part_names, names)
        scores.append((record.category, shape_miou(predicted, truth, len(names))))
    return summarize(scores)


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--weights", action="append", help="repeatable; default bipart-default")
    parser.add_argument("--sizes", default="1,4,8,16", help="support-set sizes M")
    parser.add_argument(
        "--datasets", default=",".join(DATASETS), help="comma-separated: psb, human, pm"
    )
    parser.add_argument(
        "--settings",
        default="default",
        help="adaptation settings, comma-separated: default (the tool's) and/or paper "
        "(K=10 SGD steps at lr 0.3, no descriptors, no smoothing)",
    )
    args = parser.parse_args()
    datasets = [d for d in DATASETS if d in args.datasets.split(",")]
    sizes = [int(m) for m in args.sizes.split(",")]
    with bench_run():
        rows, notes, per_category = [], [], []
        presets = {"default": {}, "paper": PAPER_ADAPT}
        for weights, preset, m in (
            (w, p, m)
            for w in args.weights or ["bipart-default"]
            for p in args.settings.split(",")
            for m in sizes
        ):
            label = str(len(rows) + 1)
            ours, floor, categories = [], [], {}
            for dataset in datasets:
                test, support = DATASETS[dataset]
                entry = evaluation(
                    test,
                    support,
                    weights,
                    labeler="none",
                    support_size=m,
                    **presets[preset],
                    device=args.device,
                    limit=args.limit,
                    refresh=args.refresh,
                )
                ours += score_cells(entry, notes, label)
                nn = nn_floor(entry)
                floor += [pct(nn["instance_mean"]), pct(nn["category_mean"])]
                if dataset == "human":  # one category: its instance mean is the category mean
                    del ours[-1], floor[-1]
                for name, value in entry["report"]["summary"]["per_category"].items():
                    categories[name] = (dataset, nn["per_category"][name], value)
            rows.append([f"[{label}]", weights, preset, str(m), *ours, *floor])
            per_category.append((label, categories))
        columns = [c for d in datasets for c in COLUMNS[d]]
        print_table(
            [
                "Few-shot, no detector: mIoU (%) with M ground-truth-labeled support shapes "
                "(labeler none), and the nearest-neighbour floor (NN) on the same support shapes",
                f"test: the test splits of {', '.join(datasets)}; support: the train splits "
                "(given labels), part-perfect; seed 0; settings: default = the tool's "
                "adaptation defaults, paper = K=10 SGD at lr 0.3",
            ],
            ["", "weights", "settings", "M", *columns, *(f"NN {c}" for c in columns)],
            rows,
            notes,
        )
        for label, categories in per_category:
            print_category_table(label, categories)


def print_category_table(label: str, categories: dict[str, tuple[str, float, float]]) -> None:
    """Row [label]'s mIoU per category against its NN floor, with each dataset's mean."""
    table = []
    for dataset in DATASETS:
        members = [(n, v) for n, v in categories.items() if v[0] == dataset]
        for name, (_, nn, value) in sorted(members):
            table.append([f"{dataset}/{name}", pct(nn), pct(value), f"{100 * (value - nn):+.1f}"])
        if len(members) > 1:
            nn, value = (float(np.mean([v[i] for _, v in members])) for i in (1, 2))
            table.append([f"{dataset} mean", pct(nn), pct(value), f"{100 * (value - nn):+.1f}"])
    print_table([f"[{label}] per category"], ["category", "NN", "bipart", "- NN"], table)


if __name__ == "__main__":
    main()
