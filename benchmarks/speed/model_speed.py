"""How long do the model's modules take forward, and how much cheaper is a head-only step?

Forward time and peak memory of the model's modules, and the head-only vs full step ratio.

Usage: python benchmarks/speed/model_speed.py [--repeats 3] [--points 2048] [--batches 1 8]

Per device (CPU, and CUDA when present) and batch size it prints the median
forward time and the peak extra memory of the encoder, the extractor and the
head at the default sizes. Then it times one inner-loop step of fast adaptation
(head only, on cached extractor features of an 8-shape support set) against one
full step (forward + backward through extractor and head on cached encoder
features), and prints their ratio: the fast-adaptation design rests on it.

CPU memory is the peak of live tensor storage created during the call, tracked
through a dispatch mode (torch has no CPU allocator counter); CUDA memory is
``torch.cuda.max_memory_allocated`` above the starting level.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse
import statistics
import time
import weakref
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from bipart_cli.model import BiPartConfig, BiPartModel
from bipart_cli.model.loss import distillation_loss

SUPPORT_SIZE = 8
PARTS = 4
BOXES = 12


class PeakTensorMemory(TorchDispatchMode):
    """Peak bytes of tensor storage allocated inside the ``with`` block and still alive."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._tracked: weakref.WeakSet = weakref.WeakSet()

    def _release(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and tensor.device.type == "cpu":
                storage = tensor.untyped_storage()
                if storage not in self._tracked and storage.nbytes():
                    self._tracked.add(storage)
                    self.live += storage.nbytes()
                    weakref.finalize(storage, self._release, storage.nbytes())
        self.peak = max(self.peak, self.live)
        return out


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(call: Callable[[], object], device: torch.device, repeats: int) -> float:
    call()  # warm-up
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_bytes(call: Callable[[], object], device: torch.device) -> int:
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        call()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    tracker = PeakTensorMemory()
    with tracker:
        call()
    return tracker.peak


def unit_clouds(batch: int, points: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(batch)
    clouds = torch.randn(batch, points, 3, generator=generator)
    clouds = clouds / clouds.norm(dim=-1, keepdim=True).amax(dim=1, keepdim=True)
    return clouds.to(device)  # (B, N, 3)


def synthetic_labels(clouds: torch.Tensor):
    """Ball-shaped boxes around random points, each naming one of PARTS parts."""
    batch, num_points, _ = clouds.shape
    generator = torch.Generator().manual_seed(0)
    seeds = torch.randint(num_points, (batch, BOXES), generator=generator).to(clouds.device)
    centres = torch.gather(clouds, 1, seeds.unsqueeze(-1).expand(-1, -1, 3))  # (B, D, 3)
    masks = torch.cdist(centres, clouds) < 0.4  # (B, D, N)
    box_part = torch.randint(PARTS, (batch, BOXES), generator=generator).to(clouds.device)
    box_score = (torch.rand(batch, BOXES, generator=generator) * 0.5 + 0.5).to(clouds.device)
    box_valid = torch.ones(batch, BOXES, dtype=torch.bool, device=clouds.device)
    num_parts = torch.full((batch,), PARTS, dtype=torch.long, device=clouds.device)
    return num_parts, masks, box_part, box_score, box_valid


def module_rows(model: BiPartModel, device: torch.device, args) -> list[tuple]:
    rows = []
    model.eval()
    for batch in args.batches:
        points = unit_clouds(batch, args.points, device)
        with torch.no_grad():
            encoded = model.encode(points)  # (B, N, 681)
            features = model.extract(points, encoded)  # (B, N, C)
        calls = {
            "encoder": lambda p=points: model.encode(p),
            "extractor": lambda p=points, e=encoded: model.extract(p, e),
            "head": lambda f=features: model.head(f),
        }
        for name, call in calls.items():
            with torch.no_grad():
                seconds = median_seconds(call, device, args.repeats)
                memory = peak_bytes(call, device)
            rows.append((device.type, batch, name, seconds * 1e3, memory / 2**20))
    return rows


def step_times(model: BiPartModel, device: torch.device, args) -> tuple[float, float]:
    """(head-only step, full step) median seconds on an 8-shape support set."""
    points = unit_clouds(SUPPORT_SIZE, args.points, device)
    labels = synthetic_labels(points)
    encoded = model.encode(points)  # cached, as in training and inference
    with torch.no_grad():
        model.eval()
        cached = model.extract(points, encoded)  # (M, N, C)

    def loss_of(head_params, features):
        logits = model.head_logits(features, head_params)  # (M, N, R_max)
        return distillation_loss(logits, *labels).sum()

    grad_of_loss = torch.func.grad(loss_of)
    head = {name: value.detach() for name, value in model.head_params().items()}

    def head_step():
        grads = grad_of_loss(head, cached)
        return {name: head[name] - 0.3 * grads[name] for name in head}

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=1e-3)

    def full_step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        features = model.extract(points, encoded)  # (M, N, C) through the extractor
        loss_of(model.head_params(), features).backward()
        optimizer.step()

    head_seconds = median_seconds(head_step, device, args.repeats)
    full_seconds = median_seconds(full_step, device, args.repeats)
    return head_seconds, full_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--points", type=int, default=2048)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--cpu-only", action="store_true")
    args = parser.parse_args()

    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.cpu_only:
        devices.append(torch.device("cuda"))
    torch.manual_seed(0)
    config = BiPartConfig(num_points=args.points)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, N={args.points}")
    print(f"{'device':<7}{'batch':>6}  {'module':<10}{'forward ms':>12}{'peak MiB':>10}")
    ratios = []
    for device in devices:
        model = BiPartModel(config).to(device)
        for row in module_rows(model, device, args):
            print(f"{row[0]:<7}{row[1]:>6}  {row[2]:<10}{row[3]:>12.1f}{row[4]:>10.1f}")
        ratios.append((device.type, *step_times(model, device, args)))
    print()
    print(f"adaptation step on a {SUPPORT_SIZE}-shape support set, {args.points} points each")
    for device_type, head_seconds, full_seconds in ratios:
        ratio = full_seconds / head_seconds
        print(
            f"{device_type}: head-only step {head_seconds * 1e3:.1f} ms, "
            f"full step (extractor + head, fwd+bwd) {full_seconds * 1e3:.1f} ms, "
            f"ratio {ratio:.1f}x"
        )


if __name__ == "__main__":
    main()
