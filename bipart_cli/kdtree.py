"""How many threads should a KD-tree query use?

scipy's ``query(workers=-1)`` starts a Python thread per core on every call. For the
queries a new asset makes by the dozen (pose matching's Chamfer costs: a few thousand
points against 512; a network cloud's neighbours) starting them costs more than they
save, the more so while torch's threads hold the cores: on 2 cores pose matching took
100-120 ms a chair threaded and 69-78 ms on one thread (``benchmarks/speed/new_assets.py``,
RESULTS "New assets"). Large queries (the dense cloud's 100,000 points) still use every
core. The answers do not depend on the threads.
"""

from __future__ import annotations

import numpy as np

# queries times neighbours from which every core is used; below it, one thread
THREADED_QUERIES = 16_384


def query(tree, queries: np.ndarray, k: int = 1, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """``tree.query(queries, k, **kwargs)`` (a scipy ``KDTree`` or ``cKDTree``), threaded only
    when ``len(queries) * k`` reaches :data:`THREADED_QUERIES`.

    queries : (q, 3) float  ->  distances and indices as scipy gives them ((q,) for k=1,
    else (q, k)): the same arrays whichever the threads.
    """
    workers = -1 if len(queries) * k >= THREADED_QUERIES else 1
    return tree.query(queries, k=k, workers=workers, **kwargs)
