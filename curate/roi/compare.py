""""Did curation pay?": compare finished training runs of one head across exports.

Reads only the files a training run leaves (`W/runs/<id>/eval.json`, and `events.jsonl`'s start
event for the training-set size), so it works for runs started from the CLI or the studio alike.
The first run (oldest) is the baseline the deltas are taken against: train once on the raw
export, then on each curated one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["compare_runs"]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _start_event(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("event") == "start":
                    return e
    except OSError:
        pass
    return {}


def _n_train(ws, run_path: Path, export: str | None) -> int | None:
    start = _start_event(run_path / "events.jsonl")
    if isinstance(start.get("n_train"), int):
        return start["n_train"]
    if export:
        manifest = _read_json(Path(ws.path) / "exports" / export / "manifest.json") or {}
        counts = manifest.get("counts") or {}
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
    root = Path(ws.path) / "runs"
    if not root.is_dir():
        return []
    rows: list[dict[str, Any]] = []
    for run_path in sorted(p for p in root.iterdir() if p.is_dir()):
        ev = _read_json(run_path / "eval.json")
        if not ev or ev.get("head", head) != head:
            continue
        tuned = ev.get("tuned") or {}
        export = ev.get("export")
        rows.append({
            "run_id": ev.get("run_id", run_path.name), "export": export,
            "n_train": _n_train(ws, run_path, export), "n_eval": ev.get("n_eval"),
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
