"""How long do the geometric descriptors take per shape, and which family costs most?

Time of the geometric descriptors per shape, in total and per family (issue: <= 0.5 s at 2048 points).

Shapes: the first ``--shapes`` of PSB's categories in ``../shared/data`` (2048 points
each), one after the other in this process, single-process as ``segment`` runs them.

    python benchmarks/speed/descriptor_speed.py [--shapes 2] [--repeats 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse
import time

import numpy as np
from scipy.spatial import KDTree

from benchmarks.common.paper_runs import bench_run, print_table
from benchmarks.common.shared_data import load_categories
from bipart_cli import descriptors as d


def families(xyz: np.ndarray, s: d.DescriptorSettings) -> dict[str, float]:
    """Seconds of each family for one centred, RMS-scaled cloud."""
    times = {}
    clock = time.perf_counter()
    distances, neighbours = KDTree(xyz).query(xyz, k=max(s.scales) + 1)
    for k in s.scales:
        d.local_covariance_features(xyz, neighbours[:, : k + 1], distances[:, k])
    times["kNN + local covariance"] = time.perf_counter() - clock
    clock = time.perf_counter()
    d.global_distance_features(xyz, s.quantiles)
    times["global distances"] = time.perf_counter() - clock
    clock = time.perf_counter()
    graph = d.knn_graph(distances[:, : s.graph_k + 1], neighbours[:, : s.graph_k + 1])
    d.geodesic_features(xyz, graph, s.geodesic_sources, s.quantiles)
    times["geodesic"] = time.perf_counter() - clock
    clock = time.perf_counter()
    evals, evecs = d.laplacian_eigenpairs(xyz, s.eigenpairs, s.laplacian_k)
    times["Laplacian + eigsh"] = time.perf_counter() - clock
    clock = time.perf_counter()
    d.heat_kernel_signature(evals, evecs, s.hks_times)
    d.wave_kernel_signature(evals, evecs, s.wks_energies)
    times["HKS + WKS"] = time.perf_counter() - clock
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", type=int, default=2, help="shapes per PSB category")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    settings = d.DescriptorSettings()
    clouds = [c.points[i] for c in load_categories()[:14] for i in range(args.shapes)]
    with bench_run():
        totals, parts = [], {}
        for cloud in clouds:
            xyz = cloud.astype(np.float64)
            best = min(_timed(d.point_descriptors, xyz) for _ in range(args.repeats))
            totals.append(best)
            centred = xyz - xyz.mean(0)
            centred /= np.sqrt((centred**2).sum(1).mean())
            for name, seconds in families(centred, settings).items():
                parts.setdefault(name, []).append(seconds)
        rows = [[name, f"{np.median(v):.3f}", f"{np.max(v):.3f}"] for name, v in parts.items()]
        rows.append(
            ["total (point_descriptors)", f"{np.median(totals):.3f}", f"{np.max(totals):.3f}"]
        )
        print_table(
            [
                f"Descriptor time per shape ({settings.name}, D={settings.dim}), 2048 points, "
                f"{len(clouds)} PSB shapes, best of {args.repeats} per shape"
            ],
            ["family", "p50 s", "max s"],
            rows,
        )


def _timed(fn, *a) -> float:
    clock = time.perf_counter()
    fn(*a)
    return time.perf_counter() - clock


if __name__ == "__main__":
    main()
