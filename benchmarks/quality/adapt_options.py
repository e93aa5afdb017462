"""Which adaptation settings label best on the train splits (validation, never the test splits)?

Few-shot adaptation options side by side, measured on the train splits only (validation).

Choosing defaults on the test split would tune on it, so this script never opens
one. Each train shape of PSB (every ``--every``-th, 14 categories), of
human_seg (every ``--human-every``-th) and of pm (every ``--pm-every``-th, 6
PartNet-Mobility categories) is a target; its M=8 support shapes are
retrieved (part-perfect, BPS similarity) from the *other* train shapes of its
category, labeled with their ground truth (``labeler none``). Every variant sees
the same targets and support sets, and so does the nearest-neighbour floor (NN,
xyz) beside it. Prints mIoU (%) per category, the mean over PSB's 14 categories
plus human_seg, pm's mean, and seconds per shape.

    python benchmarks/quality/adapt_options.py [--variants paper,adam,adam-smooth2] [--weights W]
        [--datasets psb,human,pm] [--seed S]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse
import time

import numpy as np

from benchmarks.common.floor import transfer
from benchmarks.common.paper_runs import bench_run, index, print_table
from bipart_cli.adapt import PAPER_INNER_LOOP

# name -> AdaptSettings fields; the paper's inference first. Every variant but "default"
# names its kNN mix, so a variant keeps its meaning when the defaults change.
VARIANTS = {
    "default": {},
    "paper": PAPER_INNER_LOOP,
    "paper+desc": {**PAPER_INNER_LOOP, "descriptors": "geo-v1"},
    "adam": {
        "optimizer": "adam",
        "steps": 200,
        "lr": 1e-2,
        "batch_points": 1024,
        "descriptors": "none",
        "smooth": 0,
        "normalise": "box",
        "knn_weight": 0.0,
        "match_pose": False,
        "position": False,
    },
    "adam+desc": {
        "optimizer": "adam",
        "steps": 200,
        "lr": 1e-2,
        "batch_points": 1024,
        "descriptors": "geo-v1",
        "smooth": 0,
        "normalise": "box",
        "knn_weight": 0.0,
        "match_pose": False,
        "position": False,
    },
}
for rounds in (2, 3, 4, 8):
    VARIANTS[f"adam+desc+smooth{rounds}"] = {**VARIANTS["adam+desc"], "smooth": rounds}
# a quarter of the arithmetic: 100 steps of 512 points, at twice the rate
FAST = {"steps": 100, "lr": 2e-2, "batch_points": 512}
for rounds in (0, 2, 4):
    VARIANTS[f"fast+desc+smooth{rounds}"] = {**VARIANTS["adam+desc"], **FAST, "smooth": rounds}
# the paper's loop on a draw of support points per step (issue #16 item 4: its speed)
for points in (512, 1024):
    VARIANTS[f"paper@{points}"] = {**PAPER_INNER_LOOP, "batch_points": points}
VARIANTS["fast+smooth4"] = {**VARIANTS["fast+desc+smooth4"], "descriptors": "none"}
# Eq. 2 weighs every box (part) the same, so a small part's points weigh more; "point"
# weighs every labeled point the same (PartDistill's released loss)
for name in ("fast+desc+smooth4", "fast+desc+smooth0"):
    VARIANTS[f"{name}+box"] = {**VARIANTS[name], "normalise": "box"}
    VARIANTS[f"{name}+point"] = {**VARIANTS[name], "normalise": "point"}
VARIANTS["slow+desc+smooth4+point"] = {**VARIANTS["fast+desc+smooth4+point"], "steps": 200}
# the tool's defaults on PCA-aligned targets and support (evaluate_index's ``up``; this
# variant was "default+up-auto" until issue 32 gave ``auto`` its meaning below)
VARIANTS["default+up-pca"] = {"up": "pca"}
# each target read Y- or Z-up, whichever the support fits clearly better (segment's default)
VARIANTS["default+up-auto"] = {"up": "auto"}
# each support shape turned to the target's pose (AdaptSettings.match_pose), or left as given
VARIANTS["default+match-pose"] = {"match_pose": True}
VARIANTS["default+as-given"] = {"match_pose": False}
for margin in (0.1, 0.25, 0.4, 0.5, 0.6):  # the Chamfer gain a turn must bring
    VARIANTS[f"default+pose-margin{margin}"] = {"match_pose": True, "pose_margin": margin}
# within an aligned collection (most support fits the target as given) a turn must gain this
for margin in (0.5, 1.0):
    VARIANTS[f"default+aligned-margin{margin}"] = {"aligned_pose_margin": margin}
# the head also reads the points' place in the shape (AdaptSettings.position), or not
VARIANTS["default+position"] = {"position": True}
VARIANTS["default+no-position"] = {"position": False}
# a part the target shows less than this share of its smallest support share is absent
for ratio in (0.0, 0.25, 0.5, 0.75, 1.0):
    VARIANTS[f"default+presence{ratio}"] = {"presence": ratio}
# the adapted head's probabilities fused with kNN label transfer in the head's input space
for weight in (0.25, 0.4, 0.5, 0.6, 0.75):
    for k in (4, 8, 32):
        VARIANTS[f"default+knn{weight}k{k}"] = {
            **VARIANTS["fast+desc+smooth4+point"],
            "knn_weight": weight,
            "knn_k": k,
        }


def nn_scores(report, split_index) -> dict[str, list[float]]:
    """NN transfer from each target's own support shapes (the ids the report lists)."""
    from bipart_cli.evaluate import category_part_names, remap_labels, shape_miou

    rows = {e.id: i for i, e in enumerate(split_index.entries)}
    parts = category_part_names(split_index.entries)
    scores: dict[str, list[float]] = {}
    for shape in report.shapes:
        record = split_index.record(rows[shape.shape_id])
        names = parts[record.category]
        chosen = [split_index.record(rows[s]) for s in shape.support]
        points = np.stack([r.points for r in chosen])
        labels = np.stack([remap_labels(r.gt_labels, r.part_names, names) for r in chosen])
        truth = remap_labels(record.gt_labels, record.part_names, names)
        predicted = transfer(points, labels, record.points)
        scores.setdefault(record.category, []).append(shape_miou(predicted, truth, len(names)))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--weights", default="bipart-default")
    parser.add_argument("--every", type=int, default=2, help="PSB: every n-th train shape")
    parser.add_argument("--human-every", type=int, default=16, help="human_seg: every n-th")
    parser.add_argument("--pm-every", type=int, default=1, help="pm: every n-th train shape")
    parser.add_argument("--datasets", default="psb,human,pm", help="comma-separated")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--seed", type=int, default=0, help="the adaptation's seed (others: its noise)"
    )
    args = parser.parse_args()
    from bipart_cli.evaluate import evaluate_index
    from bipart_cli.index import ShapeIndex

    every = {"psb": args.every, "human": args.human_every, "pm": args.pm_every}
    splits = {d: (index(f"{d}-train"), every[d]) for d in args.datasets.split(",")}
    with bench_run():
        per_variant, floor, seconds, dataset_of = {}, {}, {}, {}
        for name in args.variants.split(","):
            scores: dict[str, list[float]] = {}
            started, count = time.perf_counter(), 0
            for dataset, (path, every) in splits.items():
                report = evaluate_index(
                    str(path),
                    None,
                    labeler="none",
                    weights=args.weights,
                    device=args.device,
                    every=every,
                    seed=args.seed,
                    **VARIANTS[name],
                )
                for shape in report.shapes:
                    scores.setdefault(shape.category, []).append(shape.miou)
                    dataset_of[shape.category] = dataset
                count += len(report.shapes)
                if not floor.get(dataset):
                    floor[dataset] = nn_scores(report, ShapeIndex.open(path))
            per_variant[name] = scores
            seconds[name] = (time.perf_counter() - started) / max(count, 1)
            print(f"{name}: {seconds[name]:.2f} s/shape", flush=True)
        nn = {c: v for d in floor.values() for c, v in d.items()}
        order = list(splits)
        categories = sorted(nn, key=lambda c: (order.index(dataset_of[c]), c))
        header = ["category", "NN", *per_variant]
        rows = [
            [c, f"{100 * np.mean(nn[c]):.1f}"]
            + [f"{100 * np.mean(per_variant[v][c]):.1f}" for v in per_variant]
            for c in categories
        ]
        groups = {
            "mean psb+human": [c for c in categories if dataset_of[c] != "pm"],
            "mean pm": [c for c in categories if dataset_of[c] == "pm"],
        }
        for name, members in groups.items():
            if members:
                rows.append(
                    [name, f"{100 * np.mean([np.mean(nn[c]) for c in members]):.1f}"]
                    + [
                        f"{100 * np.mean([np.mean(per_variant[v][c]) for c in members]):.1f}"
                        for v in per_variant
                    ]
                )
        rows.append(["s/shape", ""] + [f"{seconds[v]:.2f}" for v in per_variant])
        print_table(
            [
                "Few-shot adaptation options on the train splits (validation; no test shape used)",
                f"weights {args.weights}; M=8 ground-truth support from the other train shapes; "
                f"PSB every {args.every}th, human_seg every {args.human_every}th, pm every "
                f"{args.pm_every}th train shape ({', '.join(splits)}); seed {args.seed}",
            ],
            header,
            rows,
            [f"{name}: {VARIANTS[name]}" for name in per_variant],
        )


if __name__ == "__main__":
    main()
