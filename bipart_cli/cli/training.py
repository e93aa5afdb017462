"""``bipart train``, ``bipart pretrain`` and ``bipart eval``: weights, and how well they segment."""

from __future__ import annotations

from typing import Annotated

import typer

from ..pretrain.corpus import ROTATIONS
from ..runtime import (
    check_choice,
    check_count,
    check_fraction,
    check_rate,
    validate_device_spec,
)
from ..support import STRATEGIES
from .app import app, reported_errors
from .options import (
    _ADAPT,
    FLAG,
    MAX_LR,
    MAX_STEPS,
    BatchPointsOpt,
    BatchSizeOpt,
    BoxReductionOpt,
    CategoriesOpt,
    DescriptorsOpt,
    DeviceOpt,
    EncoderOpt,
    IndexOpt,
    JsonOpt,
    KnnKOpt,
    KnnWeightOpt,
    LabelerOpt,
    LrOpt,
    MatchPoseOpt,
    MaxStepsOpt,
    ModelConfigOpt,
    NormaliseOpt,
    OldRevisionOpt,
    OptimizerOpt,
    OuterLrOpt,
    PositionOpt,
    PresenceOpt,
    PretrainOutOpt,
    QuietOpt,
    RegisteredWeightOpt,
    ResumeOpt,
    SeedOpt,
    SmoothOpt,
    StepsOpt,
    StrategyOpt,
    SupportSizeOpt,
    TrainOutOpt,
    UpOpt,
    VerboseOpt,
    WeightsOpt,
    WeightsRevisionOpt,
    _alias,
    _checked,
    _hidden,
)


@app.command()
def train(
    index_path: IndexOpt = None,
    out: TrainOutOpt = None,
    epochs: Annotated[
        int,
        typer.Option("--epochs", help="Outer-loop epochs.", callback=_checked(check_count, 1)),
    ] = 10,
    batch_size: BatchSizeOpt = 8,
    support_size: SupportSizeOpt = 8,
    steps: StepsOpt = 5,
    old_inner_steps: Annotated[
        int | None, _hidden("--inner-steps", callback=_checked(check_count, 1, MAX_STEPS))
    ] = None,
    lr: LrOpt = 0.1,
    old_inner_lr: Annotated[
        float | None, _hidden("--inner-lr", callback=_checked(check_rate, MAX_LR))
    ] = None,
    outer_lr: OuterLrOpt = 1e-4,
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
    categories: CategoriesOpt = None,
    val_fraction: Annotated[
        float,
        typer.Option(
            "--val-fraction",
            help="Share of labeled shapes per category held out for validation.",
            callback=_checked(check_fraction),
        ),
    ] = 0.1,
    max_steps: MaxStepsOpt = None,
    model_config: ModelConfigOpt = None,
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
        from ..commands import run_train

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
    out: PretrainOutOpt = None,
    max_steps: MaxStepsOpt = 2000,
    batch_size: BatchSizeOpt = 8,
    outer_lr: OuterLrOpt = 1e-3,
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
    model_config: ModelConfigOpt = None,
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
        from ..commands import run_pretrain

        raise typer.Exit(
            run_pretrain(
                out,
                data=list(data or []),
                procedural=procedural,
                steps=max_steps,
                batch_size=batch_size,
                lr=outer_lr,
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
    index_path: IndexOpt = None,
    support_index: Annotated[
        str | None,
        typer.Option(
            "--support-index", help="Index the support sets come from (default: the test index)."
        ),
    ] = None,
    weights: WeightsOpt = None,
    weights_revision: WeightsRevisionOpt = None,
    old_revision: OldRevisionOpt = None,
    labeler: LabelerOpt = "index",
    steps: StepsOpt = _ADAPT.steps,
    lr: LrOpt = _ADAPT.lr,
    optimizer: OptimizerOpt = _ADAPT.optimizer,
    batch_points: BatchPointsOpt = _ADAPT.batch_points,
    descriptors: DescriptorsOpt = _ADAPT.descriptors,
    smooth: SmoothOpt = _ADAPT.smooth,
    normalise: NormaliseOpt = _ADAPT.normalise,
    knn_weight: KnnWeightOpt = _ADAPT.knn_weight,
    match_pose: MatchPoseOpt = _ADAPT.match_pose,
    position: PositionOpt = _ADAPT.position,
    knn_k: KnnKOpt = _ADAPT.knn_k,
    registered_weight: RegisteredWeightOpt = _ADAPT.registered_weight,
    presence: PresenceOpt = _ADAPT.presence,
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
        from ..commands import run_eval

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
                knn_weight=knn_weight,
                match_pose=match_pose,
                position=position,
                knn_k=knn_k,
                registered_weight=registered_weight,
                presence=presence,
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
