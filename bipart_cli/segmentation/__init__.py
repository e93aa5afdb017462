"""The main job: segment assets into named parts (paper Sec. 3.3.2 and 3.4).

For each target: sample a dense cloud and its 2048 network points, label it
(detector, simulated or none), retrieve a support set (index, folder of labeled
assets, or the target repeated), adapt the head for K steps on the cached
support features, then predict every dense point by interpolating the
extractor features from the 2048 points. Outputs are written by
:func:`bipart_cli.io.write_outputs`.

- :mod:`.request`: options and results;
- :mod:`.inputs`: batch inputs and cache folders;
- :mod:`.reuse`: few-shot runs kept for a re-run of the same file and settings;
- :mod:`.segmenter`: the :class:`Segmenter`, one input at a time, its steps in
  :mod:`.loading` (weights, support, labeler), :mod:`.stored` (an input loaded, or its stored
  run read back), :mod:`.stages` (the stage sequence of a computed input) and :mod:`.outputs`
  (outputs written, settings, timings).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..adapt import AdaptSettings
from ..errors import UsageError
from ..runtime import check_folder
from ..support import unprovided_parts
from .inputs import cache_root, check_inputs, expand_inputs, support_cache_dir
from .request import SegmentOptions, SegmentResult
from .segmenter import Segmenter

__all__ = [
    "SegmentOptions",
    "SegmentResult",
    "Segmenter",
    "cache_root",
    "check_inputs",
    "expand_inputs",
    "segment",
    "support_cache_dir",
    "unprovided_parts",
]


def segment(inputs: str | list[str], parts: str | list[str], **options: Any) -> list[SegmentResult]:
    """Python API: ``segment("chair.glb", "back,seat,leg,arm", support_dir="chairs/")``.

    Options are the fields of :class:`SegmentOptions`; adaptation settings
    (``steps``, ``lr``, ``support_size``, ``strategy``) may be given flat. As on the CLI,
    ``points`` (``--points``) is ``n_dense``: the dense points sampled and labeled per
    asset; ``n_points`` is the network's point count (2048), not a CLI option.
    ``write=False`` writes nothing (results only); ``out_dir`` sets where outputs go
    (default: beside each input).
    """
    from ..parts import parse_part_names

    if "points" in options:
        if "n_dense" in options and options["n_dense"] != options["points"]:
            raise UsageError("give points (the CLI's --points) or n_dense, not both")
        options["n_dense"] = options.pop("points")

    adapt_keys = {f.name for f in dataclasses.fields(AdaptSettings)}
    adapt = AdaptSettings(**{k: options.pop(k) for k in list(options) if k in adapt_keys})
    if "support_dir" in options and options["support_dir"] is not None:
        options["support_dir"] = check_folder("--support (support_dir)", options["support_dir"])
    if "out_dir" in options and options["out_dir"] is not None:
        options["out_dir"] = Path(options["out_dir"])
    segment_options = SegmentOptions(adapt=adapt, **options)
    part_names = parse_part_names(parts if isinstance(parts, str) else ",".join(parts))
    paths = expand_inputs([inputs] if isinstance(inputs, str) else list(inputs))
    check_inputs(paths, segment_options.out_dir, collisions=segment_options.write, fail_fast=False)
    segmenter = Segmenter(part_names, segment_options)
    return [segmenter.run(path) for path in paths]
