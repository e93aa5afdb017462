"""Regenerate the bundled example GLBs: examples/<category>.glb and examples/chairs/*.glb.

Usage: python examples/make_examples.py [OUT_DIR] [--all] [--seed N] [--colors natural|parts|grey]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bipart_cli.procedural import CATEGORIES, write_examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default=Path(__file__).parent, type=Path)
    parser.add_argument("--all", action="store_true", help="every category, not just four")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chairs", type=int, default=6, help="labeled chairs in chairs/")
    parser.add_argument("--colors", default="natural", choices=["natural", "parts", "grey"])
    args = parser.parse_args()
    categories = list(CATEGORIES) if args.all else ["chair", "table", "mug", "lamp"]
    for path in write_examples(
        args.out_dir, categories, seed=args.seed, n_chairs=args.chairs, colors=args.colors
    ):
        print(f"{path}  {path.stat().st_size / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
