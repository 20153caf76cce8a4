"""`curate roi`: does curation pay on this workspace? Train the same micro-model per arm."""

from __future__ import annotations

from typing import Optional

import typer

from curate.cli._common import JsonOpt, WorkspaceOpt, app, echo, emit, open_workspace
from pipelines.errors import ConfigError
from curate.roi import SIMULATED_REVIEW_NOTE, RoiConfig, format_table, run_roi


def _budgets(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"--budgets must be comma-separated whole numbers, got {text!r}") from None


@app.command("roi")
def roi_cmd(
    workspace: str = WorkspaceOpt,
    scheme: Optional[str] = typer.Option(None, "--scheme", help="Label scheme (default: first)."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Training seeds per arm (3)."),
    quick: bool = typer.Option(False, "--quick", help="Few records, few steps: checks the "
                               "mechanics in about a minute, not the result."),
    budgets: Optional[str] = typer.Option(None, "--budgets", help="Review budgets N for the "
                                          "curated_<N> arms, e.g. 0,50,200,500."),
    max_train: Optional[int] = typer.Option(None, "--max-train", help="Cap per arm (2400)."),
    truth: Optional[str] = typer.Option(None, "--truth", help="Ground-truth JSONL that simulates "
                                        "the reviewer (default: truth.jsonl beside the data)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    head: str = typer.Option("lora", "--head", help="lora (LoRA + classifier head, the product's "
                             "micro-model) | probe (linear head on cached embeddings: seconds)."),
    as_json: bool = JsonOpt,
):
    """Train the same micro-model on raw, majority-vote, label-model and curated data; score each
    on the gold set (accuracy, macro-F1, 95% interval over seeds), after leakage checks.

    Example: curate roi --workspace ws --scheme claim_type --seeds 3
    """
    ws = open_workspace(workspace)
    overrides = dict(scheme=scheme, seeds=seeds, review_budgets=_budgets(budgets),
                     max_train=max_train, truth=truth, device=device, head=head)
    config = RoiConfig.quick(**overrides) if quick else RoiConfig(
        **{k: v for k, v in overrides.items() if v is not None})
    report = run_roi(ws, config, progress=not as_json, say=echo)
    echo()
    echo(format_table(report))
    v = report["verdict"]
    if v.get("note"):
        echo(f"best curated arm {v['best_curated']}; {v['note']}")
    elif v:
        echo(f"best curated arm {v['best_curated']}: {v['delta_accuracy_vs_raw']:+.3f} accuracy vs "
             f"raw; intervals {'overlap' if v['intervals_overlap'] else 'do not overlap'}")
    echo(f"note: {SIMULATED_REVIEW_NOTE}")
    echo(f"report: {report['report_path']}")
    emit({k: report[k] for k in ("scheme", "head", "arms", "verdict", "leakage", "n_eval",
                                 "seeds", "device", "simulated_review", "report_path", "run_id",
                                 "skipped_arms")}
         | {"quick": quick}, as_json)
