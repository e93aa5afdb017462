"""How fast, and in how much memory, do segment (a 100k-face GLB), index and retrieval run?

Speed and memory: ``bipart segment``, ``bipart index`` and support retrieval, per device.

Every measured command runs in its own child process; "peak MiB" is that child's
peak resident set size (``ru_maxrss`` from ``os.wait4``, Linux), "wall s" its wall
time including Python start-up and imports. Nothing is downloaded and no number is
copied from elsewhere: the shapes are generated here.

Sections (``--sections``, default all three):

- ``segment``: ``bipart segment`` on a generated chair GLB subdivided to ``--faces``
  (100k) faces, ``--points`` (100k) dense points, weights ``--weights``
  (bipart-default), support = a ``--support`` folder of ``--support-shapes`` (8)
  generated labeled chairs (indexed on first use, so the first few-shot row includes
  that and the second does not). Rows: few-shot (``--labeler none``) and VLM
  (``--labeler detector``) with a Grounding DINO of grounding-dino-tiny's sizes
  (Swin-T backbone, BERT-base text encoder, 6+6 layers, 900 queries, 172M
  parameters) and RANDOM weights: it is built here, saved with ``save_pretrained`` and
  read back through ``--detector DIR --offline``. Its tokenizer is a WordPiece vocab
  built locally (special tokens, ``.``, letters and ``##`` letters, the part names,
  then ``[unused]`` fillers to BERT's 30522 entries), as BERT's real vocab cannot be
  downloaded here; the chair prompt tokenizes to the same number of tokens as with
  the real one. Random weights make random boxes, so that row times the architecture,
  not a detector's output.
- ``index``: ``bipart index`` of a generated corpus (``--index-per-category`` shapes
  of each of the 12 procedural categories, 100k dense points) with the ``given``
  labeler (frozen-encoder features cached, then ``--no-cache-features``) and the
  ``simulated`` labeler; ``detector`` (the random Grounding DINO above) when listed in
  ``--index-labelers``. Rate = shapes / wall time.
- ``retrieval``: ``SupportBank.retrieve`` (what ``segment --index`` and ``eval``
  call) over a synthetic index of ``--entries`` (100k) records written through
  ``IndexWriter``: ``--categories`` (100) categories with 2-6 part names each from
  a 24-name vocabulary; each record holds 2048 points (one Gaussian-blob template
  per category), ``--dense-points`` (2048; ``bipart index`` keeps up to 8192, so its
  shards are larger) dense points, a BPS feature (its template's plus N(0, 0.02) noise) and pseudo labels (2
  boxes per part, each dropped with probability 0.2, so part ratios differ). Times:
  opening the bank (manifest + every shard's BPS), then per query (a new random
  target of a random category) with the category given (``--category``, ``eval``) and
  without one (``segment --index`` with no category: every entry sharing a part name
  is a candidate). NumPy only, so it runs on the CPU whatever ``--device`` says.
- adaptation and training speed, cached against naive, are
  ``benchmarks/speed/adapt_speed.py`` and ``benchmarks/training/train_speed.py``; their commands are
  printed at the end, or run (``--sections adapt,train``) in a child process.

Generated files go to ``--workdir`` (default ``.bench/speed``, git ignored); the
detector folder (0.7 GB) and the synthetic index (about 7 GB at 100k entries) are
reused by later runs when their settings match.

    python benchmarks/speed/speed_memory.py                          # CPU, and CUDA when available
    python benchmarks/speed/speed_memory.py --sections retrieval --entries 100000
    python benchmarks/speed/speed_memory.py --sections segment,index,retrieval,adapt,train --device cpu
    python benchmarks/speed/speed_memory.py --faces 5000 --points 5000 --index-per-category 1 \\
        --entries 2000 --queries 5                             # a quick smoke test
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from benchmarks.common.paper_runs import load_average

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DEFAULT_WORKDIR = ROOT / ".bench" / "speed"
CHAIR_PARTS = "back,seat,leg,arm"
ALL_SECTIONS = ("segment", "index", "retrieval", "adapt", "train")


# --- child processes -------------------------------------------------------------------


@dataclass
class ChildRun:
    """A finished child process: wall seconds, peak RSS (MiB), exit code and output."""

    wall_s: float
    peak_mib: float
    returncode: int
    stdout: str
    stderr: str

    def json(self):
        """The last line of stdout that parses as JSON, or None."""
        for line in reversed(self.stdout.strip().splitlines()):
            try:
                return json.loads(line)
            except ValueError:
                continue
        try:
            return json.loads(self.stdout)
        except ValueError:
            return None

    def failure(self) -> str | None:
        if self.returncode == 0:
            return None
        tail = (self.stderr.strip() or self.stdout.strip()).splitlines()[-3:]
        return f"exit {self.returncode}: " + " | ".join(tail)


def run_child(command: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> ChildRun:
    """Run ``command`` in ``cwd`` to completion; its own peak RSS comes from ``os.wait4``."""
    environment = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=environment, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(
            wall,
            usage.ru_maxrss / 1024,  # KiB on Linux
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def bipart(*args: str) -> list[str]:
    return [sys.executable, "-m", "bipart_cli", *args]


def worker(name: str, *args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), name, *args]


# --- generated inputs ------------------------------------------------------------------


def write_target_glb(path: Path, faces: int, seed: int = 0) -> int:
    """A generated chair whose parts are subdivided to about ``faces`` faces in all; returns
    the face count. Each part keeps its node name (ground truth) and its one colour."""
    import trimesh

    from bipart_cli.procedural import make_shape

    scene = make_shape("chair", seed)
    base = sum(len(mesh.faces) for mesh in scene.geometry.values())
    levels, total = 0, base
    while total * 4 <= faces:
        levels, total = levels + 1, total * 4
    extra = max(0, faces - total) // 3  # each once-more-split face adds 3
    written = 0
    for name, mesh in list(scene.geometry.items()):
        color = np.array(mesh.visual.vertex_colors[0])
        share = round(extra * len(mesh.faces) / base)
        for _ in range(levels):
            mesh = mesh.subdivide()
        if share:
            mesh = mesh.subdivide(face_index=np.linspace(0, len(mesh.faces) - 1, share).astype(int))
        mesh.visual = trimesh.visual.ColorVisuals(
            mesh, vertex_colors=np.tile(color, (len(mesh.vertices), 1))
        )
        scene.geometry[name] = mesh
        written += len(mesh.faces)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(scene.export(file_type="glb"))
    return written


def local_wordpiece_vocab(size: int, words: list[str]) -> dict[str, int]:
    """A BERT-style WordPiece vocab of ``size`` entries that can spell any lower-case word."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += list(".,;:!?-'\"()")
    tokens += list("abcdefghijklmnopqrstuvwxyz0123456789")
    tokens += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    tokens += [w for w in dict.fromkeys(words) if w not in tokens]
    tokens += [f"[unused{i}]" for i in range(size - len(tokens))]
    return {token: i for i, token in enumerate(tokens)}


def grounding_dino_tiny_config():
    """GroundingDinoConfig with IDEA-Research/grounding-dino-tiny's sizes (its config.json:
    Swin-T backbone, BERT-base-uncased text encoder, d_model 256, 6 encoder and 6 decoder
    layers, FFN 2048, 8 heads, 4 feature levels, 4 sampling points, 900 queries, 256 tokens)."""
    from transformers import BertConfig, GroundingDinoConfig, SwinConfig

    backbone = SwinConfig(
        image_size=224,
        patch_size=4,
        embed_dim=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        mlp_ratio=4.0,
        drop_path_rate=0.1,
        out_features=["stage2", "stage3", "stage4"],
    )
    text = BertConfig(  # bert-base-uncased
        vocab_size=30522,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=512,
    )
    return GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=256,
        encoder_layers=6,
        decoder_layers=6,
        encoder_ffn_dim=2048,
        decoder_ffn_dim=2048,
        encoder_attention_heads=8,
        decoder_attention_heads=8,
        num_feature_levels=4,
        encoder_n_points=4,
        decoder_n_points=4,
        num_queries=900,
        max_text_len=256,
        two_stage=True,
    )


def build_random_grounding_dino_tiny(folder: Path, part_words: list[str]) -> tuple[Path, float]:
    """Save a RANDOM-weight Grounding DINO of grounding-dino-tiny's sizes with an offline
    tokenizer to ``folder`` (kept when already there); returns (folder, millions of params)."""
    marker = folder / "bipart-benchmark.json"
    if marker.is_file() and (folder / "config.json").is_file():
        return folder, json.loads(marker.read_text())["parameters_millions"]
    import torch
    from transformers import BertTokenizerFast, GroundingDinoForObjectDetection
    from transformers import GroundingDinoProcessor as Processor
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import (
        GroundingDinoImageProcessorPil,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.manual_seed(0)
    config = grounding_dino_tiny_config()
    model = GroundingDinoForObjectDetection(config)
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    vocab = local_wordpiece_vocab(config.text_config.vocab_size, part_words)
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    processor = Processor(image_processor=GroundingDinoImageProcessorPil(), tokenizer=tokenizer)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    processor.save_pretrained(staging)
    note = {
        "what": "random weights, real-size architecture (grounding-dino-tiny sizes)",
        "parameters_millions": round(millions, 1),
        "tokenizer": "local WordPiece vocab (not BERT's), padded to 30522 entries",
        "seed": 0,
    }
    (staging / "bipart-benchmark.json").write_text(json.dumps(note, indent=1) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder, round(millions, 1)


# --- sections ----------------------------------------------------------------------------


def fmt_row(cells: list[tuple[str, int, str]]) -> str:
    return " ".join(f"{value:{align}{width}}" for value, width, align in cells)


def run_flags(args, device: str) -> list[str]:
    """The options every measured ``bipart segment`` / ``bipart index`` child gets."""
    flags = ["--weights", args.weights, "--points", str(args.points), "--device", device]
    return [*flags, "--json", "--quiet"]


def child_header(label: str, width: int, *extra: tuple[str, int, str]) -> str:
    """Header of a table of child-process runs: device, ``label``, wall s, peak MiB, ``extra``."""
    cells = [("device", 6, "<"), (label, width, "<"), ("wall s", 7, ">"), ("peak MiB", 9, ">")]
    return fmt_row([*cells, *extra])


def child_cells(device: str, label: str, width: int, run) -> list[tuple[str, int, str]]:
    """The first cells of a row of :func:`child_header`'s table, for one child ``run``."""
    return [
        (device, 6, "<"),
        (label, width, "<"),
        (f"{run.wall_s:.1f}", 7, ">"),
        (f"{run.peak_mib:.0f}", 9, ">"),
    ]


def segment_section(args, devices: list[str]) -> None:
    from bipart_cli.procedural import write_examples

    work = args.workdir / "segment"
    target = work / f"chair-{args.faces}.glb"
    faces = write_target_glb(target, args.faces)
    other_target = work / f"chair-{args.faces}-seed1.glb"  # an asset the cache has not seen
    write_target_glb(other_target, args.faces, seed=1)
    support = work / f"support-{args.support_shapes}"
    write_examples(support, categories=(), n_chairs=args.support_shapes)
    support_dir = support / "chairs"
    detector = millions = None
    if not args.no_vlm:
        detector, millions = build_random_grounding_dino_tiny(
            args.workdir / "grounding-dino-tiny-random", CHAIR_PARTS.split(",")
        )
    print(
        f"\nbipart segment: generated chair, {faces} faces, --points {args.points}, "
        f"--parts {CHAIR_PARTS}, --weights {args.weights}, "
        f"--support {args.support_shapes} generated labeled chairs (the default adaptation)"
    )
    if detector is not None:
        print(
            f"detector: Grounding DINO, grounding-dino-tiny sizes ({millions:.0f}M parameters), "
            "RANDOM weights (real-size architecture; no detector quality implied), local vocab"
        )
    timing_columns = [(name, 7, ">") for name in ("load", "sample", "label", "adapt", "other")]
    print(child_header("row", 44, *timing_columns))
    for device in devices:
        cache = Path(tempfile.mkdtemp(prefix="bipart-cache-", dir=work))
        common = [
            "--parts",
            CHAIR_PARTS,
            *run_flags(args, device),
            "--support",
            str(support_dir),
            "-o",
            str(work / "out"),
        ]
        # bipart's cache keeps the support's features, and the target's own (sampling,
        # descriptors, features, the adapted head): the same asset again reuses both
        rows = [
            ("few-shot, labeler none (indexes --support)", target, ["--labeler", "none"]),
            ("few-shot, none, same asset again (cached)", target, ["--labeler", "none"]),
            ("few-shot, none, a new asset (support cached)", other_target, ["--labeler", "none"]),
        ]
        if detector is not None:
            rows.append(
                (
                    "VLM, detector GDINO-tiny random weights",
                    target,
                    ["--labeler", "detector", "--detector", str(detector), "--offline"],
                )
            )
        for label, asset, extra in rows:
            run = run_child(
                bipart("segment", str(asset), *common, *extra),
                env={"BIPART_CACHE": str(cache), "HF_HUB_OFFLINE": "1"},
            )
            result = run.json() or {}
            timings = result.get("timings", {})
            failure = run.failure() or (
                None if result.get("ok", False) else str(result.get("error"))
            )
            cells = child_cells(device, label, 44, run)
            if failure:
                print(fmt_row(cells), f"FAILED: {failure}")
                continue
            other = run.wall_s - timings.get("total", 0.0)
            for key in ("load", "sample", "label", "adapt"):
                cells.append((f"{timings.get(key, float('nan')):.1f}", 7, ">"))
            cells.append((f"{other:.1f}", 7, ">"))
            print(fmt_row(cells))
        shutil.rmtree(cache, ignore_errors=True)
    print(
        "load (reading the asset; with sampling before the sample stage existed)/sample/label/adapt: the command's own --json timings; other = wall - their total "
        "(Python start-up, imports, weights, opening or indexing the support, writing outputs)"
    )


def index_section(args, devices: list[str]) -> None:
    from bipart_cli.procedural import CATEGORIES, DEFAULT_CATEGORIES, write_corpus

    work = args.workdir / "index"
    corpus = work / f"corpus-{args.index_per_category}"
    shapes = len(write_corpus(corpus, args.index_per_category))
    labelers = [name.strip() for name in args.index_labelers.split(",")]
    detector = None
    if "detector" in labelers:
        words = sorted({w for c in DEFAULT_CATEGORIES for w in CATEGORIES[c]})
        detector, _ = build_random_grounding_dino_tiny(
            args.workdir / "grounding-dino-tiny-random", words
        )
    print(
        f"\nbipart index: generated corpus, {shapes} shapes ({args.index_per_category} of each "
        f"of {len(DEFAULT_CATEGORIES)} categories), --points {args.points}, --weights {args.weights} "
        "for the feature cache"
    )
    print(child_header("labeler", 34, ("shapes/min", 10, ">")))
    variants = {
        "given": ("given, features cached", ["--labeler", "given"]),
        "given-nofeatures": (
            "given, --no-cache-features",
            ["--labeler", "given", "--no-cache-features"],
        ),
        "simulated": ("simulated, features cached", ["--labeler", "simulated"]),
        "detector": (
            "detector GDINO-tiny RANDOM weights",
            ["--labeler", "detector", "--detector", str(detector), "--offline"],
        ),
    }
    for device in devices:
        for name in labelers:
            label, extra = variants[name]
            out = work / f"index-{name}-{device}"
            shutil.rmtree(out, ignore_errors=True)
            run = run_child(
                bipart("index", str(corpus), "--out", str(out), *run_flags(args, device), *extra),
                env={"HF_HUB_OFFLINE": "1"},
            )
            summary = run.json() or {}
            cells = child_cells(device, label, 34, run)
            failure = run.failure()
            if failure or summary.get("indexed") != shapes:
                print(fmt_row(cells), f"FAILED: {failure or summary}")
                continue
            cells.append((f"{shapes / run.wall_s * 60:.1f}", 10, ">"))
            print(fmt_row(cells))
            shutil.rmtree(out, ignore_errors=True)
    print("wall includes start-up and model loading; one run each")


def retrieval_section(args) -> None:
    path = args.workdir / f"synthetic-index-{args.entries}-{args.categories}-{args.dense_points}"
    write = run_child(
        worker(
            "_write_index",
            str(path),
            str(args.entries),
            str(args.categories),
            str(args.dense_points),
        )
    )
    if write.failure():
        print(f"\nsynthetic index: FAILED: {write.failure()}")
        return
    written = write.json()
    run = run_child(worker("_retrieve", str(path), str(args.queries)))
    if run.failure():
        print(f"\nretrieval: FAILED: {run.failure()}")
        return
    result = run.json()
    size_gib = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**30
    print(
        f"\nsupport retrieval (SupportBank.retrieve, M=8, part-perfect) over a SYNTHETIC index: "
        f"{result['entries']} entries, {args.categories} categories, {size_gib:.1f} GiB on disk"
    )
    if written.get("reused"):
        print(f"index reused from {path} (written by an earlier run)")
    else:
        print(
            f"written through IndexWriter in {written['seconds']:.0f} s "
            f"({written['entries'] / written['seconds']:.0f} records/s, "
            f"peak {write.peak_mib:.0f} MiB)"
        )
    print(
        f"opening the bank (manifest, BPS of every shard): {result['open_s']:.1f} s; "
        f"retrieval process peak {run.peak_mib:.0f} MiB; CPU (NumPy) whatever --device is"
    )
    header = [
        ("query", 50, "<"),
        ("candidates", 10, ">"),
        ("first ms", 9, ">"),
        ("p50 ms", 8, ">"),
        ("p95 ms", 8, ">"),
        ("queries", 8, ">"),
    ]
    print(fmt_row(header))  # "choosing only": BPS, similarity, part counts, no record read
    for mode in result["modes"]:
        print(
            fmt_row(
                [
                    (mode["name"], 50, "<"),
                    (f"{mode['candidates']:.0f}", 10, ">"),
                    (f"{mode['first_ms']:.1f}", 9, ">"),
                    (f"{mode['p50_ms']:.1f}", 8, ">"),
                    (f"{mode['p95_ms']:.1f}", 8, ">"),
                    (str(mode["queries"]), 8, ">"),
                ]
            )
        )
    print(
        "candidates: mean per query; first: the first query of the mode; p50/p95 over the "
        "rest (records loaded for earlier queries stay cached, as in one segment or eval run)"
    )


def speed_script_section(name: str, args, devices: list[str]) -> None:
    commands = {
        "adapt": ["speed/adapt_speed.py", "--sizes", "8", "--steps", "10", "--repeats", "3"],
        "train": [
            "training/train_speed.py",
            "--batches",
            "1",
            "--shapes",
            "16",
            "--orders",
            "second",
        ],
    }
    for device in devices:
        command = [sys.executable, str(HERE.parent / commands[name][0]), *commands[name][1:]]
        command += ["--device", device]
        shown = ["python", os.path.relpath(command[1], ROOT), *command[2:]]
        print(f"\n$ MALLOC_ARENA_MAX=1 {' '.join(shown)}")
        run = run_child(command, env={"MALLOC_ARENA_MAX": "1"})
        print(run.stdout.rstrip())
        print(f"wall {run.wall_s:.1f} s, peak {run.peak_mib:.0f} MiB" + _failed(run))


def _failed(run: ChildRun) -> str:
    failure = run.failure()
    return f", FAILED: {failure}" if failure else ""


# --- workers (child processes) ---------------------------------------------------------


def synthetic_templates(categories: int, seed: int = 0):
    """Per category: part names, 2048 points (one Gaussian blob per part), labels, BPS."""
    from bipart_cli.index.shape import default_basis
    from bipart_cli.support import bps_features

    rng = np.random.default_rng(seed)
    vocab = [f"part{k:02d}" for k in range(24)]
    basis = default_basis()
    templates = []
    for c in range(categories):
        parts = sorted(rng.choice(vocab, size=int(rng.integers(2, 7)), replace=False).tolist())
        centres = rng.normal(size=(len(parts), 3))
        labels = rng.integers(0, len(parts), 2048)
        points = (centres[labels] + 0.35 * rng.normal(size=(2048, 3))).astype(np.float32)
        points /= np.linalg.norm(points - points.mean(0), axis=1).max()
        templates.append(
            {
                "category": f"cat{c:03d}",
                "parts": parts,
                "points": points,
                "labels": labels,
                "bps": bps_features(points, basis.points),
            }
        )
    return basis, templates


def write_synthetic_index(
    path: Path, entries: int, categories: int, dense_points: int, seed: int = 0
) -> dict:
    """Write (or reuse) the synthetic index; returns {"entries", "seconds", "reused"}."""
    import hashlib

    from bipart_cli.index import IndexWriter, ShapeRecord
    from bipart_cli.labeling.pseudo_labels import PseudoLabels

    settings = {
        "source": "synthetic (benchmarks/speed/speed_memory.py)",
        "labeler": "synthetic",
        "entries": entries,
        "categories": categories,
        "dense_points": dense_points,
        "seed": seed,
    }
    manifest = path / "manifest.json"
    if manifest.is_file():
        written = json.loads(manifest.read_text())
        # an index written before per-array checksums is rewritten, to time today's reading
        current = all("header_sha256" in shard for shard in written["shards"])
        if written["settings"] == settings and current:
            return {"entries": entries, "seconds": 0.0, "reused": True}
    started = time.perf_counter()
    basis, templates = synthetic_templates(categories, seed)
    rng = np.random.default_rng(seed + 1)
    full_labels, dense = [], []
    for t in templates:
        picked = rng.integers(0, 2048, dense_points)
        dense.append(t["points"][picked] + rng.normal(0, 0.005, (dense_points, 3)))
        parts = len(t["parts"])
        masks, part_index = [], []
        for r in range(parts):
            for _ in range(2):
                masks.append((t["labels"] == r) | (rng.random(2048) < 0.1))
                part_index.append(r)
        full_labels.append(
            PseudoLabels(
                masks=np.stack(masks),
                part_index=np.array(part_index),
                scores=rng.uniform(0.5, 0.95, len(part_index)),
                part_names=t["parts"],
            )
        )
    writer = IndexWriter(path, settings=settings, basis=basis, encoder=None)
    per_category = np.full(categories, entries // categories)
    per_category[: entries % categories] += 1
    for c, template in enumerate(templates):
        labels = full_labels[c]
        for k in range(per_category[c]):
            shape_id = f"{template['category']}/{k:07d}"
            keep = rng.random(labels.num_boxes) >= 0.2
            bps = template["bps"] + rng.normal(0, 0.02, len(template["bps"]))
            writer.add(
                ShapeRecord(
                    id=shape_id,
                    category=template["category"],
                    part_names=template["parts"],
                    source=f"synthetic/{shape_id}",
                    sha256=hashlib.sha256(shape_id.encode()).hexdigest(),
                    points=template["points"],
                    dense_points=dense[c],
                    dense_colors=np.zeros((dense_points, 3), np.uint8),
                    bps=np.clip(bps, 0, None),
                    pseudo_labels=labels.select_boxes(keep),
                    gt_labels=template["labels"],
                )
            )
    writer.commit()
    return {"entries": entries, "seconds": time.perf_counter() - started, "reused": False}


def retrieval_latency(path: Path, queries: int, seed: int = 0) -> dict:
    """Open a SupportBank on the index, then time ``retrieve`` per query and mode."""
    from bipart_cli.support import SupportBank

    started = time.perf_counter()
    bank = SupportBank.from_index(str(path))
    open_s = time.perf_counter() - started
    parts_of: dict[str, list[str]] = {}
    for entry in bank.entries:
        parts_of.setdefault(entry.category, entry.part_names)
    categories = sorted(parts_of)
    rng = np.random.default_rng(seed)
    modes = []
    for name, with_category, any_turn in (
        ("category given (eval, --category)", True, False),
        ("no category, by part names", False, False),
        ("category given, any quarter turn (--match-pose)", True, True),
        ("no category, any quarter turn (segment's default)", False, True),
    ):
        times, choosing, candidates = [], [], []
        for _ in range(queries):
            category = categories[int(rng.integers(len(categories)))]
            target = rng.normal(size=(2048, 3)).astype(np.float32)
            chosen = category if with_category else None
            candidates.append(len(bank.candidates(parts_of[category], chosen)))
            clock = time.perf_counter()
            bank.select(target, parts_of[category], m=8, category=chosen, any_turn=any_turn)
            choosing.append(1000 * (time.perf_counter() - clock))
            clock = time.perf_counter()
            support = bank.retrieve(
                target, parts_of[category], m=8, category=chosen, any_turn=any_turn
            )
            times.append(1000 * (time.perf_counter() - clock))
            assert len(support) == min(8, candidates[-1])
        for label, values in (("", times), (", choosing only", choosing)):
            rest = values[1:] or values
            modes.append(
                {
                    "name": name + label,
                    "candidates": float(np.mean(candidates)),
                    "first_ms": values[0],
                    "p50_ms": float(np.percentile(rest, 50)),
                    "p95_ms": float(np.percentile(rest, 95)),
                    "queries": len(values),
                }
            )
    return {"entries": len(bank), "open_s": open_s, "modes": modes}


WORKERS = {
    "_write_index": lambda a: write_synthetic_index(Path(a[0]), int(a[1]), int(a[2]), int(a[3])),
    "_retrieve": lambda a: retrieval_latency(Path(a[0]), int(a[1])),
}


# --- main ----------------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in WORKERS:
        print(json.dumps(WORKERS[sys.argv[1]](sys.argv[2:])))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sections", default="segment,index,retrieval")
    parser.add_argument(
        "--device", default="all", help="cpu, cuda or all (cpu, plus cuda when available)"
    )
    parser.add_argument("--weights", default="bipart-default")
    parser.add_argument(
        "--no-vlm", action="store_true", help="segment: the few-shot rows only (no detector)"
    )
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=100_000, help="dense points per shape")
    parser.add_argument("--support-shapes", type=int, default=8)
    parser.add_argument("--index-per-category", type=int, default=4)
    parser.add_argument("--index-labelers", default="given,given-nofeatures,simulated")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--categories", type=int, default=100)
    parser.add_argument("--dense-points", type=int, default=2048)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args()
    sections = [s.strip() for s in args.sections.split(",")]
    unknown = set(sections) - set(ALL_SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(ALL_SECTIONS)}")

    import torch

    if args.device == "all":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]
    args.workdir.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(
        f"speed and memory, {platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), GPU {gpu}, devices {', '.join(devices)}; "
        f"load average at start {load_average()}"
    )
    if "segment" in sections:
        segment_section(args, devices)
    if "index" in sections:
        index_section(args, devices)
    if "retrieval" in sections:
        retrieval_section(args)
    for name in ("adapt", "train"):
        if name in sections:
            speed_script_section(name, args, devices)
    not_run = [name for name in ("adapt", "train") if name not in sections]
    if not_run:
        print("\nadaptation and training speed (cached vs naive, with the ratio) are separate:")
        if "adapt" in not_run:
            print(
                "  python benchmarks/speed/adapt_speed.py --sizes 8 --steps 10 --repeats 3 --device D"
            )
        if "train" in not_run:
            print(
                "  MALLOC_ARENA_MAX=1 python benchmarks/training/train_speed.py --batches 1 --shapes 16 "
                "--orders second --device D"
            )
    print(f"load average at end {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
