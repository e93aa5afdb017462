"""Issue #32 item 7: ``examples --help`` showed ``{out}`` and ``--out`` had one generic help
for three commands; ``bipart info DIR`` on an index was an error, and ``bipart info`` did
not show bipart's own cache."""

from __future__ import annotations

import json

from _synthetic_index import synthetic_record, write_index
from typer.testing import CliRunner

from bipart_cli.cli import app


def _help(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_usage_lines_name_the_arguments_plainly():
    assert "Usage: bipart examples [OPTIONS] DIR " in _help("examples")
    assert "Usage: bipart info [OPTIONS] [ASSET | INDEX] " in _help("info")
    assert "Usage: bipart label [OPTIONS] ASSET " in _help("label")
    for command in ("examples", "label", "index", "info", "segment"):
        usage = _help(command).split("Usage:")[1].split("  ")[0]
        assert "{" not in usage, usage


def test_a_commands_help_flows_at_the_terminals_width():
    """Each paragraph of a command's help is one flowing text: no line breaks where the
    source was wrapped (typer keeps them after the first paragraph)."""
    from typer.main import get_command

    for name, command in get_command(app).commands.items():
        for paragraph in command.help.split("\n\n"):
            assert "\n" not in paragraph, (name, paragraph)


def test_out_says_what_each_command_writes():
    outs = {
        command: _help(command).split("--out DIR ")[1].split(" --")[0]
        for command in ("index", "train", "pretrain")
    }
    assert outs["index"].startswith("Folder to write: the index")
    assert "model/" in outs["train"] and "encoder/" not in outs["train"]
    assert "encoder/" in outs["pretrain"] and "model/" not in outs["pretrain"]


def test_info_describes_an_index(tmp_path):
    write_index(tmp_path / "index", [synthetic_record(i) for i in range(6)])
    result = CliRunner().invoke(app, ["info", str(tmp_path / "index")])
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert "shapes: 6 in 2 shards (0.3 MB)" in lines
    assert "labeler: synthetic" in lines and "points: 2048 network, seed 0" in lines
    assert "categories: 3" in lines
    assert "chair: 2 shapes; shapes naming each part: back 2, seat 2" in lines
    assert "lamp: 2 shapes, 0 with ground truth; shapes naming each part: back 2, seat 2, " in (
        " ".join(lines)
    )
    facts = json.loads(CliRunner().invoke(app, ["info", str(tmp_path / "index"), "--json"]).stdout)
    assert facts["kind"] == "index" and facts["shapes"] == 6 and facts["labeler"] == "synthetic"
    assert facts["categories"]["table"]["part_shapes"] == {"back": 2, "seat": 2, "leg": 2}
    folder = CliRunner().invoke(app, ["info", str(tmp_path)])
    assert folder.exit_code == 1 and "is a directory without a bipart index" in folder.stderr


def test_info_shows_bipart_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    (cache / "features" / "network").mkdir(parents=True)
    (cache / "features" / "network" / "a.safetensors").write_bytes(b"0" * 2**20)
    (cache / "support").mkdir()
    monkeypatch.setenv("BIPART_CACHE", str(cache))
    monkeypatch.setenv("BIPART_FEATURE_CACHE_MB", "512")
    result = CliRunner().invoke(app, ["info", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["bipart_cache"] == str(cache)
    assert facts["bipart_cache_mb"] == {"features": 1.0, "support": 0.0}
    assert facts["bipart_cache_limit_mb"] == 512
    text = CliRunner().invoke(app, ["info", "--device", "cpu"]).stdout
    assert f"bipart_cache: {cache}" in text
    assert "bipart_cache_mb: 1.0 MB (features 1 MB, support 0 MB)" in text
