"""How long do adaptation and prediction take per shape, and how much do cached features save?

Per-shape fast-adaptation time (paper Table 5): cached features against a naive path.

For every support size M and inner-step count K, times one target's
adaptation plus prediction of its 2048 points:

- cached: support extractor features computed once (as the index cache and
  the FeatureCache give them), the target's encoder and extractor run once, K
  head-only steps, then prediction;
- indexed: the same, with the target's frozen-encoder features from an index
  cache (what ``bipart eval`` and re-segmenting an indexed shape see);
- naive: the full network (encoder + extractor + head) re-run on the support
  and target at every inner step.

The grid runs the paper's inner loop (``PAPER_INNER_LOOP``: K plain SGD steps on
every support point); a last line times the tool's defaults (Adam on 512 points
a step, descriptors, the kNN mix, smoothing) at their M, and lines before it the
paper's loop on a draw of support points per step (``--paper-points``). Synthetic clouds and
labels; the random-initialised model has the real sizes.

    python benchmarks/speed/adapt_speed.py [--device cpu] [--repeats 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse
import platform
import time

import numpy as np
import torch

from bipart_cli.adapt import (
    PAPER_INNER_LOOP,
    AdaptSettings,
    pack_labels,
    predict_probabilities,
    support_loss,
)
from bipart_cli.labeling.pseudo_labels import PseudoLabels
from bipart_cli.model import BiPartConfig, BiPartModel
from bipart_cli.predict import FeatureCache, adapt_and_predict
from bipart_cli.runtime import keep_freed_tensor_memory
from bipart_cli.support import SupportShape

NUM_POINTS = 2048
NUM_PARTS = 4


def synthetic_shape(rng: np.random.Generator, shape_id: str) -> SupportShape:
    points = rng.normal(size=(NUM_POINTS, 3)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1).max()
    boxes = 12
    masks = rng.random((boxes, NUM_POINTS)) < 0.2
    labels = PseudoLabels(
        masks=masks,
        part_index=rng.integers(0, NUM_PARTS, boxes),
        scores=rng.uniform(0.5, 1, boxes),
        part_names=[f"p{i}" for i in range(NUM_PARTS)],
    )
    return SupportShape(shape_id, points, labels)


def cached_time(
    model,
    target: SupportShape,
    support: list[SupportShape],
    settings: AdaptSettings,
    device,
    encoder_cached: bool,
) -> float:
    cache = FeatureCache(model, device, settings)  # the support's head inputs for these settings
    cache.features(support)  # the support features exist before the target arrives (index cache)
    encoded = descriptors = None
    if encoder_cached:  # an index caches both
        with torch.no_grad():
            points = torch.from_numpy(target.points).to(device)[None]
            encoded = model.encode(points)[0].cpu().numpy()
        descriptors = cache.descriptors(target.points)
    started = time.perf_counter()
    adapt_and_predict(
        model,
        target.points,
        target.points,
        target.pseudo_labels,
        support,
        NUM_PARTS,
        settings,
        cache,
        target_encoder_features=encoded,
        target_descriptors=descriptors,
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def naive_time(
    model, target: SupportShape, support: list[SupportShape], settings: AdaptSettings, device
) -> float:
    started = time.perf_counter()
    shapes = [target, *support]
    points = torch.from_numpy(np.stack([s.points for s in shapes])).to(device)
    labels = pack_labels([s.pseudo_labels for s in shapes], NUM_PARTS, device=device)
    head = {k: v.detach().clone().requires_grad_(True) for k, v in model.head_params().items()}
    for _ in range(settings.steps):
        features = model.extract(points)  # full network at every step
        loss = support_loss(model, head, features, labels, settings.box_reduction)
        grads = torch.autograd.grad(loss, list(head.values()))
        head = {
            k: (v - settings.lr * g).detach().requires_grad_(True)
            for (k, v), g in zip(head.items(), grads, strict=True)
        }
    with torch.no_grad():
        predict_probabilities(model, model.extract(points[:1]), head, NUM_PARTS).argmax(-1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sizes", default="1,2,4,8,12")
    parser.add_argument("--steps", default="5,10,15,20")
    parser.add_argument(
        "--paper-points",
        default="512,1024",
        help="also time the paper's loop at M=8, K=10 on this many support points a step",
    )
    parser.add_argument(
        "--naive-at",
        default="8:10",
        help="M:K pairs for the naive path (it is slow), comma-separated; 'all' for every cell",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    allocator = "glibc heap kept (as segment/eval)" if keep_freed_tensor_memory() else "default"
    torch.manual_seed(0)
    model = BiPartModel(BiPartConfig()).to(device).eval()
    rng = np.random.default_rng(0)
    sizes = [int(s) for s in args.sizes.split(",")]
    steps = [int(s) for s in args.steps.split(",")]
    naive_cells = (
        None
        if args.naive_at == "all"
        else {tuple(int(x) for x in cell.split(":")) for cell in args.naive_at.split(",")}
    )
    support_pool = [synthetic_shape(rng, f"s{i}") for i in range(max(sizes))]
    target = synthetic_shape(rng, "target")
    print(
        f"adaptation + prediction per shape, {NUM_POINTS} points, {NUM_PARTS} parts, device {device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads), allocator: {allocator}"
    )
    print(
        "cached: support features precomputed; the target's encoder + extractor run once. "
        "indexed: the target's encoder features cached too. naive: full network at every inner step."
    )
    print(f"{'M':>3} {'K':>3} {'cached s':>9} {'indexed s':>10} {'naive s':>9} {'ratio':>7}")
    for m in sizes:
        for k in steps:
            settings = AdaptSettings(**{**PAPER_INNER_LOOP, "steps": k, "support_size": m})
            support = support_pool[:m]
            cached = min(
                cached_time(model, target, support, settings, device, False)
                for _ in range(args.repeats)
            )
            indexed = min(
                cached_time(model, target, support, settings, device, True)
                for _ in range(args.repeats)
            )
            naive = ratio = None
            if naive_cells is None or (m, k) in naive_cells:
                naive = min(
                    naive_time(model, target, support, settings, device)
                    for _ in range(max(1, args.repeats - 1))
                )
                ratio = naive / cached
            naive_text = f"{naive:9.3f}" if naive is not None else f"{'-':>9}"
            ratio_text = f"{ratio:7.1f}" if ratio is not None else f"{'-':>7}"
            print(f"{m:>3} {k:>3} {cached:9.3f} {indexed:10.3f} {naive_text} {ratio_text}")
    for points in [int(p) for p in args.paper_points.split(",") if p]:
        settings = AdaptSettings(**{**PAPER_INNER_LOOP, "batch_points": points})
        times = [
            min(
                cached_time(model, target, support_pool[:8], settings, device, c)
                for _ in range(args.repeats)
            )
            for c in (False, True)
        ]
        print(
            f"the paper's loop, M=8 K=10, {points} support points drawn a step: "
            f"cached {times[0]:.3f} s, indexed {times[1]:.3f} s"
        )
    defaults = AdaptSettings()
    support = support_pool[: defaults.support_size]
    times = [
        min(cached_time(model, target, support, defaults, device, c) for _ in range(args.repeats))
        for c in (False, True)
    ]
    print(
        f"the tool's defaults, M={defaults.support_size} ({defaults.optimizer} {defaults.steps} steps "
        f"x {defaults.batch_points} points, descriptors {defaults.descriptors}, kNN mix, "
        f"{defaults.smooth} smoothing rounds; the target's descriptors computed when not indexed): "
        f"cached {times[0]:.3f} s, indexed {times[1]:.3f} s"
    )


if __name__ == "__main__":
    main()
