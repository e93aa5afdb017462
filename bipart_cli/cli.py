"""The ``bipart`` command line: a thin Typer layer over the pipeline modules.

Conventions: results on stdout (``--json`` for scripts), progress and logs on
stderr, exit codes 0 ok, 1 error, 2 usage, 3 partial failure in a batch.
Pipeline modules are imported inside the commands so ``--help`` stays light.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from . import __version__
from .adapt import BOX_REDUCTIONS, DESCRIPTOR_CHOICES, NORMALISATIONS, OPTIMIZERS, AdaptSettings
from .errors import BipartError, NotImplementedYetError, UsageError
from .labeling.api import SEGMENT_LABELERS
from .orientation import UP_CHOICES
from .pretrain.corpus import ROTATIONS
from .runtime import (
    check_choice,
    check_count,
    check_folder,
    check_fraction,
    check_index_spec,
    check_out_dir,
    check_rate,
    print_error,
    setup_logging,
    stderr_console,
    validate_device_spec,
)
from .support import STRATEGIES

app = typer.Typer(
    name="bipart",
    help="Split 3D assets (GLB/OBJ/PLY meshes, point clouds) into named semantic parts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# --- parse-time checks: a bad value is a usage error (exit 2) before any work ---


def _checked(check: Callable[..., Any], *args: Any) -> Callable[..., Any]:
    """A Typer callback running ``check(option_name, value, *args)`` on a given value."""

    def callback(param: typer.CallbackParam, value: Any) -> Any:
        if value is None:
            return None
        try:
            return check(param.opts[0], value, *args)
        except UsageError as exc:  # Typer's own usage error: exit 2 however the app is run
            raise typer.BadParameter(str(exc)) from None

    return callback


MAX_POINTS = 50_000_000
MAX_STEPS = 10_000
MAX_SUPPORT = 1_000
MAX_LR = 100.0
FLAG = ""  # metavar of on/off flags: no "<bool>" in the help

# --- options shared by every command --------------------------------------

DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; same seed, same result.")]
JsonOpt = Annotated[
    bool, typer.Option("--json", metavar=FLAG, help="Machine-readable output on stdout.")
]
QuietOpt = Annotated[
    bool,
    typer.Option("--quiet", "-q", metavar=FLAG, help="Only errors on stderr (no progress)."),
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", metavar=FLAG, help="Debug logs and tracebacks.")
]
BoxReductionOpt = Annotated[
    str,
    typer.Option(
        "--box-reduction",
        help="Eq. 2 over a shape's boxes: mean (default, stable across labelers) or sum (as written).",
        callback=_checked(check_choice, BOX_REDUCTIONS),
    ),
]
UpOpt = Annotated[
    str,
    typer.Option(
        "--up",
        help="Up axis of the targets: y (glTF), z (many OBJ exports), auto (PCA-align target and support) or none.",
        callback=_checked(check_choice, UP_CHOICES),
    ),
]
PartsOpt = Annotated[
    str | None,
    typer.Option("--parts", "-p", help='Comma-separated part names, e.g. "back,seat,leg,arm".'),
]
# adaptation options of segment and eval beyond --steps/--lr; defaults are AdaptSettings'
_ADAPT = AdaptSettings()
OptimizerOpt = Annotated[
    str,
    typer.Option(
        "--optimizer",
        help="Inner-loop optimizer: adam, or sgd (the paper's).",
        callback=_checked(check_choice, OPTIMIZERS),
    ),
]
BatchPointsOpt = Annotated[
    int,
    typer.Option(
        "--batch-points",
        help="Support points drawn per inner step (0: all of them).",
        callback=_checked(check_count, 0, MAX_POINTS),
    ),
]
DescriptorsOpt = Annotated[
    str,
    typer.Option(
        "--descriptors",
        help="Geometric descriptors the head reads beside the network features: geo-v1 or none.",
        callback=_checked(check_choice, DESCRIPTOR_CHOICES),
    ),
]
SmoothOpt = Annotated[
    int,
    typer.Option(
        "--smooth",
        help="Rounds of neighbour averaging of the part probabilities (0: off).",
        callback=_checked(check_count, 0, 1000),
    ),
]
NormaliseOpt = Annotated[
    str,
    typer.Option(
        "--normalise",
        help="Inner-loop loss weights: point (every labeled point the same) or box (Eq. 2: every box the same).",
        callback=_checked(check_choice, NORMALISATIONS),
    ),
]
RequiredPartsOpt = Annotated[
    str,
    typer.Option("--parts", "-p", help='Comma-separated part names, e.g. "back,seat,leg,arm".'),
]
OutDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--out-dir",
        "-o",
        help="Output folder (default: next to the input).",
        callback=_checked(check_out_dir),
    ),
]
PointsOpt = Annotated[
    int,
    typer.Option(
        "--points",
        help="Dense points sampled (and labeled) per shape.",
        callback=_checked(check_count, 1, MAX_POINTS),
    ),
]
StepsOpt = Annotated[
    int,
    typer.Option(
        "--steps", help="Inner-loop steps K.", callback=_checked(check_count, 1, MAX_STEPS)
    ),
]
LrOpt = Annotated[
    float,
    typer.Option("--lr", help="Inner-loop learning rate.", callback=_checked(check_rate, MAX_LR)),
]
SupportSizeOpt = Annotated[
    int,
    typer.Option(
        "--support-size",
        help="Support-set size M.",
        callback=_checked(check_count, 1, MAX_SUPPORT),
    ),
]
StrategyOpt = Annotated[
    str,
    typer.Option(
        "--strategy",
        help="Support selection: part-perfect, similarity or random.",
        callback=_checked(check_choice, STRATEGIES),
    ),
]
ThresholdOpt = Annotated[
    float | None,
    typer.Option(
        "--threshold",
        help="Detector box score threshold, 0 to 1 (default 0.5).",
        callback=_checked(check_fraction),
    ),
]
WeightsRevisionOpt = Annotated[
    str | None, typer.Option("--weights-revision", help="Hub revision of --weights.")
]
DetectorRevisionOpt = Annotated[
    str | None, typer.Option("--detector-revision", help="Hub revision of --detector.")
]
OfflineOpt = Annotated[
    bool,
    typer.Option(
        "--offline",
        metavar=FLAG,
        help="Never touch the network: only local folders and the Hub cache (as HF_HUB_OFFLINE=1).",
    ),
]


EncoderOpt = Annotated[
    Path | None,
    typer.Option(
        "--encoder",
        help="Pre-trained encoder: a 'bipart pretrain' RUN_DIR/encoder, or official Point-M2AE weights.",
    ),
]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", metavar=FLAG, help="Continue from RUN_DIR/checkpoint.")
]


def _hidden(*names: str, callback: Callable[..., Any] | None = None) -> Any:
    """An old spelling kept for one release: accepted, not shown in the help."""
    return typer.Option(*names, hidden=True, callback=callback)


def _alias(new: Any, old: Any, default: Any) -> Any:
    """The value of an option given under its new name or its hidden old one."""
    if old is not None and new != default:
        raise UsageError("an option was given under both its new and its old name")
    return new if old is None else old


@contextlib.contextmanager
def reported_errors(verbose: bool, quiet: bool = False) -> Iterator[None]:
    """Map library errors to one line on stderr and the right exit code."""
    setup_logging(verbose=verbose, quiet=quiet)
    try:
        yield
    except BipartError as exc:
        if verbose:
            stderr_console.print_exception()
        from .runtime import user_message

        print_error(user_message(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        print_error("interrupted")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:  # a bug, not a user error: still one line without -v
        if verbose:
            stderr_console.print_exception()
        print_error(
            f"{type(exc).__name__}: {exc} (rerun with -v for the traceback)",
            prefix="internal error",
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
            "--version",
            callback=_version_callback,
            is_eager=True,
            metavar=FLAG,
            help="Print the version.",
        ),
    ] = False,
) -> None:
    """bipart: BiPart 3D part segmentation from the command line."""


@app.command()
def segment(
    inputs: Annotated[list[str], typer.Argument(help="Assets or globs to segment.")],
    parts: RequiredPartsOpt,
    index_path: Annotated[
        str | None,
        typer.Option(
            "--index",
            help="Support index: a folder or hf://datasets/OWNER/NAME[@REV].",
            callback=_checked(check_index_spec),
        ),
    ] = None,
    support: Annotated[
        Path | None,
        typer.Option(
            "--support",
            help="Folder of labeled assets used directly as the support set.",
            callback=_checked(check_folder),
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
    weights_revision: WeightsRevisionOpt = None,
    old_revision: Annotated[str | None, _hidden("--revision")] = None,
    labeler: Annotated[
        str,
        typer.Option(
            "--labeler",
            help="Target pseudo labels: auto (the detector when its weights can be had, else "
            "few-shot from a labeled support), detector, none (few-shot), given (the target's "
            "own labels) or simulated (evaluation).",
            callback=_checked(check_choice, SEGMENT_LABELERS),
        ),
    ] = "auto",
    detector: Annotated[
        str | None, typer.Option("--detector", help="Detector Hub id or local folder.")
    ] = None,
    detector_revision: DetectorRevisionOpt = None,
    threshold: ThresholdOpt = None,
    offline: OfflineOpt = False,
    steps: StepsOpt = _ADAPT.steps,
    lr: LrOpt = _ADAPT.lr,
    optimizer: OptimizerOpt = _ADAPT.optimizer,
    batch_points: BatchPointsOpt = _ADAPT.batch_points,
    descriptors: DescriptorsOpt = _ADAPT.descriptors,
    smooth: SmoothOpt = _ADAPT.smooth,
    normalise: NormaliseOpt = _ADAPT.normalise,
    support_size: SupportSizeOpt = 8,
    strategy: StrategyOpt = "part-perfect",
    box_reduction: BoxReductionOpt = "mean",
    up: UpOpt = "y",
    n_dense: PointsOpt = 100_000,
    out_dir: OutDirOpt = None,
    preview: Annotated[
        bool,
        typer.Option("--preview", metavar=FLAG, help="Also write a PNG render of the result."),
    ] = False,
    colorize: Annotated[
        bool,
        typer.Option(
            "--colorize",
            metavar=FLAG,
            help="Paint the output GLB in part colours instead of keeping the asset's materials.",
        ),
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
            weights_revision=_alias(weights_revision, old_revision, None),
            labeler=labeler,
            labeler_options={
                "detector": detector,
                "revision": detector_revision,
                "threshold": threshold,
                "offline": offline or None,
            },
            steps=steps,
            lr=lr,
            optimizer=optimizer,
            batch_points=batch_points,
            descriptors=descriptors,
            smooth=smooth,
            normalise=normalise,
            support_size=support_size,
            strategy=strategy,
            box_reduction=box_reduction,
            up=up,
            n_dense=n_dense,
            out_dir=out_dir,
            preview=preview,
            colorize=colorize,
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
            help="detector (VLM boxes), given (the asset's own labels), simulated "
            "(noisy ground truth, evaluation only) or none.",
            callback=_checked(check_choice, ("detector", "given", "simulated", "none")),
        ),
    ] = "detector",
    detector: Annotated[
        str | None,
        typer.Option(
            "--detector", help="Detector Hub id or local folder (default grounding-dino-tiny)."
        ),
    ] = None,
    detector_revision: DetectorRevisionOpt = None,
    old_revision: Annotated[str | None, _hidden("--revision")] = None,
    threshold: ThresholdOpt = None,
    offline: OfflineOpt = False,
    preview_path: Annotated[
        Path | None,
        typer.Option("--preview-path", help="Contact-sheet PNG path (default <stem>.pseudo.png)."),
    ] = None,
    old_preview: Annotated[Path | None, _hidden("--preview")] = None,
    n_dense: PointsOpt = 100_000,
    old_n_dense: Annotated[
        int | None, _hidden("--n-dense", callback=_checked(check_count, 1, MAX_POINTS))
    ] = None,
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
        n_dense = _alias(n_dense, old_n_dense, 100_000)
        from .labeling.api import label_file

        detector_options = (
            {
                "detector": detector,
                "revision": _alias(detector_revision, old_revision, None),
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
            preview=_alias(preview_path, old_preview, None),
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
    detector_revision: DetectorRevisionOpt = None,
    threshold: ThresholdOpt = None,
    no_cache_features: Annotated[
        bool,
        typer.Option(
            "--no-cache-features", metavar=FLAG, help="Do not store frozen-encoder features."
        ),
    ] = False,
    weights: Annotated[
        str | None,
        typer.Option("--weights", help="Model whose encoder fills the feature cache."),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option("--shard", help="Build only part i of n (i/n); join parts with 'merge'."),
    ] = None,
    n_dense: PointsOpt = 100_000,
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
    epochs: Annotated[
        int,
        typer.Option("--epochs", help="Outer-loop epochs.", callback=_checked(check_count, 1)),
    ] = 10,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", help="Targets per outer step.", callback=_checked(check_count, 1)
        ),
    ] = 8,
    support_size: Annotated[
        int,
        typer.Option(
            "--support-size",
            help="Support-set size M (target included).",
            callback=_checked(check_count, 1, MAX_SUPPORT),
        ),
    ] = 8,
    steps: StepsOpt = 5,
    old_inner_steps: Annotated[
        int | None, _hidden("--inner-steps", callback=_checked(check_count, 1, MAX_STEPS))
    ] = None,
    lr: LrOpt = 0.1,
    old_inner_lr: Annotated[
        float | None, _hidden("--inner-lr", callback=_checked(check_rate, MAX_LR))
    ] = None,
    outer_lr: Annotated[
        float,
        typer.Option(
            "--outer-lr",
            help="Outer-loop Adam learning rate.",
            callback=_checked(check_rate, MAX_LR),
        ),
    ] = 1e-4,
    first_order: Annotated[
        bool,
        typer.Option(
            "--first-order", metavar=FLAG, help="First-order MAML (no second-order terms)."
        ),
    ] = False,
    no_bilevel: Annotated[
        bool,
        typer.Option(
            "--no-bilevel", metavar=FLAG, help="Ablation: plain distillation with the same loss."
        ),
    ] = False,
    no_extractor: Annotated[
        bool,
        typer.Option(
            "--no-extractor",
            metavar=FLAG,
            help="Ablation: encoder features straight into the head.",
        ),
    ] = False,
    strategy: StrategyOpt = "part-perfect",
    old_support: Annotated[
        str | None, _hidden("--support", callback=_checked(check_choice, STRATEGIES))
    ] = None,
    box_reduction: BoxReductionOpt = "mean",
    categories: Annotated[
        str | None,
        typer.Option("--categories", help="Train only on these categories (the G setting)."),
    ] = None,
    val_fraction: Annotated[
        float,
        typer.Option(
            "--val-fraction",
            help="Share of labeled shapes per category held out for validation.",
            callback=_checked(check_fraction),
        ),
    ] = 0.1,
    max_steps: Annotated[
        int | None,
        typer.Option(
            "--max-steps",
            help="Stop after this many outer steps.",
            callback=_checked(check_count, 1),
        ),
    ] = None,
    model_config: Annotated[
        Path | None,
        typer.Option(
            "--model-config",
            help="JSON of BiPartConfig fields for the new model (default: the paper's sizes).",
        ),
    ] = None,
    encoder: EncoderOpt = None,
    resume: ResumeOpt = False,
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
                inner_steps=_alias(steps, old_inner_steps, 5),
                inner_lr=_alias(lr, old_inner_lr, 0.1),
                outer_lr=outer_lr,
                first_order=first_order,
                bilevel=not no_bilevel,
                use_extractor=not no_extractor,
                support_strategy=_alias(strategy, old_support, "part-perfect"),
                box_reduction=box_reduction,
                categories=categories,
                val_fraction=val_fraction,
                max_steps=max_steps,
                model_config=model_config,
                encoder=encoder,
                resume=resume,
                device=device,
                seed=seed,
                json_output=json_output,
                quiet=quiet,
            )
        )


@app.command()
def pretrain(
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="Unlabeled shapes: a folder of assets (searched recursively) or an index; repeatable.",
        ),
    ] = None,
    procedural: Annotated[
        int,
        typer.Option(
            "--procedural",
            help="Also generate this many shapes with the procedural generator.",
            callback=_checked(check_count, 0, 1_000_000),
        ),
    ] = 0,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Run folder: log.jsonl, checkpoint/, encoder/."),
    ] = None,
    steps: Annotated[
        int,
        typer.Option(
            "--steps",
            help="Optimizer steps of the whole run.",
            callback=_checked(check_count, 1, 10_000_000),
        ),
    ] = 2000,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", help="Shapes per step.", callback=_checked(check_count, 1, 4096)
        ),
    ] = 8,
    lr: Annotated[
        float,
        typer.Option(
            "--lr",
            help="Peak AdamW learning rate (linear warm-up, then cosine decay).",
            callback=_checked(check_rate, 1.0),
        ),
    ] = 1e-3,
    mask_ratio: Annotated[
        float,
        typer.Option(
            "--mask-ratio",
            help="Share of the coarsest tokens hidden (finer scales follow them).",
            callback=_checked(check_fraction),
        ),
    ] = 0.8,
    rotation: Annotated[
        str,
        typer.Option(
            "--rotation",
            help="Augmentation: so3 (any rotation), up (about the y axis) or none.",
            callback=_checked(check_choice, ROTATIONS),
        ),
    ] = "so3",
    save_every: Annotated[
        int,
        typer.Option(
            "--save-every",
            help="Steps between checkpoints.",
            callback=_checked(check_count, 1, 10_000_000),
        ),
    ] = 100,
    model_config: Annotated[
        Path | None,
        typer.Option(
            "--model-config",
            help="JSON of BiPartConfig fields; only the encoder's sizes matter here.",
        ),
    ] = None,
    resume: ResumeOpt = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Pre-train the encoder by multi-scale masked autoencoding (Point-M2AE) on unlabeled shapes."""
    with reported_errors(verbose, quiet):
        validate_device_spec(device)
        from .commands import run_pretrain

        raise typer.Exit(
            run_pretrain(
                out,
                data=list(data or []),
                procedural=procedural,
                steps=steps,
                batch_size=batch_size,
                lr=lr,
                mask_ratio=mask_ratio,
                rotation=rotation,
                save_every=save_every,
                seed=seed,
                model_config=model_config,
                resume=resume,
                device=device,
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
    weights_revision: WeightsRevisionOpt = None,
    old_revision: Annotated[str | None, _hidden("--revision")] = None,
    labeler: Annotated[
        str,
        typer.Option(
            "--labeler",
            help="'index': the targets' indexed pseudo labels join the support; 'none': few-shot.",
            callback=_checked(check_choice, ("index", "none")),
        ),
    ] = "index",
    steps: StepsOpt = _ADAPT.steps,
    lr: LrOpt = _ADAPT.lr,
    optimizer: OptimizerOpt = _ADAPT.optimizer,
    batch_points: BatchPointsOpt = _ADAPT.batch_points,
    descriptors: DescriptorsOpt = _ADAPT.descriptors,
    smooth: SmoothOpt = _ADAPT.smooth,
    normalise: NormaliseOpt = _ADAPT.normalise,
    support_size: SupportSizeOpt = 8,
    strategy: StrategyOpt = "part-perfect",
    box_reduction: BoxReductionOpt = "mean",
    up: UpOpt = "y",
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            help="Evaluate at most this many shapes.",
            callback=_checked(check_count, 1),
        ),
    ] = None,
    zero_shot: Annotated[
        bool,
        typer.Option(
            "--zero-shot",
            metavar=FLAG,
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
                weights_revision=_alias(weights_revision, old_revision, None),
                labeler=labeler,
                steps=steps,
                lr=lr,
                optimizer=optimizer,
                batch_points=batch_points,
                descriptors=descriptors,
                smooth=smooth,
                normalise=normalise,
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
def examples(
    out: Annotated[Path, typer.Argument(help="Folder to write the support sets into.")],
    categories: Annotated[
        str | None,
        typer.Option(
            "--categories",
            help="Comma-separated categories (default: all: chair, table, mug, lamp, airplane, "
            "car, guitar, knife, bottle, bed, sofa, bookshelf).",
        ),
    ] = None,
    per_category: Annotated[
        int,
        typer.Option(
            "--per-category",
            help="Labeled shapes per category.",
            callback=_checked(check_count, 1, 1000),
        ),
    ] = 6,
    seed: SeedOpt = 0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write labeled support folders OUT/<category>/ of procedural shapes, for offline few-shot
    use: bipart segment lamp.glb --parts base,pole,shade --support OUT/lamp."""
    with reported_errors(verbose, quiet):
        check_out_dir("OUT", out)
        from .commands import run_examples

        raise typer.Exit(
            run_examples(
                out,
                categories,
                per_category=per_category,
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


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: every error, usage ones included, is one ``error:`` line."""
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.TyperException as exc:  # Typer's parse errors (its vendored click)
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare ``bipart``: the help
            exc.show()
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} -h')" if ctx is not None else ""
        message = str(getattr(exc, "message", ""))
        if not (type(exc).__name__ == "BadParameter" and message.startswith("--")):
            message = exc.format_message()  # our checks name the option themselves
        print_error(f"{message}{hint}")
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Abort:
        print_error("aborted")
        sys.exit(1)
    except BipartError as exc:  # raised outside a command body (a parse-time check)
        print_error(str(exc))
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
