"""What does ``--preview`` add to a stored run? Issue #33 item 4 (goal: at most 1 s).

The README's quick-start command (``examples/chair.glb`` few-shot from ``examples/chairs``,
``--labeler none``) is run once to fill a new empty ``BIPART_CACHE``; then fresh processes
read that run back from the store, with and without ``--preview``, taking turns so that a
drift in the machine's speed falls on both alike. Every run must say it was read back
(``reused`` in its JSON record), or the script stops. Offline, on the CPU unless
``--device`` says otherwise.

    python benchmarks/speed/preview_cost.py [--runs 5]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import json
import statistics
import tempfile

from benchmarks.common.paper_runs import ROOT, bench_parser, bench_run, print_table
from benchmarks.speed.speed_memory import bipart, run_child


def stored_run(out: Path, cache: Path, device: str, preview: bool, first: bool = False) -> float:
    """Wall seconds of the quick-start command in a fresh process on ``device`` (read back
    unless ``first``)."""
    command = bipart(
        "segment", "examples/chair.glb", "--parts", "back,seat,leg,arm",
        "--support", "examples/chairs", "--labeler", "none", "--out-dir", str(out),
        "--device", device, "--json", "-q", *(["--preview"] if preview else []),
    )  # fmt: skip
    run = run_child(command, env={"BIPART_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}, cwd=ROOT)
    if run.returncode != 0:
        raise SystemExit(f"bipart segment failed:\n{run.stderr}")
    (record,) = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    if not first and not record.get("reused"):
        raise SystemExit("the run was not read back from the store")
    if preview and not (out / "chair.parts.png").is_file():
        raise SystemExit("no preview was written")
    return run.wall_s


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--runs", type=int, default=5, help="fresh processes of each (median)")
    args = parser.parse_args()
    device = "cpu" if args.device == "auto" else args.device
    with bench_run(), tempfile.TemporaryDirectory(prefix="bipart-preview-") as scratch:
        scratch = Path(scratch)
        cache = scratch / "cache"
        stored_run(scratch / "first", cache, device, preview=False, first=True)
        walls: dict[bool, list[float]] = {False: [], True: []}
        for number in range(args.runs):
            for preview in (False, True):
                out = scratch / f"out-{number}-{int(preview)}"
                walls[preview].append(stored_run(out, cache, device, preview))
        without, with_preview = (statistics.median(walls[p]) for p in (False, True))
        each = {p: " ".join(f"{w:.2f}" for w in walls[p]) for p in (False, True)}
        print_table(
            [
                "A stored run of the README's quick-start command, read back in a fresh process, "
                f"with and without --preview (medians of {args.runs} each, taking turns; {device})"
            ],
            ["run", "wall s", "runs"],
            [
                ["without --preview", f"{without:.2f}", each[False]],
                ["with --preview", f"{with_preview:.2f}", each[True]],
                ["--preview adds (goal <= 1.0)", f"{with_preview - without:.2f}", ""],
            ],
        )


if __name__ == "__main__":
    main()
