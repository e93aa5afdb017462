"""With the tool's adaptation defaults, does the student beat its teacher in VLM mode?

VLM mode with the tool's adaptation defaults against the teacher (issue #12 item 7).

The VLM protocol of ``paper_runs`` (PSB test split labeled by the simulated detector at
its default noise; the target's pseudo labels plus M=8 part-perfect support shapes
from the simulated-labeled train split), run with BiPart-J (bi-level training on the
simulated-labeled train splits of all 14 categories, ``paper_runs.j_model``; trained
first when missing, about 15 min on 2 CPU cores), the shipped weights
(``bipart-default``) and ``random`` weights, each with the paper's inner loop
(K=10 SGD at lr 0.3, nothing else) and with the tool's defaults (descriptors, Adam,
the kNN mix, smoothing, pose matching). The teacher row is the detector's votes alone.

    python benchmarks/paper/vlm_defaults.py [--limit N] [--refresh] [--no-j]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import dataclasses

from benchmarks.common.paper_runs import (
    bench_parser,
    bench_run,
    describe,
    j_model,
    pct,
    print_table,
    summary,
    teacher,
    vlm_eval,
)
from bipart_cli.adapt import PAPER_INNER_LOOP, AdaptSettings

TOOL_DEFAULTS = {name: getattr(AdaptSettings(), name) for name in PAPER_INNER_LOOP}


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--no-j", action="store_true", help="leave out BiPart-J (no training)")
    args = parser.parse_args()
    with bench_run():
        rows, notes = [], []
        scores = teacher("psb", args.limit)
        rows.append(["teacher (detector votes alone)", "", pct(scores["category_mean"])])
        models = {"bipart-default": "bipart-default", "random": "random"}
        if not args.no_j:
            models = {"BiPart-J (j-bilevel)": j_model("j-bilevel", args.device), **models}
        for name, weights in models.items():
            for label, overrides in (("paper inner loop", {}), ("tool defaults", TOOL_DEFAULTS)):
                entry = vlm_eval("psb", weights, args, **overrides)
                rows.append([name, label, pct(summary(entry)["category_mean"])])
                notes.append(f"[{len(rows)}] {describe(entry)}")
        print_table(
            [
                "VLM mode on PSB (simulated detector, default noise): category-mean mIoU (%)",
                "target pseudo labels + M=8 part-perfect support from the simulated-labeled train split",
            ],
            ["weights", "adaptation", "PSB cat"],
            rows,
            notes + [f"tool defaults: {dataclasses.asdict(AdaptSettings())}"],
        )


if __name__ == "__main__":
    main()
