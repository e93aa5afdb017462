"""How long does opening a large index take, process after process, with the cache kept?

Opening a large index for retrieval, as ``segment --index`` does, process after process.

Each run is a child process that imports bipart and calls ``SupportBank.from_index(INDEX,
bps_cache=CACHE)``, as ``segment --index`` does with ``$BIPART_CACHE/bps``: the first run of
each checkout starts from an empty cache folder, the later ones find what the first kept.
``open s`` is the call alone (imports excluded); ``wall`` and ``peak MiB`` are the process's.
Each ``--repo`` is a checkout to run the same call from (a worktree of an older revision gives
the "before" rows). The index is the synthetic one ``speed/speed_memory.py --sections retrieval``
writes (100k entries by default).

    python benchmarks/speed/bank_open.py [--index DIR] [--repo DIR ...] [--runs 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import re
import shutil
import tempfile

from benchmarks.common.paper_runs import ROOT, bench_parser, bench_run, git_revision, print_table
from benchmarks.speed.speed_memory import run_child

OPEN = """
import sys, time
from pathlib import Path
from bipart_cli.support import SupportBank
started = time.perf_counter()
bank = SupportBank.from_index(sys.argv[1], bps_cache=Path(sys.argv[2]))
print(f"OPENED {time.perf_counter() - started:.3f} {len(bank)}")
"""

DEFAULT_INDEX = ROOT / ".bench" / "speed" / "synthetic-index-100000-100-2048"


def runs(repo: Path, index: Path, count: int) -> list[list[str]]:
    """``count`` child processes opening ``index`` from ``repo``, sharing one new cache."""
    cache = Path(tempfile.mkdtemp(prefix="bipart-bank-open-"))
    try:
        rows = []
        for number in range(count):
            run = run_child([sys.executable, "-c", OPEN, str(index), str(cache)], cwd=repo)
            found = re.search(r"OPENED ([0-9.]+) ([0-9]+)", run.stdout)
            if run.failure() or found is None:
                raise SystemExit(f"{repo}: {run.failure() or run.stdout[-500:]}")
            label = "empty cache" if number == 0 else f"again {number}"
            rows.append(
                [
                    f"{git_revision(repo)} {label}",
                    found[2],
                    found[1],
                    f"{run.wall_s:.2f}",
                    f"{run.peak_mib:.0f}",
                ]
            )
        return rows
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX)
    parser.add_argument(
        "--repo", type=Path, action="append", help="checkout(s) to run (default: this one)"
    )
    parser.add_argument("--runs", type=int, default=3, help="processes per checkout")
    args = parser.parse_args()
    if not (args.index / "manifest.json").is_file():
        raise SystemExit(
            f"no index at {args.index}: write it with "
            "'python benchmarks/speed/speed_memory.py --sections retrieval' first"
        )
    with bench_run():
        rows = []
        for repo in args.repo or [ROOT]:
            rows += runs(repo.resolve(), args.index.resolve(), args.runs)
        print_table(
            [f"SupportBank.from_index with a kept cache folder: {args.index.name}"],
            ["revision, run", "entries", "open s", "wall s", "peak MiB"],
            rows,
            ["open: the call alone; wall and peak: the whole process (imports included)"],
        )


if __name__ == "__main__":
    main()
