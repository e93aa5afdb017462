"""benchmarks/speed/new_asset_stages.py times library functions by name: each must still exist
where the pipeline looks it up, or the breakdown would silently lose a row."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def test_every_timed_piece_is_a_function_where_the_pipeline_finds_it(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    sys.modules.pop("benchmarks.speed.new_asset_stages", None)
    from benchmarks.speed.new_asset_stages import PIECES, TOP_LEVEL_ADAPT

    labels = {label for _, label, _, _ in PIECES}
    assert labels >= TOP_LEVEL_ADAPT
    for _, label, module, attribute in PIECES:
        owner = importlib.import_module(module)
        for part in attribute.split("."):
            owner = getattr(owner, part)
        assert callable(owner), label
