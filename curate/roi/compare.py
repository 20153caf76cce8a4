""""Did curation pay?": compare finished training runs of one head across exports.

Reads runs only through `trainer.runs.list_train_runs` (each run's summary: its start event and
`eval.json`) and exports only through `pipelines.export.load_manifest`, so it sees runs started
from the CLI or the studio alike. The first run (oldest) is the baseline the deltas are taken
against: train once on the raw export, then on each curated one.
"""

from __future__ import annotations

from typing import Any

from pipelines.errors import StudioError
from pipelines.export import load_manifest
from trainer.runs import list_train_runs

__all__ = ["compare_runs"]


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
