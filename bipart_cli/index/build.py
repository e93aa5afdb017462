"""Building an index from a folder of assets, and merging partial indexes.

The build is incremental and resumable:

* every finished shape is written at once to ``OUT/.staging/`` (one small
  safetensors file each, atomically), so a Ctrl-C or a kill loses at most the
  shape in progress; re-running finds those files and goes on;
* a shape already in ``OUT``'s index with the same content identity (the sha256 over
  every file loading it read: ``Asset.sha256``), category, part names and build
  settings is reused, not recomputed. Its identity is known without loading it again:
  its record names the files loading read and those it looked for in vain
  (``ShapeRecord.reads``), so hashing the first and finding the second still missing
  says that a load would give the same asset (:func:`~bipart_cli.io.sources.identity_if_unchanged`);
  only a shape whose files changed is parsed again;
* at the end the records are packed in id order by :class:`IndexWriter`, the
  manifest written last, and the staging folder removed.

The line :func:`build_index` follows, under the index lock: read the previous
manifest once (:func:`_previous_index`), decide per shape what to reuse
(:func:`_index_one`), stage what is new, then write and commit in one place,
where the staging folder also goes on success or a write error. Reused records
are read from the previous shards while the new ones are written beside them:
shard files are named by their content and the unreferenced ones are removed
only after the new manifest is in place, so the old index stays whole until then.

Per-shape randomness is seeded from ``seed`` and the shape's id, never from the
processing order, so an interrupted, incremental, ``--shard i/n`` + merge or
single build of the same folder gives the same bytes.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import IndexCorruptError, InvalidInputError, OutputWriteError, UsageError
from ..io.atomic import write_error_reason
from ..io.labels import Unlabeled, unlabeled_for
from ..runtime import log
from .arrays import sha256_bytes
from .format import (
    BasisInfo,
    ShapeRecord,
    canonical_json,
)
from .manifest import read_manifest
from .reader import ShapeIndex
from .shape import (
    N_DENSE_KEPT,
    N_NETWORK_POINTS,
    LazyEncoder,
    ShapeContext,
    asset_reads,
    default_basis,
    default_encoder_identity,
    encode_points,
    encoder_identity,
    load_encoder,
    make_record,
    weights_encoder_identity,
)
from .staging import Staging, fault_hook
from .walk import category_for, find_assets, folder_part_names, in_shard, parse_shard_spec
from .writer import RECORDS_PER_SHARD, IndexWriter, check_writable_index_folder, index_lock

if TYPE_CHECKING:
    from ..io import Asset

DEFAULT_N_DENSE = 100_000


INDEX_LABELERS = ("given", "detector", "simulated", "none")


@dataclass
class BuildSummary:
    """What a build or merge did. ``failed`` holds ``{"path", "error"}`` per bad file."""

    out: str
    files: int = 0
    indexed: int = 0
    unchanged: int = 0
    resumed: int = 0
    removed: int = 0
    entries: int = 0
    shards: int = 0
    features_cached: bool = False
    partial: dict[str, Any] | None = None
    failed: list[dict[str, str]] = field(default_factory=list)
    # files left out as unlabeled (``given``/``simulated``): ``{"path", "why", "names"}`` each
    unlabeled: list[dict[str, str]] = field(default_factory=list)
    elapsed_s: float = 0.0
    # why the folder could not be written (read-only, full), when its index was up to date
    not_written: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _previous_index(out: Path, settings: dict[str, Any], basis: BasisInfo) -> ShapeIndex | None:
    """The index already in ``out`` when it was built with the same settings, else None."""
    try:
        manifest = read_manifest(out)
    except InvalidInputError:
        return None
    except IndexCorruptError as exc:
        log.warning("ignoring the existing index in %s: %s", out, exc)
        return None
    previous = ShapeIndex(out, manifest, verify=True)
    if manifest["settings"] != settings or manifest["bps_basis"]["sha256"] != sha256_bytes(
        basis.to_bytes()
    ):
        log.info("the index in %s was built with other settings: rebuilding every shape", out)
        return None
    return previous


def _reusable(previous: ShapeIndex | None, row: int | None) -> ShapeRecord | None:
    """The previous record at ``row`` when its shard is intact, else None."""
    if previous is None or row is None:
        return None
    try:
        return previous.record(row)
    except IndexCorruptError as exc:
        log.warning("%s: recomputing", exc)
        return None


def build_index(
    folder: str | Path,
    out: str | Path,
    *,
    category: str | None = None,
    parts: str | list[str] | None = None,
    labeler: str = "given",
    labeler_options: dict[str, Any] | None = None,
    no_cache_features: bool = False,
    weights: str | None = None,
    encoder_model: Any | None = None,
    encoder: dict[str, Any] | None = None,
    shard: str | tuple[int, int] | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    n_dense: int = DEFAULT_N_DENSE,
    n_points: int = N_NETWORK_POINTS,
    n_dense_kept: int = N_DENSE_KEPT,
    records_per_shard: int = RECORDS_PER_SHARD,
    names_as_parts: bool = False,
) -> BuildSummary:
    """Index the assets under ``folder`` into the index folder ``out``.

    Parameters
    ----------
    category : every shape's category; default the first sub-folder's name.
    parts : part names for every shape (``"a,b,c"`` or a list); default the nearest
        ``parts.json``, or for ``labeler="given"`` each asset's own labeled names.
    labeler : ``given`` (the assets' labels), ``detector``, ``simulated`` or ``none``;
        ``labeler_options`` go to :func:`bipart_cli.labeling.make_labeler`.
    no_cache_features : do not store frozen-encoder features (2048, 681) float16.
    weights : the model whose encoder fills the feature cache (default config otherwise).
    encoder_model : an already loaded model to fill it instead (``segment --support DIR``
        passes its own, so a warm run loads no second model); ``encoder`` its
        :func:`encoder_identity` when the caller has it (no second hash of its weights).
    shard : ``"i/n"``: only the files with ``stable_hash(path) % n == i`` (merge the parts
        with :func:`merge_indexes`).
    n_dense : dense points sampled and labeled per shape; ``n_points`` network points;
        ``n_dense_kept`` dense points stored for kNN transfer and previews.
    names_as_parts : take node names as part labels without a request (``segment
        --support DIR``: retrieval then keeps the shapes whose names are the requested
        parts). Otherwise, for ``given`` and ``simulated``, node names are part labels only
        when ``parts`` or a ``parts.json`` names them, since exporters name nodes too.

    One file that cannot be indexed is logged and listed in ``failed``; the
    others go on. A file without part labels (``given`` and ``simulated``) is left out
    and listed in ``unlabeled`` with why (:func:`~bipart_cli.io.labels.unlabeled_for`).
    Returns a :class:`BuildSummary`.
    """
    from ..labeling import make_labeler
    from ..parts import parse_part_names
    from ..runtime import progress as progress_bar
    from ..runtime import resolve_device

    started = time.perf_counter()
    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise InvalidInputError(f"{folder}: not a folder")
    if labeler not in INDEX_LABELERS:
        raise UsageError(f"--labeler {labeler!r}: expected one of {', '.join(INDEX_LABELERS)}")
    shard_spec = parse_shard_spec(shard)
    check_writable_index_folder(out)
    names_override = None if parts is None else parse_part_names(parts)
    options = dict(labeler_options or {})
    files = find_assets(folder, exclude=[out])
    if not files:
        raise InvalidInputError(f"{folder}: no supported assets found")
    selected = [(shape_id, path) for shape_id, path in files if in_shard(shape_id, shard_spec)]

    # CUDA asked for is checked now; auto and cpu wait until a shape needs the encoder
    device = resolve_device(device) if str(device).startswith("cuda") else device
    worker = make_labeler(labeler, **options)
    settings = {
        "n_points": n_points,
        "n_dense": n_dense,
        "n_dense_kept": n_dense_kept,
        "seed": seed,
        "labeler": labeler,
        # the labeler's full config (model id, revision, threshold...): a change rebuilds
        "labeler_config": json.loads(json.dumps(worker.config, sort_keys=True, default=str)),
    }
    basis = default_basis()
    if no_cache_features:
        encoding, encoder = LazyEncoder(None, device), None
    elif encoder_model is not None:
        encoding = LazyEncoder(lambda _: encoder_model, device)
        encoder = encoder or encoder_identity(encoder_model)
    else:
        encoding = LazyEncoder(lambda on: load_encoder(weights, seed, on), device)
        encoder = (
            default_encoder_identity(encoding)
            if weights is None
            else weights_encoder_identity(encoding, weights, seed)
        )
    context = ShapeContext(
        folder=folder,
        settings=settings,
        basis=basis,
        labeler=worker,
        encoding=encoding,
        encoder=encoder,
        names_as_parts=names_as_parts,
    )
    staging = None
    with _write_lock(out) as lock_error:  # concurrent writers of one index take turns
        unwritable = "" if lock_error is None else write_error_reason(lock_error)
        try:
            previous = _previous_index(out, settings, basis)
            previous_rows = (
                {} if previous is None else {e.id: i for i, e in enumerate(previous.entries)}
            )
            staging = Staging(
                out,
                canonical_json(
                    {
                        "settings": settings,
                        "encoder": encoder,
                        "basis": sha256_bytes(basis.to_bytes()),
                    }
                ),
            )
            summary = BuildSummary(
                out=str(out), files=len(selected), features_cached=encoder is not None
            )
            sources: dict[str, tuple[str, str]] = {}  # id -> (where the record is, sha256)
            with progress_bar(quiet=not progress) as bar:
                task = bar.add_task("indexing", total=len(selected))
                for shape_id, path in selected:
                    try:
                        outcome, sha256, where = _index_one(
                            path,
                            shape_id,
                            names_override,
                            category,
                            context,
                            staging,
                            previous,
                            previous_rows.get(shape_id),
                        )
                    except OutputWriteError:
                        raise
                    except UnlabeledShape as exc:  # expected in a folder of mixed assets
                        summary.unlabeled.append(exc.entry(shape_id))
                    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the build
                        message = str(exc) or type(exc).__name__
                        named = shape_id in message or str(path) in message
                        log.error("%s", message if named else f"{shape_id}: {message}")
                        summary.failed.append({"path": shape_id, "error": message})
                    else:
                        sources[shape_id] = (where, sha256)
                        setattr(summary, outcome, getattr(summary, outcome) + 1)
                        if outcome == "indexed":
                            fault_hook(summary.indexed)
                    bar.advance(task)

            writer = IndexWriter(
                out,
                settings=settings,
                basis=basis,
                encoder=encoder,
                source_root=str(folder.resolve()),
                partial=None
                if shard_spec is None
                else {"shards": [shard_spec[0]], "of": shard_spec[1]},
                records_per_shard=records_per_shard,
            )
            reused = previous is not None and all(w == "previous" for w, _ in sources.values())
            if reused and not writer.would_rewrite(previous.manifest, list(sources)):
                manifest = previous.manifest  # a warm `segment --support DIR` writes nothing
                if not unwritable:
                    writer.remove_unreferenced(manifest)
            elif unwritable:
                message = f"cannot write the index in {out}: {unwritable}"
                raise OutputWriteError(message) from lock_error
            else:
                manifest = _write_records(writer, sources, previous, previous_rows, staging)
            staging.remove()
            summary.removed = len(set(previous_rows) - set(sources))
            summary.entries = manifest["num_entries"]
            summary.shards = len(manifest["shards"])
            summary.partial = manifest["partial"]
            summary.elapsed_s = round(time.perf_counter() - started, 3)
            summary.not_written = unwritable
            if unwritable:
                log.warning(
                    "cannot write in %s (%s); its index is up to date and is used as it is",
                    out,
                    unwritable,
                )
        except (OSError, OutputWriteError) as exc:  # a full disk: no stray journal, one line
            if staging is not None:
                staging.remove()
            if isinstance(exc, OutputWriteError):
                raise
            raise OutputWriteError(
                f"cannot write the index in {out}: {exc.strerror or exc}"
            ) from exc
    return summary


@contextlib.contextmanager
def _write_lock(out: Path) -> Iterator[OSError | None]:
    """:func:`index_lock` on ``out``, yielding None; where the folder cannot be written (a
    read-only cache, a full disk) no lock is held and the error is yielded: the build may
    then only find the index there up to date (renamed into place whole, it can be read
    without the lock)."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(index_lock(out))
        except OSError as exc:
            yield exc
        else:
            yield None


def _write_records(
    writer: IndexWriter,
    sources: dict[str, tuple[str, str]],
    previous: ShapeIndex | None,
    previous_rows: dict[str, int],
    staging: Staging,
) -> dict[str, Any]:
    """Add every record, reused or staged, in id order and commit; returns the manifest."""
    for shape_id in sorted(sources):
        where, sha256 = sources[shape_id]
        if where == "previous":
            record = previous.record(previous_rows[shape_id])
        else:
            record = staging.load(shape_id, sha256)
        if record is None:  # a staged file vanished between the loop and now
            raise IndexCorruptError(f"staged record of {shape_id} is missing in {staging.folder}")
        writer.add(record)
    return writer.commit()


class UnlabeledShape(Exception):
    """A file left out of a ``given`` or ``simulated`` build: it has no part labels (for
    the build's request)."""

    def __init__(self, unlabeled: Unlabeled) -> None:
        super().__init__(str(unlabeled))
        self.unlabeled = unlabeled

    def entry(self, shape_id: str) -> dict[str, str]:
        """The :attr:`BuildSummary.unlabeled` item of file ``shape_id``."""
        return {"path": shape_id, "why": self.unlabeled.why, "names": self.unlabeled.names_text()}


def _index_one(
    path: Path,
    shape_id: str,
    names_override: list[str] | None,
    category_override: str | None,
    context: ShapeContext,
    staging: Staging,
    previous: ShapeIndex | None,
    row: int | None,
) -> tuple[str, str, str]:
    """Make sure shape ``shape_id`` is staged or reusable; returns (outcome, sha256, where).

    outcome: ``resumed`` (staged by an interrupted run), ``unchanged`` (reused from
    the previous index) or ``indexed`` (computed now). ``sha256`` is the asset's content
    identity (``Asset.sha256``): every file its readers opened (buffers, label arrays,
    sidecars), so a changed ``.bin`` or ``_labels.npy`` is indexed again. ``where`` the
    record is: ``previous`` (the index's own) or ``staged``.

    The asset is loaded only when its previous record cannot say that its files are as
    they were (:func:`_unchanged_identity`), or when a record must be made.
    """
    category = category_for(shape_id, context.folder, category_override)
    names = names_override or folder_part_names(path, context.folder)
    sha256 = _unchanged_identity(path, previous, row)
    # an unchanged shape's record was made from these bytes for these names: its labels
    # passed the check below then
    asset = None if sha256 is not None else _load_labeled(path, names, context)
    sha256 = sha256 or asset.sha256

    def same_shape(record: ShapeRecord) -> bool:
        return (
            record.sha256 == sha256
            and record.category == category
            and (names is None or record.part_names == names)
        )

    staged = staging.load(shape_id, sha256)
    if staged is not None and same_shape(staged):
        return "resumed", sha256, "staged"
    old = _reusable(previous, row)
    if old is not None and same_shape(old):
        if context.encoder is not None and previous.encoder != context.encoder:
            old.features = encode_points(context.encoder_model, old.points, context.device)
            if old.reads is None and asset is not None:
                old.reads = asset_reads(asset)
            staging.save(old)  # only the stale feature cache is recomputed
            return "indexed", sha256, "staged"
        if old.reads is None and asset is not None:
            return _with_reads(old, asset, staging)
        return "unchanged", sha256, "previous"
    if asset is None:  # the same files, but another category or other part names
        asset = _load_labeled(path, names, context)
        sha256 = asset.sha256
    staging.save(make_record(asset, shape_id, category, names, context))
    return "indexed", sha256, "staged"


def _with_reads(old: ShapeRecord, asset: Asset, staging: Staging) -> tuple[str, str, str]:
    """An unchanged record of an index written before records kept what loading read: staged
    with them, so the next build needs no load. Only speed: where the index cannot be
    written, the previous record is used as it is."""
    old.reads = asset_reads(asset)
    try:
        staging.save(old)
    except OutputWriteError:
        return "unchanged", old.sha256, "previous"
    return "unchanged", old.sha256, "staged"


def _unchanged_identity(path: Path, previous: ShapeIndex | None, row: int | None) -> str | None:
    """The previous record's content identity when loading ``path`` now would read the
    same bytes it was made from (its ``reads``), without loading it; else None."""
    from ..io.sources import identity_if_unchanged

    if previous is None or row is None:
        return None
    entry = previous.entries[row]
    if entry.reads is None:
        return None
    sha256 = identity_if_unchanged(path, entry.reads)
    return sha256 if sha256 == entry.sha256 else None


def _load_labeled(path: Path, names: list[str] | None, context: ShapeContext) -> Asset:
    """The asset at ``path``; for the ``given`` and ``simulated`` labelers, raises
    :class:`UnlabeledShape` when it has no part labels for ``names``."""
    from ..io import load_asset

    asset = load_asset(path)
    if context.settings["labeler"] in ("given", "simulated"):  # both need labels
        requested = names
        if requested is None and context.names_as_parts:
            requested = list(asset.part_names)  # its own: retrieval matches the request
        unlabeled = unlabeled_for(asset, requested)
        if unlabeled is not None:
            raise UnlabeledShape(unlabeled)
    return asset
