"""How fast does encoder pre-training run, and in how much memory?

Encoder pre-training throughput and memory (``bipart pretrain``'s step, default sizes).

Each row runs ``--steps`` optimizer steps (forward, backward, AdamW) of the masked
autoencoder on seeded batches of generated shapes, after one warm-up step, and
reports steps/s, shapes/s and the peak memory of the process (CPU: max RSS, which
includes the corpus and torch itself; CUDA: peak allocated). bf16 autocast on CUDA,
as in ``bipart pretrain``.

    python benchmarks/training/pretrain_speed.py [--device cpu] [--batch-sizes 4,8] [--steps 5]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import time

import torch

from benchmarks.common.paper_runs import bench_parser, bench_run, print_table
from bipart_cli.model import BiPartConfig
from bipart_cli.pretrain import PretrainSettings
from bipart_cli.pretrain.corpus import build_corpus
from bipart_cli.pretrain.loop import peak_memory_mb, step_loss
from bipart_cli.pretrain.masked_autoencoder import MaskedAutoencoder
from bipart_cli.runtime import resolve_device
from bipart_cli.train.distributed import DistInfo


def run(model, corpus, settings: PretrainSettings, device, steps: int) -> float:
    """Seconds per step over ``steps`` steps of ``bipart pretrain``'s own step, after a warm-up step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr)
    model.train()
    started = 0.0
    for step in range(steps + 1):
        if step == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        step_loss(model, corpus, settings, step, device, DistInfo())
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--batch-sizes", default="4,8")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    device = resolve_device(args.device)
    with bench_run():
        corpus = build_corpus([], procedural=32, seed=0)
        rows = []
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            torch.manual_seed(0)
            model = MaskedAutoencoder(BiPartConfig()).to(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            settings = PretrainSettings(batch_size=batch_size)
            seconds = run(model, corpus, settings, device, args.steps)
            rows.append(
                [
                    str(device),
                    str(batch_size),
                    f"{1 / seconds:.3f}",
                    f"{batch_size / seconds:.2f}",
                    f"{peak_memory_mb(device):.0f}",
                ]
            )
        print_table(
            [
                "Encoder pre-training (masked autoencoder, 2048 points, default sizes, "
                f"mask ratio 0.8), {args.steps} timed steps after one warm-up step"
            ],
            ["device", "batch", "steps/s", "shapes/s", "peak MiB"],
            rows,
        )


if __name__ == "__main__":
    main()
