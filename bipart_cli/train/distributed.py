"""torchrun: each rank takes a slice of every global batch; gradients and losses are summed
across ranks, and only rank 0 writes. The result equals one process with the same global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): NCCL on GPU, gloo on CPU."""
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size())


def sum_gradients(parameters: list[torch.nn.Parameter], dist_info: DistInfo) -> None:
    """All-reduce (sum) the gradients: the outer loss is a sum over the global batch.

    A rank whose slice of the batch is empty (or that left a parameter unused)
    contributes zeros, so every rank joins the same all-reduces and none waits forever.
    """
    if dist_info.world_size <= 1:
        return
    import torch
    import torch.distributed as dist

    for param in parameters:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)


def broadcast_weights(model, dist_info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers to every rank, so all start from identical weights."""
    if dist_info.world_size <= 1:
        return
    import torch.distributed as dist

    for tensor in model.state_dict().values():
        dist.broadcast(tensor, src=0)


def global_sum(loss, dist_info: DistInfo, device) -> float:
    import torch

    value = torch.tensor(
        float(loss.detach()) if loss is not None else 0.0, dtype=torch.float64, device=device
    )
    if dist_info.world_size > 1:
        import torch.distributed as dist

        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return float(value)


def broadcast_buffers(model, dist_info: DistInfo) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank, as DDP does before
    each forward: each rank's statistics follow its own slice of the batch otherwise."""
    if dist_info.world_size <= 1:
        return
    import torch.distributed as dist

    for tensor in model.buffers():
        dist.broadcast(tensor, src=0)
