"""Synthetic shape-index records and a writer for them (random arrays: no labeler or model
runs), shared by the index tests and the hostile-input tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bipart_cli.index import BasisInfo, IndexWriter, ShapeRecord
from bipart_cli.labeling.pseudo_labels import PseudoLabels

N_POINTS = 2048
CATEGORIES = ["chair", "table", "lamp"]
SETTINGS = {"n_points": N_POINTS, "seed": 0, "labeler": "synthetic"}
ENCODER = {"init": "random-seeded", "seed": 0, "weights_sha256": "ab" * 32}


def synthetic_record(i: int, with_features: bool = False) -> ShapeRecord:
    """A record with random arrays; every third has ground truth."""
    rng = np.random.default_rng(i)
    part_names = ["back", "seat", "leg", "arm"][: 2 + i % 3]
    num_boxes = 1 + i % 4
    n_dense = 300 + 7 * i
    labels = None
    if i % 3 == 0:
        labels = rng.integers(-1, len(part_names), N_POINTS)
    return ShapeRecord(
        id=f"{CATEGORIES[i % 3]}/shape_{i:03d}.glb",
        category=CATEGORIES[i % 3],
        part_names=part_names,
        source=f"{CATEGORIES[i % 3]}/shape_{i:03d}.glb",
        sha256=f"{i:064x}",
        points=rng.normal(size=(N_POINTS, 3)).astype(np.float32),
        dense_points=rng.normal(size=(n_dense, 3)).astype(np.float32),
        dense_colors=rng.integers(0, 256, (n_dense, 3), dtype=np.uint8),
        bps=rng.uniform(0, 2, 1024).astype(np.float32),
        pseudo_labels=PseudoLabels(
            masks=rng.random((num_boxes, N_POINTS)) < 0.3,
            part_index=rng.integers(0, len(part_names), num_boxes),
            scores=rng.uniform(0.5, 1, num_boxes).astype(np.float32),
            part_names=part_names,
            provenance={"labeler": "synthetic", "n": i},
        ),
        gt_labels=labels,
        dense_gt_labels=None if labels is None else rng.integers(-1, len(part_names), n_dense),
        features=rng.normal(size=(N_POINTS, 681)).astype(np.float16) if with_features else None,
        descriptors=rng.normal(size=(N_POINTS, 5)).astype(np.float16) if i % 2 else None,
    )


def synthetic_basis() -> BasisInfo:
    rng = np.random.default_rng(123)
    return BasisInfo(points=rng.normal(size=(1024, 3)).astype(np.float32), seed=0, radius=1.5)


def index_writer(out: Path, encoder=None, per_shard: int = 3) -> IndexWriter:
    return IndexWriter(
        out,
        settings=SETTINGS,
        basis=synthetic_basis(),
        encoder=encoder,
        source_root="/data/shapes",
        records_per_shard=per_shard,
    )


def write_index(out: Path, records: list[ShapeRecord], encoder=None, per_shard: int = 3) -> dict:
    writer = index_writer(out, encoder, per_shard)
    for record in sorted(records, key=lambda r: r.id):
        writer.add(record)
    return writer.commit()


def assert_same_record(a: ShapeRecord, b: ShapeRecord, features: bool = True) -> None:
    for name in ("id", "category", "part_names", "source", "sha256"):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("points", "dense_points", "dense_colors", "bps"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for name in ("gt_labels", "dense_gt_labels", "descriptors") + (
        ("features",) if features else ()
    ):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_array_equal(x, y)
    pa, pb = a.pseudo_labels, b.pseudo_labels
    np.testing.assert_array_equal(pa.masks, pb.masks)
    np.testing.assert_array_equal(pa.part_index, pb.part_index)
    np.testing.assert_array_equal(pa.scores, pb.scores)
    assert pa.part_names == pb.part_names
    assert pa.provenance == pb.provenance
