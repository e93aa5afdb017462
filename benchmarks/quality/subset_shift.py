"""How well does few-shot hold up on targets from a subset no support shape comes from?

human_seg with one source subset held out: validation for targets unlike any support.

human_seg's test split is all SHREC07 people, a subset its train split lacks, and its
subsets use different axes. This script rebuilds that shift inside the train split, so
defaults can be chosen without opening the test split: for each held-out subset
(SCAPE, FAUST, Adobe), every ``--every``-th of its train shapes is a target and the
support comes from the other subsets' train shapes (M=8, ground truth, part-perfect).
The indexes are copies of ``.bench/indexes/human-train`` records (git ignored, under
``.bench/subset_shift/``). Prints mIoU (%) per held-out subset and their mean, for the
tool's defaults and for each ``--variants`` entry of ``adapt_options.VARIANTS``.

    python benchmarks/quality/subset_shift.py [--every 2] [--variants default,default+as-given]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse

import numpy as np

from benchmarks.common.paper_runs import BENCH, bench_run, index
from benchmarks.quality.adapt_options import VARIANTS

SUBSETS = ("scape", "faust", "adobe")
OUT = BENCH / "subset_shift"


def held_out_indexes(subset: str) -> tuple[str, str]:
    """(targets, support) index folders for ``subset`` held out, built once."""
    from bipart_cli.index import IndexWriter, ShapeIndex

    paths = (OUT / f"{subset}-targets", OUT / f"no-{subset}")
    if all((p / "manifest.json").is_file() for p in paths):
        return str(paths[0]), str(paths[1])
    source = ShapeIndex.open(index("human-train"))
    for path, keep in zip(paths, (True, False), strict=True):
        writer = IndexWriter(path, settings=source.settings, basis=source.basis, encoder=None)
        rows = sorted((e.id, k) for k, e in enumerate(source.entries))
        for shape_id, row in rows:
            if (f"/{subset}" in shape_id) == keep:
                record = source.record(row)
                record.features = None
                writer.add(record)
        writer.commit()
    return str(paths[0]), str(paths[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="default")
    parser.add_argument("--every", type=int, default=2, help="every n-th held-out shape")
    parser.add_argument("--weights", default="bipart-default")
    args = parser.parse_args()
    from bipart_cli.evaluate import evaluate_index

    with bench_run():
        names = args.variants.split(",")
        table = {name: {} for name in names}
        for subset in SUBSETS:
            targets, support = held_out_indexes(subset)
            for name in names:
                report = evaluate_index(
                    targets,
                    support,
                    labeler="none",
                    weights=args.weights,
                    device="cpu",
                    every=args.every,
                    **VARIANTS[name],
                )
                table[name][subset] = 100 * float(np.mean([s.miou for s in report.shapes]))
                print(f"{name} {subset}: {len(report.shapes)} targets", flush=True)
        print(f"held out   {'  '.join(f'{n:>18}' for n in names)}")
        for subset in (*SUBSETS, "mean"):
            cells = [
                np.mean(list(table[n].values())) if subset == "mean" else table[n][subset]
                for n in names
            ]
            print(f"{subset:<9}  {'  '.join(f'{c:18.1f}' for c in cells)}")


if __name__ == "__main__":
    main()
