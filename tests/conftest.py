"""Shared fixtures: generated shapes with ground-truth parts (bipart_cli.procedural)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bipart_cli.procedural import make_pieces, make_shape

ARMCHAIR_SEED = 2  # make_shape("chair", 2) stands on four legs and has both optional arms


@pytest.fixture(autouse=True, scope="session")
def _own_bipart_cache(tmp_path_factory):
    """Tests never read or fill the user's bipart cache (a test may still set its own)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("BIPART_CACHE", str(tmp_path_factory.mktemp("bipart-cache")))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def chair_pieces():
    """The part instances of the armchair (ground truth)."""
    return make_pieces("chair", ARMCHAIR_SEED)


@pytest.fixture(scope="session")
def chair_scene():
    """The armchair as a trimesh.Scene: nodes back, seat, leg.0..leg.3, arm.0, arm.1."""
    return make_shape("chair", ARMCHAIR_SEED)


@pytest.fixture(scope="session")
def chair_glb(tmp_path_factory, chair_scene) -> Path:
    """The armchair written as a GLB."""
    path = tmp_path_factory.mktemp("chair") / "chair.glb"
    path.write_bytes(chair_scene.export(file_type="glb"))
    return path


@pytest.fixture(scope="session")
def chair_asset(chair_glb):
    from bipart_cli.io import load_asset

    return load_asset(chair_glb)


@pytest.fixture
def run_bipart():
    """Run ``python -m bipart_cli ARGS`` in a subprocess; returns the CompletedProcess.

    Errors are printed soft-wrapped, so each stays one line on stderr.
    """

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "NO_COLOR": "1"}
        return subprocess.run(
            [sys.executable, "-m", "bipart_cli", *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
        )

    return run


def pytest_addoption(parser):
    parser.addoption(
        "--slow",
        action="store_true",
        help="also run the tests marked slow (CI runs them all: python -m pytest --slow)",
    )


def pytest_collection_modifyitems(config, items):
    """The default run leaves out the tests marked slow, so that it stays quick on a laptop;
    ``--slow`` (or ``-m slow``) runs them, as CI does."""
    if config.getoption("--slow") or config.getoption("-m"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
