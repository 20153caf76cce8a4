"""`curate models list|show|remove` and `curate models router train`: the registered adapters and
the router between them (`curate serve` and `curate predict` use them: curate/cli/serve.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import typer

from curate.cli._common import JsonOpt, WorkspaceOpt, app, echo, emit, open_workspace
from pipelines.errors import ConfigError

models_app = typer.Typer(
    help="Registered models: every finished run's adapter, and the routers between them.\n\n"
         "Example: curate models list --workspace ws",
    no_args_is_help=True,
)
router_app = typer.Typer(help="The learned router between task adapters.\n\n"
                              "Example: curate models router train --workspace ws",
                         no_args_is_help=True)
models_app.add_typer(router_app, name="router")
app.add_typer(models_app, name="models")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


@models_app.command("list")
def list_cmd(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """List registered models: name, task (scheme/head), base, export, size, evaluation.

    Example: curate models list --workspace ws --json
    """
    from trainer.registry import list_models

    entries = list_models(open_workspace(workspace))
    for e in entries:
        base = Path(e.base_model).name if e.base_model else "-"
        echo(f"{e.name:<32} {e.task:<22} {base:<22} {e.export or '-':<6} {_size(e.size_bytes):>9}  "
             f"{e.score()}")
    if not entries:
        echo("no models yet: train a run (curate train) and it is registered when it finishes")
    emit({"models": [e.to_dict() for e in entries]}, as_json)


@models_app.command("show")
def show_cmd(name: str = typer.Argument(..., help="Model name (or its run id)."),
             workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """Show one model with its whole evaluation.

    Example: curate models show topic-classifier-v0003 --workspace ws
    """
    from trainer.registry import get_model

    e = get_model(open_workspace(workspace), name)
    for k, v in e.to_dict().items():
        if k != "evaluation":
            echo(f"{k:<11} {v}")
    echo("evaluation " + json.dumps(e.evaluation, indent=1, default=str))
    emit(e.to_dict(), as_json)


@models_app.command("remove")
def remove_cmd(name: str = typer.Argument(..., help="Model name (or its run id)."),
               yes: bool = typer.Option(False, "--yes", help="Really delete the adapter folder."),
               workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """Delete a model's adapter (or router) folder and its registry row; the run's events,
    eval.json and checkpoints stay.

    Example: curate models remove summary-sft-v0001 --workspace ws --yes
    """
    from trainer.registry import get_model, remove_model

    ws = open_workspace(workspace)
    if not yes:
        e = get_model(ws, name)
        raise ConfigError(f"removing {e.name} deletes {e.path}: add --yes to confirm")
    e = remove_model(ws, name)
    echo(f"removed {e.name} ({e.path})")
    emit({"removed": e.name, "path": e.path}, as_json)


@router_app.command("train")
def router_train_cmd(
    workspace: str = WorkspaceOpt,
    name: str = typer.Option("router", "--name", help="Registry name of the router."),
    model: List[str] = typer.Option([], "--model", "-m",
                                    help="An adapter to route to (repeat; default: all)."),
    threshold: float = typer.Option(0.5, help="Below this confidence, fall back."),
    fallback: str = typer.Option("base", help="base (answer with the base model) or ask."),
    features: str = typer.Option("lines",
                                 help="lines (each line of the prompt embedded on its own: "
                                      "robust to a reworded instruction), embedding (the whole "
                                      "prompt), or embedding+ngrams (plus hashed word n-grams "
                                      "of the prompt and its first line)."),
    as_json: bool = JsonOpt,
):
    """Train the router on the prompts of each adapter's export; evaluate on their eval splits.

    Example: curate models router train --workspace ws --threshold 0.6 --fallback ask
    """
    from trainer.router import RouterConfig, train_router

    cfg = RouterConfig(name=name, models=list(model) or None, threshold=threshold,
                       fallback=fallback, features=features)
    _, entry = train_router(open_workspace(workspace), cfg)
    ev = entry.evaluation
    echo(f"router {entry.name}: routing accuracy {ev['accuracy']} on {ev['n']} held-out prompts "
         f"(fallback below {threshold}: {ev['fallback_rate']})")
    for task, t in ev["per_task"].items():
        echo(f"  {task:<32} n {t['n']:>4}  accuracy {t['accuracy']}")
    emit(entry.to_dict(), as_json)
