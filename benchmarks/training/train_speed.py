"""How fast does bi-level training run, and how much do cached support features save?

Bi-level training throughput: targets per second, cached path against a naive one.

cached: frozen-encoder features from the index cache, extractor features
computed once per shape per outer step and shared by all inner steps and
targets (``bipart_cli.train.outer_loss``). naive: the full network re-run at
every inner step (``bipart_cli.train.naive_outer_loss``). Both include the
backward pass and the Adam step. Synthetic shapes in 2 categories, real sizes.

    python benchmarks/training/train_speed.py [--device cpu] [--batches 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse
import time

import numpy as np
import torch

from bipart_cli.labeling.pseudo_labels import PseudoLabels
from bipart_cli.model import BiPartConfig, BiPartModel
from bipart_cli.support import BPSBasis, bps_features
from bipart_cli.train import (
    TrainSettings,
    TrainShape,
    naive_outer_loss,
    outer_loss,
    training_supports,
)

NUM_POINTS = 2048


def synthetic_shapes(model, count: int, device, rng: np.random.Generator) -> list[TrainShape]:
    basis = BPSBasis.generate(seed=0)
    shapes = []
    for i in range(count):
        points = rng.normal(size=(NUM_POINTS, 3)).astype(np.float32)
        points /= np.linalg.norm(points, axis=1).max()
        parts = 4
        masks = rng.random((12, NUM_POINTS)) < 0.2
        labels = PseudoLabels(
            masks=masks,
            part_index=rng.integers(0, parts, 12),
            scores=rng.uniform(0.5, 1, 12),
            part_names=[f"p{j}" for j in range(parts)],
        )
        with torch.no_grad():
            features = model.encode(torch.from_numpy(points)[None].to(device))[0].cpu().numpy()
        shapes.append(
            TrainShape(
                f"s{i}",
                f"c{i % 2}",
                labels.part_names,
                points,
                labels,
                bps_features(points, basis),
                parts,
                features,
            )
        )
    return shapes


def throughput(step_fn, model, shapes, settings, device, batches: int) -> float:
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=settings.outer_lr
    )
    supports = training_supports(
        shapes, list(range(len(shapes))), settings, np.random.default_rng(0)
    )
    order = list(range(len(shapes)))
    started = time.perf_counter()
    targets = 0
    for b in range(batches):
        batch = order[(b * settings.batch_size) % len(order) :][: settings.batch_size]
        optimizer.zero_grad()
        loss = step_fn(model, shapes, batch, supports, settings, device)
        loss.backward()
        optimizer.step()
        targets += len(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return targets / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--shapes", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8, help="targets per outer step")
    parser.add_argument("--orders", default="second,first", help="second and/or first")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = BiPartModel(BiPartConfig()).to(device)
    shapes = synthetic_shapes(model, args.shapes, device, np.random.default_rng(0))
    print(
        f"bi-level training throughput, device {device}, {torch.get_num_threads()} threads, "
        f"batch {args.batch_size}, M=8, K=5, {NUM_POINTS} points"
    )
    print(f"{'mode':<14} {'cached t/s':>11} {'naive t/s':>10} {'ratio':>7}")
    orders = [o.strip() for o in args.orders.split(",")]
    for first_order in [order == "first" for order in orders]:
        settings = TrainSettings(first_order=first_order, batch_size=args.batch_size)
        model.train()
        fast = throughput(outer_loss, model, shapes, settings, device, args.batches)
        slow = throughput(
            naive_outer_loss, model, shapes, settings, device, max(1, args.batches // 2)
        )
        name = "first-order" if first_order else "second-order"
        print(f"{name:<14} {fast:11.2f} {slow:10.3f} {fast / slow:7.1f}")


if __name__ == "__main__":
    main()
