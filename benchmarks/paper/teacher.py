"""How good is the teacher alone: the simulated detector's votes, before any student?

Teacher baseline: mIoU of the detector-only vote with the ``simulated`` labeler.

The teacher labels each dense point ``argmax_r Σ_d M^d_n Y^d_{n,r}``; points no box
covers stay unassigned and count as wrong. Shapes: the 14 PSB categories (meshes +
per-face labels) and the human_seg test meshes of ``../shared/data``, read in place.

    python benchmarks/paper/teacher.py                     # defaults of the labeler
    python benchmarks/paper/teacher.py --per-category 5 --n-dense 25000 --image-size 256
    python benchmarks/paper/teacher.py --sweep             # miss/swap grid on the same renders

Prints a table: per category, then the instance and category means.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse
import itertools
import json
import time
from dataclasses import replace

import numpy as np

from benchmarks.common.shared_data import DATA_ROOT


def shared_shapes(root: Path, per_category: int | None, human_split: str = "test"):
    """(category, mesh path, labels path, part names) of the evaluation meshes."""
    psb = json.loads((root / "psb" / "meta.json").read_text())["categories"]
    for category in sorted(psb):
        meshes = sorted(
            (root / "psb" / "meshes" / category).glob("*.ply"), key=lambda p: int(p.stem)
        )
        for mesh in meshes[:per_category]:
            yield category, mesh, mesh.with_name(f"{mesh.stem}_labels.npy"), psb[category]["parts"]
    human = json.loads((root / "human_seg" / "meta.json").read_text())["categories"]["human"]
    data = np.load(root / "human_seg" / "human.npz")
    names = [str(s) for s in data["shape_ids"]]
    chosen = [
        name
        for name, split in zip(names, data["split"], strict=True)
        if human_split == "all" or split == 2
    ]
    for name in chosen[:per_category]:
        mesh = root / "human_seg" / "meshes" / "human" / f"{name}.ply"
        yield "human", mesh, mesh.with_name(f"{name}_labels.npy"), human["parts"]


def load_labeled(mesh: Path, labels: Path, part_names: list[str]):
    """An Asset with the dataset's per-face labels (f,) int64 and part names."""
    from bipart_cli.io import load_asset

    asset = load_asset(mesh)
    asset.labels = np.load(labels).astype(np.int64)
    asset.part_names = list(part_names)
    return asset


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA_ROOT)
    parser.add_argument(
        "--per-category", type=int, default=None, help="first N shapes per category"
    )
    parser.add_argument("--n-dense", type=int, default=100_000)
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--miss-rate", type=float, default=None)
    parser.add_argument("--swap-rate", type=float, default=None)
    parser.add_argument("--sweep", action="store_true", help="grid of miss and swap rates")
    args = parser.parse_args()
    if not (args.data / "psb" / "meta.json").is_file():
        print(f"no shared data at {args.data}; set BIPART_SHARED_DATA", file=sys.stderr)
        return 1

    from bipart_cli.evaluate import shape_miou, summarize
    from bipart_cli.io import sample_dense
    from bipart_cli.labeling.simulated import NoiseModel, SimulatedLabeler
    from bipart_cli.render import RenderSettings, render_views

    base = NoiseModel()
    if args.miss_rate is not None:
        base = replace(base, miss_rate=args.miss_rate)
    if args.swap_rate is not None:
        base = replace(base, swap_rate=args.swap_rate)
    if args.sweep:
        noises = [
            replace(base, miss_rate=miss, swap_rate=swap)
            for miss, swap in itertools.product((0.0, 0.15, 0.3), (0.0, 0.15, 0.3))
        ]
        noises.insert(0, NoiseModel(0, 0, base.small_part_area, 0, 0, 0))
    else:
        noises = [base]
    settings = RenderSettings(image_size=args.image_size)
    labelers = [SimulatedLabeler(settings, **noise.__dict__) for noise in noises]
    results: list[list[tuple[str, float]]] = [[] for _ in labelers]

    start = time.perf_counter()
    shapes = list(shared_shapes(args.data, args.per_category))
    for number, (category, mesh, labels, part_names) in enumerate(shapes, 1):
        asset = load_labeled(mesh, labels, part_names)
        dense = sample_dense(asset, args.n_dense, seed=args.seed)
        rendering = render_views(dense.points, dense.colors, dense.normals, settings)
        for labeler, result in zip(labelers, results, strict=True):
            pseudo = labeler.from_rendering(rendering, dense.labels, part_names, seed=args.seed)
            result.append(
                (category, 100 * shape_miou(pseudo.teacher_labels(), dense.labels, len(part_names)))
            )
        if number % 20 == 0:
            print(
                f"  {number}/{len(shapes)} shapes, {time.perf_counter() - start:.0f} s",
                file=sys.stderr,
            )

    print(
        f"teacher mIoU (simulated labeler), {len(shapes)} shapes, {args.n_dense} points, "
        f"{args.image_size} px, seed {args.seed}, {time.perf_counter() - start:.0f} s"
    )
    if args.sweep:
        print(f"{'miss':>5} {'swap':>5} {'instance':>9} {'category':>9}")
        for noise, result in zip(noises, results, strict=True):
            summary = summarize(result)
            print(
                f"{noise.miss_rate:5.2f} {noise.swap_rate:5.2f} {summary['instance_mean']:9.1f} "
                f"{summary['category_mean']:9.1f}" + ("  (no noise)" if noise.jitter == 0 else "")
            )
        return 0
    summary = summarize(results[0])
    print(f"noise: {json.dumps(noises[0].__dict__)}")
    print(f"{'category':<10} {'mIoU':>6}")
    for category, value in summary["per_category"].items():
        print(f"{category:<10} {value:6.1f}")
    print(f"{'instance':<10} {summary['instance_mean']:6.1f}")
    print(f"{'category':<10} {summary['category_mean']:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
