"""`curate train`, `curate train status`, `curate train list`: LoRA/QLoRA runs on an export."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import List, Optional

import typer

from curate.cli._common import JsonOpt, WorkspaceOpt, app, echo, emit, open_workspace
from pipelines.errors import TrainError
from trainer.config import TrainConfig

train_app = typer.Typer(
    help="Train on an export: a LoRA/QLoRA adapter (SFT head, classifier micro-model or DPO) or "
         "the probe (logistic regression on cached embeddings).\n\n"
         "Example: curate train --workspace ws --export v1 --head sft --max-steps 30",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(train_app, name="train")

_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _field_help(name: str) -> str:
    """A TrainConfig field's help and default, read from the dataclass (one source)."""
    f = _FIELDS[name]
    shown = "" if f.default is None else f" (default: {f.default})"
    return f"{f.metadata['help'][:1].upper()}{f.metadata['help'][1:]}{shown}."


def _field_opt(name: str, *flags: str):
    return typer.Option(None, *flags, help=_field_help(name))


@train_app.callback()
def train_cmd(
    ctx: typer.Context,
    workspace: str = WorkspaceOpt,
    export: Optional[str] = typer.Option(None, "--export", "-e", help="Export version (v1, v0001)."),
    head: Optional[str] = _field_opt("head"),
    config: Optional[str] = typer.Option(None, "--config", help="YAML file with TrainConfig fields."),
    base_model: Optional[str] = _field_opt("base_model"),
    method: Optional[str] = _field_opt("method"),
    max_steps: Optional[int] = _field_opt("max_steps"),
    epochs: Optional[float] = _field_opt("epochs"),
    batch_size: Optional[int] = _field_opt("batch_size"),
    learning_rate: Optional[float] = _field_opt("learning_rate"),
    max_seq_length: Optional[int] = _field_opt("max_seq_length"),
    device: Optional[str] = _field_opt("device"),
    memory_budget: Optional[str] = _field_opt("memory_budget", "--memory-budget"),
    set_: List[str] = typer.Option([], "--set", help="Any TrainConfig field: key=value (repeat)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a run from its last checkpoint."),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Run folder name (resume: which run)."),
    detach: bool = typer.Option(False, "--detach", help="Start in the background and return."),
    allow_download: bool = typer.Option(
        False, "--allow-download", help="Let the base model download from the Hugging Face hub "
                                        "(default: only local folders and the HF cache)."),
    as_json: bool = JsonOpt,
):
    """Train on an export version; writes W/runs/<id>/ (events.jsonl, checkpoints, adapter, eval.json).

    Example: curate train --workspace ws --export v1 --head probe

    Example: curate train --workspace ws --export v1 --head classifier --max-steps 40 --json

    Example: curate train --workspace ws --export v1 --head sft --method qlora --memory-budget 24GiB

    Example: curate train --workspace ws --export v3 --head dpo --max-steps 40 --json
    """
    if ctx.invoked_subcommand is not None:
        return
    from trainer import start_detached, train
    from pipelines.offline import ALLOW_DOWNLOAD_ENV

    if allow_download:   # also reaches a detached run, whose launcher keeps a set HF_HUB_OFFLINE
        os.environ[ALLOW_DOWNLOAD_ENV] = "1"
        os.environ["HF_HUB_OFFLINE"] = "0"

    if export is None:
        raise TrainError("--export is required (see `curate export list`)")
    ws = open_workspace(workspace)
    base = TrainConfig.from_yaml(config) if config else TrainConfig()
    cfg = base.replace(head=head, base_model=base_model, method=method, max_steps=max_steps,
                       epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                       max_seq_length=max_seq_length, device=device,
                       memory_budget=memory_budget).apply_overrides(set_)
    if detach:
        info = start_detached(ws, str(export), cfg, run_id=run_id, resume=resume)
        echo(f"started run {info['run_id']} (pid {info['pid']}); follow {info['path']}/events.jsonl")
        emit({"run_id": info["run_id"], "status": "started", "pid": info["pid"], "steps": 0,
              "path": info["path"], "eval": None}, as_json)
        return
    result = train(ws, str(export), cfg, run_id=run_id, resume=resume, progress=not as_json,
                   echo=echo)
    echo(f"run {result['run_id']}: {result['status']} after {result['steps']} steps; "
         f"adapter in {result['adapter']}")
    emit(result, as_json)


@train_app.command("list")
def list_cmd(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """List training runs with status, steps and last loss.

    Example: curate train list --workspace ws
    """
    from trainer import list_train_runs

    runs = list_train_runs(open_workspace(workspace))
    for r in runs:
        loss = f"{r['loss']:.4f}" if r["loss"] is not None else "-"
        echo(f"{r['run_id']:<36} {r['status']:<11} {r['head'] or '-':<10} step {r['steps']:>5} "
             f"loss {loss}")
    if not runs:
        echo("no training runs yet")
    emit({"runs": [{k: v for k, v in r.items() if k != "eval"} for r in runs]}, as_json)


@train_app.command("status")
def status_cmd(run: str = typer.Argument(..., help="Run id (folder under W/runs)."),
               workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """Show one run's status, progress and before/after evaluation.

    Example: curate train status 20261128-120000-sft-v0001 --workspace ws
    """
    from trainer import run_dir, run_summary
    from trainer.evaluate import format_eval_table

    s = run_summary(run_dir(open_workspace(workspace), run))
    echo(f"{s['run_id']}: {s['status']}, step {s['steps']}/{s['max_steps']}, loss {s['loss']}")
    if s["error"]:
        echo(f"error: {s['error']}")
    if s["eval"]:
        echo(format_eval_table(s["eval"]))
    emit(json.loads(json.dumps(s, default=str)), as_json)
