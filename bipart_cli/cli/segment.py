"""``bipart segment``, ``bipart label`` and ``bipart index``: the main job and what feeds it (pseudo labels, shape indexes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..runtime import (
    check_count,
    check_folder,
    validate_device_spec,
)
from .app import app, reported_errors
from .options import (
    _ADAPT,
    FLAG,
    MAX_POINTS,
    BatchPointsOpt,
    BoxReductionOpt,
    CategoryOpt,
    DescriptorsOpt,
    DetectorOpt,
    DetectorRevisionOpt,
    DeviceOpt,
    IndexOpt,
    IndexOutOpt,
    JsonOpt,
    KnnKOpt,
    KnnWeightOpt,
    LabelerOpt,
    LrOpt,
    MatchPoseOpt,
    NamesOpt,
    NormaliseOpt,
    OfflineOpt,
    OldRevisionOpt,
    OptimizerOpt,
    OutDirOpt,
    PartsOpt,
    PointsOpt,
    PositionOpt,
    PresenceOpt,
    QuietOpt,
    RegionAgreementOpt,
    RegisteredWeightOpt,
    RequiredPartsOpt,
    SeedOpt,
    SmoothOpt,
    StepsOpt,
    StrategyOpt,
    SupportSizeOpt,
    ThresholdOpt,
    UpOpt,
    VerboseOpt,
    WeightsOpt,
    WeightsRevisionOpt,
    _alias,
    _checked,
    _hidden,
)


@app.command()
def segment(
    inputs: Annotated[list[str], typer.Argument(help="Assets or globs to segment.")],
    parts: RequiredPartsOpt,
    index_path: IndexOpt = None,
    support: Annotated[
        str | None,  # a str: Typer makes "" the Path "." (the current folder) before the check
        typer.Option(
            "--support",
            help="Folder of labeled assets used directly as the support set.",
            callback=_checked(check_folder),
        ),
    ] = None,
    category: CategoryOpt = None,
    weights: WeightsOpt = None,
    weights_revision: WeightsRevisionOpt = None,
    old_revision: OldRevisionOpt = None,
    labeler: LabelerOpt = "auto",
    detector: DetectorOpt = None,
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
    knn_weight: KnnWeightOpt = _ADAPT.knn_weight,
    match_pose: MatchPoseOpt = _ADAPT.match_pose,
    position: PositionOpt = _ADAPT.position,
    knn_k: KnnKOpt = _ADAPT.knn_k,
    registered_weight: RegisteredWeightOpt = _ADAPT.registered_weight,
    region_agreement: RegionAgreementOpt = _ADAPT.region_agreement,
    names: NamesOpt = True,
    presence: PresenceOpt = _ADAPT.presence,
    support_size: SupportSizeOpt = 8,
    strategy: StrategyOpt = "part-perfect",
    box_reduction: BoxReductionOpt = "mean",
    up: UpOpt = "auto",
    n_dense: PointsOpt = 100_000,
    out_dir: OutDirOpt = None,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview",
            metavar=FLAG,
            help="Also write <stem>.parts.png: the labeled points from four views, with point counts.",
        ),
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
        from ..commands import run_segment

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
            knn_weight=knn_weight,
            match_pose=match_pose,
            position=position,
            knn_k=knn_k,
            registered_weight=registered_weight,
            region_agreement=region_agreement,
            names=names,
            presence=presence,
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
    labeler: LabelerOpt = "detector",
    detector: DetectorOpt = None,
    detector_revision: DetectorRevisionOpt = None,
    old_revision: OldRevisionOpt = None,
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
        from ..labeling.api import label_file

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
    out: IndexOutOpt = None,
    category: CategoryOpt = None,
    parts: PartsOpt = None,
    labeler: LabelerOpt = "given",
    detector: DetectorOpt = None,
    detector_revision: DetectorRevisionOpt = None,
    threshold: ThresholdOpt = None,
    no_cache_features: Annotated[
        bool,
        typer.Option(
            "--no-cache-features", metavar=FLAG, help="Do not store frozen-encoder features."
        ),
    ] = False,
    weights: WeightsOpt = None,
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
        from ..index.command import run_index

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
