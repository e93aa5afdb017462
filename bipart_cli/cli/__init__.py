"""The ``bipart`` command line: a thin Typer layer over the pipeline modules.

Conventions: results on stdout (``--json`` for scripts), progress and logs on
stderr, exit codes 0 ok, 1 error, 2 usage, 3 partial failure in a batch.
Pipeline modules are imported inside the commands so ``--help`` stays light.

- :mod:`.options`: every option declared once, with its parse-time check;
- :mod:`.app`: the Typer app and the one-line error reporting;
- :mod:`.segment`, :mod:`.training`, :mod:`.tools`: the commands, in the order ``--help`` lists them.
"""

from __future__ import annotations

import sys

import typer

from ..errors import BipartError
from ..runtime import exit_without_teardown, print_error, tune_collector_for_a_command
from .app import app

# importing a command module registers its commands on ``app``; --help lists them in this order
# isort: off
from . import segment  # noqa: F401
from . import training  # noqa: F401
from . import tools  # noqa: F401

# isort: on

__all__ = ["app", "console_script", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: every error, usage ones included, is one ``error:`` line."""
    tune_collector_for_a_command()
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


def console_script() -> None:
    """The ``bipart`` executable and ``python -m bipart_cli``: :func:`main`, then an exit
    that skips the interpreter's teardown (:func:`~bipart_cli.runtime.exit_without_teardown`).
    ``main`` itself ends in ``SystemExit``, for callers that run it in-process."""
    try:
        main()
    except SystemExit as exc:
        code = exc.code
        if code is not None and not isinstance(code, int):
            print_error(str(code))  # as Python reports ``sys.exit("message")``
        exit_without_teardown(code if isinstance(code, int) else int(code is not None))
