"""The ``bipart`` command line: a thin Typer layer over the pipeline modules.

Conventions: results on stdout (``--json`` for scripts), progress and logs on
stderr, exit codes 0 ok, 1 error, 2 usage, 3 partial failure in a batch.
Pipeline modules are imported inside the commands so ``--help`` stays light.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from . import __version__
from .adapt import AdaptSettings
from .errors import BipartError, NotImplementedYetError, UsageError
from .runtime import setup_logging, stderr_console, validate_device_spec

app = typer.Typer(
    name="bipart",
    help="Split 3D assets (GLB/OBJ/PLY meshes, point clouds) into named semantic parts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# --- options shared by every command --------------------------------------

DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; same seed, same result.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs and tracebacks.")]
BoxReductionOpt = Annotated[
    str,
    typer.Option(
        "--box-reduction",
        help="Eq. 2 over a shape's boxes: mean (default, stable across labelers) or sum (as written).",
    ),
]
UpOpt = Annotated[
    str,
    typer.Option(
        "--up",
        help="Up axis of the targets: y (glTF), z (many OBJ exports), auto (PCA-align target and support) or none.",
    ),
]
PartsOpt = Annotated[
    str | None,
    typer.Option("--parts", "-p", help='Comma-separated part names, e.g. "back,seat,leg,arm".'),
]
# adaptation options of segment and eval; defaults are AdaptSettings' (adapt.py imports no torch)
_ADAPT = AdaptSettings()
StepsOpt = Annotated[int, typer.Option("--steps", help="Inner-loop steps K.")]
LrOpt = Annotated[float, typer.Option("--lr", help="Inner-loop learning rate.")]
OptimizerOpt = Annotated[
    str,
    typer.Option("--optimizer", help="Inner-loop optimizer: adam, or sgd (the paper's)."),
]
BatchPointsOpt = Annotated[
    int,
    typer.Option("--batch-points", help="Support points drawn per inner step (0: all of them)."),
]
DescriptorsOpt = Annotated[
    str,
    typer.Option(
        "--descriptors",
        help="Geometric descriptors the head reads beside the network features: geo-v1 or none.",
    ),
]
SmoothOpt = Annotated[
    int,
    typer.Option(
        "--smooth", help="Rounds of neighbour averaging of the part probabilities (0: off)."
    ),
]
OutDirOpt = Annotated[
    Path | None,
    typer.Option("--out-dir", "-o", help="Output folder (default: next to the input)."),
]


@contextlib.contextmanager
def reported_errors(verbose: bool, quiet: bool = False) -> Iterator[None]:
    """Map library errors to one line on stderr and the right exit code."""
    setup_logging(verbose=verbose, quiet=quiet)
    try:
        yield
    except BipartError as exc:
        if verbose:
            stderr_console.print_exception()
        from rich.markup import escape

        from .runtime import user_message

        message = escape(user_message(exc))
        stderr_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        stderr_console.print("[bold red]interrupted[/]")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:  # a bug, not a user error: still one line without -v
        if verbose:
            stderr_console.print_exception()
        stderr_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {exc} (rerun with -v for the traceback)",
            highlight=False,
        )
        raise typer.Exit(1) from None


def _not_built(command: str, issue: str) -> None:
    raise NotImplementedYetError(f"'bipart {command}' is not implemented yet ({issue})")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"bipart {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """bipart: BiPart 3D part segmentation from the command line."""


@app.command()
def segment(
    inputs: Annotated[list[str], typer.Argument(help="Assets or globs to segment.")],
    parts: PartsOpt = None,
    index_path: Annotated[
        str | None,
        typer.Option("--index", help="Support index: a folder or hf://datasets/OWNER/NAME[@REV]."),
    ] = None,
    support: Annotated[
        Path | None,
        typer.Option(
            "--support", help="Folder of labeled assets used directly as the support set."
        ),
    ] = None,
    category: Annotated[
        str | None, typer.Option("--category", help="Restrict the support to this index category.")
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights", help="Registry id, Hub id or folder; 'random' for an untrained model."
        ),
    ] = None,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Hub revision of --weights.")
    ] = None,
    labeler: Annotated[
        str,
        typer.Option(
            "--labeler",
            help="Target pseudo labels: detector, none (few-shot) or simulated (evaluation).",
        ),
    ] = "detector",
    detector: Annotated[
        str | None, typer.Option("--detector", help="Detector Hub id or local folder.")
    ] = None,
    detector_revision: Annotated[
        str | None, typer.Option("--detector-revision", help="Hub revision of --detector.")
    ] = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Detector score threshold.")
    ] = 0.5,
    offline: Annotated[
        bool, typer.Option("--offline", help="Never touch the network (same as HF_HUB_OFFLINE=1).")
    ] = False,
    steps: StepsOpt = _ADAPT.steps,
    lr: LrOpt = _ADAPT.lr,
    optimizer: OptimizerOpt = _ADAPT.optimizer,
    batch_points: BatchPointsOpt = _ADAPT.batch_points,
    descriptors: DescriptorsOpt = _ADAPT.descriptors,
    smooth: SmoothOpt = _ADAPT.smooth,
    support_size: Annotated[int, typer.Option("--support-size", help="Support-set size M.")] = 8,
    strategy: Annotated[
        str,
        typer.Option("--strategy", help="Support selection: part-perfect, similarity or random."),
    ] = "part-perfect",
    box_reduction: BoxReductionOpt = "mean",
    up: UpOpt = "y",
    n_dense: Annotated[
        int, typer.Option("--points", help="Dense points sampled and labeled.")
    ] = 100_000,
    out_dir: OutDirOpt = None,
    preview: Annotated[
        bool, typer.Option("--preview", help="Also write a PNG render of the result.")
    ] = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Segment assets into the named parts; writes .parts.ply, .parts.glb and .parts.json."""
    with reported_errors(verbose, quiet):
        validate_device_spec(device)
        from .commands import run_segment

        code = run_segment(
            inputs,
            parts,
            index=index_path,
            support_dir=support,
            category=category,
            weights=weights,
            weights_revision=revision,
            labeler=labeler,
            labeler_options={
                "detector": detector,
                "revision": detector_revision,
                "threshold": threshold,
                "offline": offline,
            },
            steps=steps,
            lr=lr,
            optimizer=optimizer,
            batch_points=batch_points,
            descriptors=descriptors,
            smooth=smooth,
            support_size=support_size,
            strategy=strategy,
            box_reduction=box_reduction,
            up=up,
            n_dense=n_dense,
            out_dir=out_dir,
            preview=preview,
            device=device,
            seed=seed,
            json_output=json_output,
            quiet=quiet,
        )
        raise typer.Exit(code)


@app.command()
def label(
    asset: Annotated[Path, typer.Argument(help="The asset to label.")],
    parts: PartsOpt = None,
    labeler: Annotated[
        str,
        typer.Option(
            "--labeler",
            help="detector (VLM boxes), given (the asset's own labels) or simulated "
            "(noisy ground truth, evaluation only).",
        ),
    ] = "detector",
    detector: Annotated[
        str | None,
        typer.Option(
            "--detector", help="Detector Hub id or local folder (default grounding-dino-tiny)."
        ),
    ] = None,
    revision: Annotated[str | None, typer.Option("--revision", help="Detector revision.")] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Box score threshold (default 0.5).")
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Use only the local Hub cache (as HF_HUB_OFFLINE=1).")
    ] = False,
    preview: Annotated[
        Path | None,
        typer.Option("--preview", help="Contact-sheet PNG path (default <stem>.pseudo.png)."),
    ] = None,
    n_dense: Annotated[int, typer.Option("--n-dense", help="Dense points to render.")] = 100_000,
    out_dir: OutDirOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Render the asset, detect part boxes and write pseudo labels, a preview and a summary."""
    with reported_errors(verbose, quiet):
        validate_device_spec(device)
        from .labeling.api import LABELERS, label_file

        if labeler not in LABELERS:
            raise UsageError(f"unknown --labeler {labeler!r}: choose one of {', '.join(LABELERS)}")
        detector_options = (
            {
                "detector": detector,
                "revision": revision,
                "threshold": threshold,
                "offline": offline or None,
            }
            if labeler == "detector"
            else {}
        )
        summary = label_file(
            asset,
            parts,
            labeler,
            out_dir=out_dir,
            preview=preview,
            n_dense=n_dense,
            seed=seed,
            device=device,
            **detector_options,
        )
        if json_output:
            import json

            typer.echo(json.dumps(summary, default=str))
        elif not quiet:
            per_part = ", ".join(f"{k} {v}" for k, v in summary["boxes_per_part"].items())
            typer.echo(
                f"{summary['num_boxes']} boxes ({per_part}); {summary['covered_fraction']:.0%} of points covered"
            )
            for key, path in summary["outputs"].items():
                typer.echo(f"{key:>14}: {path}")


@app.command()
def index(
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="DIR | merge PART...",
            help="Folder of assets to index, or 'merge' and the partial indexes to merge.",
        ),
    ],
    out: Annotated[Path | None, typer.Option("--out", help="Index folder to write.")] = None,
    category: Annotated[
        str | None,
        typer.Option("--category", help="Category of every shape (default: sub-folder name)."),
    ] = None,
    parts: PartsOpt = None,
    labeler: Annotated[
        str,
        typer.Option(
            "--labeler",
            help="Pseudo labels: given (the assets' own labels), detector or simulated.",
        ),
    ] = "given",
    detector: Annotated[
        str | None, typer.Option("--detector", help="Detector Hub id or local folder.")
    ] = None,
    detector_revision: Annotated[
        str | None, typer.Option("--detector-revision", help="Hub revision of --detector.")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Detector score threshold.")
    ] = None,
    no_cache_features: Annotated[
        bool,
        typer.Option("--no-cache-features", help="Do not store frozen-encoder features."),
    ] = False,
    weights: Annotated[
        str | None,
        typer.Option("--weights", help="Model whose encoder fills the feature cache."),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option("--shard", help="Build only part i of n (i/n); join parts with 'merge'."),
    ] = None,
    n_dense: Annotated[
        int, typer.Option("--points", help="Dense points sampled and labeled per shape.")
    ] = 100_000,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Build a shape index (support-set source) from a folder of assets.

    Incremental and resumable: re-run it after adding files or after an
    interruption. Exit code 3 when some files could not be indexed.
    """
    with reported_errors(verbose, quiet):
        validate_device_spec(device)
        from .index.command import run_index

        code = run_index(
            inputs,
            out=out,
            category=category,
            parts=parts,
            labeler=labeler,
            detector_options={
                "detector": detector,
                "revision": detector_revision,
                "threshold": threshold,
            },
            no_cache_features=no_cache_features,
            weights=weights,
            shard=shard,
            n_dense=n_dense,
            device=device,
            seed=seed,
            json_output=json_output,
            quiet=quiet,
        )
        raise typer.Exit(code)


@app.command()
def train(
    index_path: Annotated[
        str | None, typer.Option("--index", help="Training index (folder or hf://datasets/...).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Run folder: checkpoints, logs, final model.")
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Outer-loop epochs.")] = 10,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Targets per outer step.")] = 8,
    support_size: Annotated[
        int, typer.Option("--support-size", help="Support-set size M (target included).")
    ] = 8,
    inner_steps: Annotated[int, typer.Option("--inner-steps", help="Inner-loop steps K.")] = 5,
    inner_lr: Annotated[
        float, typer.Option("--inner-lr", help="Inner-loop SGD learning rate.")
    ] = 0.1,
    outer_lr: Annotated[
        float, typer.Option("--outer-lr", help="Outer-loop Adam learning rate.")
    ] = 1e-4,
    first_order: Annotated[
        bool, typer.Option("--first-order", help="First-order MAML (no second-order terms).")
    ] = False,
    no_bilevel: Annotated[
        bool, typer.Option("--no-bilevel", help="Ablation: plain distillation with the same loss.")
    ] = False,
    no_extractor: Annotated[
        bool,
        typer.Option("--no-extractor", help="Ablation: encoder features straight into the head."),
    ] = False,
    support_strategy: Annotated[
        str,
        typer.Option("--support", help="Support selection: part-perfect, similarity or random."),
    ] = "part-perfect",
    box_reduction: BoxReductionOpt = "mean",
    categories: Annotated[
        str | None,
        typer.Option("--categories", help="Train only on these categories (the G setting)."),
    ] = None,
    val_fraction: Annotated[
        float,
        typer.Option(
            "--val-fraction", help="Share of labeled shapes per category held out for validation."
        ),
    ] = 0.1,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help="Stop after this many outer steps.")
    ] = None,
    model_config: Annotated[
        Path | None,
        typer.Option(
            "--model-config",
            help="JSON of BiPartConfig fields for the new model (default: the paper's sizes).",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from RUN_DIR/checkpoint.")
    ] = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Bi-level (MAML-style) training of the extractor and head (Algorithm 1)."""
    with reported_errors(verbose, quiet):
        validate_device_spec(device)
        from .commands import run_train

        raise typer.Exit(
            run_train(
                index_path,
                out,
                epochs=epochs,
                batch_size=batch_size,
                support_size=support_size,
                inner_steps=inner_steps,
                inner_lr=inner_lr,
                outer_lr=outer_lr,
                first_order=first_order,
                bilevel=not no_bilevel,
                use_extractor=not no_extractor,
                support_strategy=support_strategy,
                box_reduction=box_reduction,
                categories=categories,
                val_fraction=val_fraction,
                max_steps=max_steps,
                model_config=model_config,
                resume=resume,
                device=device,
                seed=seed,
                json_output=json_output,
                quiet=quiet,
            )
        )


@app.command("eval")
def evaluate(
    index_path: Annotated[
        str | None, typer.Option("--index", help="Test index with ground truth.")
    ] = None,
    support_index: Annotated[
        str | None,
        typer.Option(
            "--support-index", help="Index the support sets come from (default: the test index)."
        ),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights", help="Registry id, Hub id or folder; 'random' for an untrained model."
        ),
    ] = None,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Hub revision of --weights.")
    ] = None,
    labeler: Annotated[
        str,
        typer.Option(
            "--labeler",
            help="'index': the targets' indexed pseudo labels join the support; 'none': few-shot.",
        ),
    ] = "index",
    steps: StepsOpt = _ADAPT.steps,
    lr: LrOpt = _ADAPT.lr,
    optimizer: OptimizerOpt = _ADAPT.optimizer,
    batch_points: BatchPointsOpt = _ADAPT.batch_points,
    descriptors: DescriptorsOpt = _ADAPT.descriptors,
    smooth: SmoothOpt = _ADAPT.smooth,
    support_size: Annotated[int, typer.Option("--support-size", help="Support-set size M.")] = 8,
    strategy: Annotated[
        str,
        typer.Option("--strategy", help="Support selection: part-perfect, similarity or random."),
    ] = "part-perfect",
    box_reduction: BoxReductionOpt = "mean",
    up: UpOpt = "y",
    limit: Annotated[
        int | None, typer.Option("--limit", help="Evaluate at most this many shapes.")
    ] = None,
    zero_shot: Annotated[
        bool,
        typer.Option(
            "--zero-shot",
            help="No support index: adapt on each target's own pseudo labels, repeated M times "
            "(needs --labeler index).",
        ),
    ] = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Segment every labeled shape of an index and print mIoU (per category, category mean, instance mean)."""
    with reported_errors(verbose, quiet):
        validate_device_spec(device)
        from .commands import run_eval

        raise typer.Exit(
            run_eval(
                index_path,
                support_index=support_index,
                weights=weights,
                weights_revision=revision,
                labeler=labeler,
                steps=steps,
                lr=lr,
                optimizer=optimizer,
                batch_points=batch_points,
                descriptors=descriptors,
                smooth=smooth,
                support_size=support_size,
                strategy=strategy,
                box_reduction=box_reduction,
                up=up,
                limit=limit,
                zero_shot=zero_shot,
                device=device,
                seed=seed,
                json_output=json_output,
                quiet=quiet,
            )
        )


@app.command()
def info(
    asset: Annotated[
        Path | None,
        typer.Argument(help="An asset to summarise (format, size, labeled parts, bbox)."),
    ] = None,
    device: DeviceOpt = "auto",
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show versions, device and caches; with ASSET, summarise that asset instead."""
    with reported_errors(verbose, quiet):
        if asset is not None:
            from .io import describe_asset, format_asset_summary, load_asset

            facts = describe_asset(load_asset(asset))
            lines = format_asset_summary(facts)
        else:
            from .info import collect_info

            facts = collect_info(device)
            lines = [f"{key:>18}: {value}" for key, value in facts.items()]
        if json_output:
            import json

            typer.echo(json.dumps(facts, sort_keys=True))
        else:
            typer.echo("\n".join(lines))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except UsageError as exc:  # raised outside a command body
        stderr_console.print(f"[bold red]error:[/] {exc}")
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
