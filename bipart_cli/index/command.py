"""Body of ``bipart index``: build or merge, then print a summary.

Imported only when the command runs (the CLI module stays light).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..runtime import log, print_error, stdout_console

EXIT_OK, EXIT_ERROR, EXIT_PARTIAL = 0, 1, 3
# the CLI's --labeler checks these at parse time (cli/options.py)
CLI_LABELERS = ("given", "detector", "simulated")


def run_index(
    inputs: list[str],
    *,
    out: Path | None,
    labeler: str,
    detector_options: dict[str, Any],
    json_output: bool,
    quiet: bool,
    **options: Any,
) -> int:
    """``bipart index DIR --out INDEX`` or ``bipart index merge PART... --out INDEX``.

    Returns the exit code: 0, 3 when some files could not be indexed, or 1 when no file
    was labeled. Files left out as unlabeled are summed up in one warning per reason.
    """
    from .build import build_index
    from .merge import merge_indexes

    if out is None:
        raise UsageError("--out is required: the index folder to write")
    if inputs and inputs[0] == "merge":
        if options.get("shard") is not None:
            raise UsageError("--shard builds a part; 'index merge' joins parts")
        summary = merge_indexes(inputs[1:], out, progress=not quiet)
    else:
        if len(inputs) != 1:
            raise UsageError(
                "give one folder to index (or: bipart index merge PART... --out INDEX)"
            )
        labeler_options = (
            {k: v for k, v in detector_options.items() if v is not None}
            if labeler == "detector"
            else {}
        )
        summary = build_index(
            inputs[0],
            out,
            labeler=labeler,
            labeler_options=labeler_options,
            progress=not quiet,
            **options,
        )
    unlabeled = getattr(summary, "unlabeled", [])  # a merge has none
    for line in unlabeled_lines(unlabeled, summary.files):
        log.warning("%s", line)
    if json_output:
        print(json.dumps(summary.to_json(), sort_keys=True))
    elif not quiet or summary.failed:
        stdout_console.print(_summary_line(summary), highlight=False, markup=False)
    if unlabeled and summary.entries == 0:
        print_error(
            f"{inputs[0]}: none of its {summary.files} files has part labels; name the parts "
            "with --parts or a parts.json, or use --labeler detector"
        )
        return EXIT_ERROR
    return EXIT_PARTIAL if summary.failed else EXIT_OK


def unlabeled_lines(unlabeled: list[dict[str, str]], files: int) -> list[str]:
    """One line per reason files were left out as unlabeled, with how many and an example."""
    by_reason: dict[str, list[dict[str, str]]] = {}
    for item in unlabeled:
        by_reason.setdefault(item["why"], []).append(item)
    return [
        f"{len(items)} of {files} files left out as unlabeled: {why} "
        f"(e.g. {items[0]['path']}, {items[0]['names']})"
        for why, items in by_reason.items()
    ]


def _summary_line(summary) -> str:
    done = (
        f"{summary.entries} shapes in {summary.out} ({summary.shards} shards"
        f"{', with encoder features' if summary.features_cached else ''})"
    )
    work = (
        f"{summary.indexed} indexed, {summary.unchanged} unchanged, {summary.resumed} resumed, "
        f"{summary.removed} removed"
    )
    failed = f"; {len(summary.failed)} failed" if summary.failed else ""
    unlabeled = getattr(summary, "unlabeled", [])
    skipped = f"; {len(unlabeled)} unlabeled, left out" if unlabeled else ""
    return f"{done}: {work}{failed}{skipped}"
