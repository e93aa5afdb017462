"""The CLI shell: subcommands, exit codes, and light imports for --help."""

from __future__ import annotations

import subprocess
import sys

import pytest

SUBCOMMANDS = ["segment", "label", "index", "train", "eval", "info", "examples"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bipart_cli", *args], capture_output=True, text=True
    )


def _modules_after(argv: list[str]) -> set[str]:
    code = (
        "import sys\n"
        f"sys.argv = {['bipart', *argv]!r}\n"
        "from bipart_cli.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    marker = [line for line in out.stdout.splitlines() if line.startswith("HEAVY=")][-1]
    return {m for m in marker.removeprefix("HEAVY=").split(",") if m}


def test_help_lists_every_subcommand():
    result = _run("--help")
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("argv", [["--help"], *[[cmd, "--help"] for cmd in SUBCOMMANDS]])
def test_help_does_not_import_torch_or_transformers(argv):
    assert _modules_after(argv) == set()


def test_unknown_option_is_usage_error():
    assert _run("info", "--no-such-option").returncode == 2


def test_bad_device_is_usage_error():
    result = _run("info", "--device", "tpu")
    assert result.returncode == 2
    assert "invalid --device" in result.stderr
    assert "Traceback" not in result.stderr


def test_info_json_reports_cpu_device():
    import json

    result = _run("info", "--device", "cpu", "--json")
    assert result.returncode == 0
    facts = json.loads(result.stdout)
    assert facts["device"] == "cpu"
    assert facts["bipart"]


def test_a_command_process_collects_fully_less_often_and_freezes_at_exit():
    # an exit handler registered first runs last: after main()'s gc.freeze
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('FROZEN', gc.get_freeze_count() > 0))\n"
        "from bipart_cli.cli import main\n"
        "for _ in range(2):\n"
        "    try:\n        main(['--version'])\n    except SystemExit:\n        pass\n"
        "print('FULL', gc.get_threshold()[2])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    from bipart_cli.runtime import FULL_COLLECTION_EVERY

    lines = out.stdout.splitlines()
    assert f"FULL {FULL_COLLECTION_EVERY}" in lines
    assert lines[-1] == "FROZEN True"
