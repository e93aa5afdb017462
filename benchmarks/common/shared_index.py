"""Which shape indexes do the benchmarks read? The dev sets' splits, built once under .bench/indexes.

Shape indexes of ../shared/data's train and test splits, built through the library's IndexWriter.

Each split of PSB (14 categories), human_seg and pm (6 PartNet-Mobility categories) becomes an index whose records
hold the dataset's own 2048 points and ground truth, with ``given`` pseudo
labels (one full-mask box per part). ``--labeler simulated`` writes
``<name>-simulated`` indexes instead, whose pseudo labels come from the simulated
detector over 10 rendered views (for training, as the paper trains on VLM labels).
They are written under ``.bench/`` (git ignored), never into the repository's
tracked files, each with the :func:`build_key` it was made from: an index whose dataset
files or record-making code changed since is made again. ``build`` also takes
simulated-labeler noise options, a subset of datasets and categories, and a cap on train
shapes per category
(``benchmarks/paper/noise_sweep.py`` uses them).

    python benchmarks/common/shared_index.py [--out .bench/indexes] [--labeler given|simulated]
        [--datasets psb,human_seg,pm] [--splits train,test]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse
import hashlib

import numpy as np

from benchmarks.common.shared_data import DATASETS, INDEX_PREFIX, Category, load_categories
from bipart_cli.descriptors import point_descriptors
from bipart_cli.index import IndexWriter, ShapeRecord
from bipart_cli.index.shape import default_basis
from bipart_cli.io.asset import PointSample
from bipart_cli.labeling import make_labeler
from bipart_cli.support import bps_features

GREY = np.array([180, 180, 180], dtype=np.uint8)
DEFAULT_OUT = Path(__file__).resolve().parents[2] / ".bench" / "indexes"
KEY_FILE = "build-key"  # beside an index's manifest: the build_key it was made from
# what makes a record, under bipart_cli/: points and labels as loaded, descriptors, BPS, the
# labelers (the simulated one renders), the index format
RECORD_SOURCES = (
    "descriptors.py",
    "signatures.py",
    "geometry.py",
    "fps.py",
    "render.py",
    "support",
    "labeling",
    "index",
    "io",
)


def build_key(dataset: str, labeler: str = "given", options: dict | None = None) -> str:
    """sha256 of all an index of ``dataset`` is made from: the dataset's files, this
    module's and ``shared_data``'s code, bipart's record-making code
    (:data:`RECORD_SOURCES`), the numeric libraries' versions, the labeler and its options."""
    from benchmarks.common.shared_data import DATA_ROOT
    from bipart_cli.store import library_versions

    package = Path(__file__).resolve().parents[2] / "bipart_cli"
    files = sorted((DATA_ROOT / dataset).glob("*.npz")) + [DATA_ROOT / dataset / "meta.json"]
    files += [Path(__file__), Path(__file__).with_name("shared_data.py")]
    for name in RECORD_SOURCES:
        files += (
            sorted((package / name).rglob("*.py"))
            if (package / name).is_dir()
            else [package / name]
        )
    digest = hashlib.sha256(repr((labeler, sorted((options or {}).items()))).encode())
    for path in files:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"absent")
    digest.update(library_versions())
    return digest.hexdigest()


def is_current(path: Path, key: str) -> bool:
    """Whether the index at ``path`` is complete and was made from ``key``."""
    stamp = path / KEY_FILE
    return (path / "manifest.json").is_file() and stamp.is_file() and stamp.read_text() == key


def records(
    category: Category,
    rows: np.ndarray,
    basis_points: np.ndarray,
    labeler_name: str = "given",
    labeler_options: dict | None = None,
) -> list[ShapeRecord]:
    """Index records of ``category``'s shapes ``rows``; ``labeler_options`` go to the labeler
    (e.g. ``{"miss_rate": 0.2}`` for ``simulated``). Shape ``row`` is labeled with seed ``row``."""
    labeler = make_labeler(labeler_name, **(labeler_options or {}))
    out = []
    for row in rows:
        points = category.points[row]
        labels = category.labels[row]
        dense = PointSample(points=points, colors=np.tile(GREY, (len(points), 1)), labels=labels)
        pseudo = labeler.label(dense, category.part_names, seed=int(row))
        out.append(
            ShapeRecord(
                id=f"{category.name}/{category.shape_ids[row]}",
                category=category.name,
                part_names=category.part_names,
                source=f"{category.dataset}/{category.name}.npz#{category.shape_ids[row]}",
                sha256=f"{category.dataset}-{category.name}-{category.shape_ids[row]}",
                points=points,
                dense_points=points,
                dense_colors=dense.colors,
                bps=bps_features(points, basis_points),
                pseudo_labels=pseudo,
                gt_labels=labels,
                dense_gt_labels=labels,
                descriptors=point_descriptors(points),
            )
        )
    return out


def build(
    out_root: Path = DEFAULT_OUT,
    labeler: str = "given",
    *,
    labeler_options: dict | None = None,
    suffix: str | None = None,
    datasets: tuple[str, ...] = ("psb", "human_seg"),
    categories: list[str] | None = None,
    train_per_category: int | None = None,
    splits: tuple[str, ...] = ("train", "test"),
) -> dict[str, Path]:
    """Write ``psb-train``, ``psb-test``, ``human-train``, ``human-test``, ``pm-train``,
    ``pm-test`` (those of ``datasets``, with a
    ``-<labeler>`` suffix unless ``labeler`` is ``given``, or ``suffix``); returns their paths.

    ``labeler_options`` (recorded in the manifest's settings when given) go to the
    labeler; ``datasets`` and ``categories`` (names, e.g. ``["Chair"]``) restrict what is
    written, as do ``splits`` (``"train"``, ``"test"``); ``train_per_category`` keeps the
    first N train shapes of each category.
    """
    if suffix is None:
        suffix = "" if labeler == "given" else f"-{labeler}"
    basis = default_basis()
    chosen = [
        category
        for category in load_categories(datasets=datasets)
        if category.dataset in datasets and (categories is None or category.name in categories)
    ]
    settings_extra = {} if labeler_options is None else {"labeler_options": dict(labeler_options)}
    paths = {}
    for dataset, prefix in INDEX_PREFIX.items():
        if dataset not in datasets:
            continue
        for split, code in (("train", 0), ("test", 2)):
            if split not in splits:
                continue
            path = out_root / f"{prefix}-{split}{suffix}"
            source = f"shared/data {dataset} {split}"
            if split == "train" and train_per_category is not None:
                source += f", first {train_per_category} per category"
            batch = []
            for category in chosen:
                if category.dataset == dataset:
                    rows = np.flatnonzero(category.split == code)
                    if split == "train" and train_per_category is not None:
                        rows = rows[:train_per_category]
                    batch.extend(records(category, rows, basis.points, labeler, labeler_options))
            settings = {"source": source, "labeler": labeler, **settings_extra}
            key = build_key(dataset, labeler, labeler_options)
            paths[path.name] = write_index(path, settings, basis, batch, key)
    return paths


def write_index(path: Path, settings: dict, basis, batch: list[ShapeRecord], key: str) -> Path:
    """An index at ``path`` of the records ``batch`` in id order, stamped with ``key``."""
    writer = IndexWriter(path, settings=settings, basis=basis, encoder=None)
    for record in sorted(batch, key=lambda r: r.id):
        writer.add(record)
    writer.commit()
    (path / KEY_FILE).write_text(key)
    return path


def build_joint_train(out_root: Path = DEFAULT_OUT, datasets: tuple[str, ...] = DATASETS) -> Path:
    """One index of the train splits of ``datasets`` together (given labels), for training on
    all of them at once: ``<prefix>+<prefix>...-train`` (``psb+human+pm-train``)."""
    prefixes = [INDEX_PREFIX[dataset] for dataset in datasets]
    basis = default_basis()
    batch = []
    for category in load_categories(datasets=datasets):
        if category.dataset in datasets:
            batch.extend(records(category, np.flatnonzero(category.split == 0), basis.points))
    settings = {"source": f"shared/data {','.join(datasets)} train", "labeler": "given"}
    path = out_root / f"{'+'.join(prefixes)}-train"
    return write_index(path, settings, basis, batch, joint_build_key(datasets))


def joint_build_key(datasets: tuple[str, ...]) -> str:
    """:func:`build_key` of a joint index: those of its datasets, in order."""
    keys = " ".join(build_key(dataset) for dataset in datasets)
    return hashlib.sha256(keys.encode()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--labeler", default="given", choices=["given", "simulated"])
    parser.add_argument("--datasets", default="psb,human_seg,pm", help="comma-separated")
    parser.add_argument("--splits", default="train,test", help="comma-separated")
    args = parser.parse_args()
    datasets, splits = tuple(args.datasets.split(",")), tuple(args.splits.split(","))
    for name, path in build(args.out, args.labeler, datasets=datasets, splits=splits).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
