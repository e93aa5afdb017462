"""How long does ``bipart index`` take on a folder that has not changed since its last run?

A batch script re-indexes its support folders before every job; when nothing changed,
the run only checks. ``examples/chairs`` (6 labeled GLBs) is indexed once with the feature
cache on (the default), then again in ``--runs`` fresh processes, each timed (wall) and
checked for whether it imported torch (``python -X importtime``). Offline, on the CPU, a
new empty ``BIPART_CACHE`` per checkout. ``--repo`` runs another checkout's code (a ``git
worktree`` of an older revision gives the "before" row) on the same files; ``--weights``
indexes with the encoder of those weights (a registry id such as ``bipart-default``, a
folder, or ``random``) instead of the default config's.

    python benchmarks/speed/index_again.py [--repo DIR ...] [--runs 5] [--weights W]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import statistics
import tempfile

from benchmarks.common.paper_runs import ROOT, bench_parser, bench_run, git_revision, print_table
from benchmarks.speed.speed_memory import run_child


def index_again(repo: Path, scratch: Path, runs: int, weights: str | None) -> list[str]:
    """One row: the median wall of ``runs`` unchanged re-runs, and whether they import torch."""
    out, env = scratch / "index", {"BIPART_CACHE": str(scratch / "cache"), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-X", "importtime", "-m", "bipart_cli", "index"]
    command += [str(ROOT / "examples" / "chairs"), "--out", str(out), "--device", "cpu", "-q"]
    command += [] if weights is None else ["--weights", weights]
    first = run_child(command, env=env, cwd=repo)
    if first.returncode != 0:
        raise SystemExit(f"bipart index failed in {repo}:\n{first.stderr[-2000:]}")
    walls, torch = [], []
    for _ in range(runs):
        again = run_child(command, env=env, cwd=repo)
        if again.returncode != 0:
            raise SystemExit(f"bipart index failed in {repo}:\n{again.stderr[-2000:]}")
        walls.append(again.wall_s)
        torch.append(any(line.endswith("| torch") for line in again.stderr.splitlines()))
    imported = "yes" if all(torch) else "no" if not any(torch) else "sometimes"
    name = f"{repo.name} ({git_revision(repo)})"
    return [name, f"{first.wall_s:.2f}", f"{statistics.median(walls):.2f}", imported]


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--repo", type=Path, action="append", default=None)
    parser.add_argument("--runs", type=int, default=5, help="unchanged re-runs (median)")
    parser.add_argument("--weights", default=None, help="index with these weights' encoder")
    args = parser.parse_args()
    rows = []
    with bench_run():
        for repo in args.repo or [ROOT]:
            with tempfile.TemporaryDirectory(prefix="bipart-index-") as scratch:
                rows.append(index_again(repo.resolve(), Path(scratch), args.runs, args.weights))
        print_table(
            [
                "bipart index examples/chairs (6 GLBs, feature cache on"
                + ("" if args.weights is None else f", --weights {args.weights}")
                + "), cpu: the first run, "
                f"then the median wall of {args.runs} fresh processes on the unchanged folder "
                "(python -X importtime: whether they import torch)"
            ],
            ["code", "first s", "again s", "torch imported again"],
            rows,
        )


if __name__ == "__main__":
    main()
