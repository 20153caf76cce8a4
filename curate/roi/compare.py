""""Did curation pay?": compare finished training runs of one head across exports.

Reads runs only through `trainer.runs.list_train_runs` (each run's summary: its start event and
`eval.json`) and exports only through `pipelines.export.load_manifest`, so it sees runs started
from the CLI or the studio alike. The first run (oldest) is the baseline the deltas are taken
against: train once on the raw export, then on each curated one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.errors import InputError, StudioError
from pipelines.export import load_manifest
from trainer.runs import list_train_runs

__all__ = ["compare_runs", "load_sft_report", "sft_summary_rows", "sft_budget_note"]


def _n_train(ws, summary: dict[str, Any], export: str | None) -> int | None:
    if isinstance(summary.get("n_train"), int):
        return summary["n_train"]
    if export:   # a run from before the start event carried n_train: the export's own count
        try:
            counts = load_manifest(ws, export).get("counts") or {}
        except (OSError, StudioError):
            return None
        if isinstance(counts.get("train"), int):
            return counts["train"]
    return None


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 4)


def compare_runs(ws, head: str = "classifier") -> list[dict[str, Any]]:
    """One row per finished run of `head` (oldest first), with deltas vs the first run.

    Row keys: run_id, export, n_train, n_eval, accuracy, macro_f1 (tuned model on the export's
    eval split), gold_accuracy, gold_macro_f1 (its gold-labelled subset, None without gold),
    eval_loss (SFT), delta_accuracy, delta_macro_f1, delta_gold_accuracy, delta_eval_loss,
    train_seconds, baseline (True on the first row). A run without eval.json is unfinished and
    left out.
    """
    rows: list[dict[str, Any]] = []
    for summary in list_train_runs(ws):
        ev = summary["eval"]
        if not ev or ev.get("head", head) != head:
            continue
        tuned = ev.get("tuned") or {}
        export = ev.get("export")
        rows.append({
            "run_id": ev.get("run_id", summary["run_id"]), "export": export,
            "n_train": _n_train(ws, summary, export), "n_eval": ev.get("n_eval"),
            "accuracy": tuned.get("accuracy"), "macro_f1": tuned.get("macro_f1"),
            "gold_accuracy": tuned.get("gold_accuracy") if tuned.get("gold_n") else None,
            "gold_macro_f1": tuned.get("gold_macro_f1") if tuned.get("gold_n") else None,
            "eval_loss": tuned.get("eval_loss"), "train_seconds": ev.get("train_seconds"),
        })
    if not rows:
        return []
    first = rows[0]
    for i, r in enumerate(rows):
        r["baseline"] = i == 0
        r["delta_accuracy"] = _delta(r["accuracy"], first["accuracy"])
        r["delta_macro_f1"] = _delta(r["macro_f1"], first["macro_f1"])
        r["delta_gold_accuracy"] = _delta(r["gold_accuracy"], first["gold_accuracy"])
        r["delta_eval_loss"] = _delta(r["eval_loss"], first["eval_loss"])
    return rows


# -- the summary-accuracy benchmark beside the runs ----------------------------------------------
SFT_REPORT_NAME = "sft_roi.json"     # `bench/sft_roi.py --out W/sft_roi.json` puts one in W
PACKAGED_SFT_REPORT = Path(__file__).resolve().parents[2] / "bench" / "results" / "sft_roi_cpu.json"
HEADLINE_POINTS = 0.10               # docs/roi.md's goal: curated >= raw + 10 points, CIs apart


def load_sft_report(ws) -> tuple[dict[str, Any], Path] | None:
    """The latest `bench/sft_roi.py` report: the workspace's own run (`W/sft_roi.json`) if there
    is one, else the figures measured for docs/roi.md (`bench/results/sft_roi_cpu.json`);
    None when neither exists. A file that is not a report raises `InputError` naming it."""
    for path in (Path(ws.path) / SFT_REPORT_NAME, PACKAGED_SFT_REPORT):
        if not path.is_file():
            continue
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"{path}: not a JSON report of bench/sft_roi.py ({e})") from None
        if not isinstance(report, dict) or not isinstance(report.get("arms"), list):
            raise InputError(f"{path}: no `arms` list (not a report of bench/sft_roi.py)")
        return report, path
    return None


def sft_summary_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per arm: arm, n_train, summary accuracy and its 95% CI, ROUGE-L and its CI."""
    def ci(v) -> str | None:
        return f"[{v[0]:.3f}, {v[1]:.3f}]" if isinstance(v, (list, tuple)) and len(v) == 2 else None

    return [{"arm": a.get("name"), "n_train": a.get("n_train"),
             "summary_accuracy": a.get("accuracy"), "accuracy_ci": ci(a.get("ci")),
             "rouge_l": a.get("rouge_l"), "rouge_l_ci": ci(a.get("rouge_l_ci"))}
            for a in report["arms"]]


def sft_budget_note(report: dict[str, Any]) -> str:
    """What budget produced the report and whether it shows the headline (curated beats raw by
    `HEADLINE_POINTS`, intervals apart)."""
    b = report.get("budget") or {}
    budget = (f"{b.get('max_steps', '?')} LoRA steps at batch {b.get('batch_size', '?')} per fit, "
              f"{report.get('seeds', '?')} seed(s), {report.get('n_eval', '?')} held-out notes, "
              f"base {b.get('base_model') or report.get('base_model') or '?'}")
    delta = report.get("delta_accuracy_curated_vs_raw")
    shown = isinstance(delta, (int, float)) and delta >= HEADLINE_POINTS \
        and bool(report.get("intervals_apart"))
    verdict = ("the headline (curated >= raw + 10 points, intervals apart) is shown"
               if shown else "the headline (curated >= raw + 10 points, intervals apart) is "
               "**not shown** at this budget")
    return f"Budget: {budget}; {verdict}."
