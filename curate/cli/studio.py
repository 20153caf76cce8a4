"""`curate studio`: start the Streamlit studio on 127.0.0.1 for a workspace."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from curate.cli._common import JsonOpt, WorkspaceOpt, app, echo, emit, open_workspace
from pipelines import launch
from pipelines.errors import ConfigError

__all__ = ["studio_command", "studio_cmd"]

_APP = Path(__file__).resolve().parents[2] / "studio" / "app.py"


def studio_command(port: int, address: str = "127.0.0.1") -> list[str]:
    """The `streamlit run` command line; every setting explicit, so the working folder's
    `.streamlit/config.toml` (if any) cannot open the server to the network."""
    return [
        sys.executable, "-m", "streamlit", "run", str(_APP),
        "--server.address", address,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--browser.serverAddress", address,
    ]


@app.command("studio")
def studio_cmd(
    workspace: str = WorkspaceOpt,
    port: int = typer.Option(8501, help="Port on 127.0.0.1."),
    as_json: bool = JsonOpt,
):
    """Start the studio (Streamlit) on 127.0.0.1 for the workspace; Ctrl-C (or SIGTERM) stops it.

    Example: curate studio --workspace ws --port 8501
    """
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535, got {port}")
    ws = open_workspace(workspace, create=True)
    url = f"http://127.0.0.1:{port}"
    echo(f"studio for {ws.path} at {url} (Ctrl-C to stop)")
    emit({"workspace": str(ws.path), "url": url, "port": port}, as_json)
    child = launch.start(launch.ChildSpec(studio_command(port), terminal=True,
                                          env={"CURATE_WORKSPACE": str(ws.path)}))
    try:
        rc = child.wait().returncode
    except KeyboardInterrupt:   # Ctrl-C or SIGTERM (`Terminated`): Child.wait stopped Streamlit's group
        echo("studio stopped")
        raise
    raise typer.Exit(rc)
