"""Shared plumbing of the benchmarks: indexes, trained models, cached evaluations, tables.

Every group takes from here (``paper/table*.py``, ``quality/few_shot.py``,
``quality/adapt_options.py``, ``speed/example_speed.py``, ...):

- the shape indexes of ``../shared/data`` under ``.bench/indexes`` (built on demand
  by ``shared_index.build``, one dataset and split at a time);
- the trained models, each trained on demand through ``bipart_cli.train`` and
  reused as soon as its ``model/model.safetensors`` exists; ``made_from.json`` beside it
  records the settings, train index and code it was trained from, and a reuse from
  others is warned (the scores stay keyed by the weights' sha256). J models
  (``.bench/runs/<name>``) train on the train splits of all 14 PSB categories,
  labeled by the simulated detector (``psb-train-simulated``), 1 epoch, outer lr
  1e-3, seed 0, the other settings at their defaults; this is ``MALLOC_ARENA_MAX=1
  bipart train --index .bench/indexes/psb-train-simulated --out .bench/runs/<name>
  --epochs 1 --outer-lr 1e-3 --seed 0 [--no-bilevel] [--no-extractor]``. G models
  (``.bench/g_setting/<name>``, also made by ``paper/g_setting.py``) train on the 7
  seen categories only, 3 epochs. human_seg is in neither training set;
- evaluations through ``bipart_cli.evaluate.evaluate_index``, cached as JSON under
  ``.bench/evals/``, keyed by every argument of the evaluation, the sha256 of the
  weights, the indexes' manifests and build keys, and bipart's code (``store.code_identity``: a
  changed rule is never served a stale score), so that the scripts share them (the full
  BiPart-J evaluation is a row of tables 1, 3, 4 and 5) and a rerun only computes
  what is missing; each file records when, where and at which git revision it was made;
- plain-text tables (:func:`print_table`, the one table printer of the benchmarks), each
  row with a footnote saying how it was made, and the command, date, machine, git revision
  and load average to paste into ``RESULTS.md`` (:func:`bench_run`).

With ``BIPART_BENCH_CACHED_ONLY=1`` (``python -m benchmarks GROUP --cached-only``) nothing
is computed: an evaluation, index or model that is not already under ``.bench/`` stops the
script with a line naming it.

The protocol of tables 1, 3, 4 and 5 (:data:`VLM`) is the paper's inference
(Sec. 3.3.2, 4.1): the test shape's own pseudo labels join a support set of M=8
shapes retrieved (part-perfect) from the train split of its category, labeled by
the same simulated detector (pseudo labels only, no ground truth), K=10 inner steps
at lr 0.3, seed 0. Test shapes: ``psb-test-simulated`` (56 shapes) and
``human-test-simulated`` (18), whose ground truth scores the predictions.
Nothing is tuned on the test splits: every setting is the paper's default or the
one the J models were trained with before any test evaluation.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common.shared_data import DATASETS
from benchmarks.common.shared_index import (
    DEFAULT_OUT,
    KEY_FILE,
    build,
    build_joint_train,
    build_key,
    is_current,
    joint_build_key,
)
from bipart_cli.adapt import PAPER_INNER_LOOP, AdaptSettings

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / ".bench"
J_RUNS = BENCH / "runs"
G_RUNS = BENCH / "g_setting"
EVALS = BENCH / "evals"
TRAIN_INDEX = "psb-train-simulated"
OUTER_LR = 1e-3
J_EPOCHS = 1
G_EPOCHS = 3
# TrainSettings overrides of each model; the rest are TrainSettings' defaults (the paper's).
J_MODELS = {
    "j-bilevel": {},
    "j-nobilevel": {"bilevel": False},
    "j-noextractor": {"use_extractor": False},
    "j-nobilevel-noextractor": {"bilevel": False, "use_extractor": False},
}
G_MODELS = {"bi-level": {}, "no-bilevel": {"bilevel": False}}
# the paper's inner loop; ``segment``'s own defaults are AdaptSettings'
PAPER_ADAPT = PAPER_INNER_LOOP
VLM = {"labeler": "index", **PAPER_ADAPT, "support_size": 8, "strategy": "part-perfect"}
# (test index, support index) of the VLM protocol per dataset
VLM_SPLITS = {
    "psb": ("psb-test-simulated", "psb-train-simulated"),
    "human": ("human-test-simulated", "human-train-simulated"),
}
CACHE_VERSION = 4  # 2: the key holds every AdaptSettings field; 3: and bipart's code;
# 4: and the indexes' build keys (dataset files, record-making code)
CACHED_ONLY = "BIPART_BENCH_CACHED_ONLY"


def refuse_to_compute(what: str) -> None:
    """Stop here under ``BIPART_BENCH_CACHED_ONLY=1``: ``what`` is not cached."""
    if os.environ.get(CACHED_ONLY, "") not in ("", "0"):
        raise SystemExit(f"not cached, and {CACHED_ONLY} is set: {what}")


def rel(path: str | Path) -> str:
    """``path`` relative to the repository when it lies inside it (for keys and tables)."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# --- indexes -------------------------------------------------------------------------


JOINT_TRAIN = "psb+human+pm-train"  # DATASETS' train splits in one index


def index(name: str) -> Path:
    """``.bench/indexes/<name>`` (``psb|human|pm``-``train|test``[``-simulated``], or
    ``psb+human+pm-train``: the three train splits in one index), built if missing or made
    from other dataset files or record-making code (:func:`build_key`)."""
    path = DEFAULT_OUT / name
    if name == JOINT_TRAIN:
        key, labels = joint_build_key(DATASETS), "given labels"

        def make() -> None:
            build_joint_train(DEFAULT_OUT, DATASETS)

    else:
        match = re.fullmatch(r"(psb|human|pm)-(train|test)(-simulated)?", name)
        if match is None:
            raise SystemExit(f"unknown index {name!r}")
        prefix, split, simulated = match.groups()
        labeler = "simulated" if simulated else "given"
        dataset = {"psb": "psb", "human": "human_seg", "pm": "pm"}[prefix]
        key, labels = build_key(dataset, labeler), f"{labeler} labeler"

        def make() -> None:
            build(DEFAULT_OUT, labeler, datasets=(dataset,), splits=(split,))

    if is_current(path, key):
        return path
    refuse_to_compute(f"the index {rel(path)}")
    print(f"building {rel(path)} ({labels})", file=sys.stderr, flush=True)
    if path.exists():  # made from other files or code: every record is made again
        shutil.rmtree(path)
    make()
    return path


def seen_categories(train_index: Path) -> list[str]:
    """The G setting's seen categories: every other one of the alphabetical list."""
    entries = json.loads((train_index / "manifest.json").read_text())["entries"]
    return sorted({e["category"] for e in entries})[::2]


# --- models --------------------------------------------------------------------------


def train_if_missing(
    run_dir: Path, settings, train_index: Path, device: str = "auto", retrain: bool = False
) -> str:
    """The model folder of ``run_dir``, trained first when it has no final model.

    A run folder without a final model is a run in progress or an interrupted one:
    it is left alone (finish it with ``bipart train ... --resume`` or delete it).
    """
    from bipart_cli.train import train

    model_dir = run_dir / "model"
    made_from = training_key(settings, train_index)
    if (model_dir / "model.safetensors").is_file() and not retrain:
        warn_if_settings_differ(run_dir, settings.to_dict())
        warn_if_made_otherwise(run_dir, made_from)
        return str(model_dir)
    if run_dir.exists() and not retrain:
        raise SystemExit(
            f"{rel(run_dir)} has no final model yet: a training run in progress or an "
            "interrupted one; wait for it, resume it (bipart train ... --resume) or delete it"
        )
    refuse_to_compute(f"the model {rel(model_dir)}")
    print(f"training {rel(run_dir)}: {settings.to_dict()}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    for report in train(str(train_index), run_dir, settings, device=device):
        val = "n/a" if report.val_miou is None else f"{100 * report.val_miou:.1f}"
        print(
            f"  {run_dir.name} epoch {report.epoch + 1}: loss {report.mean_loss:.4f}, val mIoU {val}",
            file=sys.stderr,
            flush=True,
        )
    print(f"  {run_dir.name}: trained in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    record = {
        **made_from,
        "revision": git_revision(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (run_dir / MADE_FROM).write_text(json.dumps(record, indent=1, sort_keys=True))
    return str(model_dir)


MADE_FROM = "made_from.json"  # a run folder's record of what its model was trained from


def training_key(settings, train_index: Path) -> dict:
    """What a trained model is made from: the training settings, the train index (its
    manifest and build key) and bipart's code and libraries (``store.code_identity``)."""
    from bipart_cli.store import code_identity

    build = Path(train_index) / KEY_FILE
    return {
        "settings": settings.to_dict(),
        "train_index": rel(train_index),
        "train_index_manifest": sha256_of(Path(train_index) / "manifest.json"),
        "train_index_build": build.read_text() if build.is_file() else None,
        "code": code_identity(),
    }


def warn_if_made_otherwise(run_dir: Path, made_from: dict) -> None:
    """Say so when a reused model was trained from other data or code than today's (or when
    its run folder does not say): its scores are that checkpoint's, not this code's training.
    The evaluations stay keyed by the weights' own sha256, so no score is served stale."""
    path = run_dir / MADE_FROM
    if not path.is_file():
        print(
            f"warning: reusing {rel(run_dir)}, whose training is not recorded "
            f"(no {MADE_FROM}); delete it to train it with this code",
            file=sys.stderr,
        )
        return
    recorded = json.loads(path.read_text())
    differ = [name for name in made_from if recorded.get(name) != made_from[name]]
    if differ:
        print(
            f"warning: reusing {rel(run_dir)}, trained at {recorded.get('revision')} "
            f"({recorded.get('when')}) from other {', '.join(differ)}; delete it to train "
            "it with this code and data",
            file=sys.stderr,
        )


def warn_if_settings_differ(run_dir: Path, expected: dict) -> None:
    """Say so when an existing run was trained with other settings than these scripts use."""
    path = run_dir / "train_settings.json"
    if not path.is_file():
        return
    used = json.loads(path.read_text())
    differ = [
        f"{k} {used.get(k)!r} (expected {v!r})" for k, v in expected.items() if used.get(k) != v
    ]
    if differ:
        print(f"warning: reusing {rel(run_dir)}, trained with {'; '.join(differ)}", file=sys.stderr)


def j_model(name: str, device: str = "auto") -> str:
    """Model folder of J run ``name`` (a key of :data:`J_MODELS`)."""
    from bipart_cli.train import TrainSettings

    settings = TrainSettings(epochs=J_EPOCHS, outer_lr=OUTER_LR, seed=0, **J_MODELS[name])
    return train_if_missing(J_RUNS / name, settings, index(TRAIN_INDEX), device)


def g_model(
    name: str,
    device: str = "auto",
    *,
    epochs: int = G_EPOCHS,
    outer_lr: float = OUTER_LR,
    train_index: Path | None = None,
    retrain: bool = False,
) -> str:
    """Model folder of G run ``name`` (a key of :data:`G_MODELS`), seen categories only."""
    from bipart_cli.train import TrainSettings

    train_index = train_index or index(TRAIN_INDEX)
    settings = TrainSettings(
        epochs=epochs,
        outer_lr=outer_lr,
        categories=seen_categories(train_index),
        seed=0,
        **G_MODELS[name],
    )
    return train_if_missing(G_RUNS / name, settings, train_index, device, retrain)


# --- cached evaluations ------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    from bipart_cli.io import sha256_file

    return sha256_file(path)


def weights_sha(weights: str) -> str:
    """sha256 of the ``model.safetensors`` behind ``--weights`` (a folder or a registry id)."""
    from bipart_cli.weights import REGISTRY_PATH, load_registry

    folder = Path(weights)
    if not (folder / "model.safetensors").is_file():
        entry = next((c for c in load_registry()["checkpoints"] if c["id"] == weights), None)
        if entry is None:
            return weights  # "random" (seeded) or a Hub id
        if entry.get("sha256"):
            return entry["sha256"]
        folder = REGISTRY_PATH.parent / entry.get("folder", "")
    return sha256_of(folder / "model.safetensors")


def evaluation(
    test: str,
    support: str | None,
    weights: str,
    *,
    labeler: str = "index",
    zero_shot: bool = False,
    device: str = "auto",
    limit: int | None = None,
    refresh: bool = False,
    **adapt_overrides,
) -> dict:
    """``evaluate_index`` of index ``test`` with support from index ``support`` (names
    under ``.bench/indexes``), from the cache when it holds this evaluation.
    ``adapt_overrides`` change AdaptSettings fields (``steps=10, lr=0.3, ...``); the
    others keep the tool's defaults.

    Returns ``{"key", "report" (EvalReport.to_json()), "wall_s", "made", "file"}``.
    """
    from bipart_cli.evaluate import evaluate_index
    from bipart_cli.store import code_identity

    test_path = index(test)
    support_path = None if support is None else index(support)
    key = {
        "version": CACHE_VERSION,
        "test": test,
        "test_manifest": sha256_of(test_path / "manifest.json"),
        "test_build": (test_path / KEY_FILE).read_text(),  # its records' data and code
        "support": support,
        "support_manifest": None
        if support_path is None
        else sha256_of(support_path / "manifest.json"),
        "support_build": None if support_path is None else (support_path / KEY_FILE).read_text(),
        "weights": rel(weights) if Path(weights).exists() else weights,
        "weights_sha256": weights_sha(weights),
        "labeler": labeler,
        "zero_shot": zero_shot,
        "adapt": dataclasses.asdict(AdaptSettings(**adapt_overrides)),
        # a module constant (a margin, a rule) changes the labels as a field does
        "code": code_identity(),
        "device": device,
        "limit": limit,
        "seed": 0,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    slug = re.sub(
        r"[^A-Za-z0-9]+", "-", key["weights"].removeprefix(".bench/").removesuffix("/model")
    )
    path = EVALS / f"{test}-{slug}-{digest}.json"
    if path.is_file() and not refresh:
        return {**json.loads(path.read_text()), "file": rel(path)}
    refuse_to_compute(f"the evaluation {rel(path)}")
    print(f"evaluating {rel(path)}", file=sys.stderr, flush=True)
    made = provenance()
    started = time.perf_counter()
    report = evaluate_index(
        str(test_path),
        None if support_path is None else str(support_path),
        labeler=labeler,
        weights=weights,
        device=device,
        seed=0,
        limit=limit,
        zero_shot=zero_shot,
        **adapt_overrides,
    )
    wall = time.perf_counter() - started
    made["load_end"] = load_average()
    entry = {"key": key, "report": report.to_json(), "wall_s": wall, "made": made}
    EVALS.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry, indent=1))
    tmp.replace(path)
    print(f"  {wall:.0f} s", file=sys.stderr, flush=True)
    return {**entry, "file": rel(path)}


def vlm_eval(
    dataset: str, weights: str, args: argparse.Namespace, zero_shot: bool = False, **overrides
) -> dict:
    """:func:`evaluation` in the VLM protocol on ``dataset`` (``psb`` or ``human``);
    ``zero_shot`` drops the support set (the target's own labels, repeated M times)."""
    test, support = VLM_SPLITS[dataset]
    settings = {**VLM, **overrides}
    return evaluation(
        test,
        None if zero_shot else support,
        weights,
        zero_shot=zero_shot,
        device=args.device,
        limit=args.limit,
        refresh=args.refresh,
        **settings,
    )


def teacher_miou(test_index: Path, limit: int | None) -> dict:
    """summarize() of the teacher vote's mIoU over the test index's shapes (first ``limit``)."""
    from bipart_cli.evaluate import shape_miou, summarize
    from bipart_cli.index import ShapeIndex

    index = ShapeIndex.open(test_index)
    rows = [i for i, entry in enumerate(index.entries) if entry.has_ground_truth][:limit]
    scores = []
    for row in rows:
        record = index.record(row)
        teacher = record.pseudo_labels.teacher_labels()
        scores.append(
            (record.category, shape_miou(teacher, record.gt_labels, len(record.part_names)))
        )
    return summarize(scores)


def teacher(dataset: str, limit: int | None = None) -> dict:
    """summarize() of the detector-only vote on the VLM test index of ``dataset``."""
    return teacher_miou(index(VLM_SPLITS[dataset][0]), limit)


def summary(entry: dict) -> dict:
    return entry["report"]["summary"]


def describe(entry: dict) -> str:
    """How an evaluation was made, in one line (a table footnote)."""
    key, report = entry["key"], entry["report"]
    weights = report["settings"]["weights"]
    mode = report["settings"].get("mode", key["labeler"])
    support = "none (target repeated M times)" if key["zero_shot"] else key["support"]
    target = "yes" if key["labeler"] == "index" else "no"
    a = key["adapt"]
    inner = f"{a['optimizer']} K={a['steps']} lr {a['lr']}" + (
        f" batch {a['batch_points']}" if a["batch_points"] else ""
    )
    extras = f", descriptors {a['descriptors']}, smooth {a['smooth']}, normalise {a.get('normalise', 'box')}"
    return (
        f"{mode}: weights {key['weights']} (sha256 {key['weights_sha256'][:12]}, "
        f"trained {weights['trained']}); test {key['test']} (target pseudo labels: {target}); "
        f"support {support}; M={a['support_size']} {inner} {a['strategy']}{extras}; {summary(entry)['num_shapes']} shapes, {entry['wall_s']:.0f} s "
        f"at {entry['made']['git']} on {entry['made']['date']}; {entry['file']}"
    )


# --- tables and provenance -------------------------------------------------------------


def pct(value: float | None) -> str:
    """A fraction as a percentage with one decimal ("-" when missing)."""
    if value is None or value != value:
        return "-"
    return f"{100 * value:.1f}"


def score_cells(entry: dict, notes: list[str], tag: str) -> list[str]:
    """Instance and category mean of an evaluation, as table cells; appends to ``notes``
    how it was made, under ``[tag]``."""
    result = summary(entry)
    notes.append(f"[{tag}] {describe(entry)}")
    return [pct(result["instance_mean"]), pct(result["category_mean"])]


def group_mean(result: dict, categories: list[str]) -> float | None:
    """Mean of the per-category mIoUs of ``categories`` present in ``result`` (a summary)."""
    values = [result["per_category"][c] for c in categories if c in result["per_category"]]
    return sum(values) / len(values) if values else None


def print_table(
    title: list[str], header: list[str], rows: list[list[str]], notes: list[str] = ()
) -> None:
    """First column left-aligned, the others right-aligned; ``notes`` below the table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = f"{cells[0]:<{widths[0]}}"
        return "  ".join(
            [first, *(f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:], strict=True))]
        )

    print("\n".join(title))
    print(line(header))
    print("-" * len(line(header)))
    for row in rows:
        print(line([str(c) for c in row]))
    for note in notes:
        print(note)
    print()


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def git_revision(root: Path = ROOT) -> str:
    """The checkout's short revision, and whether its tree has uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        return done.stdout.strip()

    revision = git("rev-parse", "--short", "HEAD") or "unknown"
    return revision + (" + uncommitted changes" if git("status", "--porcelain") else "")


def machine() -> str:
    import torch

    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{model}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {gpu}"
    )


def provenance() -> dict:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "git": git_revision(),
        "machine": machine(),
        "load_start": load_average(),
    }


def command_line() -> str:
    """This script's command as run from the repository root (``python benchmarks/...``)."""
    script = rel(sys.argv[0]) if sys.argv[0] else "?"
    return " ".join(["python", script, *sys.argv[1:]])


@contextlib.contextmanager
def bench_run():
    """Print the RESULTS.md header (command, date, machine, git revision) and, at the end,
    the wall time and load average."""
    made = provenance()
    started = time.perf_counter()
    print(f"- command: {command_line()}")
    print(f"- date: {made['date']}")
    print(f"- machine: {made['machine']}")
    print(f"- git revision: {made['git']}")
    print(f"- load average (1/5/15 min) at start: {made['load_start']}\n")
    yield
    print(
        f"- wall {time.perf_counter() - started:.0f} s (cached evaluations included at no cost); "
        f"load average at end: {load_average()}"
    )


def bench_parser(doc: str) -> argparse.ArgumentParser:
    """The options every table script takes."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--limit", type=int, default=None, help="first N test shapes of each index (smoke runs)"
    )
    parser.add_argument(
        "--refresh", action="store_true", help="recompute evaluations even when cached"
    )
    return parser
