"""Logging and consoles (bipart_cli.runtime): one line per record, tracebacks under -v."""

from __future__ import annotations

import pytest

from bipart_cli.runtime import log, setup_logging


def _log_an_internal_error() -> None:
    try:
        {}["missing_key_in_a_batch_input"]
    except KeyError:
        log.debug("internal error on chair.glb", exc_info=True)
        log.error("chair.glb: internal error", exc_info=True)


@pytest.fixture(autouse=True)
def _quiet_afterwards():
    yield
    setup_logging()


def test_verbose_logging_shows_a_logged_exception_with_its_traceback(capsys):
    """Issue 31 item 7: a batch input's internal error is logged with ``exc_info``, and
    the line handler dropped it, so ``-v`` never showed the traceback it promises."""
    setup_logging(verbose=True)
    _log_an_internal_error()
    err = capsys.readouterr().err
    assert "debug: internal error on chair.glb" in err
    assert "Traceback" in err and "_log_an_internal_error" in err
    assert "missing_key_in_a_batch_input" in err


def test_without_verbose_an_error_stays_one_line(capsys):
    setup_logging(verbose=False)
    _log_an_internal_error()
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: chair.glb: internal error"]
