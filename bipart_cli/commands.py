"""Bodies of the CLI commands: call one pipeline function, print results.

Kept out of ``cli.py`` so that module stays a declaration of options; this
module is imported only when a command runs.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from .runtime import print_error, stdout_console

EXIT_OK, EXIT_ERROR, EXIT_PARTIAL = 0, 1, 3


def labeler_options(labeler: str, options: dict[str, Any]) -> dict[str, Any]:
    """Only the detector (chosen or ``auto``) takes detector options; drop unset ones."""
    if labeler not in ("detector", "auto"):
        return {}
    return {k: v for k, v in options.items() if v is not None}


def check_output_folders(paths: list[str], out_dir: Path | None, preview: bool) -> None:
    """Before any work: no output path is a folder (a :class:`UsageError` naming it).

    Two inputs writing the same outputs are refused by ``segmentation.check_inputs``, and
    full stems mean an output can never be its own input (``chair.parts.glb`` writes
    ``chair.parts.parts.*``).
    """
    from .errors import UsageError
    from .io.write import planned_outputs

    for path in paths:
        for target in planned_outputs(Path(path), out_dir, preview):
            if target.is_dir():
                raise UsageError(f"the output {target} is a folder")


def run_segment(
    inputs: list[str], parts: str | None, *, json_output: bool, quiet: bool, **options: Any
) -> int:
    """``bipart segment``: segment every input, one result line (or NDJSON object) each."""
    from .adapt import AdaptSettings
    from .errors import UsageError
    from .parts import parse_part_names
    from .runtime import Stages, progress
    from .segmentation import Segmenter, SegmentOptions, check_inputs, expand_inputs

    if parts is None:
        raise UsageError('--parts is required, e.g. --parts "back,seat,leg,arm"')
    part_names = parse_part_names(parts)
    fields = {f.name for f in dataclasses.fields(AdaptSettings)}
    adapt = AdaptSettings(**{k: options.pop(k) for k in list(options) if k in fields})
    options["labeler_options"] = labeler_options(options["labeler"], options["labeler_options"])
    segment_options = SegmentOptions(adapt=adapt, **options)
    paths = expand_inputs(inputs)
    check_inputs(paths, segment_options.out_dir, collisions=segment_options.write)
    check_output_folders(paths, segment_options.out_dir, segment_options.preview)
    names = input_names(paths)  # what each input's progress lines are about
    # one live display at a time: a batch shows its progress bar, a single file a spinner
    stages = Stages(
        quiet=quiet, spinner=len(paths) < 2, subject_width=max(map(len, names), default=0)
    )
    segmenter = Segmenter(part_names, segment_options, stages=stages)
    failures = 0
    with progress(quiet or len(paths) < 2) as bar:
        task = bar.add_task("segmenting", total=len(paths))
        for path, name in zip(paths, names, strict=True):
            with stages.about(name):
                result = segmenter.run(path)
            failures += not result.ok
            if not result.ok:  # one line naming the input (load errors already do)
                print_error(result.error if path in result.error else f"{path}: {result.error}")
            _print_segment_result(result, json_output)
            bar.advance(task)
    if failures == 0:
        return EXIT_OK
    return EXIT_ERROR if len(paths) == 1 else EXIT_PARTIAL


def input_names(paths: list[str]) -> list[str]:
    """The name each input's progress lines go by: its file name, or the path as given
    where two inputs of the batch share a file name."""
    from .runtime import printable

    names = [Path(path).name for path in paths]
    shared = {name for name in names if names.count(name) > 1}
    return [
        printable(path if name in shared else name) for path, name in zip(paths, names, strict=True)
    ]


def _print_segment_result(result, json_output: bool) -> None:
    if json_output:
        print(json.dumps(result.to_json(), default=str), flush=True)
        return
    if not result.ok:
        return
    summary = ", ".join(f"{p['name']} {p['points']}" for p in result.parts)
    stdout_console.print(
        f"{result.input}: {result.mode}{' (stored run)' if result.reused else ''}, "
        f"{len(result.support)} support shapes -> {summary}",
        highlight=False,
        markup=False,  # file and part names are the user's text, never markup
    )
    for kind, path in result.outputs.items():
        stdout_console.print(f"  {kind}: {path}", highlight=False, markup=False)


def run_eval(index_path: str | None, *, json_output: bool, quiet: bool, **options: Any) -> int:
    """``bipart eval``: per-category mIoU, category mean and instance mean."""
    from .errors import UsageError
    from .evaluate import evaluate_index

    if index_path is None:
        raise UsageError("--index is required: the test index to evaluate")
    report = evaluate_index(index_path, quiet=quiet, **options)
    if json_output:
        print(json.dumps(report.to_json(), default=str))
        return EXIT_OK
    from rich.table import Table

    summary = report.summary
    counts: dict[str, int] = {}
    for shape in report.shapes:
        counts[shape.category] = counts.get(shape.category, 0) + 1
    weights_id = report.settings["weights"]["weights_id"]
    table = Table(
        title=f"mIoU (%) on {index_path}, weights {weights_id}, labeler {report.settings['labeler']}, {report.settings['mode']}"
    )
    table.add_column("category")
    table.add_column("shapes", justify="right")
    table.add_column("mIoU", justify="right")
    for category, miou in summary["per_category"].items():
        table.add_row(category, str(counts[category]), f"{100 * miou:.1f}")
    table.add_row("[bold]category mean", "", f"[bold]{100 * summary['category_mean']:.1f}")
    table.add_row(
        "[bold]instance mean",
        str(summary["num_shapes"]),
        f"[bold]{100 * summary['instance_mean']:.1f}",
    )
    stdout_console.print(table)
    return EXIT_OK


def run_train(
    index_path: str | None,
    out,
    *,
    json_output: bool,
    quiet: bool,
    device: str,
    resume: bool,
    categories: str | None,
    model_config=None,
    encoder=None,
    **settings: Any,
) -> int:
    """``bipart train``: Algorithm 1 on an index, one checkpoint per epoch."""
    from .errors import UsageError
    from .train import TrainSettings, read_model_config, train

    if index_path is None or out is None:
        raise UsageError("--index and --out are both required")
    chosen = [c.strip() for c in categories.split(",") if c.strip()] if categories else None
    reports = train(
        index_path,
        out,
        TrainSettings(categories=chosen, **settings),
        device=device,
        resume=resume,
        quiet=quiet,
        model_config=None if model_config is None else read_model_config(model_config),
        encoder=encoder,
    )
    for report in reports:
        record = {
            "epoch": report.epoch + 1,
            "mean_loss": report.mean_loss,
            "val_miou": report.val_miou,
            "seconds": round(report.seconds, 2),
            "steps": report.steps,
        }
        if json_output:
            print(json.dumps(record))
        else:
            val = "n/a" if report.val_miou is None else f"{100 * report.val_miou:.1f}"
            stdout_console.print(
                f"epoch {record['epoch']}: loss {report.mean_loss:.4f}, val mIoU {val}, {record['seconds']} s",
                highlight=False,
            )
    return EXIT_OK


def run_pretrain(
    out,
    *,
    json_output: bool,
    quiet: bool,
    device: str,
    resume: bool,
    model_config=None,
    **settings: Any,
) -> int:
    """``bipart pretrain``: masked-autoencoder pre-training, then RUN_DIR/encoder."""
    from .errors import UsageError
    from .pretrain import PretrainSettings, pretrain
    from .train import read_model_config

    if out is None:
        raise UsageError("--out is required: the run folder (log, checkpoints, encoder)")
    report = pretrain(
        out,
        PretrainSettings(**settings),
        device=device,
        resume=resume,
        quiet=quiet,
        model_config=None if model_config is None else read_model_config(model_config),
    )
    record = {
        "steps": report.steps,
        "first_loss": report.first_loss,
        "last_loss": report.last_loss,
        "seconds": round(report.seconds, 2),
        "steps_per_second": round(report.steps / report.seconds, 4) if report.steps else None,
        "shapes": report.shapes,
        "peak_memory_mb": round(report.peak_memory_mb, 1),
        "encoder": str(report.encoder_dir),
    }
    if json_output:
        print(json.dumps(record))
    elif report.steps:
        stdout_console.print(
            f"pre-trained {report.steps} steps on {report.shapes} shapes in {record['seconds']} s: "
            f"loss {report.first_loss:.5f} -> {report.last_loss:.5f}; encoder in {report.encoder_dir}",
            highlight=False,
            markup=False,
        )
    else:
        stdout_console.print(
            f"nothing left to run; encoder in {report.encoder_dir}", highlight=False, markup=False
        )
    return EXIT_OK


def run_examples(
    out: Path,
    categories: str | None,
    *,
    per_category: int,
    seed: int,
    json_output: bool,
    quiet: bool,
) -> int:
    """``bipart examples``: labeled support folders, one per procedural category (by default
    the default categories; the creatures, the cabinet and the appliance only when named)."""
    from .errors import UsageError
    from .procedural import CATEGORIES, DEFAULT_CATEGORIES, write_support_sets

    chosen = (
        [c.strip() for c in categories.split(",") if c.strip()]
        if categories
        else list(DEFAULT_CATEGORIES)
    )
    unknown = [c for c in chosen if c not in CATEGORIES]
    if unknown or not chosen:
        raise UsageError(
            f"--categories: unknown {', '.join(unknown) or '(none given)'}; "
            f"known: {', '.join(CATEGORIES)}"
        )
    folders = write_support_sets(out, chosen, per_category=per_category, seed=seed)
    for category, folder in folders.items():
        record = {
            "category": category,
            "folder": str(folder),
            "parts": CATEGORIES[category],
            "shapes": len(list(folder.glob("*.glb"))),
        }
        if json_output:
            print(json.dumps(record), flush=True)
        elif not quiet:
            stdout_console.print(
                f"{folder}: {record['shapes']} labeled {category} shapes, parts {','.join(record['parts'])}",
                highlight=False,
                markup=False,
            )
    return EXIT_OK
