"""How fast is an asset bipart has never seen, alone in a process and later in a batch?

Issue #33's three rows, on NEW assets: ``timings.total`` and wall time of one new asset in a
fresh process, and ``timings.total`` of assets 2-4 when four new assets share one process.

Every target is the README's chair (``examples/chair.glb``) stretched per axis by up to
about 10% and turned by a few degrees about the up axis, with a seed of its own, so no
target's sampling, descriptors, network features, pose or labels are in the store. The
support is ``examples/chairs`` (few-shot, ``--labeler none``, the tool's defaults), and its
cache is warmed first by one unreported run on another chair: what is measured is the
target's own work. Offline (``HF_HUB_OFFLINE=1``), on the CPU unless ``--device`` says
otherwise, a new empty ``BIPART_CACHE`` per invocation. ``--repo`` runs another checkout's
code (a ``git worktree`` of an older revision gives the "before" rows) on the same files.

    python benchmarks/speed/new_assets.py [--repo DIR ...] [--fresh 5] [--batch 4]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import itertools
import json
import statistics
import tempfile

import numpy as np

from benchmarks.common.paper_runs import ROOT, bench_parser, bench_run, git_revision, print_table
from benchmarks.speed.speed_memory import run_child

PARTS = "back,seat,leg,arm"


def new_chair(path: Path, seed: int) -> Path:
    """The README's chair, stretched per axis (±~10%) and turned a few degrees about +Y."""
    import trimesh

    rng = np.random.default_rng(seed)
    mesh = trimesh.load(ROOT / "examples" / "chair.glb", force="mesh")
    stretch = np.diag([*(1 + 0.1 * rng.uniform(-1, 1, 3)), 1.0])
    turn = trimesh.transformations.rotation_matrix(0.15 * rng.uniform(-1, 1), [0, 1, 0])
    mesh.apply_transform(turn @ stretch)
    mesh.export(path)
    return path


def segment_arguments(targets: list[Path], out: Path, device: str) -> list[str]:
    """``bipart segment``'s arguments for ``targets``: few-shot from ``examples/chairs``,
    ``--labeler none``, one JSON record per target on stdout."""
    return [
        "segment", *map(str, targets), "--parts", PARTS,
        "--support", str(ROOT / "examples" / "chairs"), "--labeler", "none",
        "--out-dir", str(out), "--device", device, "--json", "-q",
    ]  # fmt: skip


def new_asset_records(stdout: str) -> list[dict]:
    """The JSON records of ``stdout``; none may have been read back from the store."""
    records = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    if any(r.get("reused") for r in records):
        raise SystemExit("a target was read back from the store: it is not a new asset")
    return records


def segment(repo: Path, targets: list[Path], out: Path, cache: Path, device: str):
    """``bipart segment`` of ``targets`` in one fresh process: its wall time and records."""
    command = [sys.executable, "-m", "bipart_cli", *segment_arguments(targets, out, device)]
    env = {"BIPART_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    run = run_child(command, env=env, cwd=repo)
    if run.returncode != 0:
        raise SystemExit(f"bipart segment failed in {repo}:\n{run.stderr}")
    return run.wall_s, new_asset_records(run.stdout)


def measure(repo: Path, workdir: Path, fresh: int, batch: int, device: str) -> list[list[str]]:
    cache, out = workdir / "cache", workdir / "out"
    seeds = itertools.count(1000)

    def chair() -> Path:
        seed = next(seeds)
        return new_chair(workdir / f"chair_{seed}.glb", seed)

    segment(repo, [chair()], out, cache, device)  # warms the support's cache
    totals, walls = [], []
    for _ in range(fresh):
        wall, (record,) = segment(repo, [chair()], out, cache, device)
        walls.append(wall)
        totals.append(record["timings"]["total"])
    _, records = segment(repo, [chair() for _ in range(batch)], out, cache, device)
    later = [r["timings"]["total"] for r in records[1:]]
    name = f"{repo.name} ({git_revision(repo)})"
    return [
        [name, "a new asset, fresh process: timings.total", f"{statistics.median(totals):.2f}", "0.5"],
        [name, "the same: wall", f"{statistics.median(walls):.2f}", "2.5"],
        [name, f"{batch} new assets in one process: total of 2-{batch}", f"{statistics.median(later):.2f}", "0.4"],
    ]  # fmt: skip


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--repo", type=Path, action="append", default=None)
    parser.add_argument("--fresh", type=int, default=5, help="fresh processes (median)")
    parser.add_argument("--batch", type=int, default=4, help="new assets in one process")
    args = parser.parse_args()
    device = "cpu" if args.device == "auto" else args.device
    rows = []
    with bench_run():
        for repo in args.repo or [ROOT]:
            with tempfile.TemporaryDirectory(prefix="bipart-new-") as scratch:
                rows += measure(repo.resolve(), Path(scratch), args.fresh, args.batch, device)
        print_table(
            [
                f"New assets (the README's chair stretched and turned), few-shot from "
                f"examples/chairs, warm support cache, {device}; medians of {args.fresh} "
                f"fresh processes and of assets 2-{args.batch} of one process"
            ],
            ["code", "row", "seconds", "goal"],
            rows,
        )


if __name__ == "__main__":
    main()
