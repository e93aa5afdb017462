"""Generated chairs for the segment tests: writing them, their ground truth, a few-shot
``segment`` from a ``--support`` folder of them, and the classic chairs the shipped weights
were trained on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from bipart_cli.io import load_asset, sample_dense
from bipart_cli.procedural import Piece, make_shape
from bipart_cli.procedural.furniture import chair_arms
from bipart_cli.procedural.primitives import box, leg_mesh, rotation, uniform

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


def classic_chair(rng) -> list[Piece]:
    """``build_chair`` as it was when the shipped weights were trained (before issue 30 item 6
    added office bases, ladder backs, cushions and round corners): four legs, a panel back, a
    board seat, arms sometimes. Same seed, same chair as then."""
    width, depth = uniform(rng, 0.40, 0.60), uniform(rng, 0.38, 0.55)
    seat_y, seat_t = uniform(rng, 0.38, 0.50), uniform(rng, 0.03, 0.08)
    leg_t, inset = uniform(rng, 0.03, 0.06), uniform(rng, 0.0, 0.04)
    style = str(rng.choice(["box", "round", "tapered"]))
    top = seat_y + seat_t
    back_h, back_t = uniform(rng, 0.35, 0.60), uniform(rng, 0.025, 0.06)
    tilt = uniform(rng, 0.0, 0.25)
    back = box([width, back_h, back_t], [0, back_h / 2, 0])
    back.apply_transform(rotation(-tilt, [1, 0, 0]))
    back.apply_translation([0, top, -depth / 2 + back_t / 2])
    pieces = [
        Piece("back", back, "wood"),
        Piece("seat", box([width, seat_t, depth], [0, seat_y + seat_t / 2, 0]), "fabric"),
    ]
    x, z = width / 2 - inset - leg_t / 2, depth / 2 - inset - leg_t / 2
    for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        leg = leg_mesh(rng, style, [sx * x, seat_y, sz * z], [sx * x, 0.0, sz * z], leg_t)
        pieces.append(Piece("leg", leg, "wood"))
    if rng.random() < 0.4:
        pieces += chair_arms(rng, width, depth, top)
    return pieces


@contextmanager
def classic_chairs() -> Iterator[None]:
    """Within it, the procedural chairs (``make_shape``, ``write_examples``) are
    :func:`classic_chair`s."""
    from bipart_cli.procedural import BUILDERS

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(BUILDERS, "chair", classic_chair)
        yield
