"""Support-set retrieval from a shape index (Sec. 3.4), shared by segment, eval and train.

A :class:`SupportBank` wraps an opened index. For a target it keeps the
entries of the same category (or, without a category, those whose part names
match the target's), leaves out those whose labels name fewer than half the requested
parts (another kind of object: :data:`~.selection.MIN_NAMED_SHARE`), ranks the rest by
centred-cosine BPS similarity, applies the part-perfect rule, and returns
:class:`~bipart_cli.support.SupportShape` items whose labels are re-indexed to the
target's part names.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .lookup import lower_names, row_lookups

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..index import BuildSummary
    from .shapes import SupportShape

# From this many candidates a query is bounded on a projection first (SupportBank._pruned_similarity)
PROJECTED_MIN_ROWS = 16384
PROJECTED_RANK = 64


def _residual_norms(squared_norms, projected: np.ndarray) -> np.ndarray:
    """(n,) norms of rows minus their projection on orthonormal axes, from their squared
    norms (n,) or a scalar and their projections (n, r); a little high, never low."""
    left = squared_norms - (projected * projected).sum(1, dtype=np.float64)
    return np.sqrt(np.maximum(left + 1e-5, 0.0)).astype(np.float32)


def centred_unit_rows(bps: np.ndarray, mean: np.ndarray, block: int = 8192) -> np.ndarray:
    """``unit_rows((bps - mean).astype(float32))`` a block of rows at a time: bps (E, F),
    mean (F,) float64 -> (E, F) float32, the same values without an (E, F) float64
    temporary (800 MB at 100k entries). The bank's rows and its queries alike."""
    from .selection import unit_rows

    out = np.empty(bps.shape, np.float32)
    for start in range(0, len(bps), block):
        out[start : start + block] = unit_rows(
            (bps[start : start + block] - mean).astype(np.float32)
        )
    return out


def _centred_bps(index) -> tuple[np.ndarray | None, np.ndarray]:
    """The index's mean BPS feature (F,) float64 (None for an empty index) and its BPS rows
    centred on it and normalised (E, F) float32; kept in the index's
    :meth:`~bipart_cli.index.ShapeIndex.derived_store` when it has one (0.8 s at 100k
    entries)."""

    def compute() -> dict[str, np.ndarray]:
        # the centred rows are kept instead of the BPS matrix itself, not besides it
        bps = np.asarray(index.bps_matrix(keep=False), dtype=np.float32)  # (E, F)
        mean = bps.mean(0, dtype=np.float64)
        return {"mean": mean, "unit_rows": centred_unit_rows(bps, mean)}

    if len(index.entries) == 0:
        return None, np.asarray(index.bps_matrix(), dtype=np.float32)
    store = index.derived_store()
    if store is None:
        kept = compute()
    else:
        rows, width = len(index.entries), index.basis.params()["n_points"]

        def valid(arrays: dict[str, np.ndarray]) -> bool:
            mean, unit_rows = arrays.get("mean"), arrays.get("unit_rows")
            return (
                mean is not None
                and unit_rows is not None
                and mean.shape == (width,)
                and mean.dtype == np.float64
                and unit_rows.shape == (rows, width)
                and unit_rows.dtype == np.float32
            )

        kept = store.fetch("centred", index.manifest_sha256, compute, valid)
    return kept["mean"], kept["unit_rows"]


class SupportBank:
    """Candidates for support sets, read lazily from a shape index."""

    def __init__(self, index, model=None, encoder: dict | None = None) -> None:
        from ..index import encoder_identity

        self.index = index
        # Cached encoder features are used only when they come from this model's encoder
        # (``encoder``: its identity, when the caller has it).
        if model is None:
            self.expected_encoder = None
        else:
            self.expected_encoder = encoder if encoder is not None else encoder_identity(model)
        self.entries = index.entries
        # centred and normalised once: a query is then one matrix-vector product
        self.bps_mean, self.unit_bps = _centred_bps(index)  # (F,) float64, (E, F) float32
        self.basis = np.asarray(index.basis.points, dtype=np.float32)
        self._records: dict[int, SupportShape] = {}
        self._projected: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        # lookups built once: a 100k-entry index took ~60 ms a query to filter in a loop
        self._lookups = row_lookups(index)
        # a temporary folder holding the index, when the cache could not (from_folder)
        self._scratch: tempfile.TemporaryDirectory | None = None

    @classmethod
    def from_index(
        cls,
        path_or_uri: str,
        revision: str | None = None,
        model=None,
        encoder: dict | None = None,
        bps_cache: Path | None = None,
    ) -> SupportBank:
        """Open an index; ``bps_cache``: where its BPS matrix is kept between processes."""
        from ..index import ShapeIndex

        index = ShapeIndex.open(path_or_uri, revision=revision, bps_cache=bps_cache)
        return cls(index, model, encoder)

    @classmethod
    def from_folder(
        cls,
        folder: Path,
        cache: Path,
        seed: int = 0,
        device: str = "cpu",
        model=None,
        encoder: dict | None = None,
    ) -> SupportBank:
        """Index a folder of labeled assets with the ``given`` labeler (incremental, kept in
        ``cache``), then open it.

        Where ``cache`` cannot be written (a read-only or full disk) and holds no index of
        the folder that is up to date, the folder is indexed into a temporary folder, which
        the bank keeps while it reads it (removed when the bank goes, or at exit); one
        warning says that the cache was not written, so a later run indexes it again.
        """
        from ..errors import OutputWriteError, UsageError
        from ..index import ShapeIndex
        from ..store import warn_unwritable_cache

        if not Path(folder).is_dir():
            raise UsageError(f"--support {folder}: not a folder of labeled assets")
        index_folder = functools.partial(
            _index_folder, folder, seed=seed, device=device, model=model, encoder=encoder
        )
        scratch = None
        try:
            summary = index_folder(cache)
        except OutputWriteError as exc:  # a read-only or full cache: a temporary index
            scratch, summary = _index_in_scratch(index_folder, exc)
            warn_unwritable_cache(cache, exc)
            cache = Path(scratch.name)
        index = ShapeIndex.open(cache)
        _check_labeled(folder, index, summary)
        if summary.not_written:  # said here: the build's own warning was silenced
            warn_unwritable_cache(cache, OSError(summary.not_written))
        bank = cls(index, model, encoder)
        bank._scratch = scratch  # the temporary index is read as long as the bank is
        return bank

    def __len__(self) -> int:
        return len(self.entries)

    def candidates(
        self, part_names: list[str], category: str | None = None, exclude_sha256: str | None = None
    ) -> list[int]:
        """Entry rows usable as support for a target with ``part_names``.

        With a category: its entries. Without: every entry that shares at least one
        part name with the target. Either way an entry whose labels name fewer than half
        of ``part_names`` is left out: a table (top, leg) is no support for a chair's back,
        seat and leg, even to fill M. Part-perfect selection then prefers those that show
        the most of the target's parts, and BPS similarity the closest shapes.
        """
        return self._candidate_rows(part_names, category, exclude_sha256).tolist()

    def _candidate_rows(
        self, part_names: list[str], category: str | None, exclude_sha256: str | None
    ) -> np.ndarray:
        """:meth:`candidates` as an ascending (R,) int64 array."""
        none = np.zeros(0, dtype=np.int64)
        if category is not None:
            rows = self._lookups.category.get(category.lower(), none)
        else:  # entry order, as the similarity ranking breaks ties by it
            listed = np.zeros(len(self.entries), dtype=bool)
            for name in lower_names(part_names):
                listed[self._lookups.part.get(name, none)] = True
            rows = np.flatnonzero(listed)
        if exclude_sha256:
            rows = rows[~np.isin(rows, self._lookups.rows_with_sha256(exclude_sha256))]
        return rows[self._names_enough_parts(rows, part_names)]

    def _names_enough_parts(self, rows: np.ndarray, part_names: list[str]) -> np.ndarray:
        """(R,) bool: which entry ``rows`` name enough of ``part_names`` to be support
        (:func:`~.selection.names_enough_parts`). The entries' own part names decide, not
        which parts survive in their labels: a category whose shapes all list its parts
        (every benchmark index) keeps every shape, so its picks are as before."""
        from .selection import names_enough_parts

        requested = lower_names(part_names)
        named = np.zeros(len(self.entries), dtype=np.int64)
        for name in requested:
            named[self._lookups.part.get(name, [])] += 1
        return names_enough_parts(named[rows], len(requested))

    def part_counts(self, rows: list[int], part_names: list[str]) -> np.ndarray:
        """How many of the target's parts survive (Eq. 4) in each candidate."""
        counts = np.zeros(len(self.entries), dtype=np.int64)
        for name in lower_names(part_names):
            counts[self._lookups.surviving.get(name, [])] += 1
        return counts[np.asarray(rows, dtype=np.int64)]

    def retrieve(
        self,
        target_points: np.ndarray,
        part_names: list[str],
        m: int = 8,
        strategy: str = "part-perfect",
        category: str | None = None,
        exclude_sha256: str | None = None,
        rng: np.random.Generator | None = None,
        any_turn: bool = False,
    ) -> list[SupportShape]:
        """The M support shapes for a target (N, 3), best first."""
        rows = self.select(
            target_points, part_names, m, strategy, category, exclude_sha256, rng, any_turn
        )
        return [self.shape(row, part_names) for row in rows]

    def select(
        self,
        target_points: np.ndarray,
        part_names: list[str],
        m: int = 8,
        strategy: str = "part-perfect",
        category: str | None = None,
        exclude_sha256: str | None = None,
        rng: np.random.Generator | None = None,
        any_turn: bool = False,
    ) -> list[int]:
        """The entry rows of :meth:`retrieve`'s shapes, without reading their records.

        With ``any_turn`` a shape's similarity is its best over the 24 quarter turns of
        the target, so a shape exported with another up axis or lying on its side is
        found as readily as one in the target's pose (``--match-pose`` then turns it).
        """
        from .selection import bps_features, select_support

        rows = self._candidate_rows(part_names, category, exclude_sha256)
        if not len(rows):
            return []
        if any_turn:  # (T, F): the target in each of the 24 quarter turns
            from ..orientation import AXIS_ROTATIONS
            from ..signatures import turned_bps_features

            features = turned_bps_features(target_points, self.basis, AXIS_ROTATIONS)
        else:
            features = bps_features(target_points, self.basis)[None]  # (1, F)
        queries = centred_unit_rows(features, self.bps_mean)  # (T, F), as the bank's rows
        part_counts = self.part_counts(rows, part_names)
        m = min(m, len(rows))
        if len(rows) >= PROJECTED_MIN_ROWS and strategy != "random":
            similarity = self._pruned_similarity(rows, queries, part_counts, m, strategy)
        else:
            similarity = self._products(self.unit_bps, rows, queries).max(axis=1)
        picked = select_support(
            None, None, part_counts, m=m, strategy=strategy, rng=rng, similarity=similarity
        )
        return [int(rows[k]) for k in picked]

    def _products(self, matrix: np.ndarray, rows: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """(R, T) ``matrix[rows] @ queries.T``, the cheaper way round."""
        if 2 * len(rows) < len(self.entries):  # a category: only its rows
            return matrix[rows] @ queries.T
        return (matrix @ queries.T)[rows]  # one product beats copying most rows out

    def _pruned_similarity(
        self, rows: np.ndarray, queries: np.ndarray, part_counts: np.ndarray, m: int, strategy: str
    ) -> np.ndarray:
        """(R,) best-turn similarities exact where :func:`select_support` may pick, -inf elsewhere.

        Each similarity is bounded first from the BPS projected on its leading principal
        axes (a product ~16x smaller than the full one): projected cosine +- the product
        of the two residual norms (Cauchy-Schwarz). Only the rows whose bounds leave them
        in the running are scored on the full BPS, so the picks are those of scoring all.
        """
        from .selection import rows_that_may_be_picked

        axes, projected, residual = self._projection()
        query_projected = queries @ axes  # (T, r)
        query_residual = _residual_norms((queries * queries).sum(1), query_projected)  # (T,)
        best = self._products(projected, rows, query_projected).max(axis=1)  # (R,)
        # |exact - projected| <= |row residual| |query residual| at every turn, so the best
        # turn's exact cosine is within that (at the largest query residual) of the best
        # projected one; 1e-4 covers both products' float32 rounding, far above what it reaches
        slack = residual[rows] * query_residual.max() + 1e-4  # (R,)
        lower, upper = best - slack, best + slack
        may = rows_that_may_be_picked(lower, upper, part_counts, m, strategy)
        similarity = np.full(len(rows), -np.inf, dtype=np.float32)
        similarity[may] = (self.unit_bps[rows[may]] @ queries.T).max(axis=1)
        return similarity

    def _projection(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The leading principal axes (F, r) of the unit BPS rows, every row's coordinates
        on them (E, r) and the norm of what they leave out (E,). Computed once, on first use."""
        if self._projected is None:
            rng = np.random.default_rng(0)
            count = len(self.unit_bps)
            sample = self.unit_bps[np.sort(rng.choice(count, min(count, 4096), replace=False))]
            sample = sample.astype(np.float64)
            _, vectors = np.linalg.eigh(sample.T @ sample)  # ascending
            axes = np.ascontiguousarray(vectors[:, ::-1][:, :PROJECTED_RANK], dtype=np.float32)
            projected = self.unit_bps @ axes  # (E, r)
            self._projected = (axes, projected, _residual_norms(1.0, projected))
        return self._projected

    def shape(self, row: int, part_names: list[str]) -> SupportShape:
        """Entry ``row`` as a support shape labeled in the target's part names."""
        from .shapes import SupportShape, remap_pseudo_labels

        key = (row, tuple(part_names))
        if key not in self._records:
            record = self.index.record(row)
            features = None
            if self.expected_encoder is not None:
                # as stored (float16): widened only if the extractor runs on them, which a
                # shape whose network features are in bipart's cache does not
                features = self.index.encoder_features(row, expected=self.expected_encoder)
            self._records[key] = SupportShape(
                shape_id=record.id,
                points=record.points,
                pseudo_labels=remap_pseudo_labels(record.pseudo_labels, part_names),
                encoder_features=features,
                descriptors=record.descriptors,
            )
        return self._records[key]


def _index_folder(
    folder: Path, out: Path, *, seed: int, device: str, model, encoder: dict | None
) -> BuildSummary:
    """:func:`~bipart_cli.index.build_index` of a ``--support`` folder into ``out``, its
    per-file errors silenced (:func:`_check_labeled` sums them up in one line)."""
    from ..index import build_index
    from ..runtime import log

    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        return build_index(
            folder,
            out,
            labeler="given",
            # the model's encoder features are cached with the shapes, so a later
            # process runs no encoder pass over them (a changed encoder re-encodes)
            no_cache_features=model is None,
            encoder_model=model,
            encoder=encoder,
            seed=seed,
            device=device,
            progress=False,
            # names are matched to the request at retrieval (candidates by part name)
            names_as_parts=True,
        )
    finally:
        log.setLevel(level)


def _index_in_scratch(
    index_folder: Callable[[Path], BuildSummary], unwritable: Exception
) -> tuple[tempfile.TemporaryDirectory, BuildSummary]:
    """``index_folder`` into a new temporary folder, as the cache could not take it
    (``unwritable``): (that folder, the build's summary)."""
    from ..errors import OutputWriteError
    from ..io.atomic import write_error_reason

    try:
        scratch = tempfile.TemporaryDirectory(prefix="bipart-support-", ignore_cleanup_errors=True)
        try:
            return scratch, index_folder(Path(scratch.name))
        except BaseException:
            scratch.cleanup()
            raise
    except (OSError, OutputWriteError) as exc:
        raise OutputWriteError(
            f"{unwritable}; nor in a temporary folder: {write_error_reason(exc)}"
        ) from exc


def _check_labeled(folder: Path, index, summary: BuildSummary) -> None:
    """One error when the indexed ``--support`` folder gave no shape, one warning each for
    the files it skipped and the unlabeled ones it left out."""
    from ..errors import UsageError
    from ..runtime import log

    failed = list(getattr(summary, "failed", []) or [])
    unlabeled = list(getattr(summary, "unlabeled", []) or [])
    if not index.entries:
        found = (
            f"{len(failed) + len(unlabeled)} file(s), none labeled"
            if failed or unlabeled
            else "no assets"
        )
        raise UsageError(
            f"--support {folder}: the folder has no labeled shapes ({found}); label parts by "
            "node names, a PLY label property or <stem>_labels.npy with parts.json, "
            "or write ready-made support sets with 'bipart examples DIR'"
        )
    if failed:
        log.warning("--support: %d file(s) skipped, e.g. %s", len(failed), failed[0]["error"])
    if unlabeled:
        first = unlabeled[0]
        log.warning(
            "--support: %d unlabeled file(s) left out, e.g. %s (%s)",
            len(unlabeled),
            first["path"],
            first["names"],
        )
