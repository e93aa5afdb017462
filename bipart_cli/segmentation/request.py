"""What one ``segment`` run is given (:class:`SegmentOptions`) and what it returns per input
(:class:`SegmentResult`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..adapt import AdaptSettings

if TYPE_CHECKING:
    pass


@dataclass
class SegmentOptions:
    """Everything ``bipart segment`` can be told; the Python API takes the same.

    ``n_dense`` is the CLI's ``--points`` (dense points sampled and labeled per asset);
    ``n_points`` is the network's point count (2048 by the paper), not a CLI option.
    """

    index: str | None = None
    support_dir: Path | None = None
    category: str | None = None
    weights: str | None = None
    weights_revision: str | None = None
    labeler: str = "auto"
    labeler_options: dict[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None
    preview: bool = False
    colorize: bool = False
    n_dense: int = 100_000
    n_points: int = 2048
    adapt: AdaptSettings = field(default_factory=AdaptSettings)
    up: str = "auto"
    device: str = "auto"
    seed: int = 0
    write: bool = True
    # no support source even if ``index`` is set: the target's labels repeated (Sec. 5.1);
    # eval uses it with the index's pseudo labels as the target's
    zero_shot: bool = False
    # read back a stored few-shot run of the same file and settings (:mod:`.reuse`); False
    # computes every input (the cache's features, poses and labels per target still serve)
    reuse: bool = True
    # a mesh's pieces named for a requested part take it (:mod:`bipart_cli.io.piece_names`)
    names: bool = True

    def __post_init__(self) -> None:
        """The same checks as the CLI's, for the Python API (a :class:`UsageError` each)."""
        from ..errors import UsageError
        from ..labeling.api import SEGMENT_LABELERS
        from ..orientation import UP_CHOICES
        from ..runtime import (
            MAX_DENSE_POINTS,
            MAX_SEED,
            check_choice,
            check_count,
            check_index_spec,
            check_out_dir,
            check_rate,
        )
        from ..support import STRATEGIES

        check_choice("--up", self.up, UP_CHOICES)
        check_choice("--labeler", self.labeler, SEGMENT_LABELERS)
        if self.index is not None and self.support_dir is not None:
            # one support source: the other one was silently ignored
            raise UsageError("give --index or --support, not both: each names the support set")
        check_count("--points (n_dense)", self.n_dense, 1, MAX_DENSE_POINTS)
        check_count("--seed", self.seed, 0, MAX_SEED)
        check_index_spec("--index", self.index)
        check_count("n_points", self.n_points, 1, 1_000_000)
        check_count("--steps", self.adapt.steps, 1, 10_000)
        check_rate("--lr", self.adapt.lr, 100.0)
        check_count("--support-size", self.adapt.support_size, 1, 1_000)
        check_count("--batch-points", self.adapt.batch_points, 0, 50_000_000)
        check_count("--smooth", self.adapt.smooth, 0, 1_000)
        check_choice("--strategy", self.adapt.strategy, STRATEGIES)
        check_out_dir("--out-dir", self.out_dir)


@dataclass
class SegmentResult:
    """What happened to one input. ``dense_labels`` is (n,) int64, -1 unassigned."""

    input: str
    ok: bool
    part_names: list[str] = field(default_factory=list)
    mode: str = ""
    support: list[str] = field(default_factory=list)
    parts: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    weights: dict[str, Any] = field(default_factory=dict)
    labeler: str = ""
    # the up axis the network read the input with: --up, with auto settled to y or z
    up_axis: str = ""
    warnings: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # the labels of an earlier run of the same file and settings, read from bipart's cache
    reused: bool = False
    # how well the support fits the input (bipart_cli.fit.SupportFit.to_json); None without one
    support_fit: dict[str, Any] | None = None
    # the pieces whose own names gave their part: {"name", "part", "pieces", "faces"} per name
    # and part (bipart_cli.io.piece_names.named_pieces_json)
    named_pieces: list[dict[str, Any]] = field(default_factory=list)
    dense_labels: np.ndarray | None = None
    dense_scores: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        skip = {"dense_labels", "dense_scores"}
        return {k: v for k, v in self.__dict__.items() if k not in skip}
