"""Does the student stay above its teacher as the teacher's labels get noisier (paper item 7)?

Noise sweep of the simulated labeler: teacher and BiPart mIoU as misses and label swaps grow.

For each (miss_rate, swap_rate) of the grid, the PSB train and test splits of
``../shared/data`` (the datasets' own 2048 points and ground truth, read in place)
are relabeled by the ``simulated`` labeler at that noise, through
``shared_index.build`` (10 rendered views, 512 px; every other noise knob at its
default: small-part misses 0.6 below 5% of the visible area, box jitter 0.08,
0.5 false positives per view). Then, on the test split:

- teacher: the detector-only vote ``argmax_r sum_d M^d Y^d`` of each shape's pseudo
  labels on its 2048 points (points no box covers count as wrong);
- BiPart: ``evaluate_index(test, train, labeler="index", weights=W)``, the VLM mode
  of ``bipart eval``: the target's own pseudo labels join an M=8 support set from
  the train split, relabeled at the same noise (or with ground truth, ``--support
  given``), part-perfect selection in the target's category, seed 0, adapted with
  the tool's defaults (``--settings default``) or the paper's inner loop, K=10 SGD
  steps at lr 0.3 (``--settings paper``);
- gain: BiPart minus teacher, what distillation recovers from the teacher's errors.

mIoU is the mean over categories of the per-shape mean part IoU, x100. The
indexes go to ``.bench/noise/<miss>-<swap>/`` (git ignored) and are reused when
their settings match; the ``.bench/indexes/*-simulated`` indexes are never touched.

    python benchmarks/paper/noise_sweep.py                                   # bipart-default weights
    python benchmarks/paper/noise_sweep.py --weights bipart-default --weights .bench/runs/j-bilevel/model
    python benchmarks/paper/noise_sweep.py --grid 0:0,0.3:0.3 --categories Chair,Table --limit 4
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse
import json
import time

from benchmarks.common.paper_runs import teacher_miou
from benchmarks.common.shared_index import build

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / ".bench" / "noise"
DEFAULT_GRID = "0:0,0.1:0.05,0.2:0.15,0.3:0.3"


def parse_grid(text: str) -> list[tuple[float, float]]:
    """``"0:0,0.1:0.05"`` -> ``[(0.0, 0.0), (0.1, 0.05)]`` (miss_rate:swap_rate pairs)."""
    pairs = []
    for item in text.split(","):
        miss, swap = item.split(":")
        pairs.append((float(miss), float(swap)))
    return pairs


def noisy_indexes(
    out_root: Path,
    miss: float,
    swap: float,
    categories: list[str] | None,
    train_per_category: int | None,
    rebuild: bool,
) -> tuple[Path, Path, float]:
    """(test index, train index, seconds spent building) at this noise, reused when present."""
    folder = out_root / f"miss{miss:.2f}-swap{swap:.2f}"
    if categories is not None:
        folder = folder.with_name(folder.name + "-" + "-".join(sorted(categories)))
    if train_per_category is not None:
        folder = folder.with_name(folder.name + f"-train{train_per_category}")
    test, train = folder / "psb-test-simulated", folder / "psb-train-simulated"
    options = {"miss_rate": miss, "swap_rate": swap}
    if not rebuild and all(_built_with(path, options) for path in (test, train)):
        return test, train, 0.0
    started = time.perf_counter()
    build(
        folder,
        "simulated",
        labeler_options=options,
        datasets=("psb",),
        categories=categories,
        train_per_category=train_per_category,
    )
    return test, train, time.perf_counter() - started


def _built_with(path: Path, options: dict) -> bool:
    manifest = path / "manifest.json"
    if not manifest.is_file():
        return False
    return json.loads(manifest.read_text())["settings"].get("labeler_options") == options


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--grid", default=DEFAULT_GRID, help="miss:swap pairs, comma-separated")
    parser.add_argument(
        "--weights",
        action="append",
        help="checkpoint(s) for BiPart, repeatable (default: bipart-default)",
    )
    parser.add_argument(
        "--support",
        choices=["noisy", "given"],
        default="noisy",
        help="support train split labeled at the same noise (default) or with ground truth",
    )
    parser.add_argument("--categories", help="PSB categories, comma-separated (default: all 14)")
    parser.add_argument(
        "--train-per-category", type=int, help="first N train shapes per category (default: 16)"
    )
    parser.add_argument(
        "--settings",
        choices=["default", "paper"],
        default="default",
        help="adaptation: the tool's defaults or the paper's inner loop (K=10 SGD at lr 0.3)",
    )
    parser.add_argument("--limit", type=int, help="evaluate the first N test shapes only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--rebuild", action="store_true", help="relabel even if indexes exist")
    parser.add_argument("--json", type=Path, help="also write every number to this file")
    args = parser.parse_args()

    from bipart_cli.adapt import PAPER_INNER_LOOP
    from bipart_cli.evaluate import evaluate_index

    adapt_overrides = PAPER_INNER_LOOP if args.settings == "paper" else {}
    weights = args.weights or ["bipart-default"]
    categories = args.categories.split(",") if args.categories else None
    grid = parse_grid(args.grid)
    given_train = None
    if args.support == "given":
        given_train = args.out / "given" / "psb-train"
        build(
            given_train.parent,
            "given",
            datasets=("psb",),
            splits=("train",),
            categories=categories,
            train_per_category=args.train_per_category,
        )

    rows = []
    for miss, swap in grid:
        test, train, build_s = noisy_indexes(
            args.out, miss, swap, categories, args.train_per_category, args.rebuild
        )
        support = given_train or train
        started = time.perf_counter()
        teacher = teacher_miou(test, args.limit)
        row = {
            "miss_rate": miss,
            "swap_rate": swap,
            "test_index": str(test),
            "support_index": str(support),
            "label_s": build_s,
            "teacher": teacher,
            "bipart": {},
            "settings": "the paper's inner loop (K=10 SGD, lr 0.3)"
            if args.settings == "paper"
            else "the tool's defaults",
        }
        for w in weights:
            report = evaluate_index(
                str(test),
                str(support),
                labeler="index",
                weights=w,
                device=args.device,
                limit=args.limit,
                **adapt_overrides,
            )
            row["bipart"][w] = {"summary": report.summary, "weights": report.settings["weights"]}
        row["eval_s"] = time.perf_counter() - started
        rows.append(row)
        print(
            f"  miss {miss:.2f} swap {swap:.2f}: labeled in {build_s:.0f} s, "
            f"evaluated in {row['eval_s']:.0f} s",
            file=sys.stderr,
        )

    first = rows[0]
    print(
        f"noise sweep of the simulated labeler, PSB, {len(first['teacher']['per_category'])} "
        f"categories, test split: {first['teacher']['num_shapes']} shapes, "
        "2048 dataset points each"
    )
    print(
        "labeler: simulated (boxes from ground truth, 10 views, 512 px), miss/swap as listed, "
        "other noise knobs at their defaults"
    )
    support_text = (
        "train split labeled at the same noise"
        if args.support == "noisy"
        else "train split with ground-truth labels (given)"
    )
    print(f"support: {support_text}, {_count(Path(first['support_index']))} shapes")
    print(
        "teacher: argmax of the box votes of the test shapes' pseudo labels; BiPart: VLM mode "
        f"(bipart eval --labeler index), M=8, part-perfect, seed 0, device {args.device}, "
        f"adaptation: {first['settings']}"
    )
    for k, w in enumerate(weights):
        print(f"BiPart[{k}] weights {w}: {json.dumps(first['bipart'][w]['weights'])}")
    print("category-mean mIoU x100; gain = BiPart - teacher")
    header = f"{'miss':>5} {'swap':>5} {'teacher':>8}"
    for k in range(len(weights)):
        header += f" {f'BiPart[{k}]':>10} {'gain':>6}"
    print(header)
    for row in rows:
        teacher = 100 * row["teacher"]["category_mean"]
        line = f"{row['miss_rate']:5.2f} {row['swap_rate']:5.2f} {teacher:8.1f}"
        for w in weights:
            value = 100 * row["bipart"][w]["summary"]["category_mean"]
            line += f" {value:10.1f} {value - teacher:+6.1f}"
        print(line)
    if args.json:
        settings = {key: str(value) for key, value in vars(args).items()}
        args.json.write_text(json.dumps({"args": settings, "rows": rows}, indent=1) + "\n")
    return 0


def _count(path: Path) -> int:
    from bipart_cli.index import ShapeIndex

    return len(ShapeIndex.open(path))


if __name__ == "__main__":
    sys.exit(main())
