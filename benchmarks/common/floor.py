"""The nearest-neighbour floor: label transfer with no learning, shared by the quality scripts.

``quality/nn_transfer.py`` transfers from every train shape of a category,
``quality/few_shot.py``, ``quality/adapt_options.py`` and ``quality/mesh_few_shot.py``
from the very support shapes each target got, so the floor sees the labeled shapes the
method sees.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import KDTree

from bipart_cli.orientation import apply_rotation, pca_rotation


def transfer(train_points: np.ndarray, train_labels: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Labels (q,) for query (q, 3) from the nearest of train_points (S, N, 3)."""
    tree = KDTree(train_points.reshape(-1, 3))
    _, nearest = tree.query(query)
    return train_labels.reshape(-1)[nearest]


def aligned(points: np.ndarray) -> np.ndarray:
    """Each shape of points (S, N, 3) turned onto its principal axes (PCA)."""
    return np.stack([apply_rotation(p, pca_rotation(p)) for p in points])
