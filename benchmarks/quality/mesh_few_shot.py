"""How well does ``bipart segment`` label whole meshes, and do labels that follow the mesh's own pieces help?

The other quality scripts score the datasets' 2048-point clouds, which carry no mesh
structure. Here each mesh of ``../shared/data/<dataset>/meshes/<Category>/`` is
segmented as a user's file is: the Python API's :class:`Segmenter` with ``--labeler
none``, ``--support`` a folder of the category's train meshes (their ``_labels.npy``
and a ``parts.json`` of the category's parts, symlinked under ``.bench/meshes``),
``--points`` dense samples, every other setting the tool's default. The target itself
is never its own support (the segmenter leaves out a support file with the target's
sha256), so ``--split train`` (validation: each train mesh against the other train
meshes) chooses settings without opening a test mesh; ``--split test`` reports. A support
mesh whose file is byte-identical to the target's is the target too (pm's Faucet 104 and
149 are one file under two ids): it is left out of that target's support and floor.

Each run is computed once with the region step off (``region_agreement`` 1); the
columns then apply :func:`bipart_cli.io.regions.labels_following_regions` at each
``--agreements`` value to those labels, exactly as ``segment`` does after predicting.
mIoU (%) is scored on the dense samples against the label of the face each was drawn
on. NN is the floor: each dense sample takes the label of its nearest point among
2048 samples of every support mesh of the category (as given, unit-sphere coordinates).

With ``--examples CATEGORY=NAME[,...]`` only those categories run, and their support is
not real: the ``bipart examples`` folder of procedural category NAME (``--per-category``
shapes, 6 as a user gets them; ``--examples-seed``, 0 as a user gets it; written under
``.bench/examples`` per version of the code), whose part names must be the category's, or
be named by ``:OURS>THEIRS`` pairs after NAME, several to one sometimes (PSB's chairs call
the seat "support", and their backs are a top rail "backsupport" on posts "arm":
``Chair=chair:support>seat:backsupport>back:arm>back``); the target is scored under the
examples' names, and the floor transfers from those shapes.

    python benchmarks/quality/mesh_few_shot.py [--datasets pm,psb,human_seg] [--split train|test]
        [--agreements 1,0.9,0.8,0.7,0.6,0.5] [--points 20000] [--every N] [--presence P] [--seed S]
        [--examples StorageFurniture=cabinet] [--examples Table=table:support>top]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse
import hashlib
import json
import time
from dataclasses import replace

import numpy as np

from benchmarks.common.floor import transfer
from benchmarks.common.paper_runs import BENCH, bench_run, pct, print_table
from benchmarks.common.shared_data import DATA_ROOT

MESHES = BENCH / "meshes"


def support_folders(dataset: str, split: str) -> dict[str, tuple[Path, list[Path]]]:
    """Category -> (support folder of its train meshes, the target meshes of ``split``),
    the folders made of symlinks under ``.bench/meshes`` (the data is never copied)."""
    root = DATA_ROOT / dataset
    meta = json.loads((root / "meta.json").read_text())["categories"]
    out = {}
    for name, info in sorted(meta.items()):
        test_ids = {str(i) for i in info.get("test_ids", _test_ids(root, name))}
        folders = {}
        for part in ("train", "test"):
            folders[part] = MESHES / dataset / name / part
            folders[part].mkdir(parents=True, exist_ok=True)
            (folders[part] / "parts.json").write_text(json.dumps({"parts": info["parts"]}))
        for mesh in sorted((root / "meshes" / name).glob("*.ply")):
            folder = folders["test" if mesh.stem in test_ids else "train"]
            for file in (mesh, mesh.with_name(f"{mesh.stem}_labels.npy")):
                if not (folder / file.name).is_symlink():
                    (folder / file.name).symlink_to(file)
        folder = folders["train"]
        targets = sorted(folders[split].glob("*.ply"))
        out[name] = (folder, targets)
    return out


def _test_ids(root: Path, category: str) -> list[str]:
    """The test split's shape ids from a dataset's npz (human_seg's meta does not list them)."""
    data = np.load(root / f"{category}.npz")
    return [str(i) for i, split in zip(data["shape_ids"], data["split"], strict=True) if split == 2]


def examples_folder(name: str, count: int = 6, seed: int = 0) -> Path:
    """``bipart examples --categories NAME --per-category COUNT --seed SEED``' support
    folder, written once per version of bipart's code (a changed builder writes anew)."""
    from bipart_cli.procedural import write_support_sets
    from bipart_cli.store import code_identity

    out = BENCH / "examples" / f"{count}-{seed}-{code_identity()[:16]}"
    if not (out / name / "parts.json").is_file():
        write_support_sets(out, [name], per_category=count, seed=seed)
    return out / name


def file_sha256(path: Path) -> str:
    """The sha256 of a mesh file's bytes: a support mesh with the target's is the target
    (pm holds byte-identical meshes under two ids, one in each split)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def without_twins(folder: Path, twins: list[Path]) -> Path:
    """A support folder of symlinks to ``folder``'s files but the ``twins`` and their labels."""
    out = folder.parent / f"{folder.name}-without-{'-'.join(t.stem for t in twins)}"
    out.mkdir(exist_ok=True)
    left_out = {t.name for t in twins} | {f"{t.stem}_labels.npy" for t in twins}
    for file in folder.iterdir():
        if file.name not in left_out and not (out / file.name).exists():
            (out / file.name).symlink_to(file.resolve())
    return out


def labeled_sample(
    path: Path,
    part_names: list[str],
    points: int,
    seed: int = 0,
    renamed: dict[str, str] | None = None,
):
    """The asset at ``path``, its dense sample and the sample's ground truth (n,) int64, as
    indices into ``part_names``; ``renamed`` maps the asset's part names to those, several to
    one sometimes (else they must be ``part_names`` in that order)."""
    from bipart_cli.io import load_asset, sample_dense

    asset = load_asset(path)
    names = [(renamed or {}).get(name, name) for name in asset.part_names]
    if not set(names) <= set(part_names) or (not renamed and names != part_names):
        raise SystemExit(f"{path}: parts {asset.part_names}, expected {part_names}")
    order = np.array([part_names.index(name) for name in names])
    dense = sample_dense(asset, n_points=points, seed=seed)
    return asset, dense, order[asset.labels[dense.face_index]].astype(np.int64)


def parse_examples(text: str) -> dict[str, tuple[str, dict[str, str]]]:
    """``--examples``: category -> (procedural category, the category's part names -> its)."""
    out = {}
    for pair in filter(None, text.split(",")):
        category, spec = pair.split("=", 1)
        name, *renames = spec.split(":")
        out[category] = (name, dict(r.split(">", 1) for r in renames))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default="pm", help="comma-separated: pm, psb, human_seg")
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument("--agreements", default="1,0.9,0.8,0.7,0.6,0.5")
    parser.add_argument("--points", type=int, default=20_000, help="dense samples per mesh")
    parser.add_argument("--every", type=int, default=1, help="every n-th target of a category")
    parser.add_argument("--presence", type=float, default=None, help="default: the tool's")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0, help="segment's --seed (dense samples, FPS)")
    parser.add_argument("--examples", default="", help="CATEGORY=NAME: procedural support")
    parser.add_argument(
        "--per-category", type=int, default=6, help="shapes of each --examples category"
    )
    parser.add_argument("--examples-seed", type=int, default=0, help="bipart examples --seed")
    args = parser.parse_args()
    from bipart_cli.adapt import AdaptSettings
    from bipart_cli.evaluate import shape_miou
    from bipart_cli.io.regions import labels_following_regions
    from bipart_cli.segmentation import Segmenter, SegmentOptions

    agreements = [float(a) for a in args.agreements.split(",")]
    presence = {} if args.presence is None else {"presence": args.presence}
    examples = parse_examples(args.examples)
    with bench_run():
        rows, per_dataset = [], {}
        for dataset in args.datasets.split(","):
            for category, (folder, targets) in support_folders(dataset, args.split).items():
                if examples and category not in examples:
                    continue
                renamed = None
                if examples:
                    folder = examples_folder(
                        examples[category][0], args.per_category, args.examples_seed
                    )
                    renamed = examples[category][1]
                parts = json.loads((folder / "parts.json").read_text())["parts"]
                options = SegmentOptions(
                    support_dir=folder,
                    labeler="none",
                    adapt=AdaptSettings(region_agreement=1.0, **presence),
                    n_dense=args.points,
                    seed=args.seed,
                    device=args.device,
                    write=False,
                    reuse=False,
                )
                segmenter = Segmenter(parts, options)
                meshes = sorted(folder.glob("*.glb" if examples else "*.ply"))
                support = [labeled_sample(p, parts, 2048) for p in meshes]
                mesh_sha = [file_sha256(p) for p in meshes]
                scores = {a: [] for a in agreements}
                floor, started = [], time.perf_counter()
                for path in targets[:: args.every]:
                    twins = [
                        m
                        for m, sha in zip(meshes, mesh_sha, strict=True)
                        if sha == file_sha256(path)
                    ]
                    if twins and twins != [path]:  # a copy of the target under another name
                        folder_without = without_twins(folder, twins)
                        result = Segmenter(parts, replace(options, support_dir=folder_without)).run(
                            str(path)
                        )
                    else:
                        result = segmenter.run(str(path))
                    if not result.ok:
                        raise SystemExit(result.error)
                    asset, dense, truth = labeled_sample(
                        path, parts, args.points, seed=args.seed, renamed=renamed
                    )
                    for agreement in agreements:
                        labels, _, _ = labels_following_regions(
                            asset,
                            dense.face_index,
                            result.dense_labels,
                            result.dense_scores,
                            len(parts),
                            agreement,
                        )
                        scores[agreement].append(shape_miou(labels, truth, len(parts)))
                    others = [
                        s
                        for s, sha in zip(support, mesh_sha, strict=True)
                        if sha != file_sha256(path)
                    ]
                    nn = transfer(
                        np.stack([s[1].points for s in others]),
                        np.stack([s[2] for s in others]),
                        dense.points,
                    )
                    floor.append(shape_miou(nn, truth, len(parts)))
                seconds = (time.perf_counter() - started) / max(len(floor), 1)
                means = [float(np.mean(scores[a])) for a in agreements]
                per_dataset.setdefault(dataset, []).append((float(np.mean(floor)), means))
                rows.append(
                    [f"{dataset}/{category}", str(len(floor)), pct(np.mean(floor))]
                    + [pct(m) for m in means]
                    + [f"{seconds:.1f}"]
                )
                print(f"{rows[-1]}", flush=True)
        for dataset, members in per_dataset.items():
            rows.append(
                [f"{dataset} mean", "", pct(np.mean([m[0] for m in members]))]
                + [pct(np.mean([m[1][i] for m in members])) for i in range(len(agreements))]
                + [""]
            )
        print_table(
            [
                f"Few-shot on whole meshes ({args.split} split targets; support: "
                + (
                    f"`bipart examples` {args.examples}, {args.per_category} a category, "
                    f"seed {args.examples_seed}"
                    if examples
                    else "the other train meshes of the category"
                )
                + "): mIoU (%) on the dense samples",
                f"{args.points} dense points, the tool's defaults, seed {args.seed}; columns: labels "
                "following the mesh's pieces at each agreement (1: off)",
            ],
            ["category", "shapes", "NN"]
            + [f"agree {a:g}" if a < 1 else "off" for a in agreements]
            + ["s/shape"],
            rows,
        )


if __name__ == "__main__":
    main()
