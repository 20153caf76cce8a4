"""`curate label`: apply a scheme's labeling functions and store one label per record."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Optional

import typer

from curate.cli._common import (
    JsonOpt, WorkspaceOpt, app, echo, emit, on_interrupt, open_workspace,
)
from pipelines.config import load_config
from pipelines.weak_supervision import LabelConfig   # light: snorkel loads when a run starts

if TYPE_CHECKING:
    from pipelines.weak_supervision import LabelingResult


def _pct(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.1f}%"


def _print_result(r: LabelingResult) -> None:
    echo(f"scheme {r.scheme}: {r.n_lfs} LFs on {r.n_records} records ({r.engine} engine, "
         f"{r.seconds:.1f} s), run {r.run_id}")
    echo(f"{'LF':<30} {'polarity':<28} {'cover':>6} {'overlap':>7} {'conflict':>8} "
         f"{'acc(gold)':>9} {'n':>4} {'faults':>6}")
    for s in r.lf_summary:
        pol = ",".join(s["polarity"])
        pol = pol if len(pol) <= 28 else pol[:25] + "..."
        echo(f"{s['lf']:<30} {pol:<28} {_pct(s['coverage']):>6} {_pct(s['overlaps']):>7} "
             f"{_pct(s['conflicts']):>8} {_pct(s['emp_accuracy']):>9} {s['n_gold_votes']:>4} "
             f"{s['faults'] or '':>6}")
        if s["faults"]:
            echo(f"    faults on: {', '.join(s['fault_examples'])}")
    echo(f"coverage of the LF set: {_pct(r.coverage)}; unlabelled (every LF abstained): "
         f"{r.abstained}")
    _print_gold(r)
    for note in r.notes:
        echo(f"  note: {note}")
    echo("labels: " + ", ".join(f"{k}={v}" for k, v in r.label_counts.items()))


def _gold_phrase(name: str, sc: dict | None) -> str:
    if not sc or not sc.get("n_gold_total"):
        return f"{name} n/a"
    return (f"{name} {_pct(sc['accuracy']) or 'n/a'} of covered ({sc['n_gold']} of "
            f"{sc['n_gold_total']}), {_pct(sc['accuracy_all'])} counting abstentions")


def _print_gold(r: LabelingResult) -> None:
    """Covered-of-total and abstention-counted accuracy for both models, then the chosen one's
    per-class accuracy and confusion against gold (the last column: abstained)."""
    lm, mv = r.scores.get("label_model"), r.scores.get("majority")
    echo(f"on {r.n_gold} gold records: {_gold_phrase('label model', lm)}; "
         f"{_gold_phrase('majority vote', mv)} -> using {r.model}")
    chosen = r.scores.get(r.model)
    if not chosen or not chosen.get("n_gold_total") or not r.classes:
        return
    width = max(8, *(len(c) for c in r.classes))
    echo(f"  {'gold class':<{width}} {'n':>5} {'covered':>7} {'correct':>7} {'accuracy':>8}"
         f"   ({r.model}, abstentions counted)")
    for c, pc in zip(r.classes, chosen["per_class"]):
        echo(f"  {c:<{width}} {pc['n']:>5} {pc['covered']:>7} {pc['correct']:>7} "
             f"{_pct(pc['accuracy']) or '-':>8}")
    cols = [c[:8] for c in r.classes] + ["abstain"]
    echo(f"  confusion (rows gold, columns {r.model}):")
    echo(f"  {'':<{width}} " + " ".join(f"{c:>8}" for c in cols))
    for c, row in zip(r.classes, chosen["confusion"]):
        echo(f"  {c:<{width}} " + " ".join(f"{v:>8}" for v in row))


@app.command("label")
def label_cmd(
    workspace: str = WorkspaceOpt,
    scheme: Optional[str] = typer.Option(None, help="Label scheme from curation.yaml "
                                                    "(default: the first)."),
    model: Optional[str] = typer.Option(None, help="auto | label_model | majority "
                                                   "(default: auto, the better on gold labels)."),
    engine: Optional[str] = typer.Option(None, help="fast | pandas | dask (default: fast)."),
    dask_address: Optional[str] = typer.Option(None, "--dask-address",
                                               help="Existing Dask scheduler (implies --engine "
                                                    "dask); default: a LocalCluster."),
    epochs: Optional[int] = typer.Option(None, help="Label model training epochs (500)."),
    seed: Optional[int] = typer.Option(None, help="Label model seed."),
    time_limit: Optional[float] = typer.Option(
        None, "--time-limit", help="Seconds the LFs may take on all records; past it the run "
                                   "stops, naming the LF that was running (600; 0: none)."),
    as_json: bool = JsonOpt,
):
    """Apply the scheme's LFs (its lf_modules and W/lfs/*.py), aggregate, store the labels.

    Prints each LF's coverage, overlaps, conflicts, accuracy on gold labels and faults, and the
    label model vs majority vote on gold labels. `curate records` then shows label/confidence.

    Example: curate label --workspace ws --scheme claim_type --json
    """
    ws = open_workspace(workspace)
    cfg = load_config(ws.config_path)
    if dask_address and engine is None:
        engine = "dask"
    config = LabelConfig.from_section(cfg.section("label"), scheme=scheme, model=model,
                                      engine=engine, dask_address=dask_address, epochs=epochs,
                                      seed=seed, time_limit_s=time_limit)
    with on_interrupt("no labels changed (the run is recorded as interrupted); the workspace "
                      "is otherwise as it was"):
        from pipelines.weak_supervision import run_labeling
        result = run_labeling(ws, config, progress=sys.stderr.isatty())
    _print_result(result)
    summary = result.to_dict()
    summary["n_lfs"] = result.n_lfs
    emit(summary, as_json)
