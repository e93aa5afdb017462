"""Unlabeled shapes for pre-training, and the seeded batches drawn from them.

A corpus is a list of point pools, each ``(P, 3) float32`` in unit-sphere
coordinates: surface samples of the assets in folders, the network points of
index records, and shapes made on the fly by the procedural generator. A batch
is a function of ``(seed, step)`` alone, so a resumed run draws the batches the
uninterrupted run would have drawn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BipartError, UsageError
from ..index.format import MANIFEST_NAME

log = logging.getLogger("bipart")

POOL_POINTS = 4096  # surface samples kept per asset; each step takes a random num_points of them
ROTATIONS = ("so3", "up", "none")


@dataclass
class Corpus:
    """Point pools and where they came from (``sources``: counts per kind, for the log)."""

    pools: list[np.ndarray] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pools)

    def add(self, kind: str, pool: np.ndarray) -> None:
        self.pools.append(np.ascontiguousarray(pool, dtype=np.float32))
        self.sources[kind] = self.sources.get(kind, 0) + 1


def _asset_files(folder: Path) -> list[Path]:
    from ..io.checks import SUPPORTED_FORMATS

    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and path.suffix.lower().lstrip(".") in SUPPORTED_FORMATS
    )


def _asset_pool(path: Path, seed: int) -> np.ndarray:
    from ..io.load import load_asset
    from ..io.sample import sample_dense

    return sample_dense(load_asset(path), POOL_POINTS, seed=seed).points


def _add_folder(corpus: Corpus, folder: Path, seed: int, tick: Callable[[], None]) -> None:
    files = _asset_files(folder)
    if not files:
        raise UsageError(f"--data {folder}: no asset files (glb, obj, ply, ...) in this folder")
    for number, path in enumerate(files):
        try:
            corpus.add("files", _asset_pool(path, seed + number))
        except BipartError as exc:  # a broken asset in a big library is skipped, not fatal
            corpus.skipped.append(f"{path}: {exc}")
            log.warning("skipped %s: %s", path, exc)
        tick()


def _add_index(corpus: Corpus, spec: str, tick: Callable[[], None]) -> None:
    from ..index import ShapeIndex

    index = ShapeIndex.open(spec)
    for row in range(len(index)):
        corpus.add("index", index.record(row).points)
        tick()


def procedural_pool(number: int, seed: int) -> np.ndarray:
    """The ``number``-th generated shape (the default categories in turn), sampled to a pool."""
    from ..io.sample import sample_dense
    from ..io.scenes import asset_from_scene
    from ..procedural import DEFAULT_CATEGORIES, make_shape

    names = sorted(DEFAULT_CATEGORIES)
    shape_seed = seed * 1_000_003 + number
    scene = make_shape(names[number % len(names)], seed=shape_seed)
    return sample_dense(asset_from_scene(scene), POOL_POINTS, seed=shape_seed).points


def _is_index(spec: str) -> bool:
    return spec.startswith("hf://") or (Path(spec) / MANIFEST_NAME).is_file()


def check_sources(data: list[str], procedural: int) -> None:
    """Before any reading: something to read, and every ``--data`` a folder or an index."""
    if not data and procedural < 1:
        raise UsageError("nothing to pre-train on: give --data DIR|INDEX or --procedural N")
    for spec in data:
        if not (_is_index(spec) or Path(spec).is_dir()):
            raise UsageError(f"--data {spec}: not a folder of assets or an index")


def build_corpus(
    data: list[str], procedural: int, seed: int, tick: Callable[[], None] = lambda: None
) -> Corpus:
    """Every ``--data`` folder (assets, recursively) or index, then ``procedural`` generated shapes."""
    check_sources(data, procedural)
    corpus = Corpus()
    for spec in data:
        if _is_index(spec):
            _add_index(corpus, spec, tick)
        else:
            _add_folder(corpus, Path(spec), seed, tick)
    for number in range(procedural):
        corpus.add("procedural", procedural_pool(number, seed))
        tick()
    if not corpus.pools:
        raise UsageError(
            f"nothing to pre-train on: none of the {len(corpus.skipped)} files could be read"
        )
    return corpus


def random_rotation(rng: np.random.Generator, kind: str) -> np.ndarray:
    """A (3, 3) rotation: uniform over SO(3), about the up (y) axis, or the identity."""
    if kind == "none":
        return np.eye(3)
    if kind == "up":
        angle = rng.uniform(0, 2 * np.pi)
        c, s = np.cos(angle), np.sin(angle)
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))  # Haar-uniform
    return q * np.linalg.det(q)  # a rotation, not a reflection


def draw_batch(
    corpus: Corpus,
    seed: int,
    step: int,
    batch_size: int,
    num_points: int,
    rotation: str = "so3",
    scale: tuple[float, float] = (0.8, 1.2),
    jitter: float = 0.01,
) -> np.ndarray:
    """The global batch of step ``step``: (batch_size, num_points, 3) float32.

    Each shape: a random subset of its pool, a random rotation, an isotropic
    scale and clipped Gaussian jitter.
    """
    rng = np.random.default_rng([seed, step])
    shapes = rng.integers(len(corpus), size=batch_size)
    batch = np.empty((batch_size, num_points, 3), np.float32)
    for slot, shape in enumerate(shapes):
        pool = corpus.pools[shape]
        picked = rng.choice(len(pool), num_points, replace=len(pool) < num_points)
        points = pool[picked] @ random_rotation(rng, rotation).T * rng.uniform(*scale)
        noise = np.clip(rng.normal(0.0, jitter, points.shape), -5 * jitter, 5 * jitter)
        batch[slot] = points + noise
    return batch
