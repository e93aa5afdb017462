"""How long does labeling take: rendering, back-projection and the detector's forward?

Labeling speed on CPU (or --device cuda): render + back-project, and the detector forward.

1. Render 10 views of a 100k-point cloud (a generated chair) at 512 px and back-project
   the boxes of the simulated labeler (about 3 per view).
2. Forward time per view of the real-size Grounding DINO tiny architecture
   (``GroundingDinoConfig()`` defaults: Swin-T backbone, BERT-base text encoder, 900
   queries) with RANDOM weights (no download), at the render size and at the
   processor's default 800 px, for a 10-token prompt like "back. seat. leg. arm.".

    python benchmarks/speed/labeling_speed.py [--points 100000] [--size 512] [--repeats 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse
import statistics
import tempfile
import time


def timed(function, repeats: int) -> tuple[float, object]:
    """Median wall time (s) of ``repeats`` calls, after one warm-up call."""
    result = function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-detector", action="store_true")
    args = parser.parse_args()

    import torch

    from bipart_cli.io import load_asset, sample_dense
    from bipart_cli.labeling.backproject import backproject_boxes
    from bipart_cli.labeling.simulated import SimulatedLabeler
    from bipart_cli.procedural import make_shape
    from bipart_cli.render import RenderSettings, render_views

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "chair.glb"
        make_shape("chair", seed=0).export(path)
        asset = load_asset(path)
    dense = sample_dense(asset, args.points, seed=0)
    settings = RenderSettings(image_size=args.size)
    render_s, rendering = timed(
        lambda: render_views(dense.points, dense.colors, dense.normals, settings, args.device),
        args.repeats,
    )
    pseudo = SimulatedLabeler(settings).from_rendering(rendering, dense.labels, asset.part_names)
    boxes = [pseudo.boxes[pseudo.view_index == v] for v in range(rendering.num_views)]
    backproject_s, _ = timed(lambda: backproject_boxes(rendering, boxes, len(dense)), args.repeats)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    print(f"{'step':<44} {'seconds':>8}")
    print(f"{f'render 10 views, {args.points} points, {args.size} px':<44} {render_s:8.3f}")
    print(f"{f'back-project {sum(len(b) for b in boxes)} boxes':<44} {backproject_s:8.3f}")
    if args.skip_detector:
        return 0

    from transformers import GroundingDinoConfig, GroundingDinoForObjectDetection

    torch.manual_seed(0)
    model = GroundingDinoForObjectDetection(GroundingDinoConfig()).eval().to(args.device)
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    input_ids = torch.tensor(
        [[101, 2067, 1012, 2835, 1012, 4190, 1012, 2849, 1012, 102]], device=args.device
    )
    for size in (args.size, 800):
        pixels = torch.rand(1, 3, size, size, device=args.device)
        inputs = {
            "pixel_values": pixels,
            "pixel_mask": torch.ones(1, size, size, dtype=torch.long, device=args.device),
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "token_type_ids": torch.zeros_like(input_ids),
        }
        with torch.inference_mode():
            seconds, _ = timed(lambda inputs=inputs: model(**inputs), max(1, args.repeats - 1))
        label = f"Grounding DINO tiny ({millions:.0f}M, RANDOM weights) {size} px"
        print(f"{label:<44} {seconds:8.3f}  per view")
    return 0


if __name__ == "__main__":
    sys.exit(main())
