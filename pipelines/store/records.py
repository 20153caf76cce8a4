"""SQL for records, their sources and the lineage runs table."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from pipelines.records import Record, Source
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
    # Labels this source disagreed on with the record it folded into: {"gold_<scheme>" or
    # "label": every value seen}. Empty unless this call found a new disagreement.
    conflicts: dict[str, list[str]] = field(default_factory=dict)


def upsert_record(conn: sqlite3.Connection, rec: NewRecord, now: str) -> UpsertResult:
    """Insert a record if its content is new, and its source if that (file, row) is new.

    A new source of an existing record (an exact duplicate) folds into it: a gold label the
    record lacks is taken, and gold or raw labels that disagree are recorded in the record's
    `meta["conditions"]` (`gold_conflict` {scheme: values seen}, `label_conflict` [values]). A
    scheme whose gold labels disagree keeps no gold label: neither value is trustworthy.
    """
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
    cur = conn.execute(
        "INSERT OR IGNORE INTO record_sources (record_id, file, row, line, file_sha256, meta,"
        " ingested_at) VALUES (?,?,?,?,?,?,?)",
        (rec.id, rec.file, rec.row, rec.line, rec.file_sha256, meta_json, now),
    )
    new_source = cur.rowcount == 1
    conflicts: dict[str, list[str]] = {}
    if not added and new_source and (rec.gold or rec.raw_label is not None):
        conflicts = _fold_labels(conn, rec)
    return UpsertResult(added=added, new_source=new_source, conflicts=conflicts)


def _fold_labels(conn: sqlite3.Connection, rec: NewRecord) -> dict[str, list[str]]:
    """Merge a folded copy's gold and raw label into the stored record; return new conflicts."""
    row = conn.execute("SELECT gold, raw_label, meta FROM records WHERE id = ?",
                       (rec.id,)).fetchone()
    gold, meta = json.loads(row[0]), json.loads(row[2])
    conditions = dict(meta.get("conditions") or {})
    gold_conflict = {k: list(v) for k, v in (conditions.get("gold_conflict") or {}).items()}
    found: dict[str, list[str]] = {}
    for scheme, value in rec.gold.items():
        if scheme in gold_conflict:
            if value not in gold_conflict[scheme]:
                gold_conflict[scheme] = sorted({*gold_conflict[scheme], value})
                found[f"gold_{scheme}"] = gold_conflict[scheme]
        elif scheme not in gold:
            gold[scheme] = value    # a folded copy may carry gold the first copy lacked
        elif gold[scheme] != value:
            gold_conflict[scheme] = sorted({gold.pop(scheme), value})
            found[f"gold_{scheme}"] = gold_conflict[scheme]
    seen = list(conditions.get("label_conflict") or ([row[1]] if row[1] is not None else []))
    if rec.raw_label is not None and seen and rec.raw_label not in seen:
        conditions["label_conflict"] = found["label"] = sorted({*seen, rec.raw_label})
    if gold_conflict:
        conditions["gold_conflict"] = gold_conflict
    new_meta = {**meta, "conditions": conditions} if conditions else meta
    if gold != json.loads(row[0]) or new_meta != meta:
        conn.execute("UPDATE records SET gold = ?, meta = ? WHERE id = ?",
                     (json.dumps(gold, ensure_ascii=False, sort_keys=True),
                      json.dumps(new_meta, ensure_ascii=False, sort_keys=True, default=str),
                      rec.id))
    return found


def count_records(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]


def count_sources(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM record_sources").fetchone()[0]


_RECORD_COLS = ("id", "kind", "text", "prompt", "response", "system", "messages", "raw_label",
                "gold", "meta", "ingested_at")


def iter_records(conn: sqlite3.Connection, *, with_gold: bool = False,
                 batch_size: int = 1000) -> Iterator[Record]:
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
            yield Record.from_row(r, with_gold=with_gold)
        last = rows[-1]["rowid"]


def record_ids(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT id FROM records ORDER BY rowid")]


def get_record(conn: sqlite3.Connection, record_id: str, *,
               with_gold: bool = False) -> Record | None:
    """One record with all its sources (oldest first), or None."""
    row = conn.execute(f"SELECT {', '.join(_RECORD_COLS)} FROM records WHERE id = ?",
                       (record_id,)).fetchone()
    if row is None:
        return None
    sources = [Source(s["file"], s["row"], s["line"]) for s in conn.execute(
        "SELECT file, row, line FROM record_sources WHERE record_id = ?"
        " ORDER BY ingested_at, file, row", (record_id,))]
    return Record.from_row(row, with_gold=with_gold, sources=sources)


def list_records(conn: sqlite3.Connection, *, scheme: str | None = None, limit: int | None = None,
                 offset: int = 0, search: str | None = None, excluded: bool | None = None,
                 label: str | None = None, ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """One row per record with its first source and the later stages' columns, filtered in SQL.

    A flat table for display (the studio's Data page, `curate records`); steps read `Record`s
    from `iter_records` / `get_record` instead.

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
        where.append("(COALESCE(d.excluded, 0) OR COALESCE(q.excluded, 0)) = ?")
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
               (COALESCE(d.excluded, 0) OR COALESCE(q.excluded, 0)) AS excluded,
               q.fired AS filter_fired, q.reason AS filter_reason,
               l.label, l.confidence, l.model AS label_model,
               v.status AS review_status, v.human_label
        FROM records r
        LEFT JOIN dedup d ON d.record_id = r.id
        LEFT JOIN quality_signals q ON q.record_id = r.id
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
        d["filter_fired"] = json.loads(d["filter_fired"]) if d["filter_fired"] else []
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
        "filtered": one("SELECT COUNT(*) FROM quality_signals WHERE excluded = 1"),
        "clusters": one("SELECT COUNT(DISTINCT cluster_id) FROM dedup WHERE cluster_id IS NOT NULL"),
        "labelled": labelled,
        "reviewed": reviewed,
        "exports": one("SELECT COUNT(*) FROM runs WHERE step = 'export' AND status = 'done'"),
        "trained": one("SELECT COUNT(*) FROM runs WHERE step = 'train' AND status = 'done'"),
        "runs": one("SELECT COUNT(*) FROM runs"),
    }
