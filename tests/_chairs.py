"""Generated chairs for the segment tests: writing them, their ground truth, and a
few-shot ``segment`` from a ``--support`` folder of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bipart_cli.io import load_asset, sample_dense
from bipart_cli.procedural import make_shape

PARTS = ["back", "seat", "leg", "arm"]
N_DENSE = 4096
TARGET_SEEDS = (11, 12)  # not among the support chairs (seeds 1..5)


def write_chair(path: Path, seed: int) -> Path:
    path.write_bytes(make_shape("chair", seed).export(file_type="glb"))
    return path


def ground_truth(path: Path) -> np.ndarray:
    """(N_DENSE,) labels indexing PARTS, on the dense sample ``segment`` draws (seed 0)."""
    asset = load_asset(path)
    dense = sample_dense(asset, n_points=N_DENSE, seed=0)
    lookup = np.array([PARTS.index(name) for name in asset.part_names] + [-1])
    return lookup[np.where(dense.labels >= 0, dense.labels, len(asset.part_names))]


def few_shot_segment(root: Path, targets: list[Path], **options) -> list:
    """``segment`` in-process, few-shot from ``root/chairs``, untrained unless ``weights`` is given."""
    from bipart_cli import segment

    options = {"weights": "random", **options}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BIPART_CACHE", str(root / "cache"))
        return segment(
            [str(p) for p in targets],
            ",".join(PARTS),
            support_dir=root / "chairs",
            labeler="none",
            n_dense=N_DENSE,
            write=False,
            **options,
        )
