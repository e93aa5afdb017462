"""Does bi-level training beat plain distillation on categories it never saw (the paper's G setting)?

The paper's G setting on PSB: train on 7 seen categories, evaluate on all 14.

Training uses the train splits of the seen categories, labeled by the simulated
detector (``.bench/indexes/psb-train-simulated``, built by
``python benchmarks/common/shared_index.py --labeler simulated``), as the paper trains on VLM
pseudo labels. Evaluation is few-shot on the test splits of all 14 categories
(``bipart eval --labeler none``), support from the ground-truth train splits
(``psb-train``). Seen are the categories at even positions of the alphabetical
list, unseen the others. Three models are compared: the untrained one, the one
trained with ``--no-bilevel`` and the bi-level one, with the same settings.

    python benchmarks/paper/g_setting.py [--epochs 3] [--outer-lr 1e-3]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse
import time

from benchmarks.common.paper_runs import G_EPOCHS, OUTER_LR, g_model, seen_categories
from benchmarks.common.shared_index import DEFAULT_OUT
from bipart_cli.evaluate import evaluate_index


def train_run(name: str, args) -> str:
    return g_model(
        name,
        args.device,
        epochs=args.epochs,
        outer_lr=args.outer_lr,
        train_index=args.train_index,
        retrain=args.retrain,
    )


def evaluate(weights: str, args) -> dict[str, float]:
    report = evaluate_index(
        str(args.test_index),
        str(args.support_index),
        labeler="none",
        weights=weights,
        device=args.device,
        quiet=True,
    )
    return report.summary["per_category"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-index", type=Path, default=DEFAULT_OUT / "psb-train-simulated")
    parser.add_argument("--support-index", type=Path, default=DEFAULT_OUT / "psb-train")
    parser.add_argument("--test-index", type=Path, default=DEFAULT_OUT / "psb-test")
    parser.add_argument("--epochs", type=int, default=G_EPOCHS)
    parser.add_argument("--outer-lr", type=float, default=OUTER_LR)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--retrain", action="store_true")
    args = parser.parse_args()
    seen = seen_categories(args.train_index)
    print(
        f"G setting on PSB: seen {', '.join(seen)}; {args.epochs} epochs, outer lr {args.outer_lr}"
    )
    models = {
        "untrained": "random",
        "no-bilevel": train_run("no-bilevel", args),
        "bi-level": train_run("bi-level", args),
    }
    scores = {}
    for name, weights in models.items():
        started = time.perf_counter()
        scores[name] = evaluate(weights, args)
        print(f"  eval {name}: {time.perf_counter() - started:.0f} s")
    names = list(models)
    print(f"\n{'category':<10} {'seen':<5} " + " ".join(f"{n:>10}" for n in names))
    categories = sorted(scores["untrained"])
    for category in categories:
        row = " ".join(f"{100 * scores[n][category]:10.1f}" for n in names)
        print(f"{category:<10} {'yes' if category in seen else 'no':<5} {row}")
    for label, group in (
        ("seen", [c for c in categories if c in seen]),
        ("unseen", [c for c in categories if c not in seen]),
        ("all", categories),
    ):
        row = " ".join(
            f"{100 * sum(scores[n][c] for c in group) / len(group):10.1f}" for n in names
        )
        print(f"{'mean ' + label:<16} {row}")


if __name__ == "__main__":
    main()
