"""SQL for the export and train steps: the candidate rows an export reads, and lineage lookups.

Exports and training runs are recorded in the v1 `runs` table (step 'export' / 'train'), so no
extra tables are needed: the files under `exports/` and `runs/` are the artefacts, `runs` is the
lineage. The small `put_*` writers exist for tests and fixtures that need the upstream tables
(dedup, labels, review) filled without running those steps.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Iterator

from pipelines.records import Candidate, Record, RecordState
from pipelines.store.workspace import utcnow

__all__ = [
    "iter_export_candidates",
    "latest_runs",
    "find_run",
    "update_run_metrics",
    "put_dedup",
    "put_label",
    "put_review",
    "source_files",
]


def iter_export_candidates(conn: sqlite3.Connection, scheme: str) -> Iterator[Candidate]:
    """Every record (gold included) with what the export decides on under `scheme`.

    The `Candidate.state` carries exclusion, the weak label and the review result.
    """
    sql = """
        SELECT r.id, r.kind, r.text, r.prompt, r.response, r.system, r.messages, r.raw_label,
               r.gold, r.meta, r.ingested_at,
               (COALESCE(d.excluded, 0) OR COALESCE(q.excluded, 0)) AS excluded,
               -- a quality rule's reason first: a pair ignores dedup exclusion, not a rule's
               CASE WHEN COALESCE(q.excluded, 0) THEN q.reason
                    WHEN COALESCE(d.excluded, 0) THEN 'dedup' END AS excluded_by,
               l.label, l.confidence, l.model AS label_model, l.run_id AS label_run_id,
               v.status AS review_status, v.human_label, v.edited_response
        FROM records r
        LEFT JOIN dedup d ON d.record_id = r.id
        LEFT JOIN quality_signals q ON q.record_id = r.id
        LEFT JOIN labels l ON l.record_id = r.id AND l.scheme = ?
        LEFT JOIN review v ON v.record_id = r.id AND v.scheme = ?
        ORDER BY r.rowid
    """
    for row in conn.execute(sql, (scheme, scheme)):
        yield Candidate(Record.from_row(row, with_gold=True), RecordState.from_row(row))


def latest_runs(conn: sqlite3.Connection, steps: tuple[str, ...],
                scheme: str | None = None) -> dict[str, dict[str, Any]]:
    """The most recent finished run of each step (for a scheme where the step has one)."""
    out: dict[str, dict[str, Any]] = {}
    for step in steps:
        row = conn.execute(
            "SELECT id, step, scheme, params, metrics, started_at, finished_at FROM runs"
            " WHERE step = ? AND status = 'done' AND (scheme IS NULL OR ? IS NULL OR scheme = ?)"
            " ORDER BY id DESC LIMIT 1", (step, scheme, scheme)).fetchone()
        if row is not None:
            d = dict(row)
            d["params"] = json.loads(d["params"])
            d["metrics"] = json.loads(d["metrics"])
            out[step] = d
    return out


def find_run(conn: sqlite3.Connection, step: str, key: str, value: str) -> dict[str, Any] | None:
    """The latest run of `step` whose params[key] == value (e.g. a train run by its folder id)."""
    for row in conn.execute("SELECT * FROM runs WHERE step = ? ORDER BY id DESC", (step,)):
        params = json.loads(row["params"])
        if str(params.get(key)) == str(value):
            d = dict(row)
            d["params"] = params
            d["metrics"] = json.loads(d["metrics"])
            return d
    return None


def update_run_metrics(conn: sqlite3.Connection, run_id: int, metrics: dict[str, Any],
                       status: str) -> None:
    conn.execute("UPDATE runs SET metrics = ?, status = ?, finished_at = ? WHERE id = ?",
                 (json.dumps(metrics, sort_keys=True, default=str), status, utcnow(), run_id))


# -- writers for tests and fixtures ----------------------------------------------------------
def put_dedup(conn: sqlite3.Connection, record_id: str, *, excluded: bool,
              method: str = "exact", reason: str | None = None) -> None:
    conn.execute(
        "INSERT INTO dedup (record_id, method, excluded, reason) VALUES (?,?,?,?)"
        " ON CONFLICT(record_id) DO UPDATE SET excluded = excluded.excluded,"
        " method = excluded.method, reason = excluded.reason",
        (record_id, method, int(excluded), reason))


def put_label(conn: sqlite3.Connection, record_id: str, scheme: str, label: str | None,
              confidence: float | None, model: str = "label_model") -> None:
    conn.execute(
        "INSERT OR REPLACE INTO labels (record_id, scheme, label, confidence, model)"
        " VALUES (?,?,?,?,?)", (record_id, scheme, label, confidence, model))


def put_review(conn: sqlite3.Connection, record_id: str, scheme: str, *, human_label: str | None,
               edited_response: str | None = None, status: str = "reviewed",
               reviewer: str = "test") -> None:
    conn.execute(
        "INSERT OR REPLACE INTO review (record_id, scheme, status, human_label, edited_response,"
        " reviewer, reviewed_at) VALUES (?,?,?,?,?,?,?)",
        (record_id, scheme, status, human_label, edited_response, reviewer, utcnow()))


def source_files(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Each ingested file with its sha256 and how many rows came from it (manifest lineage)."""
    return [
        {"file": r[0], "sha256": r[1], "rows": r[2]}
        for r in conn.execute("SELECT file, file_sha256, COUNT(*) FROM record_sources"
                              " GROUP BY file, file_sha256 ORDER BY file")
    ]
