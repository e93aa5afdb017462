"""``bipart examples`` and ``bipart info``: example support folders, and facts about the install or an asset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import InvalidInputError
from ..runtime import (
    check_count,
    check_out_dir,
)
from .app import app, reported_errors
from .options import (
    CategoriesOpt,
    DeviceOpt,
    JsonOpt,
    PartsOpt,
    QuietOpt,
    SeedOpt,
    VerboseOpt,
    _checked,
)


@app.command()
def examples(
    out: Annotated[
        Path,
        typer.Argument(
            metavar="DIR", help="Folder to write the support sets into (DIR/<category>/)."
        ),
    ],
    categories: CategoriesOpt = None,
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
    """Write labeled support folders of procedural shapes, for offline few-shot use.

    One folder DIR/<category>/ per category, for example: bipart segment lamp.glb --parts
    base,pole,shade --support DIR/lamp. The posed creatures (humanoid, quadruped, bird,
    fish, hand, octopus), cabinets (body, door, drawer) and appliances (body, door) only
    when named in --categories."""
    with reported_errors(verbose, quiet):
        check_out_dir("OUT", out)
        from ..commands import run_examples

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
        typer.Argument(
            metavar="[ASSET | INDEX]",
            help="An asset to summarise (format, size, labeled parts, bbox), or an index folder "
            "(shapes, categories, parts, how it was built).",
        ),
    ] = None,
    parts: PartsOpt = None,
    device: DeviceOpt = "auto",
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show versions, device and caches; with ASSET or INDEX, summarise it.

    Without an argument: the versions, the device and the caches (the Hub's and bipart's
    own). With ASSET, that asset's summary; with INDEX, that index's instead. An asset's
    node names are part labels only when --parts (or a parts.json beside it) names them:
    exporters name nodes too."""
    with reported_errors(verbose, quiet):
        if asset is not None and (asset / "manifest.json").is_file():
            from ..index import ShapeIndex
            from ..index.describe import describe_index, format_index_summary

            facts = describe_index(ShapeIndex.open(asset, verify=False))
            lines = format_index_summary(facts)
        elif asset is not None:
            from ..io import describe_asset, format_asset_summary, load_asset
            from ..parts import parse_part_names

            if asset.is_dir():
                raise InvalidInputError(
                    f"{asset}: is a directory without a bipart index (manifest.json); give an asset "
                    "file or an index folder"
                )
            requested = None if parts is None else parse_part_names(parts)
            facts = describe_asset(load_asset(asset), requested)
            lines = format_asset_summary(facts)
        else:
            from ..info import collect_info, format_info

            facts = collect_info(device)
            lines = format_info(facts)
        if json_output:
            import json

            typer.echo(json.dumps(facts, sort_keys=True))
        else:
            typer.echo("\n".join(lines))
