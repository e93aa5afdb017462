"""Issue #14, defect 3 and 7: every option is checked at parse time (exit 2, one line).

A bad value must be reported before any work starts: the weights given here do not
exist, so a check that ran after loading them would report the weights instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bipart_cli.procedural import make_shape

MISSING_WEIGHTS = ["--weights", "/no/such/weights/folder"]


@pytest.fixture(scope="module")
def chair_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("options")
    (folder / "chair.glb").write_bytes(make_shape("chair", 1).export(file_type="glb"))
    (folder / "a_file").write_text("not a folder")
    return folder


def _assert_usage_error(result, *needles):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "option, value, needle",
    [
        ("--lr", "-1", "--lr"),
        ("--lr", "0", "--lr"),
        ("--lr", "nan", "--lr"),
        ("--lr", "inf", "--lr"),
        ("--lr", "1e30", "--lr"),
        ("--lr", "abc", "--lr"),
        ("--steps", "-1", "--steps"),
        ("--steps", "0", "--steps"),
        ("--points", "0", "--points"),
        ("--points", "-5", "--points"),
        ("--points", "999999999999", "--points"),
        ("--support-size", "0", "--support-size"),
        ("--strategy", "bogus", "--strategy"),
        ("--up", "x", "--up"),
        ("--labeler", "vlm", "--labeler"),
        ("--box-reduction", "max", "--box-reduction"),
        ("--threshold", "1.5", "--threshold"),
        ("--device", "tpu", "--device"),
        ("--optimizer", "rmsprop", "--optimizer"),
        ("--batch-points", "-1", "--batch-points"),
        ("--descriptors", "geo-v9", "--descriptors"),
        ("--smooth", "-2", "--smooth"),
        ("--normalise", "part", "--normalise"),
        ("--knn-weight", "1.5", "--knn-weight"),
        ("--knn-weight", "nan", "--knn-weight"),
        ("--knn-k", "0", "--knn-k"),
        ("--registered-weight", "1.5", "--registered-weight"),
        ("--registered-weight", "nan", "--registered-weight"),
    ],
)
def test_segment_rejects_bad_values_before_work(run_bipart, chair_dir, option, value, needle):
    result = run_bipart(
        "segment",
        "chair.glb",
        "--parts",
        "back,seat",
        *MISSING_WEIGHTS,
        option,
        value,
        cwd=chair_dir,
    )
    _assert_usage_error(result, needle)
    assert sorted(p.name for p in chair_dir.iterdir()) == ["a_file", "chair.glb"]


def test_out_dir_that_is_a_file(run_bipart, chair_dir):
    result = run_bipart(
        "segment",
        "chair.glb",
        "--parts",
        "back,seat",
        *MISSING_WEIGHTS,
        "-o",
        "a_file",
        cwd=chair_dir,
    )
    _assert_usage_error(result, "--out-dir", "a_file", "is a file")


def test_out_dir_below_a_file(run_bipart, chair_dir):
    result = run_bipart(
        "segment",
        "chair.glb",
        "--parts",
        "back,seat",
        *MISSING_WEIGHTS,
        "-o",
        "a_file/out",
        cwd=chair_dir,
    )
    _assert_usage_error(result, "--out-dir")


def test_support_must_be_a_folder(run_bipart, chair_dir):
    result = run_bipart(
        "segment",
        "chair.glb",
        "--parts",
        "back,seat",
        *MISSING_WEIGHTS,
        "--support",
        "nope",
        cwd=chair_dir,
    )
    _assert_usage_error(result, "--support", "does not exist")


def test_two_inputs_writing_the_same_outputs(run_bipart, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "chair.glb").write_bytes(b"unused")
    result = run_bipart(
        "segment",
        "a/chair.glb",
        "b/chair.glb",
        "--parts",
        "back",
        *MISSING_WEIGHTS,
        "-o",
        "out",
        cwd=tmp_path,
    )
    _assert_usage_error(result, "a/chair.glb", "b/chair.glb", "chair.parts")
    assert not (tmp_path / "out").exists()


def test_an_output_segmented_again_never_overwrites_itself():
    """Full stems (issue 15 item 7): ``chair.parts.glb`` writes ``chair.parts.parts.*``."""
    from bipart_cli.io.write import planned_outputs

    source = Path("chair.parts.glb")
    planned = planned_outputs(source, None, preview=True)
    assert [p.name for p in planned] == [
        f"chair.parts.parts.{kind}" for kind in ("ply", "glb", "json", "png")
    ]
    assert source not in planned


def test_output_path_that_is_a_folder(run_bipart, chair_dir, tmp_path):
    (tmp_path / "chair.parts.json").mkdir()
    result = run_bipart(
        "segment",
        str(chair_dir / "chair.glb"),
        "--parts",
        "back",
        *MISSING_WEIGHTS,
        "-o",
        str(tmp_path),
    )
    _assert_usage_error(result, "chair.parts.json", "is a folder")


def test_parts_is_required_and_marked(run_bipart, chair_dir):
    result = run_bipart("segment", "chair.glb", *MISSING_WEIGHTS, cwd=chair_dir)
    _assert_usage_error(result, "--parts")
    help_text = run_bipart("segment", "--help", cwd=chair_dir).stdout
    assert re.search(r"\*\s+--parts", help_text), help_text  # rich marks required options *


@pytest.mark.parametrize("command", ["segment", "label", "index"])
@pytest.mark.parametrize("parts, needle", [("back,se\nat", "U+000A"), ("back,se\x07at", "U+0007")])
def test_unprintable_part_names_are_usage_errors(run_bipart, chair_dir, command, parts, needle):
    """Issue 31: a newline or control character in a part name fails at parse time in
    every command that takes ``--parts``, before the missing weights (or detector) are
    noticed."""
    target = "." if command == "index" else "chair.glb"
    extra = {
        "segment": MISSING_WEIGHTS,
        "label": ["--detector", "/no/such/detector"],
        "index": ["--out", "index", *MISSING_WEIGHTS],
    }[command]
    result = run_bipart(command, target, *extra, "--parts", parts, cwd=chair_dir)
    _assert_usage_error(result, "--parts", needle, "unprintable")
    assert not (chair_dir / "index").exists()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["train", "--index", ".", "--out", "y", "--epochs", "0"], "--epochs"),
        (["train", "--index", ".", "--out", "y", "--lr", "-0.1"], "--lr"),
        (["train", "--index", ".", "--out", "y", "--inner-lr", "nan"], "--inner-lr"),
        (["train", "--index", ".", "--out", "y", "--val-fraction", "2"], "--val-fraction"),
        (["eval", "--index", ".", "--steps", "-3"], "--steps"),
        (["eval", "--index", ".", "--strategy", "best"], "--strategy"),
        (["index", "x", "--out", "y", "--points", "0"], "--points"),
        (["label", "x.glb", "--parts", "a", "--points", "-1"], "--points"),
        (["label", "x.glb", "--parts", "a", "--n-dense", "-1"], "--n-dense"),
        (["label", "x.glb", "--parts", "a", "--labeler", "magic"], "--labeler"),
    ],
)
def test_other_commands_check_options(run_bipart, tmp_path, argv, needle):
    _assert_usage_error(run_bipart(*argv, cwd=tmp_path), needle)


def test_python_api_checks_the_same_options(tmp_path):
    from bipart_cli import segment
    from bipart_cli.errors import UsageError

    for bad in (
        {"lr": float("nan")},
        {"steps": -1},
        {"n_dense": 0},
        {"strategy": "bogus"},
        {"optimizer": "rmsprop"},
        {"batch_points": -1},
        {"descriptors": "geo-v9"},
        {"smooth": -2},
        {"normalise": "part"},
        {"knn_weight": -0.1},
        {"knn_k": 0},
        {"registered_weight": -0.1},
    ):
        with pytest.raises(UsageError):
            segment(str(tmp_path / "chair.glb"), "back,seat", weights="/no/such", **bad)


def test_flags_show_no_bool_metavar(run_bipart):
    """Flags take no value: no ``<bool>`` beside them (Typer's own --help line aside)."""
    for command in ("segment", "label", "index", "train", "eval"):
        lines = run_bipart(command, "--help").stdout.splitlines()
        shown = [line for line in lines if "<bool>" in line and "--help" not in line]
        assert shown == [], command


def test_one_name_per_meaning_in_the_help(run_bipart):
    """--points, --steps/--lr, --weights-revision/--detector-revision, --strategy, given."""
    helps = {c: run_bipart(c, "--help").stdout for c in ("segment", "label", "index", "train")}
    helps["eval"] = run_bipart("eval", "--help").stdout
    assert "--points" in helps["label"] and "--n-dense" not in helps["label"]
    assert "--steps" in helps["train"] and "--inner-steps" not in helps["train"]
    assert "--lr" in helps["train"] and "--inner-lr" not in helps["train"]
    assert "--strategy" in helps["train"] and "--support " not in helps["train"]
    for command in ("segment", "label", "eval"):
        assert "--revision " not in helps[command], command
    assert "--weights-revision" in helps["segment"] and "--detector-revision" in helps["label"]
    assert "given" in helps["segment"]
    assert "--preview-path" in helps["label"]
    # the network's optimizer: the same three names in train and pretrain; --steps and --lr
    # are the inner loop's alone
    helps["pretrain"] = run_bipart("pretrain", "--help").stdout
    for option in ("--max-steps", "--outer-lr", "--batch-size"):
        assert option in helps["train"] and option in helps["pretrain"], option
    assert "--steps" not in helps["pretrain"] and "--lr " not in helps["pretrain"]


def test_usage_errors_share_the_error_style(run_bipart):
    """Typer's own parse errors (unknown option, bad number) are one ``error:`` line too."""
    for argv in (["info", "--no-such-option"], ["segment", "x.glb", "--parts", "a", "--lr", "x"]):
        _assert_usage_error(run_bipart(*argv))


def test_every_option_name_is_declared_once():
    """One declaration per option name in ``bipart_cli/cli`` (issue 17): a name means one
    thing, so commands share its ``Annotated`` type from ``cli/options.py``."""
    import re
    from collections import Counter
    from pathlib import Path

    import bipart_cli.cli

    sources = "".join(p.read_text() for p in Path(bipart_cli.cli.__file__).parent.glob("*.py"))
    declared = Counter(re.findall(r'typer\.Option\(\s*"(--[a-z-]+)', sources))
    assert declared["--labeler"] == 1 and declared["--index"] == 1  # the pattern finds them
    assert [name for name, count in declared.items() if count > 1] == []


def test_labeler_choices_follow_the_command(run_bipart):
    result = run_bipart("eval", "--index", ".", "--labeler", "given")
    assert result.returncode == 2 and "index, none" in result.stderr
    result = run_bipart("index", "missing", "--labeler", "none")
    assert result.returncode == 2 and "given, detector, simulated" in result.stderr


SEED_COMMANDS = {
    "segment": ["segment", "chair.glb", "--parts", "back", *MISSING_WEIGHTS],
    "label": ["label", "chair.glb", "--parts", "back", "--detector", "/no/such/detector"],
    "index": ["index", ".", "--out", "index", *MISSING_WEIGHTS],
    "train": ["train", "--index", ".", "--out", "run"],
    "pretrain": ["pretrain", "--out", "run"],
    "eval": ["eval", "--index", "."],
    "examples": ["examples", "out"],
}


@pytest.mark.parametrize("command", sorted(SEED_COMMANDS))
@pytest.mark.parametrize("seed", ["-1", "99999999999999999999", "4294967296"])
def test_every_seed_is_checked_at_parse_time(run_bipart, chair_dir, command, seed):
    """Issue 31 item 3: a negative or huge --seed ran (or failed deep inside NumPy)."""
    result = run_bipart(*SEED_COMMANDS[command], "--seed", seed, cwd=chair_dir)
    _assert_usage_error(result, "--seed", "0 to 4294967295", seed)
    assert not any((chair_dir / name).exists() for name in ("index", "run", "out"))


@pytest.mark.parametrize(
    "argv",
    [
        ["segment", "chair.glb", "--parts", "back", *MISSING_WEIGHTS],
        ["index", ".", "--out", "index", *MISSING_WEIGHTS],
        ["label", "chair.glb", "--parts", "back", "--detector", "/no/such/detector"],
    ],
)
def test_fifty_million_points_is_a_usage_error(run_bipart, chair_dir, argv):
    """Issue 31 item 16: ``--points 50000000`` was accepted and ended in a MemoryError."""
    result = run_bipart(*argv, "--points", "50000000", cwd=chair_dir)
    _assert_usage_error(result, "--points", "2000000", "50000000")


@pytest.mark.parametrize("option", ["--support", "--index"])
def test_an_empty_support_or_index_is_not_the_current_folder(run_bipart, chair_dir, option):
    """Issue 31 item 9: ``--support ""`` indexed the current folder."""
    result = run_bipart(
        "segment", "chair.glb", "--parts", "back", *MISSING_WEIGHTS, option, "", cwd=chair_dir
    )
    _assert_usage_error(result, option, "is empty")


def test_index_and_support_together_are_refused(run_bipart, chair_dir, tmp_path):
    """Issue 31 item 9: ``--index X --support Y`` silently ignored ``--index``."""
    (tmp_path / "support").mkdir()
    (tmp_path / "index").mkdir()
    result = run_bipart(
        "segment", "chair.glb", "--parts", "back", *MISSING_WEIGHTS,
        "--index", str(tmp_path / "index"), "--support", str(tmp_path / "support"),
        cwd=chair_dir,
    )  # fmt: skip
    _assert_usage_error(result, "--index", "--support", "not both")


@pytest.mark.parametrize(
    "bad",
    [
        {"support_dir": ""},
        {"index": ""},
        {"seed": -1},
        {"seed": 2**64},
        {"points": 50_000_000},
        {"index": ".", "support_dir": "."},
    ],
)
def test_python_api_refuses_what_the_cli_refuses(tmp_path, bad):
    from bipart_cli import segment
    from bipart_cli.errors import UsageError

    with pytest.raises(UsageError):
        segment(str(tmp_path / "chair.glb"), "back,seat", weights="/no/such", **bad)
