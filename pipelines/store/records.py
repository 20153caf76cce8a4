"""SQL for records, their sources and the lineage runs table."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from pipelines.store.workspace import utcnow

__all__ = [
    "NewRecord",
    "UpsertResult",
    "upsert_record",
    "count_records",
    "count_sources",
    "iter_records",
    "get_record",
    "list_records",
    "record_ids",
    "start_run",
    "finish_run",
    "list_runs",
    "stage_counts",
]


@dataclass
class NewRecord:
    """A validated row ready to store. `id` is the hash of its normalised content."""

    id: str
    kind: str
    text: str
    prompt: str | None = None
    response: str | None = None
    system: str | None = None
    messages: list[dict[str, str]] | None = None
    raw_label: str | None = None
    gold: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    # the source
    file: str = ""
    row: int = 0
    line: int | None = None
    file_sha256: str | None = None


@dataclass
class UpsertResult:
    added: bool        # a new record was created
    new_source: bool   # the (file, row) was not yet recorded for this record


def upsert_record(conn: sqlite3.Connection, rec: NewRecord, now: str) -> UpsertResult:
    """Insert a record if its content is new, and its source if that (file, row) is new."""
    meta_json = json.dumps(rec.meta, ensure_ascii=False, sort_keys=True, default=str)
    cur = conn.execute(
        "INSERT OR IGNORE INTO records (id, kind, text, prompt, response, system, messages,"
        " raw_label, gold, meta, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            rec.id, rec.kind, rec.text, rec.prompt, rec.response, rec.system,
            json.dumps(rec.messages, ensure_ascii=False) if rec.messages is not None else None,
            rec.raw_label, json.dumps(rec.gold, ensure_ascii=False, sort_keys=True), meta_json, now,
        ),
    )
    added = cur.rowcount == 1
    if not added and rec.gold:
        # A folded duplicate may carry a gold label the first copy lacked: keep it (first wins).
        row = conn.execute("SELECT gold FROM records WHERE id = ?", (rec.id,)).fetchone()
        merged = {**rec.gold, **json.loads(row[0])}
        if merged != json.loads(row[0]):
            conn.execute("UPDATE records SET gold = ? WHERE id = ?",
                         (json.dumps(merged, ensure_ascii=False, sort_keys=True), rec.id))
    cur = conn.execute(
        "INSERT OR IGNORE INTO record_sources (record_id, file, row, line, file_sha256, meta,"
        " ingested_at) VALUES (?,?,?,?,?,?,?)",
        (rec.id, rec.file, rec.row, rec.line, rec.file_sha256, meta_json, now),
    )
    return UpsertResult(added=added, new_source=cur.rowcount == 1)


def count_records(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]


def count_sources(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM record_sources").fetchone()[0]


_RECORD_COLS = ("id", "kind", "text", "prompt", "response", "system", "messages", "raw_label",
                "gold", "meta", "ingested_at")


def _record_dict(row: sqlite3.Row, with_gold: bool) -> dict[str, Any]:
    d = {k: row[k] for k in row.keys()}
    for key in ("messages", "gold", "meta"):
        if key in d and d[key] is not None:
            d[key] = json.loads(d[key])
    if not with_gold:
        d.pop("gold", None)
    return d


def iter_records(conn: sqlite3.Connection, *, with_gold: bool = False,
                 batch_size: int = 1000) -> Iterator[dict[str, Any]]:
    """All records in ingestion order, streamed in batches. Gold labels only when asked."""
    last = 0
    cols = ", ".join(("rowid",) + _RECORD_COLS)
    while True:
        rows = conn.execute(
            f"SELECT {cols} FROM records WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (last, batch_size),
        ).fetchall()
        if not rows:
            return
        for r in rows:
            d = _record_dict(r, with_gold)
            d.pop("rowid", None)
            yield d
        last = rows[-1]["rowid"]


def record_ids(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT id FROM records ORDER BY rowid")]


def get_record(conn: sqlite3.Connection, record_id: str, *, with_gold: bool = False) -> dict | None:
    row = conn.execute(f"SELECT {', '.join(_RECORD_COLS)} FROM records WHERE id = ?",
                       (record_id,)).fetchone()
    if row is None:
        return None
    d = _record_dict(row, with_gold)
    d["sources"] = [
        {"file": s["file"], "row": s["row"], "line": s["line"]}
        for s in conn.execute("SELECT file, row, line FROM record_sources WHERE record_id = ?"
                              " ORDER BY ingested_at, file, row", (record_id,))
    ]
    return d


def list_records(conn: sqlite3.Connection, *, scheme: str | None = None, limit: int | None = None,
                 offset: int = 0, search: str | None = None, excluded: bool | None = None,
                 label: str | None = None, ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """One row per record with its first source and the later stages' columns, filtered in SQL.

    Args:
        scheme: whose label/review columns to show (None: no label columns filled).
        search: case-insensitive substring of the record text.
        excluded: keep only excluded (True) or only kept (False) records.
        label: keep only records with this label under `scheme`.
        ids: keep only these record ids.
    """
    where, params = [], []
    if search:
        where.append("r.text LIKE ? ESCAPE '\\'")
        esc = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params.append(f"%{esc}%")
    if excluded is not None:
        where.append("COALESCE(d.excluded, 0) = ?")
        params.append(1 if excluded else 0)
    if label is not None:
        where.append("l.label = ?")
        params.append(label)
    if ids is not None:
        ids = list(ids)
        where.append(f"r.id IN ({','.join('?' * len(ids))})" if ids else "0")
        params.extend(ids)
    sql = f"""
        SELECT r.id, r.kind, r.text, r.prompt, r.response, r.raw_label,
               (SELECT s.file || ':' || s.row FROM record_sources s WHERE s.record_id = r.id
                 ORDER BY s.ingested_at, s.file, s.row LIMIT 1) AS source,
               (SELECT COUNT(*) FROM record_sources s WHERE s.record_id = r.id) AS n_sources,
               d.cluster_id, d.representative_id, d.similarity, d.method,
               COALESCE(d.excluded, 0) AS excluded,
               l.label, l.confidence, l.model AS label_model,
               v.status AS review_status, v.human_label
        FROM records r
        LEFT JOIN dedup d ON d.record_id = r.id
        LEFT JOIN labels l ON l.record_id = r.id AND l.scheme = ?
        LEFT JOIN review v ON v.record_id = r.id AND v.scheme = ?
        {"WHERE " + " AND ".join(where) if where else ""}
        ORDER BY r.rowid
        LIMIT ? OFFSET ?
    """
    rows = conn.execute(sql, [scheme, scheme, *params, -1 if limit is None else limit, offset])
    out = []
    for r in rows:
        d = {k: r[k] for k in r.keys()}
        d["excluded"] = bool(d["excluded"])
        out.append(d)
    return out


# -- lineage ---------------------------------------------------------------------------------
def start_run(conn: sqlite3.Connection, step: str, params: dict | None = None,
              scheme: str | None = None, status: str = "running") -> int:
    """A `runs` row for this process (pid, host). A run committed as `running` must end with
    `finish_run` or, on any other exit, `pipelines.store.runs.end_run`."""
    from pipelines.store.runs import note_writer, run_owner

    pid, host = run_owner()
    cur = conn.execute(
        "INSERT INTO runs (step, scheme, params, status, started_at, pid, host) "
        "VALUES (?,?,?,?,?,?,?)",
        (step, scheme, json.dumps(params or {}, sort_keys=True, default=str), status, utcnow(),
         pid, host),
    )
    note_writer(conn, step, int(cur.lastrowid))
    return int(cur.lastrowid)


def finish_run(conn: sqlite3.Connection, run_id: int, metrics: dict | None = None,
               status: str = "done") -> None:
    conn.execute(
        "UPDATE runs SET metrics = ?, status = ?, finished_at = ? WHERE id = ?",
        (json.dumps(metrics or {}, sort_keys=True, default=str), status, utcnow(), run_id),
    )


def list_runs(conn: sqlite3.Connection, step: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM runs" + (" WHERE step = ?" if step else "") + " ORDER BY id"
    out = []
    for r in conn.execute(sql, (step,) if step else ()):
        d = dict(r)
        d["params"] = json.loads(d["params"])
        d["metrics"] = json.loads(d["metrics"])
        out.append(d)
    return out


def stage_counts(conn: sqlite3.Connection) -> dict[str, Any]:
    """Counts per pipeline stage, for `curate status` and the studio's overview."""
    one = lambda sql, *p: conn.execute(sql, p).fetchone()[0]  # noqa: E731
    records = one("SELECT COUNT(*) FROM records")
    sources = one("SELECT COUNT(*) FROM record_sources")
    labelled = {
        r[0]: r[1] for r in conn.execute(
            "SELECT scheme, COUNT(*) FROM labels WHERE label IS NOT NULL GROUP BY scheme")
    }
    reviewed = {
        r[0]: r[1] for r in conn.execute(
            "SELECT scheme, COUNT(*) FROM review WHERE status = 'reviewed' GROUP BY scheme")
    }
    return {
        "records": records,
        "sources": sources,
        "folded_duplicates": sources - records,
        "gold": one("SELECT COUNT(*) FROM records WHERE gold != '{}'"),
        "excluded": one("SELECT COUNT(*) FROM dedup WHERE excluded = 1"),
        "clusters": one("SELECT COUNT(DISTINCT cluster_id) FROM dedup WHERE cluster_id IS NOT NULL"),
        "labelled": labelled,
        "reviewed": reviewed,
        "exports": one("SELECT COUNT(*) FROM runs WHERE step = 'export' AND status = 'done'"),
        "trained": one("SELECT COUNT(*) FROM runs WHERE step = 'train' AND status = 'done'"),
        "runs": one("SELECT COUNT(*) FROM runs"),
    }
