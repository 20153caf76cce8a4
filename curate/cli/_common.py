"""Shared pieces of the `curate` CLI: the app, the workspace option, JSON summaries, errors.

Every command is a short loop over the library in `pipelines/`; what it prints for people goes
to stdout as text, and with `--json` its last line is one JSON object (stable keys).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from pipelines.store import Workspace

__all__ = ["app", "WorkspaceOpt", "JsonOpt", "open_workspace", "emit", "echo",
           "sigterm_as_interrupt"]

app = typer.Typer(
    name="curate",
    help="Curation Studio: ingest, deduplicate, label, review, export and train.\n\n"
         "Example: curate init --workspace ws --sample && curate status --workspace ws",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DEFAULT_WORKSPACE = os.environ.get("CURATE_WORKSPACE", "workspace")

WorkspaceOpt = typer.Option(
    DEFAULT_WORKSPACE, "--workspace", "-w",
    help="Workspace folder (default: $CURATE_WORKSPACE or ./workspace).",
)
JsonOpt = typer.Option(False, "--json", help="Print a machine-readable summary as the last line.")


def open_workspace(path: str | Path, *, create: bool = False) -> Workspace:
    return Workspace.create(path) if create else Workspace.open(path)


def echo(message: str = "", *, quiet: bool = False) -> None:
    if not quiet:
        typer.echo(message)


def emit(summary: dict[str, Any], as_json: bool) -> None:
    """Print `summary` as the last line, one JSON object, when --json was given."""
    if as_json:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM (`kill PID`) raises KeyboardInterrupt like Ctrl-C does, so a
    command that owns child processes stops them on either signal."""
    def _raise(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except ValueError:   # not the main thread (e.g. a test runner's worker): nothing to hook
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
