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
code (a ``git worktree`` of an older revision gives the "before" rows) on the same files;
several checkouts take turns, one fresh process each in every round.

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


class Checkout:
    """One ``--repo``'s measurements: its own store and outputs in ``workdir``, its chairs."""

    def __init__(self, repo: Path, workdir: Path, device: str) -> None:
        self.repo, self.workdir, self.device = repo, workdir, device
        self.cache, self.out = workdir / "cache", workdir / "out"
        self.seeds = itertools.count(1000)  # every checkout labels the same chairs
        self.totals: list[float] = []
        self.walls: list[float] = []
        self.later: list[float] = []

    def chair(self) -> Path:
        seed = next(self.seeds)
        return new_chair(self.workdir / f"chair_{seed}.glb", seed)

    def warm(self) -> None:
        segment(self.repo, [self.chair()], self.out, self.cache, self.device)  # the support

    def fresh(self) -> None:
        wall, (record,) = segment(self.repo, [self.chair()], self.out, self.cache, self.device)
        self.walls.append(wall)
        self.totals.append(record["timings"]["total"])

    def batch(self, count: int) -> None:
        chairs = [self.chair() for _ in range(count)]
        _, records = segment(self.repo, chairs, self.out, self.cache, self.device)
        self.later += [r["timings"]["total"] for r in records[1:]]

    def rows(self, batch: int) -> list[list[str]]:
        name = f"{self.repo.name} ({git_revision(self.repo)})"
        return [
            [name, "a new asset, fresh process: timings.total", f"{statistics.median(self.totals):.2f}", "0.5"],
            [name, "the same: wall", f"{statistics.median(self.walls):.2f}", "2.5"],
            [name, f"{batch} new assets in one process: total of 2-{batch}", f"{statistics.median(self.later):.2f}", "0.4"],
        ]  # fmt: skip


def measure(checkouts: list[Checkout], fresh: int, batch: int) -> list[list[str]]:
    """Every checkout's rows, the checkouts taking turns run by run, so that a drift in the
    machine's speed falls on each of them alike."""
    for checkout in checkouts:
        checkout.warm()
    for _ in range(fresh):
        for checkout in checkouts:
            checkout.fresh()
    for checkout in checkouts:
        checkout.batch(batch)
    return [row for checkout in checkouts for row in checkout.rows(batch)]


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--repo", type=Path, action="append", default=None)
    parser.add_argument("--fresh", type=int, default=5, help="fresh processes (median)")
    parser.add_argument("--batch", type=int, default=4, help="new assets in one process")
    args = parser.parse_args()
    device = "cpu" if args.device == "auto" else args.device
    with bench_run(), tempfile.TemporaryDirectory(prefix="bipart-new-") as scratch:
        checkouts = []
        for number, repo in enumerate(args.repo or [ROOT]):
            workdir = Path(scratch) / str(number)
            workdir.mkdir()
            checkouts.append(Checkout(repo.resolve(), workdir, device))
        rows = measure(checkouts, args.fresh, args.batch)
        print_table(
            [
                f"New assets (the README's chair stretched and turned), few-shot from "
                f"examples/chairs, warm support cache, {device}; medians of {args.fresh} "
                f"fresh processes (the checkouts taking turns) and of assets 2-{args.batch} "
                "of one process"
            ],
            ["code", "row", "seconds", "goal"],
            rows,
        )


if __name__ == "__main__":
    main()
