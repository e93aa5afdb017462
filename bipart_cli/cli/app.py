"""The Typer application, its root option ``--version``, and the one-line error reporting every command runs under."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Annotated

import typer
import typer.core

from .. import __version__
from ..errors import BipartError
from ..runtime import (
    print_error,
    setup_logging,
    stderr_console,
)
from .options import FLAG


class _PlainUsageCommand(typer.core.TyperCommand):
    """A command whose usage line names its arguments as ``--help`` does: ``DIR``,
    ``[ASSET]``, ``INPUT...``, not typer's ``{out}``."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.metavar or param.name.upper()
                name = name if param.required or name.startswith("[") else f"[{name}]"
                more = param.nargs != 1 and not name.endswith("...")
                pieces.append(name + ("..." if more else ""))
        return pieces


class _Typer(typer.Typer):
    """Every command gets :class:`_PlainUsageCommand`, and its docstring's paragraphs as
    flowing text (:func:`_flowing`)."""

    def command(self, *args, cls=None, **kwargs):
        register = super().command(*args, cls=cls or _PlainUsageCommand, **kwargs)

        def flowing_help(function):
            function.__doc__ = _flowing(function.__doc__)
            return register(function)

        return flowing_help


def _flowing(doc: str | None) -> str | None:
    """``doc`` with each paragraph's lines joined: typer keeps a docstring's line breaks
    after the first paragraph, and lines wrapped for the source break the terminal's."""
    if not doc:
        return doc
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


app = _Typer(
    name="bipart",
    help="Split 3D assets (GLB/OBJ/PLY meshes, point clouds) into named semantic parts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# --- parse-time checks: a bad value is a usage error (exit 2) before any work ---


@contextlib.contextmanager
def reported_errors(verbose: bool, quiet: bool = False) -> Iterator[None]:
    """Map library errors to one line on stderr and the right exit code."""
    setup_logging(verbose=verbose, quiet=quiet)
    try:
        yield
    except BipartError as exc:
        if verbose:
            stderr_console.print_exception()
        from ..runtime import user_message

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
