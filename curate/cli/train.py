"""`curate train`, `curate train status`, `curate train list`: LoRA/QLoRA runs on an export."""

from __future__ import annotations

import json
from typing import List, Optional

import typer

from curate.cli._common import JsonOpt, WorkspaceOpt, app, echo, emit, open_workspace
from pipelines.errors import TrainError

train_app = typer.Typer(
    help="Train on an export: a LoRA/QLoRA adapter (SFT head or classifier micro-model) or "
         "the probe (logistic regression on cached embeddings).\n\n"
         "Example: curate train --workspace ws --export v1 --head sft --max-steps 30",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(train_app, name="train")


@train_app.callback()
def train_cmd(
    ctx: typer.Context,
    workspace: str = WorkspaceOpt,
    export: Optional[str] = typer.Option(None, "--export", "-e", help="Export version (v1, v0001)."),
    head: Optional[str] = typer.Option(
        None, help="sft | probe (seconds: logistic regression on cached embeddings) | "
                   "classifier (LoRA on the encoder)."),
    config: Optional[str] = typer.Option(None, "--config", help="YAML file with TrainConfig fields."),
    base_model: Optional[str] = typer.Option(None, help="Local folder or hub id of the base model."),
    method: Optional[str] = typer.Option(None, help="lora | qlora."),
    max_steps: Optional[int] = typer.Option(None, help="Cap the run at N optimizer steps."),
    epochs: Optional[float] = typer.Option(None, help="Passes over the train split."),
    batch_size: Optional[int] = typer.Option(None, help="Examples per step."),
    learning_rate: Optional[float] = typer.Option(None, help="Peak learning rate."),
    max_seq_length: Optional[int] = typer.Option(None, help="Tokens per example."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda."),
    memory_budget: Optional[str] = typer.Option(
        None, "--memory-budget",
        help="GPU memory the run may use, e.g. 24GiB (sft on CUDA: autotunes micro-batch x "
             "accumulation, checkpointing and liger within it; ignored on CPU)."),
    set_: List[str] = typer.Option([], "--set", help="Any TrainConfig field: key=value (repeat)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a run from its last checkpoint."),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Run folder name (resume: which run)."),
    detach: bool = typer.Option(False, "--detach", help="Start in the background and return."),
    as_json: bool = JsonOpt,
):
    """Train on an export version; writes W/runs/<id>/ (events.jsonl, checkpoints, adapter, eval.json).

    Example: curate train --workspace ws --export v1 --head probe

    Example: curate train --workspace ws --export v1 --head classifier --max-steps 40 --json

    Example: curate train --workspace ws --export v1 --head sft --method qlora --memory-budget 24GiB
    """
    if ctx.invoked_subcommand is not None:
        return
    from trainer import TrainConfig, start_detached, train

    if export is None:
        raise TrainError("--export is required (see `curate export list`)")
    ws = open_workspace(workspace)
    base = TrainConfig.from_yaml(config) if config else TrainConfig()
    cfg = base.replace(head=head, base_model=base_model, method=method, max_steps=max_steps,
                       epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                       max_seq_length=max_seq_length, device=device,
                       memory_budget=memory_budget).apply_overrides(set_)
    if detach:
        from trainer.runs import new_run_id

        rid = run_id or new_run_id(cfg.head, str(export))
        args = [] if not resume else ["--resume"]
        if config:
            args += ["--config", config]
        for name in ("head", "base_model", "method", "max_steps", "epochs", "batch_size",
                     "learning_rate", "max_seq_length", "device", "memory_budget"):
            value = locals()[name]
            if value is not None:
                args += [f"--{name.replace('_', '-')}", str(value)]
        for pair in set_:
            args += ["--set", pair]
        info = start_detached(ws, str(export), args, run_id=rid)
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
