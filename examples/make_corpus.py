"""Generate the procedural training corpus: <out>/<category>/<category>_<k>.glb and parts.json.

Usage: python examples/make_corpus.py OUT_DIR [--per-category 25] [--seed 1000]

Index it with the simulated labeler and train on it (see weights/bipart-default/README.md):

    bipart index OUT_DIR --labeler simulated --out corpus-index
    bipart train --index corpus-index --out runs/default
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bipart_cli.procedural import DEFAULT_CATEGORIES, write_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--per-category", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument(
        "--categories",
        default=",".join(DEFAULT_CATEGORIES),
        help="comma-separated (default: the 14 furniture, household and vehicle categories; "
        "add humanoid,quadruped,bird,fish,hand,octopus for the creatures)",
    )
    args = parser.parse_args()
    categories = [c.strip() for c in args.categories.split(",") if c.strip()]
    paths = write_corpus(args.out_dir, args.per_category, categories, seed=args.seed)
    size = sum(p.stat().st_size for p in paths) / 2**20
    print(f"{len(paths)} shapes in {len(categories)} categories, {size:.1f} MiB, in {args.out_dir}")


if __name__ == "__main__":
    main()
