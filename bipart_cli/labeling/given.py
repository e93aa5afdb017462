"""The ``given`` labeler: an asset's own part labels as pseudo labels (labeled support shapes)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..io.asset import PointSample
from .pseudo_labels import PseudoLabels


class GivenLabeler:
    """One box per labeled part: the mask of all that part's points, score 1.

    ``dense.labels`` (n,) int64 must index ``part_names`` (-1 unassigned); parts
    without points get no box.
    """

    name = "given"

    def __init__(self, **options: Any) -> None:
        if options:
            raise TypeError(f"the given labeler takes no options, got {sorted(options)}")

    @property
    def config(self) -> dict[str, Any]:
        return {"labeler": self.name}

    def run(self, dense: PointSample, part_names: list[str], *, device: str = "cpu", seed: int = 0):
        """(PseudoLabels over the dense points, None): no rendering is made."""
        if dense.labels is None:
            raise InvalidInputError("the asset has no part labels, which --labeler given needs")
        labels = np.asarray(dense.labels, dtype=np.int64)
        present = [part for part in range(len(part_names)) if (labels == part).any()]
        if not present:  # a "labeled" shape with no labeled point would index as 0 boxes
            raise InvalidInputError(
                "no point carries any of the parts "
                f"{', '.join(part_names) or '(none)'}: every face is unassigned"
            )
        masks = (
            np.stack([labels == part for part in present])
            if present
            else np.zeros((0, len(labels)), bool)
        )
        pseudo = PseudoLabels(
            masks=masks,
            part_index=np.array(present, dtype=np.int64),
            scores=np.ones(len(present), dtype=np.float32),
            part_names=list(part_names),
            provenance={**self.config, "simulated": False},
        )
        return pseudo, None

    def label(
        self, dense: PointSample, part_names: list[str], *, device: str = "cpu", seed: int = 0
    ) -> PseudoLabels:
        return self.run(dense, part_names, device=device, seed=seed)[0]
