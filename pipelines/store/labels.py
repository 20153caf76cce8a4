"""SQL for programmatic labels: per-record labels, labeling runs and per-LF statistics.

The `labels` table (v1) holds one aggregated label per (record, scheme); `lf_runs` and `lf_stats`
(v3) hold, per labeling run, where its label matrix `L` lies and each LF's figures.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Iterable

from pipelines.store.workspace import utcnow

__all__ = [
    "LabelRow",
    "LFStatRow",
    "replace_labels",
    "record_lf_run",
    "latest_lf_run",
    "get_lf_stats",
    "get_labels",
    "gold_labels",
]


@dataclass
class LabelRow:
    record_id: str
    label: str | None          # class name; None when every LF abstained
    confidence: float | None
    model: str                 # label_model | majority


@dataclass
class LFStatRow:
    lf_name: str
    origin: str | None = None
    source_sha256: str | None = None
    coverage: float | None = None
    overlaps: float | None = None
    conflicts: float | None = None
    emp_accuracy: float | None = None
    n_gold_votes: int | None = None
    faults: int = 0
    fault_examples: list[str] = field(default_factory=list)
    fault_message: str | None = None


def replace_labels(conn: sqlite3.Connection, scheme: str, rows: Iterable[LabelRow],
                   run_id: int) -> int:
    """Replace the scheme's labels with this run's (records not in `rows` lose theirs)."""
    conn.execute("DELETE FROM labels WHERE scheme = ?", (scheme,))
    n = 0
    for r in rows:
        conn.execute(
            "INSERT INTO labels (record_id, scheme, label, confidence, model, run_id)"
            " VALUES (?,?,?,?,?,?)",
            (r.record_id, scheme, r.label, r.confidence, r.model, run_id),
        )
        n += 1
    return n


def record_lf_run(conn: sqlite3.Connection, run_id: int, scheme: str, matrix_path: str,
                  n_records: int, n_lfs: int, chosen_model: str | None,
                  stats: Iterable[LFStatRow]) -> None:
    conn.execute(
        "INSERT INTO lf_runs (run_id, scheme, matrix_path, n_records, n_lfs, chosen_model,"
        " created_at) VALUES (?,?,?,?,?,?,?)",
        (run_id, scheme, matrix_path, n_records, n_lfs, chosen_model, utcnow()),
    )
    for s in stats:
        conn.execute(
            "INSERT INTO lf_stats (run_id, lf_name, scheme, origin, source_sha256, coverage,"
            " overlaps, conflicts, emp_accuracy, n_gold_votes, faults, fault_examples,"
            " fault_message) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, s.lf_name, scheme, s.origin, s.source_sha256, s.coverage, s.overlaps,
             s.conflicts, s.emp_accuracy, s.n_gold_votes, s.faults,
             json.dumps(s.fault_examples), s.fault_message),
        )


def latest_lf_run(conn: sqlite3.Connection, scheme: str) -> dict[str, Any] | None:
    """The newest finished labeling run of `scheme`, joined with its lineage row."""
    row = conn.execute(
        "SELECT l.*, r.params, r.metrics, r.started_at, r.finished_at FROM lf_runs l"
        " JOIN runs r ON r.id = l.run_id"
        " WHERE l.scheme = ? AND r.status = 'done' ORDER BY l.run_id DESC LIMIT 1",
        (scheme,),
    ).fetchone()
    if row is None:
        return None
    d = dict(row)
    d["params"] = json.loads(d["params"])
    d["metrics"] = json.loads(d["metrics"])
    return d


def get_lf_stats(conn: sqlite3.Connection, run_id: int) -> list[LFStatRow]:
    out = []
    for r in conn.execute("SELECT * FROM lf_stats WHERE run_id = ? ORDER BY rowid", (run_id,)):
        d = dict(r)
        out.append(LFStatRow(
            lf_name=d["lf_name"], origin=d["origin"], source_sha256=d["source_sha256"],
            coverage=d["coverage"], overlaps=d["overlaps"], conflicts=d["conflicts"],
            emp_accuracy=d["emp_accuracy"], n_gold_votes=d["n_gold_votes"], faults=d["faults"],
            fault_examples=json.loads(d["fault_examples"]), fault_message=d["fault_message"],
        ))
    return out


def get_labels(conn: sqlite3.Connection, scheme: str) -> dict[str, LabelRow]:
    return {
        r["record_id"]: LabelRow(r["record_id"], r["label"], r["confidence"], r["model"])
        for r in conn.execute(
            "SELECT record_id, label, confidence, model FROM labels WHERE scheme = ?", (scheme,))
    }


def gold_labels(conn: sqlite3.Connection, scheme: str) -> dict[str, str]:
    """{record id: gold label} for the records that carry a gold label of `scheme`."""
    out = {}
    for rid, gold in conn.execute("SELECT id, gold FROM records WHERE gold != '{}'"):
        value = json.loads(gold).get(scheme)
        if value is not None and value != "":
            out[rid] = str(value)
    return out
