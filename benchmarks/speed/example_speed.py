"""How long does the README's example take, cold, warm and on a new asset, and how much memory?

The README's example, cold and warm: wall, peak RSS and the sidecar's stage timings.

Runs ``bipart segment examples/chair.glb --parts back,seat,leg,arm --support
examples/chairs --labeler none --json -q`` in a child process per run, offline
(``HF_HUB_OFFLINE=1``) with a new empty ``BIPART_CACHE``: one cold run (it indexes
the support folder and caches its features), then ``--warm`` runs of a second,
third... process, then ``--new-assets`` runs on assets the cache has not seen
(``examples/chairs/chair_<i>.glb`` as targets: their own sampling, descriptors and
features are computed, and the support set is another, as each leaves itself out).
Each ``--repo`` is a checkout to run the same command from (a worktree of an older
revision gives the "before" rows); the chair is copied to a scratch folder first, so
no checkout gets outputs written into it.

Besides the sidecar's stages, each run reports the process's own overheads: ``gc s``,
the time spent in Python's cyclic garbage collector while the command ran
(``gc.callbacks``), and ``exit s``, from the command's end to the process's (its exit
hooks, then the interpreter's teardown: final collections, module teardown; since the
console script skips the teardown, only the hooks and ``os._exit``). Each run calls what
the ``bipart`` executable calls (``console_script``, or ``main`` before it existed).

    python benchmarks/speed/example_speed.py [--repo DIR ...] [--warm 3] [--new-assets 3]
        [--rounds 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import re
import shutil
import statistics
import tempfile
import time

from benchmarks.common.paper_runs import ROOT, bench_parser, bench_run, git_revision, print_table
from benchmarks.speed.speed_memory import run_child

STAGES = ("load", "reuse", "sample", "support", "pose", "adapt", "write", "total")

# ``bipart`` with the time in the garbage collector and the moment the command ended written
# to stderr; the exit hook is registered first, so it runs last, after bipart's own
PROBE = """
import atexit, gc, sys, time
spent, began = [0.0], [0.0]
def timed(phase, info):
    if phase == "start":
        began[0] = time.perf_counter()
    else:
        spent[0] += time.perf_counter() - began[0]
gc.callbacks.append(timed)
atexit.register(lambda: sys.stderr.write(f"\\nPROBE gc {spent[0]:.4f} end {time.time():.4f}\\n"))
sys.argv = ["bipart", *sys.argv[1:]]
try:
    from bipart_cli.cli import console_script as main  # what the ``bipart`` executable runs
except ImportError:  # revisions before it
    from bipart_cli.cli import main
main()
"""


def process_overheads(run, ended: float) -> tuple[str, str]:
    """(gc s, exit s) of a finished run from its PROBE line; ``ended``: when it was reaped."""
    found = re.search(r"PROBE gc ([0-9.]+) end ([0-9.]+)", run.stderr)
    if found is None:
        return "-", "-"
    return f"{float(found[1]):.2f}", f"{ended - float(found[2]):.2f}"


def runs(repo: Path, warm: int, new_assets: int, device: str) -> list[list[str]]:
    scratch = Path(tempfile.mkdtemp(prefix="bipart-example-"))
    try:
        chair = scratch / "chair.glb"
        shutil.copy(ROOT / "examples" / "chair.glb", chair)
        others = sorted((ROOT / "examples" / "chairs").glob("*.glb"))[:new_assets]
        # as the user's own assets (a support shape is left out of its own support)
        for other in others:
            shutil.copy(other, scratch / other.name)
        targets = [("cold", chair)] + [(f"warm {i + 1}", chair) for i in range(warm)]
        targets += [(f"new {other.stem}", scratch / other.name) for other in others]
        env = {"BIPART_CACHE": str(scratch / "cache"), "HF_HUB_OFFLINE": "1"}
        rows = []
        for label, target in targets:
            command = [
                sys.executable, "-c", PROBE, "segment", str(target),
                "--parts", "back,seat,leg,arm", "--support", str(ROOT / "examples" / "chairs"),
                "--labeler", "none", "--device", device, "--json", "-q",
            ]  # fmt: skip
            run = run_child(command, env=env, cwd=repo)
            gc_s, exit_s = process_overheads(run, time.time())
            if run.failure():
                raise SystemExit(f"{repo}: {run.failure()}")
            timings = (run.json() or {}).get("timings", {})
            cells = [f"{timings[s]:.2f}" if s in timings else "-" for s in STAGES]
            rows.append(
                [
                    f"{git_revision(repo)} {label}",
                    f"{run.wall_s:.2f}",
                    f"{run.peak_mib:.0f}",
                    *cells,
                    gc_s,
                    exit_s,
                ]
            )
        return rows
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--repo", type=Path, action="append", help="checkout(s) to run (default: this one)"
    )
    parser.add_argument("--warm", type=int, default=3, help="warm runs after the cold one")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat the whole set this many times, the checkouts taking turns (this "
        "machine's speed drifts by tens of percent over minutes: turns share the drift)",
    )
    parser.add_argument(
        "--new-assets",
        type=int,
        default=0,
        help="then this many runs on other assets (examples/chairs/*.glb) with the cache warm",
    )
    args = parser.parse_args()
    device = "cpu" if args.device == "auto" else args.device
    with bench_run():
        rows = []
        for _ in range(args.rounds):
            for repo in args.repo or [ROOT]:
                rows += runs(repo.resolve(), args.warm, args.new_assets, device)
        print_table(
            [
                "bipart segment of the bundled chair, few-shot from examples/chairs (cold, then warm processes)"
            ],
            ["revision, run", "wall s", "peak MiB", *(f"{s} s" for s in STAGES), "gc s", "exit s"],
            rows,
            [
                "stage columns: the sidecar's timings ('-': the revision has no such stage; "
                "before the 'sample' stage, sampling was inside 'load'); wall includes Python start-up and imports",
                "gc: time in the cyclic garbage collector while the command ran; exit: from the "
                "command's end to the process's (exit hooks, then the interpreter's teardown, "
                "which the console script skips)",
            ],
        )
        print_medians(rows)


def print_medians(rows: list[list[str]]) -> None:
    """Per revision and kind of run (warm, new asset): the median wall and its range."""
    walls: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        revision, label = row[0].rsplit(" ", 2)[0], row[0].split()[-2]
        if label in ("warm", "new"):
            walls.setdefault((revision, label), []).append(float(row[1]))
    for (revision, label), values in walls.items():
        print(
            f"{revision} {label}: wall median {statistics.median(values):.2f} s over "
            f"{len(values)} runs ({min(values):.2f}-{max(values):.2f})"
        )


if __name__ == "__main__":
    main()
