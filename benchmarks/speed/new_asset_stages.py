"""Where does a new asset's time go? Issue #33 item 1's breakdown, per stage and within adaptation.

The protocol of ``new_assets.py`` (the README's chair stretched and turned, a seed per
target, few-shot from ``examples/chairs``, ``--labeler none``, a new empty ``BIPART_CACHE``),
in this process: one chair first, unreported (it warms the support's cache and the
imports), then ``--assets`` new chairs through ``bipart segment`` in one call. The rows are
the sidecar's ``timings`` (``sample`` holds the dense samples and the network's
farthest-point picks, ``adapt`` everything from the head inputs to the dense labels) and,
inside them, the wall time of the library functions below, each timed where the pipeline
calls it (ms per asset, mean over the assets; a function that runs inside another is
counted in both). ``other`` is what the named pieces of ``adapt`` leave.

    python benchmarks/speed/new_asset_stages.py [--assets 4] [--device cpu]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import contextlib
import functools
import importlib
import io
import os
import tempfile
import time
from collections import defaultdict

from benchmarks.common.paper_runs import bench_parser, bench_run, print_table
from benchmarks.speed.new_assets import new_asset_records, new_chair, segment_arguments

# (stage of the sidecar it runs in, what it is, module, attribute): timed where it is looked up;
# an indented row runs inside the row above it
PIECES = [
    ("sample", "dense surface samples", "bipart_cli.io", "sample_dense"),
    ("sample", "farthest-point picks", "bipart_cli.io", "sample_network_indices"),
    ("adapt", "descriptors", "bipart_cli.descriptors", "point_descriptors"),
    ("adapt", "  of which the Laplacian's eigenpairs", "bipart_cli.descriptors", "laplacian_eigenpairs"),
    ("adapt", "network pass (encoder + extractor)", "bipart_cli.model.bipart", "BiPartModel.extract"),
    ("adapt", "  of which the encoder", "bipart_cli.model.bipart", "BiPartModel.encode"),
    ("adapt", "head fits (the support's head, the refit)", "bipart_cli.adapt", "fit_head"),
    ("adapt", "kNN mix", "bipart_cli.refine", "knn_probabilities"),
    ("adapt", "laid-on labels", "bipart_cli.predict", "_registered_transfer"),
    ("adapt", "smoothing (its neighbours)", "bipart_cli.refine", "Smoother.__init__"),
    ("adapt", "interpolation to the dense points", "bipart_cli.geometry", "three_nn_interpolate"),
]  # fmt: skip
# the pieces of ``adapt`` that ``other`` leaves out (not the indented ones: in their parent)
TOP_LEVEL_ADAPT = {label for within, label, _, _ in PIECES if within == "adapt" and label[0] != " "}


def timed(seconds: dict[str, float], label: str, module: str, attribute: str) -> None:
    """Wrap ``module.attribute`` (``Class.method`` too) so its wall time adds to ``seconds[label]``."""
    owner = importlib.import_module(module)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    function = getattr(owner, name)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[label] += time.perf_counter() - started

    setattr(owner, name, wrapper)


def segment(targets: list[Path], out: Path, device: str) -> list[dict]:
    """``bipart segment`` of ``targets`` in this process: their JSON records."""
    from bipart_cli.cli import main

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.suppress(SystemExit):
        main(segment_arguments(targets, out, device))
    records = new_asset_records(stdout.getvalue())
    if len(records) != len(targets):
        raise SystemExit("bipart segment failed")
    return records


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--assets", type=int, default=4, help="new assets timed, in one process")
    args = parser.parse_args()
    device = "cpu" if args.device == "auto" else args.device
    with bench_run(), tempfile.TemporaryDirectory(prefix="bipart-stages-") as scratch:
        scratch = Path(scratch)
        os.environ.update({"BIPART_CACHE": str(scratch / "cache"), "HF_HUB_OFFLINE": "1"})
        segment([new_chair(scratch / "warm.glb", 999)], scratch / "out", device)
        seconds: dict[str, float] = defaultdict(float)
        for _, label, module, attribute in PIECES:
            timed(seconds, label, module, attribute)
        targets = [
            new_chair(scratch / f"chair_{seed}.glb", seed)
            for seed in range(2000, 2000 + args.assets)
        ]
        records = segment(targets, scratch / "out", device)
        count = len(records)
        stages: dict[str, float] = defaultdict(float)
        for record in records:
            for stage, value in record["timings"].items():
                if stage != "setup":
                    stages[stage] += value / count
        rows = []
        for stage, value in stages.items():
            if stage == "total" or value < 0.0005:
                continue
            rows.append([stage, f"{1000 * value:.0f}", f"{value / stages['total']:.0%}"])
            for within, label, _, _ in PIECES:
                if within == stage:
                    piece = seconds[label] / count
                    rows.append(
                        [f"  {label}", f"{1000 * piece:.0f}", f"{piece / stages['total']:.0%}"]
                    )
            if stage == "adapt":
                other = value - sum(seconds[label] for label in TOP_LEVEL_ADAPT) / count
                rows.append(["  other", f"{1000 * other:.0f}", f"{other / stages['total']:.0%}"])
        rows.append(["total", f"{1000 * stages['total']:.0f}", "100%"])
        print_table(
            [
                f"A new asset, stage by stage ({count} of the README's chair stretched and turned, "
                f"one process, after one warm-up chair; few-shot from examples/chairs, {device}): "
                "ms per asset"
            ],
            ["stage", "ms", "share"],
            rows,
        )


if __name__ == "__main__":
    main()
