"""Point-cloud geometry kernels in pure PyTorch: FPS, kNN and 3-NN interpolation.

All functions accept batched tensors ``(B, N, 3)`` and run on CPU or CUDA.
kNN is computed in chunks so memory stays O(chunk * M), never O(N * M) at once
for large clouds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from . import kdtree


@contextlib.contextmanager
def one_thread_on_cpu(device: torch.device | str) -> Iterator[None]:
    """Run the block's CPU kernels on one thread (CUDA is left as it is).

    For many small kernels in sequence (FPS's steps, the head's Adam steps, kNN blends of
    a few thousand points) starting a parallel region costs more than the work: on 2
    cores a step of the head took 0.7 ms on one thread and 0.3-68 ms on two, the slow
    end whenever another process holds a core (each region waits for a descheduled
    thread). Large kernels (the encoder) keep every thread.
    """
    if torch.device(device).type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def farthest_point_sample(
    points: torch.Tensor, n_samples: int, start: torch.Tensor | None = None
) -> torch.Tensor:
    """Farthest point sampling.

    Parameters
    ----------
    points : (B, N, 3) float
    n_samples : int, number of points to pick (``<= N``)
    start : (B,) long or None, index of the first pick (default 0, deterministic)

    Returns
    -------
    indices : (B, n_samples) long
    """
    if n_samples > points.shape[1]:
        raise ValueError(f"cannot pick {n_samples} of {points.shape[1]} points")
    if points.device.type == "cpu" and points.dtype == torch.float32:
        return _farthest_point_sample_numpy(points, n_samples, start)
    with one_thread_on_cpu(points.device):  # 2048 tiny sequential steps
        return _farthest_point_sample(points, n_samples, start)


def _farthest_point_sample_numpy(
    points: torch.Tensor, n_samples: int, start: torch.Tensor | None
) -> torch.Tensor:
    """The same picks by :func:`bipart_cli.fps.farthest_point_indices`, shape by shape."""
    from .fps import farthest_point_indices

    clouds = points.detach().numpy()
    starts = [0] * len(clouds) if start is None else start.tolist()
    picks = [
        farthest_point_indices(cloud, n_samples, int(s))
        for cloud, s in zip(clouds, starts, strict=True)
    ]
    return torch.from_numpy(np.stack(picks))  # (B, n_samples)


def _farthest_point_sample(
    points: torch.Tensor, n_samples: int, start: torch.Tensor | None
) -> torch.Tensor:
    batch, num_points, _ = points.shape
    device = points.device
    indices = torch.zeros(batch, n_samples, dtype=torch.long, device=device)
    min_dist = torch.full((batch, num_points), float("inf"), device=device, dtype=points.dtype)
    current = (
        torch.zeros(batch, dtype=torch.long, device=device) if start is None else start.to(device)
    )
    rows = torch.arange(batch, device=device)
    for i in range(n_samples):
        indices[:, i] = current
        centre = points[rows, current].unsqueeze(1)  # (B, 1, 3)
        dist = ((points - centre) ** 2).sum(-1)  # (B, N)
        min_dist = torch.minimum(min_dist, dist)
        current = min_dist.argmax(-1)
    return indices


def knn(
    query: torch.Tensor, reference: torch.Tensor, k: int, chunk: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """k nearest neighbours of each query point among the reference points.

    Parameters
    ----------
    query : (B, Q, 3) float
    reference : (B, M, 3) float
    k : int, ``<= M``

    Returns
    -------
    distances : (B, Q, k) float, squared Euclidean, ascending
    indices : (B, Q, k) long, into ``reference``
    """
    k = min(k, reference.shape[1])
    if (
        query.device.type == "cpu"
        and not (query.requires_grad or reference.requires_grad)
        and bool(query.isfinite().all() and reference.isfinite().all())  # NaNs must propagate
    ):
        return _knn_kdtree(query, reference, k)
    return _knn_dense(query, reference, k, chunk)


def _knn_dense(
    query: torch.Tensor, reference: torch.Tensor, k: int, chunk: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`knn` from blocks of the Q×M distance matrix (GPU, or when gradients are needed)."""
    dists, idxs = [], []
    for start in range(0, query.shape[1], chunk):
        block = query[:, start : start + chunk]  # (B, q, 3)
        d2 = exact_cdist(block, reference).pow(2)  # (B, q, M)
        d, i = d2.topk(k, dim=-1, largest=False)
        dists.append(d)
        idxs.append(i)
    return torch.cat(dists, 1), torch.cat(idxs, 1)


def exact_cdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``torch.cdist`` from coordinate differences: (B, P, 3), (B, R, 3) -> (B, P, R).

    Its default for clouds over 25 points, |a|^2 + |b|^2 - 2ab, loses small distances
    to cancellation: on CUDA that flipped enough neighbours to move training gradients
    by up to 7% (tests/test_cuda.py, tests/model/test_extractor.py).
    """
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _knn_kdtree(
    query: torch.Tensor, reference: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`knn` on CPU with scipy's KDTree, O(Q log M) instead of a Q×M distance matrix."""
    from scipy.spatial import KDTree

    dists, idxs = [], []
    for query_cloud, reference_cloud in zip(query.double(), reference.double(), strict=True):
        distance, index = kdtree.query(KDTree(reference_cloud.numpy()), query_cloud.numpy(), k=k)
        dists.append(torch.from_numpy(distance.reshape(len(query_cloud), k)))
        idxs.append(torch.from_numpy(index.reshape(len(query_cloud), k)))
    d2 = torch.stack(dists).pow(2).to(query.dtype)  # (B, Q, k)
    return d2, torch.stack(idxs).long()


def gather(values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Batched gather of rows.

    values : (B, M, C); indices : (B, ...) long  ->  (B, ..., C)
    """
    batch, rows, channels = values.shape
    offsets = torch.arange(batch, device=indices.device) * rows  # (B,) row offset of each shape
    flat = (indices.reshape(batch, -1) + offsets[:, None]).reshape(-1)  # (B*Q*k,)
    # index_select on the flattened rows is ~9x faster than torch.gather on CPU
    out = values.reshape(batch * rows, channels).index_select(0, flat)
    return out.reshape(*indices.shape, channels)


def three_nn_interpolate(
    query: torch.Tensor, reference: torch.Tensor, features: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """Inverse-distance weighted interpolation from the 3 nearest reference points.

    query : (B, Q, 3); reference : (B, M, 3); features : (B, M, C)  ->  (B, Q, C)
    """
    d2, idx = knn(query, reference, 3)
    weights = 1.0 / (d2.clamp_min(0).sqrt() + eps)  # (B, Q, 3)
    weights = weights / weights.sum(-1, keepdim=True)
    neighbours = gather(features, idx)  # (B, Q, 3, C)
    return (neighbours * weights.unsqueeze(-1)).sum(2)
