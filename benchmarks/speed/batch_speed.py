"""How long does each later asset of a batch take, once the first has loaded everything?

Per-asset time in a batch: ``bipart segment`` of several assets in one process.

Generates ``--assets`` chairs (procedural seeds 11, 12, ...; not among the bundled
support chairs) and segments them in ONE ``bipart segment`` process, few-shot from
``examples/chairs`` with the default weights. A first, unreported run warms the
``--support`` cache (``BIPART_CACHE`` under ``--workdir``); the reported run's
sidecar timings are printed per asset: the first asset pays for loading the model
and the support set, later ones show what a batch shares. ``--repo`` runs another
checkout's code (a worktree of an older revision) on the same inputs.

    python benchmarks/speed/batch_speed.py [--assets 4] [--repo DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import json
import os
import subprocess

from benchmarks.common.paper_runs import ROOT, bench_parser, bench_run, print_table
from bipart_cli.procedural import make_shape


def segment_batch(repo: Path, inputs: list[Path], out: Path, cache: Path, device: str) -> list:
    command = [
        sys.executable, "-m", "bipart_cli", "segment", *map(str, inputs),
        "--parts", "back,seat,leg,arm", "--support", str(ROOT / "examples" / "chairs"),
        "--labeler", "none", "--out-dir", str(out), "--device", device, "--json", "-q",
    ]  # fmt: skip
    env = {**os.environ, "BIPART_CACHE": str(cache)}
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--assets", type=int, default=4)
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".bench" / "batch")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    inputs = []
    for seed in range(11, 11 + args.assets):
        path = args.workdir / f"chair_{seed}.glb"
        path.write_bytes(make_shape("chair", seed).export(file_type="glb"))
        inputs.append(path)
    device = "cpu" if args.device == "auto" else args.device
    with bench_run():
        cache = args.workdir / "cache"
        segment_batch(args.repo.resolve(), inputs, args.workdir / "out", cache, device)  # warm
        records = segment_batch(args.repo.resolve(), inputs, args.workdir / "out", cache, device)
        stages = ["load", "sample", "support", "pose", "adapt", "write", "total"]
        rows = [
            [
                f"{i + 1}: {Path(r['input']).name}",
                *(f"{r['timings'].get(s, float('nan')):.3f}" for s in stages),
            ]
            for i, r in enumerate(records)
        ]
        print_table(
            [
                f"bipart segment of {args.assets} chairs in one process, few-shot from "
                f"examples/chairs, weights bipart-default, warm --support cache; code: {args.repo}"
            ],
            ["asset", *(f"{s} s" for s in stages)],
            rows,
        )


if __name__ == "__main__":
    main()
