"""`curate export`, `curate export list`, `curate export diff`."""

from __future__ import annotations

from typing import Optional

import typer

from curate.cli._common import (
    JsonOpt, WorkspaceOpt, app, echo, emit, on_interrupt, open_workspace,
)
from pipelines.export import diff_exports, export_dataset, list_exports

export_app = typer.Typer(
    help="Write a versioned, hashed dataset (train/eval JSONL + manifest) from the curated records.\n\n"
         "Example: curate export --workspace ws --scheme summary_quality --format chat",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(export_app, name="export")


@export_app.callback()
def export_cmd(
    ctx: typer.Context,
    workspace: str = WorkspaceOpt,
    scheme: Optional[str] = typer.Option(None, help="Label scheme that selects the records."),
    format: Optional[str] = typer.Option(None, "--format",
                                         help="chat | alpaca | classification | preference."),
    synthetic: Optional[str] = typer.Option(
        None, help="Synthetic records: include | exclude | cap (default: include)."),
    synthetic_cap: Optional[float] = typer.Option(
        None, help="With --synthetic cap: the largest share synthetic rows may take (0.3)."),
    preference_style: Optional[str] = typer.Option(
        None, help="preference rows: conversational (messages) | standard (strings)."),
    eval_fraction: Optional[float] = typer.Option(None, help="Share of records for eval (0.1)."),
    gold_train: Optional[str] = typer.Option(
        None, "--gold-train", help="never | auto (default: gold trains only when nothing else "
                                   "would, e.g. an all-gold set) | always."),
    gold_eval_share: Optional[float] = typer.Option(
        None, help="Share of gold kept for eval when gold trains (0.2)."),
    min_confidence: Optional[float] = typer.Option(
        None, help="Minimum label-model confidence (0.8); human labels always pass."),
    accept: Optional[str] = typer.Option(
        None, help="Comma-separated final labels to export (default: ACCEPT or every class)."),
    pii: Optional[str] = typer.Option(
        None, "--pii", help="placeholder (default: <EMAIL>, <PERSON>...) | surrogate (consistent "
                            "fake values) | none (refused unless --allow-pii)."),
    allow_pii: bool = typer.Option(False, "--allow-pii",
                                   help="Write the export even with detected PII left in it."),
    force: bool = typer.Option(
        False, "--force", help="Write a new version even when the latest one holds the same data."),
    as_json: bool = JsonOpt,
):
    """Export the curated records as a new immutable version W/exports/vNNNN/.

    Detected PII is replaced by placeholders unless --pii says otherwise.

    Example: curate export --workspace ws --scheme claim_type --format classification --json

    Example: curate export --workspace ws --pii surrogate

    Example: curate export --workspace ws --scheme summary_quality --format preference --synthetic cap
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"workspace": workspace}
        return
    ws = open_workspace(workspace)
    with on_interrupt("no export version was written (its temporary folder is removed); the "
                      "workspace is as it was"):
        result = export_dataset(ws, scheme=scheme, format=format, eval_fraction=eval_fraction,
                                min_confidence=min_confidence, accept_labels=accept,
                                force=force, pii=pii, allow_pii=allow_pii or None,
                                gold_train=gold_train, gold_eval_share=gold_eval_share,
                                synthetic=synthetic, synthetic_cap=synthetic_cap,
                                preference_style=preference_style)
    if result.unchanged:
        echo(f"unchanged: {result.version} already holds exactly this data (--force writes a new "
             f"version)")
    echo(f"{result.version}: {result.train} train, {result.eval} eval ({result.format}, "
         f"scheme {result.scheme}) -> {result.path}")
    for split in ("train", "eval"):
        parts = ", ".join(f"{k} {v}" for k, v in sorted(result.labels[split].items()))
        echo(f"  {split}: {parts}")
    if result.pii:
        red = ", ".join(f"{k} {v}" for k, v in sorted(result.pii["redacted"].items()))
        echo(f"  pii ({result.pii['mode']}): redacted {red or 'nothing'}"
             + (f"; LEFT IN (--allow-pii): {result.pii['remaining']}"
                if result.pii["remaining"] else ""))
    if any(result.synthetic.values()):
        echo(f"  synthetic: train {result.synthetic['train']}, eval {result.synthetic['eval']}")
    if result.gold.get("trains"):
        g = result.gold
        echo(f"  gold: {g['train']} train, {g['eval']} eval (gold_train {g['policy']}, "
             f"{g['eval_share']:.0%} of gold held out for eval)")
    if result.skipped:
        echo("  left out: " + ", ".join(f"{k} {v}" for k, v in sorted(result.skipped.items())))
    if result.conditions:
        echo("  conversations: " + ", ".join(f"{k} {v}" for k, v in sorted(result.conditions.items()))
             + " (repaired; see docs/training.md)")
    if result.lengths.get("n"):
        ln = result.lengths
        echo(f"  length: p50 ~{ln['p50']}, p95 ~{ln['p95']}, max ~{ln['max']} tokens (estimate; "
             f"train measures with the base model's tokenizer)")
    emit(result.to_dict(), as_json)


@export_app.command("list")
def list_cmd(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """List the export versions of a workspace.

    Example: curate export list --workspace ws
    """
    rows = list_exports(open_workspace(workspace))
    for r in rows:
        echo(f"{r['version']}  {r['created_at']}  {r['scheme']:<18} {r['format']:<15} "
             f"train {r['train']:>6}  eval {r['eval']:>5}")
    if not rows:
        echo("no exports yet (run `curate export`)")
    emit({"exports": rows}, as_json)


@export_app.command("diff")
def diff_cmd(
    a: str = typer.Argument(..., help="Older version (v1, 1 or v0001)."),
    b: str = typer.Argument(..., help="Newer version."),
    workspace: str = WorkspaceOpt,
    limit: int = typer.Option(20, help="Ids to print per list (all go into --json)."),
    as_json: bool = JsonOpt,
):
    """List records added, removed and changed between two export versions.

    Example: curate export diff v1 v2 --workspace ws
    """
    d = diff_exports(open_workspace(workspace), a, b)
    echo(f"{d['from']} -> {d['to']}: {len(d['added'])} added, {len(d['removed'])} removed, "
         f"{len(d['changed'])} changed")
    for rid in d["added"][:limit]:
        echo(f"  + {rid}")
    for rid in d["removed"][:limit]:
        echo(f"  - {rid}")
    for c in d["changed"][:limit]:
        echo(f"  ~ {c['id']} ({', '.join(c['fields'])})")
    emit({**d, "n_added": len(d["added"]), "n_removed": len(d["removed"]),
          "n_changed": len(d["changed"])}, as_json)
