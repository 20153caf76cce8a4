"""Shared pieces of the `curate` CLI: the app, the workspace option, JSON summaries, errors.

Every command is a short loop over the library in `pipelines/`; what it prints for people goes
to stdout as text, and with `--json` its last line is one JSON object (stable keys).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator

import typer

from pipelines.store import Workspace

__all__ = ["app", "WorkspaceOpt", "JsonOpt", "open_workspace", "emit", "echo"]

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


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", envvar="CURATE_DEBUG",
                               help="Show the full traceback of an unexpected error "
                                    "(or set CURATE_DEBUG=1)."),
    lock_timeout: float = typer.Option(None, "--lock-timeout", min=0,
                                       help="Seconds a write waits for a busy workspace "
                                            "(default $CURATE_LOCK_TIMEOUT or 60)."),
):
    """Curation Studio: ingest, deduplicate, label, review, export and train."""
    # Environment, not a module global: a child process (`curate train --detach`) inherits it.
    if debug:
        os.environ["CURATE_DEBUG"] = "1"
    if lock_timeout is not None:
        os.environ["CURATE_LOCK_TIMEOUT"] = str(lock_timeout)

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
def on_interrupt(kept: str) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) inside: say what was kept, on stderr, and exit 130 (143 for SIGTERM).

    Args:
        kept: what the workspace holds after the interrupt, e.g. "nothing was ingested; the
            workspace is as it was" (the step must make that true: one transaction, or a temp
            folder renamed at the end).
    """
    from pipelines.store import Terminated

    try:
        yield
    except KeyboardInterrupt as exc:
        typer.echo(f"interrupted: {kept}", err=True)
        if isinstance(exc, Terminated):
            raise
        raise SystemExit(130) from None   # (click would turn Ctrl-C into Abort: exit 1)
