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


def test_the_command_line_does_not_load_the_training_loops():
    """Issue 33: every start (``--help``, a ``segment``) read ``pretrain``'s rotation choices
    through the package, which loaded the pre-training and training loops with them."""
    code = (
        "import sys\n"
        "import bipart_cli.cli\n"
        "print(sorted(m for m in sys.modules if m.startswith(('bipart_cli.train', "
        "'bipart_cli.pretrain.loop', 'bipart_cli.pretrain.settings'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


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


# an exit hook registered before bipart's, so it runs after the CLI's gc.freeze, leaves a
# reference cycle whose finalizer speaks: only the interpreter's teardown collects it
_EXECUTABLE = """
import atexit, os, sys, threading, time
class Teardown:
    def __del__(self, write=os.write):  # sys.stderr may be gone by then
        write(2, b"TEARDOWN\\n")
def garbage_for_the_teardown():
    cycle = Teardown()
    cycle.self = cycle
marker, thread = sys.argv.pop(), sys.argv.pop()
atexit.register(lambda: open(marker, "w").write("hooks ran"))
atexit.register(garbage_for_the_teardown)
if thread == "thread":
    threading.Thread(target=time.sleep, args=(2.0,)).start()  # alive at exit
sys.argv = ["bipart", *sys.argv[1:]]
from bipart_cli.cli import console_script
console_script()
"""


@pytest.mark.slow
@pytest.mark.parametrize("thread", ["none", "thread"])
def test_the_executable_skips_the_teardown_but_not_its_code_output_or_exit_hooks(tmp_path, thread):
    """The console script ends without the interpreter's teardown (~0.2 s), after running
    the atexit hooks and flushing its output, with main's exit code; another thread still
    running gets the normal exit."""
    for args, code in ((["--version"], 0), (["segment", "missing.glb", "--parts", "a"], 1)):
        marker = tmp_path / f"hooks-{code}"
        out = subprocess.run(
            [sys.executable, "-c", _EXECUTABLE, *args, thread, str(marker)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert out.returncode == code, out.stderr
        assert marker.read_text() == "hooks ran"
        assert ("TEARDOWN" in out.stderr) == (thread == "thread")
        if code == 0:
            assert out.stdout.startswith("bipart ")
        else:
            assert out.stderr.startswith("error: missing.glb")


def test_python_m_and_the_installed_script_are_the_console_script():
    from pathlib import Path

    import tomllib

    root = Path(__file__).resolve().parents[2]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"bipart": "bipart_cli.cli:console_script"}
    assert "console_script()" in (root / "bipart_cli" / "__main__.py").read_text()


def test_a_command_process_imports_the_pipeline_libraries_with_the_collector_paused():
    """In a CLI process torch, trimesh and scipy.spatial are imported without the cyclic
    collector and then frozen; a library user's process just imports them."""
    code = (
        "import gc, sys\n"
        "from bipart_cli import runtime\n"
        "if sys.argv[1] == 'cli':\n    runtime.tune_collector_for_a_command()\n"
        "collections = []\n"
        "gc.callbacks.append(lambda phase, info: collections.append(phase))\n"
        "runtime.import_pipeline_libraries()\n"
        "print(len(collections), gc.get_freeze_count() > 0, gc.isenabled(), 'torch' in sys.modules)\n"
    )

    def run(kind: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", code, kind], capture_output=True, text=True, check=True
        )
        return out.stdout.split()  # collections, frozen, collector on, torch imported

    assert run("cli") == ["0", "True", "True", "True"]
    collections, *rest = run("library")
    assert int(collections) > 0 and rest == ["False", "True", "True"]
