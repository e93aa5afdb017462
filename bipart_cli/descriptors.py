"""Per-point geometric descriptors: what a point's neighbourhood and place on the shape look like.

The features the head reads come from a frozen encoder that, without the official
Point-M2AE weights, is random. These descriptors are classic, training-free and
transfer from one shape to another: they are invariant to rotation, translation
and scale, and the intrinsic families (geodesic, heat and wave kernels) also to
articulated pose. Families, in column order (:data:`DESCRIPTOR_NAMES`):

- ``local``: eigenvalue ratios of the neighbourhood covariance (linearity,
  planarity, scattering, surface variation), the normal against the radial
  direction and the neighbourhood size, at several kNN scales;
- ``global``: distance to the centroid and quantiles of the distances to all
  points (how central or extremal a point is);
- ``geodesic``: a geodesic proxy, shortest paths on the kNN graph: the mean
  geodesic distance to the shape (its eccentricity) and its quantiles;
- ``hks`` / ``wks``: heat and wave kernel signatures of the point-cloud
  Laplacian (``robust_laplacian``), scale-normalised.

Everything is numpy/scipy, vectorised and deterministic: the same points give
the same descriptors, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import kdtree

DESCRIPTOR_SET = "geo-v1"


@dataclass(frozen=True)
class DescriptorSettings:
    """Sizes of each family; the defaults are the ``geo-v1`` set."""

    scales: tuple[int, ...] = (8, 16, 32, 64)
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    graph_k: int = 10
    geodesic_sources: int = 64
    eigenpairs: int = 32
    hks_times: int = 12
    wks_energies: int = 12
    laplacian_k: int = 30
    name: str = field(default=DESCRIPTOR_SET)

    @property
    def dim(self) -> int:
        return len(descriptor_names(self))


def descriptor_names(settings: DescriptorSettings | None = None) -> list[str]:
    """Column names of :func:`point_descriptors`, in order."""
    s = settings or DescriptorSettings()
    names = []
    for k in s.scales:
        names += [
            f"local{k}.{n}"
            for n in ("linearity", "planarity", "scattering", "variation", "normal_radial", "size")
        ]
    names += ["global.centroid"] + [f"global.q{int(100 * q)}" for q in s.quantiles]
    names += ["geodesic.mean"] + [f"geodesic.q{int(100 * q)}" for q in s.quantiles]
    names += [f"hks.{i}" for i in range(s.hks_times)]
    names += [f"wks.{i}" for i in range(s.wks_energies)]
    return names


DESCRIPTOR_NAMES = descriptor_names()


def point_descriptors(points: np.ndarray, settings: DescriptorSettings | None = None) -> np.ndarray:
    """Descriptors of every point of one shape.

    points : (N, 3) float, N >= 16  ->  (N, D) float32, D = ``len(descriptor_names())``
    (56 for ``geo-v1``). Columns are roughly unit-scale; callers standardise them
    over the support set before learning on them.
    """
    from scipy.spatial import KDTree

    s = settings or DescriptorSettings()
    xyz = np.asarray(points, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or len(xyz) < 16:
        raise ValueError(f"points must be (N >= 16, 3), got {xyz.shape}")
    if not np.isfinite(xyz).all():
        raise ValueError("points contain NaN or infinite values")
    xyz = xyz - xyz.mean(0)
    radius = np.sqrt((xyz**2).sum(1).mean())  # RMS radius: the scale every length is divided by
    xyz = xyz / max(radius, 1e-12)
    k_max = min(max(s.scales), len(xyz) - 1)
    tree = KDTree(xyz)
    # (N, k+1), the point itself first
    distances, neighbours = kdtree.query(tree, xyz, k=k_max + 1)
    blocks = [
        local_covariance_features(
            xyz, neighbours[:, : min(k, k_max) + 1], distances[:, min(k, k_max)]
        )
        for k in s.scales
    ]
    blocks.append(global_distance_features(xyz, s.quantiles))
    graph = knn_graph(distances[:, : s.graph_k + 1], neighbours[:, : s.graph_k + 1])
    blocks.append(geodesic_features(xyz, graph, s.geodesic_sources, s.quantiles))
    evals, evecs = laplacian_eigenpairs(xyz, s.eigenpairs, s.laplacian_k)
    blocks.append(heat_kernel_signature(evals, evecs, s.hks_times))
    blocks.append(wave_kernel_signature(evals, evecs, s.wks_energies))
    return np.concatenate(blocks, axis=1).astype(np.float32)


def local_covariance_features(
    xyz: np.ndarray, neighbours: np.ndarray, kth_distance: np.ndarray
) -> np.ndarray:
    """Shape of each point's neighbourhood at one scale.

    xyz : (N, 3) centred, RMS-scaled; neighbours : (N, k+1) indices (self first);
    kth_distance : (N,) distance to the k-th neighbour  ->  (N, 6): linearity,
    planarity, scattering, surface variation, |normal · radial| and log size.
    """
    patch = xyz[neighbours]  # (N, k+1, 3)
    centred = patch - patch.mean(1, keepdims=True)
    cov = np.einsum("nki,nkj->nij", centred, centred) / patch.shape[1]  # (N, 3, 3)
    evals, evecs = np.linalg.eigh(cov)  # ascending
    evals = np.clip(evals, 0.0, None)
    l3, l2, l1 = evals[:, 0], evals[:, 1], evals[:, 2]
    top = np.maximum(l1, 1e-12)
    normal = evecs[:, :, 0]  # (N, 3) smallest-variance direction
    radial = xyz / np.maximum(np.linalg.norm(xyz, axis=1, keepdims=True), 1e-12)
    return np.stack(
        [
            (l1 - l2) / top,
            (l2 - l3) / top,
            l3 / top,
            l3 / np.maximum(l1 + l2 + l3, 1e-12),
            np.abs((normal * radial).sum(1)),
            np.log(np.maximum(kth_distance, 1e-6)),
        ],
        axis=1,
    )


def global_distance_features(xyz: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """Distance to the centroid and quantiles of the distances to (up to 512) spread points.

    xyz : (N, 3) centred, RMS-scaled  ->  (N, 1 + len(quantiles)).
    """
    from scipy.spatial.distance import cdist

    anchors = xyz[_spread_indices(len(xyz), 512)]
    distances = cdist(xyz, anchors)  # (N, A), no (N, A, 3) temporary
    centroid = np.linalg.norm(xyz, axis=1, keepdims=True)
    return np.concatenate([centroid, np.quantile(distances, quantiles, axis=1).T], axis=1)


def knn_graph(distances: np.ndarray, neighbours: np.ndarray):
    """Symmetric sparse kNN graph with Euclidean edge lengths, (N, N) csr_matrix.

    distances, neighbours : (N, k+1) from a KDTree query (the point itself first).
    """
    from scipy.sparse import coo_matrix

    n, width = neighbours.shape
    rows = np.repeat(np.arange(n), width - 1)
    cols = neighbours[:, 1:].reshape(-1)
    lengths = np.maximum(distances[:, 1:].reshape(-1), 1e-9)  # 0 would mean "no edge"
    graph = coo_matrix((lengths, (rows, cols)), shape=(n, n)).tocsr()
    return graph.maximum(graph.T)


def geodesic_features(
    xyz: np.ndarray, graph, num_sources: int, quantiles: tuple[float, ...]
) -> np.ndarray:
    """Mean geodesic distance (eccentricity) to spread sources, and its quantiles.

    Shortest paths on the kNN graph approximate geodesics; pieces the graph does
    not connect (a chair's separate legs) are joined by their Euclidean distance,
    so every distance is finite. Normalised by the shape's mean eccentricity, so
    the values do not depend on scale. xyz : (N, 3)  ->  (N, 1 + len(quantiles)).
    """
    from scipy.sparse.csgraph import dijkstra

    graph = _connect_components(xyz, graph)
    sources = _spread_indices(len(xyz), num_sources)
    geodesic = dijkstra(graph, directed=False, indices=sources)  # (S, N)
    eccentricity = geodesic.mean(0)
    scale = max(eccentricity.mean(), 1e-12)
    stats = np.quantile(geodesic, quantiles, axis=0).T  # (N, Q)
    return np.concatenate([eccentricity[:, None], stats], axis=1) / scale


def _connect_components(xyz: np.ndarray, graph):
    """``graph`` plus, for each component beyond the largest, its shortest Euclidean link to the largest."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import KDTree

    count, component = connected_components(graph, directed=False)
    if count == 1:
        return graph
    rows, cols, lengths = [], [], []
    largest = np.bincount(component).argmax()
    # every piece links to the largest one, so the result is connected (linking each to its
    # nearest other piece can pair two small pieces off with each other)
    outside = np.flatnonzero(component == largest)
    for c in range(count):
        if c == largest:
            continue
        inside = np.flatnonzero(component == c)
        distance, nearest = KDTree(xyz[outside]).query(xyz[inside])
        best = int(np.argmin(distance))
        rows.append(inside[best])
        cols.append(outside[nearest[best]])
        lengths.append(max(float(distance[best]), 1e-9))
    links = coo_matrix((lengths, (rows, cols)), shape=graph.shape).tocsr()
    return graph.maximum(links).maximum(links.T)


def laplacian_eigenpairs(
    xyz: np.ndarray, count: int, n_neighbors: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` smallest eigenpairs of the point-cloud Laplacian, ``L φ = λ M φ``.

    Uses ``robust_laplacian`` (Sharp & Crane 2020, tufted intrinsic Delaunay cover).
    xyz : (N, 3)  ->  eigenvalues (E,) ascending, eigenvectors (N, E), M-orthonormal.
    """
    import robust_laplacian
    from scipy.sparse.linalg import eigsh

    count = min(count, len(xyz) - 2)
    try:
        laplacian, mass = robust_laplacian.point_cloud_laplacian(
            np.ascontiguousarray(xyz),
            mollify_factor=1e-5,
            n_neighbors=min(n_neighbors, len(xyz) - 1),
        )
        start = np.ones(len(xyz))  # a fixed start vector: ARPACK's default is random
        evals, evecs = eigsh(laplacian, k=count, M=mass, sigma=-1e-6, which="LM", v0=start)
    except (RuntimeError, ValueError, ArithmeticError):
        # degenerate clouds (collinear, duplicated points) have no usable Laplacian:
        # the spectral columns are then constant, the other families still describe the shape
        return np.zeros(1), np.ones((len(xyz), 1))
    order = np.argsort(evals)
    return np.clip(evals[order], 0.0, None), evecs[:, order]


def heat_kernel_signature(evals: np.ndarray, evecs: np.ndarray, num_times: int) -> np.ndarray:
    """Scale-normalised HKS (Sun et al. 2009) at log-spaced times.

    ``h(x, t) = Σ_i e^{-λ_i t} φ_i(x)^2 / Σ_i e^{-λ_i t}``, t from ``4 ln 10 / λ_max``
    to ``4 ln 10 / λ_1``, the range the eigenpairs resolve. Returns (N, T), log-scaled.
    """
    positive = evals[_nonzero(evals)]
    lo, hi = (positive[0], positive[-1]) if len(positive) else (1.0, 1.0)
    times = np.geomspace(4 * np.log(10) / hi, 4 * np.log(10) / lo, num_times)
    weights = np.exp(-np.outer(evals, times))  # (E, T)
    hks = (evecs**2) @ weights / weights.sum(0, keepdims=True)  # (N, T)
    return np.log(np.maximum(hks * len(evecs), 1e-12))


def wave_kernel_signature(evals: np.ndarray, evecs: np.ndarray, num_energies: int) -> np.ndarray:
    """WKS (Aubry et al. 2011): band-pass filters over log eigenvalues, normalised per energy.

    evals (E,), evecs (N, E)  ->  (N, num_energies), log-scaled.
    """
    positive = _nonzero(evals)
    log_evals = np.log(evals[positive])
    phi2 = evecs[:, positive] ** 2
    if len(log_evals) < 2:
        return np.zeros((len(evecs), num_energies))
    energies = np.linspace(log_evals[0], log_evals[-1], num_energies + 2)[1:-1]
    sigma = 7.0 * (energies[1] - energies[0]) if num_energies > 1 else 1.0
    weights = np.exp(-((energies[None, :] - log_evals[:, None]) ** 2) / (2 * sigma**2))  # (E, K)
    wks = phi2 @ weights / np.maximum(weights.sum(0, keepdims=True), 1e-12)
    return np.log(np.maximum(wks * len(evecs), 1e-12))


def _nonzero(evals: np.ndarray) -> np.ndarray:
    """Mask of the eigenvalues that are not a connected piece's 0 (up to solver noise)."""
    return evals > 1e-6 * max(float(evals.max()), 1e-12)


def _spread_indices(n: int, count: int) -> np.ndarray:
    """``count`` evenly strided indices of ``n`` (deterministic, no RNG)."""
    count = min(count, n)
    return np.linspace(0, n - 1, count).round().astype(np.int64)
