"""Folders of generated shapes: the bundled examples, a training corpus, support sets."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write_bytes, atomic_write_text
from .registry import CATEGORIES, DEFAULT_CATEGORIES, STYLES
from .scenes import ColorMode, make_shape


def write_examples(
    out_dir: str | Path,
    categories: Iterable[str] = ("chair", "table", "mug", "lamp"),
    *,
    seed: int = 0,
    n_chairs: int = 6,
    colors: ColorMode = "natural",
) -> list[Path]:
    """Write ``<category>.glb`` for each category and ``chairs/chair_<k>.glb`` (a labeled
    few-shot support set of ``n_chairs`` chairs with seeds ``seed + 1 ..``, with a
    ``parts.json`` that makes their node names part labels for ``bipart index`` too)."""
    out_dir = Path(out_dir)
    jobs = [(out_dir / f"{category}.glb", category, seed) for category in categories]
    jobs += [
        (out_dir / "chairs" / f"chair_{k}.glb", "chair", seed + 1 + k) for k in range(n_chairs)
    ]
    written = []
    for path, category, shape_seed in jobs:
        atomic_write_bytes(path, make_shape(category, shape_seed, colors).export(file_type="glb"))
        written.append(path)
    if n_chairs:
        written.append(_write_part_names(out_dir / "chairs", "chair"))
    return written


def _write_part_names(folder: Path, category: str) -> Path:
    """``folder/parts.json``: the category's part names in ``CATEGORIES`` order."""
    path = folder / "parts.json"
    atomic_write_text(path, json.dumps({"parts": CATEGORIES[category]}) + "\n")
    return path


def write_corpus(
    out_dir: str | Path,
    per_category: int,
    categories: Iterable[str] | None = None,
    *,
    seed: int = 1000,
    colors: ColorMode = "natural",
    styled: bool = False,
) -> list[Path]:
    """A training corpus: ``<category>/<category>_<k>.glb`` plus a ``parts.json`` per category.

    ``parts.json`` holds the category's part names in ``CATEGORIES`` order, so every
    shape of a category is indexed with the same part order (``bipart index`` reads it).
    Shape ``k`` of category ``c`` has seed ``[seed, i_c, k]``, so the corpus never repeats
    the bundled examples (plain small seeds). Existing files are kept (re-runs resume).
    ``categories`` None: ``DEFAULT_CATEGORIES``. ``styled``: shape ``k`` of a category with
    :data:`~.registry.STYLES` takes style ``k`` modulo their number.
    """
    out_dir = Path(out_dir)
    chosen = list(DEFAULT_CATEGORIES) if categories is None else list(categories)
    unknown = [c for c in chosen if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown categories {', '.join(unknown)}; known: {', '.join(CATEGORIES)}")
    written = []
    for category in chosen:
        folder = out_dir / category
        folder.mkdir(parents=True, exist_ok=True)
        _write_part_names(folder, category)
        code = list(CATEGORIES).index(category)
        styles = STYLES.get(category, ()) if styled else ()
        for k in range(per_category):
            path = folder / f"{category}_{k:04d}.glb"
            if not path.exists():
                shape_seed = int(np.random.SeedSequence([seed, code, k]).generate_state(1)[0])
                style = styles[k % len(styles)] if styles else None
                shape = make_shape(category, shape_seed, colors, style)
                atomic_write_bytes(path, shape.export(file_type="glb"))
            written.append(path)
    return written


def write_support_sets(
    out_dir: str | Path,
    categories: Iterable[str] | None = None,
    *,
    per_category: int = 6,
    seed: int = 0,
    colors: ColorMode = "natural",
) -> dict[str, Path]:
    """Labeled few-shot support folders ``<out_dir>/<category>/`` (``bipart examples``).

    Each holds ``per_category`` shapes whose nodes name their parts, and a ``parts.json``;
    pass one as ``--support``. Seeds differ from the training corpus's (``seed + 2000``),
    and a category's :data:`~.registry.STYLES` take turns, so every form is there.
    ``categories`` None: ``DEFAULT_CATEGORIES``. Returns the folder of each category.
    """
    chosen = list(DEFAULT_CATEGORIES) if categories is None else list(categories)
    write_corpus(out_dir, per_category, chosen, seed=seed + 2000, colors=colors, styled=True)
    return {category: Path(out_dir) / category for category in chosen}
