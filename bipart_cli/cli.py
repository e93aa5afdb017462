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
PartsOpt = Annotated[
    str | None,
    typer.Option("--parts", "-p", help='Comma-separated part names, e.g. "back,seat,leg,arm".'),
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
        stderr_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
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
    out_dir: OutDirOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Segment assets into the named parts; writes .parts.ply, .parts.glb and .parts.json."""
    with reported_errors(verbose, quiet):
        validate_device_spec(device)
        _not_built("segment", "issue 5")


@app.command()
def label(
    asset: Annotated[Path, typer.Argument(help="The asset to label.")],
    parts: PartsOpt = None,
    out_dir: OutDirOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Render the asset, run the part detector and write pseudo labels."""
    with reported_errors(verbose, quiet):
        validate_device_spec(device)
        _not_built("label", "issue 3")


@app.command()
def index(
    folder: Annotated[Path, typer.Argument(help="Folder of assets to index.")],
    out: Annotated[Path | None, typer.Option("--out", help="Index folder to write.")] = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Build a shape index (support-set source) from a folder of assets."""
    with reported_errors(verbose, quiet):
        validate_device_spec(device)
        _not_built("index", "issue 5")


@app.command()
def train(
    index_path: Annotated[str | None, typer.Option("--index", help="Training index.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run folder.")] = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Bi-level (MAML-style) training of the extractor and head."""
    with reported_errors(verbose, quiet):
        validate_device_spec(device)
        _not_built("train", "issue 6")


@app.command("eval")
def evaluate(
    index_path: Annotated[
        str | None, typer.Option("--index", help="Test index with ground truth.")
    ] = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Segment every labeled shape of an index and print mIoU."""
    with reported_errors(verbose, quiet):
        validate_device_spec(device)
        _not_built("eval", "issue 5")


@app.command()
def info(
    device: DeviceOpt = "auto",
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show versions, the resolved device, caches and optional backends."""
    with reported_errors(verbose, quiet):
        from .info import collect_info

        facts = collect_info(device)
        if json_output:
            import json

            typer.echo(json.dumps(facts, sort_keys=True))
        else:
            for key, value in facts.items():
                typer.echo(f"{key:>18}: {value}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except UsageError as exc:  # raised outside a command body
        stderr_console.print(f"[bold red]error:[/] {exc}")
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
