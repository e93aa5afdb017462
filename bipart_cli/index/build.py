"""Building an index from a folder of assets, and merging partial indexes.

The build is incremental and resumable:

* every finished shape is written at once to ``OUT/.staging/`` (one small
  safetensors file each, atomically), so a Ctrl-C or a kill loses at most the
  shape in progress; re-running finds those files and goes on;
* a shape already in ``OUT``'s index with the same sha256 (and category, part
  names and build settings) is reused, not recomputed;
* at the end the records are packed in id order by :class:`IndexWriter`, the
  manifest written last, and the staging folder removed.

Per-shape randomness is seeded from ``seed`` and the shape's id, never from the
processing order, so an interrupted, incremental, ``--shard i/n`` + merge or
single build of the same folder gives the same bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorruptError, InvalidInputError, OutputWriteError, UsageError
from ..io.atomic import atomic_write_bytes, atomic_write_text
from ..runtime import log
from .format import (
    BasisInfo,
    ShapeRecord,
    canonical_json,
    records_from_bytes,
    records_to_bytes,
    sha256_bytes,
    stable_hash,
)
from .reader import ShapeIndex, read_manifest
from .writer import RECORDS_PER_SHARD, IndexWriter, check_writable_index_folder, index_lock

STAGING_DIR = ".staging"
N_NETWORK_POINTS = 2048
N_DENSE_KEPT = 8192
DEFAULT_N_DENSE = 100_000
INDEX_LABELERS = ("given", "detector", "simulated", "none")
# Test hook: "interrupt@K" raises KeyboardInterrupt, "kill@K" SIGKILLs the
# process, right after the K-th shape of a build has been staged.
FAULT_ENV = "BIPART_TEST_INDEX_FAULT"


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
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


# --- walking the folder ----------------------------------------------------------


def parse_shard_spec(spec: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``; None stays None."""
    if spec is None:
        return None
    if isinstance(spec, tuple):
        i, n = spec
    else:
        left, sep, right = str(spec).partition("/")
        if not sep or not left.strip().isdigit() or not right.strip().isdigit():
            raise UsageError(f"--shard {spec!r}: expected i/n, e.g. 0/4")
        i, n = int(left), int(right)
    if n < 1 or not 0 <= i < n:
        raise UsageError(f"--shard {i}/{n}: need 0 <= i < n")
    return i, n


def in_shard(shape_id: str, shard: tuple[int, int] | None) -> bool:
    """Whether the file ``shape_id`` (its relative path) belongs to shard ``(i, n)``."""
    return shard is None or stable_hash(shape_id) % shard[1] == shard[0]


def _is_label_sidecar(path: Path) -> bool:
    # PSB-style per-face label arrays next to meshes: "<id>_labels.npy"
    return path.stem.endswith("_labels") and path.suffix.lower() in (".npy", ".txt")


def find_assets(folder: Path, exclude: Iterable[Path] = ()) -> list[tuple[str, Path]]:
    """Supported assets under ``folder`` as ``(relative POSIX path, path)``, sorted.

    Hidden files and folders, label sidecars (``*_labels.npy``) and the folders
    in ``exclude`` (e.g. the index being written inside ``folder``) are skipped.
    """
    from ..io.checks import SUPPORTED_FORMATS

    excluded = {Path(p).resolve() for p in exclude}
    found = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and (root_path / d).resolve() not in excluded
        )
        for name in files:
            path = root_path / name
            if name.startswith(".") or _is_label_sidecar(path):
                continue
            if path.suffix.lower().lstrip(".") in SUPPORTED_FORMATS:
                found.append((path.relative_to(folder).as_posix(), path))
    return sorted(found)


def category_for(shape_id: str, folder: Path, override: str | None) -> str:
    """``--category``, else the first sub-folder of the path, else the folder's own name."""
    if override:
        return override
    head, sep, _ = shape_id.partition("/")
    return head if sep else folder.resolve().name


def folder_part_names(path: Path, folder: Path) -> list[str] | None:
    """Names from the nearest ``parts.json`` between the asset's folder and ``folder``.

    Accepts a list of names or ``{"parts": [...]}``.
    """
    from ..parts import parse_part_names

    current, top = path.parent.resolve(), folder.resolve()
    while True:
        candidate = current / "parts.json"
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InvalidInputError(f"{candidate}: unreadable parts.json ({exc})") from None
            names = data.get("parts") if isinstance(data, dict) else data
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise InvalidInputError(f"{candidate}: expected a list of part names")
            try:
                return parse_part_names(names)
            except UsageError as exc:  # "--parts names ... twice" would blame the wrong place
                message = str(exc).replace("--parts", "the list", 1)
                raise InvalidInputError(f"{candidate}: {message}") from None
        if current == top or current.parent == current:
            return None
        current = current.parent


def file_seed(seed: int, shape_id: str) -> int:
    """The seed of one shape: from the build seed and its id, not the processing order."""
    return stable_hash(f"{seed}:{shape_id}") % (2**31)


# --- one shape -----------------------------------------------------------------


@dataclass
class _Context:
    """What every shape of a build shares (labeler and encoder are loaded once)."""

    folder: Path
    settings: dict[str, Any]
    basis: BasisInfo
    labeler: Any
    encoder_model: Any
    encoder: dict[str, Any] | None
    device: Any


def make_record(
    path: Path,
    shape_id: str,
    sha256: str,
    category: str,
    part_names: list[str] | None,
    context: _Context,
) -> ShapeRecord:
    """Load, label, sample and describe one asset."""
    from ..descriptors import point_descriptors
    from ..io import load_asset
    from ..io.sample import sample_network_indices
    from ..labeling.api import label_asset
    from ..signatures import bps_features

    settings = context.settings
    seed = file_seed(settings["seed"], shape_id)
    asset = load_asset(path)
    if part_names is None:
        if not asset.has_labels:
            raise InvalidInputError(
                f"{shape_id}: no part names: pass --parts, add a parts.json, or use labeled assets"
            )
        part_names = list(asset.part_names)
    # the build's one labeler: a detector loads once, not per shape
    labeled = label_asset(
        asset,
        part_names,
        context.labeler,
        n_dense=settings["n_dense"],
        seed=seed,
        device=str(context.device),
    )
    dense, pseudo = labeled.dense, labeled.pseudo_labels
    gt_dense = dense.labels  # (n,) or None
    network = sample_network_indices(dense.points, settings["n_points"], seed=seed)  # (2048,)
    kept = _dense_subset(len(dense.points), settings["n_dense_kept"], seed)
    points = dense.points[network].astype(np.float32)
    record = ShapeRecord(
        id=shape_id,
        category=category,
        part_names=part_names,
        source=shape_id,
        sha256=sha256,
        points=points,
        dense_points=dense.points[kept],
        dense_colors=dense.colors[kept],
        bps=bps_features(points, context.basis.points),
        pseudo_labels=pseudo.subset(network),
        gt_labels=None if gt_dense is None else gt_dense[network],
        dense_gt_labels=None if gt_dense is None else gt_dense[kept],
    )
    record.descriptors = point_descriptors(points)
    if context.encoder is not None:
        record.features = encode_points(context.encoder_model, points, context.device)
    return record


def _dense_subset(n: int, keep: int, seed: int) -> np.ndarray:
    """Sorted seeded choice of ``min(n, keep)`` of ``n`` indices."""
    if n <= keep:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, keep, replace=False))


def encode_points(model: Any, points: np.ndarray, device: Any) -> np.ndarray:
    """Frozen-encoder features of one shape: points (N, 3) -> (N, F) float16 (batch of 1)."""
    import torch

    with torch.no_grad():
        batch = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))[None]
        features = model.encode(batch.to(device))[0]  # (N, F)
    return features.to(torch.float16).cpu().numpy()


def encoder_identity(model: Any) -> dict[str, Any]:
    """What the cached features depend on: the encoder's init and a sha256 of its weights.

    Two models whose encoders have equal weights get equal identities; compare it
    with ``ShapeIndex.encoder`` to know whether the cache is stale.
    """
    config = model.config
    identity = {"init": config.encoder_init, "weights_sha256": model.encoder_sha256()}
    if not config.encoder_is_pretrained:
        identity["seed"] = config.encoder_seed
    return identity


def default_basis() -> BasisInfo:
    """The fixed BPS basis every index is built on (from :mod:`bipart_cli.signatures`)."""
    from ..signatures import BPSBasis

    basis = BPSBasis.generate()
    return BasisInfo(
        points=np.asarray(basis.points, dtype=np.float32),
        seed=int(basis.seed),
        radius=float(basis.radius),
    )


def load_encoder(weights: str | None, seed: int, device: Any) -> Any:
    """The model whose ``encode`` fills the feature cache: ``weights`` or the default config."""
    if weights is not None:
        from ..weights import resolve_weights

        model, _ = resolve_weights(weights, seed=seed, device=device)
        return model.eval()
    from ..model import BiPartConfig, BiPartModel

    return BiPartModel(BiPartConfig()).to(device).eval()


# --- staging (the journal of a build in progress) ---------------------------------


class _Staging:
    """Finished shapes of an unfinished build: ``OUT/.staging/<hash(id)>-<sha256>.safetensors``.

    ``settings.json`` holds the build fingerprint; staged shapes of a build with
    other settings are discarded.
    """

    def __init__(self, out: Path, fingerprint: str) -> None:
        self.folder = out / STAGING_DIR
        marker = self.folder / "settings.json"
        if self.folder.exists() and (
            not marker.is_file() or marker.read_text(encoding="utf-8") != fingerprint
        ):
            shutil.rmtree(self.folder)
        if not self.folder.exists():
            self.folder.mkdir(parents=True)
            atomic_write_text(marker, fingerprint)

    def _path(self, shape_id: str, sha256: str) -> Path:
        return self.folder / f"{stable_hash(shape_id):016x}-{sha256[:16]}.safetensors"

    def load(self, shape_id: str, sha256: str) -> ShapeRecord | None:
        path = self._path(shape_id, sha256)
        if not path.is_file():
            return None
        try:
            (record,) = records_from_bytes(path.read_bytes())
        except Exception:  # noqa: BLE001 - a damaged staged file is simply redone
            path.unlink(missing_ok=True)
            return None
        return record if record.id == shape_id and record.sha256 == sha256 else None

    def save(self, record: ShapeRecord) -> None:
        data = records_to_bytes([record], with_features=True)
        try:
            atomic_write_bytes(self._path(record.id, record.sha256), data)
        except OSError as exc:  # a full or read-only disk stops the build, not one file
            raise OutputWriteError(
                f"cannot write the index in {self.folder.parent}: {exc.strerror or exc}"
            ) from exc

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _fault_hook(done: int) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    kind, _, count = spec.partition("@")
    if done == int(count):
        if kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise KeyboardInterrupt


# --- the build ---------------------------------------------------------------------


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
    shard: str | tuple[int, int] | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    n_dense: int = DEFAULT_N_DENSE,
    n_points: int = N_NETWORK_POINTS,
    n_dense_kept: int = N_DENSE_KEPT,
    records_per_shard: int = RECORDS_PER_SHARD,
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
        passes its own, so a warm run loads no second model).
    shard : ``"i/n"``: only the files with ``stable_hash(path) % n == i`` (merge the parts
        with :func:`merge_indexes`).
    n_dense : dense points sampled and labeled per shape; ``n_points`` network points;
        ``n_dense_kept`` dense points stored for kNN transfer and previews.

    One file that cannot be indexed is logged and listed in ``failed``; the
    others go on. Returns a :class:`BuildSummary`.
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

    torch_device = resolve_device(device)
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
        encoder_model = None
    elif encoder_model is None:
        encoder_model = load_encoder(weights, seed, torch_device)
    encoder = None if encoder_model is None else encoder_identity(encoder_model)
    context = _Context(
        folder=folder,
        settings=settings,
        basis=basis,
        labeler=worker,
        encoder_model=encoder_model,
        encoder=encoder,
        device=torch_device,
    )
    staging = None
    with index_lock(out):  # concurrent writers of one index take turns
        try:
            previous = _previous_index(out, settings, basis)
            previous_rows = (
                {} if previous is None else {e.id: i for i, e in enumerate(previous.entries)}
            )
            staging = _Staging(
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
                        outcome, sha256 = _index_one(
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
                    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the build
                        message = str(exc) or type(exc).__name__
                        named = shape_id in message or str(path) in message
                        log.error("%s", message if named else f"{shape_id}: {message}")
                        summary.failed.append({"path": shape_id, "error": message})
                    else:
                        sources[shape_id] = (
                            "previous" if outcome == "unchanged" else "staged",
                            sha256,
                        )
                        setattr(summary, outcome, getattr(summary, outcome) + 1)
                        if outcome == "indexed":
                            _fault_hook(summary.indexed)
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
            for shape_id in sorted(sources):
                where, sha256 = sources[shape_id]
                if where == "previous":
                    record = previous.record(previous_rows[shape_id])
                else:
                    record = staging.load(shape_id, sha256)
                if record is None:  # a staged file vanished between the loop and now
                    raise IndexCorruptError(
                        f"staged record of {shape_id} is missing in {staging.folder}"
                    )
                writer.add(record)
            manifest = writer.commit()
            staging.remove()
            summary.removed = len(set(previous_rows) - set(sources))
            summary.entries = manifest["num_entries"]
            summary.shards = len(manifest["shards"])
            summary.partial = manifest["partial"]
            summary.elapsed_s = round(time.perf_counter() - started, 3)
        except (OSError, OutputWriteError) as exc:  # a full disk: no stray journal, one line
            if staging is not None:
                staging.remove()
            if isinstance(exc, OutputWriteError):
                raise
            raise OutputWriteError(
                f"cannot write the index in {out}: {exc.strerror or exc}"
            ) from exc
    return summary


def _index_one(
    path: Path,
    shape_id: str,
    names_override: list[str] | None,
    category_override: str | None,
    context: _Context,
    staging: _Staging,
    previous: ShapeIndex | None,
    row: int | None,
) -> tuple[str, str]:
    """Make sure shape ``shape_id`` is staged or reusable; returns (outcome, sha256).

    outcome: ``resumed`` (staged by an interrupted run), ``unchanged`` (reused from
    the previous index) or ``indexed`` (computed now).
    """
    from ..io import sha256_file

    sha256 = sha256_file(path)
    category = category_for(shape_id, context.folder, category_override)
    names = names_override or folder_part_names(path, context.folder)

    def same_shape(record: ShapeRecord) -> bool:
        return (
            record.sha256 == sha256
            and record.category == category
            and (names is None or record.part_names == names)
        )

    staged = staging.load(shape_id, sha256)
    if staged is not None and same_shape(staged):
        return "resumed", sha256
    old = _reusable(previous, row)
    if old is not None and same_shape(old):
        if context.encoder is None or previous.encoder == context.encoder:
            return "unchanged", sha256
        old.features = encode_points(context.encoder_model, old.points, context.device)
        staging.save(old)  # only the stale feature cache is recomputed
        return "indexed", sha256
    staging.save(make_record(path, shape_id, sha256, category, names, context))
    return "indexed", sha256


# --- merge -------------------------------------------------------------------------


def merge_indexes(
    parts: list[str | Path],
    out: str | Path,
    *,
    revision: str | None = None,
    progress: bool = True,
    records_per_shard: int = RECORDS_PER_SHARD,
) -> BuildSummary:
    """Merge indexes (e.g. the ``--shard i/n`` parts of one folder) into ``out``.

    The parts must share settings, BPS basis and encoder. The result does not
    depend on the order of ``parts`` and equals a single build of the same files.
    A shape present in several parts is kept once when identical (same sha256)
    and is an error otherwise.
    """
    from ..runtime import progress as progress_bar

    started = time.perf_counter()
    if not parts:
        raise UsageError("index merge: give the partial indexes to merge")
    check_writable_index_folder(out)
    opened = sorted(
        (ShapeIndex.open(part, revision=revision, verify=True) for part in parts),
        key=lambda index: str(index.path),
    )
    first = opened[0]
    for other in opened[1:]:
        for what, key in (("build settings", "settings"), ("encoder", "encoder")):
            if other.manifest[key] != first.manifest[key]:
                raise UsageError(f"cannot merge {first.path} and {other.path}: their {what} differ")
        if other.manifest["bps_basis"]["sha256"] != first.manifest["bps_basis"]["sha256"]:
            raise UsageError(f"cannot merge {first.path} and {other.path}: their BPS bases differ")

    where: dict[str, tuple[int, int]] = {}  # id -> (part, row)
    for p, index in enumerate(opened):
        for row, entry in enumerate(index.entries):
            if entry.id in where:
                seen = opened[where[entry.id][0]].entries[where[entry.id][1]]
                if seen.sha256 != entry.sha256:
                    raise UsageError(
                        f"cannot merge: {entry.id} differs between {opened[where[entry.id][0]].path} "
                        f"and {index.path}"
                    )
                continue
            where[entry.id] = (p, row)

    with index_lock(out):
        roots = {index.manifest.get("source_root") for index in opened}
        writer = IndexWriter(
            out,
            settings=first.settings,
            basis=first.basis,
            encoder=first.encoder,
            source_root=roots.pop() if len(roots) == 1 else None,
            partial=_merged_partial([index.manifest.get("partial") for index in opened]),
            records_per_shard=records_per_shard,
        )
        with progress_bar(quiet=not progress) as bar:
            task = bar.add_task("merging", total=len(where))
            for shape_id in sorted(where):
                p, row = where[shape_id]
                writer.add(opened[p].record(row))
                bar.advance(task)
        manifest = writer.commit()
    return BuildSummary(
        out=str(out),
        unchanged=manifest["num_entries"],
        entries=manifest["num_entries"],
        shards=len(manifest["shards"]),
        features_cached=manifest["encoder"] is not None,
        partial=manifest["partial"],
        elapsed_s=round(time.perf_counter() - started, 3),
    )


def _merged_partial(partials: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """None when the parts are (or cover) a whole build, else the shards they cover."""
    if any(p is None for p in partials):
        return None
    counts = {p["of"] for p in partials}
    if len(counts) != 1:
        raise UsageError("cannot merge partial indexes of different --shard i/n splits")
    total = counts.pop()
    covered = sorted({i for p in partials for i in p["shards"]})
    return None if covered == list(range(total)) else {"shards": covered, "of": total}
