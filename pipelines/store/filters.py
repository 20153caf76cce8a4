"""SQL for the quality filters (v5 `quality_signals`, `quality_overrides`) and PII (`pii_spans`).

`quality_signals.excluded` is derived from the rules that fired and a person's override: it is
rewritten by each filter run and by each keep/drop/reset (`apply_override`), so export, review
push and `list_records` read one column, as they do for dedup.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Iterable

from pipelines.store.dedup import write_override

__all__ = ["SignalRow", "SpanRow", "replace_signals", "read_signals", "read_quality_overrides",
           "set_quality_override", "effective_exclusion", "signal_counts", "replace_pii_spans",
           "read_pii_spans", "pii_counts"]


@dataclass
class SignalRow:
    record_id: str
    signals: dict[str, Any]
    details: dict[str, Any]
    fired: list[str]


@dataclass
class SpanRow:
    record_id: str
    start: int
    end: int
    type: str
    confidence: float


def effective_exclusion(fired: list[str], decision: str | None) -> tuple[bool, str | None]:
    """(excluded, reason): a person's drop/keep wins over the rules that fired."""
    if decision == "drop":
        return True, "dropped by a person" + (f" (rules: {'; '.join(fired)})" if fired else "")
    if decision == "keep":
        return False, "kept by a person" + (f" (rules: {'; '.join(fired)})" if fired else "")
    if fired:
        return True, "filter: " + "; ".join(fired)
    return False, None


def read_quality_overrides(conn: sqlite3.Connection) -> dict[str, str]:
    return {r[0]: r[1] for r in conn.execute("SELECT record_id, decision FROM quality_overrides")}


def replace_signals(conn: sqlite3.Connection, rows: Iterable[SignalRow], run_id: int | None) -> None:
    """Replace every record's signals (one filter run), deriving `excluded` with the overrides."""
    overrides = read_quality_overrides(conn)
    conn.execute("DELETE FROM quality_signals")
    data = []
    for r in rows:
        excluded, reason = effective_exclusion(r.fired, overrides.get(r.record_id))
        data.append((r.record_id, json.dumps(r.signals, ensure_ascii=False),
                     json.dumps(r.details, ensure_ascii=False), json.dumps(r.fired),
                     int(excluded), reason, run_id))
    conn.executemany("INSERT INTO quality_signals (record_id, signals, details, fired, excluded,"
                     " reason, run_id) VALUES (?,?,?,?,?,?,?)", data)


def set_quality_override(conn: sqlite3.Connection, record_id: str,
                         decision: str | None) -> dict[str, Any]:
    """Store a keep/drop (None removes it) and re-derive the record's exclusion."""
    write_override(conn, "quality_overrides", record_id, decision)
    row = conn.execute("SELECT fired FROM quality_signals WHERE record_id = ?",
                       (record_id,)).fetchone()
    fired = json.loads(row[0]) if row else []
    excluded, reason = effective_exclusion(fired, decision)
    if row is None:
        conn.execute("INSERT INTO quality_signals (record_id, excluded, reason) VALUES (?,?,?)",
                     (record_id, int(excluded), reason))
    else:
        conn.execute("UPDATE quality_signals SET excluded = ?, reason = ? WHERE record_id = ?",
                     (int(excluded), reason, record_id))
    return {"record_id": record_id, "decision": decision, "excluded": excluded,
            "reason": reason, "fired": fired}


def read_signals(conn: sqlite3.Connection, ids: Iterable[str] | None = None) -> dict[str, dict]:
    """`{record id: {signals, details, fired, excluded, reason}}` (all records when ids is None)."""
    sql = "SELECT * FROM quality_signals"
    params: list[Any] = []
    if ids is not None:
        ids = list(ids)
        sql += f" WHERE record_id IN ({','.join('?' * len(ids))})" if ids else " WHERE 0"
        params = ids
    out = {}
    for r in conn.execute(sql, params):
        out[r["record_id"]] = {"signals": json.loads(r["signals"]),
                               "details": json.loads(r["details"]),
                               "fired": json.loads(r["fired"]), "excluded": bool(r["excluded"]),
                               "reason": r["reason"]}
    return out


def signal_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many records each rule fired on, and how many are excluded by the filters."""
    counts: dict[str, int] = {}
    for (fired,) in conn.execute("SELECT fired FROM quality_signals"):
        for rule in json.loads(fired):
            counts[rule] = counts.get(rule, 0) + 1
    counts["excluded"] = conn.execute(
        "SELECT COUNT(*) FROM quality_signals WHERE excluded = 1").fetchone()[0]
    return counts


def replace_pii_spans(conn: sqlite3.Connection, rows: Iterable[SpanRow], run_id: int | None) -> None:
    conn.execute("DELETE FROM pii_spans")
    conn.executemany("INSERT INTO pii_spans (record_id, start, end, type, confidence, run_id)"
                     " VALUES (?,?,?,?,?,?)",
                     [(s.record_id, s.start, s.end, s.type, s.confidence, run_id) for s in rows])


def read_pii_spans(conn: sqlite3.Connection, ids: Iterable[str] | None = None) -> dict[str, list[SpanRow]]:
    sql = "SELECT * FROM pii_spans"
    params: list[Any] = []
    if ids is not None:
        ids = list(ids)
        sql += f" WHERE record_id IN ({','.join('?' * len(ids))})" if ids else " WHERE 0"
        params = ids
    out: dict[str, list[SpanRow]] = {}
    for r in conn.execute(sql + " ORDER BY record_id, start", params):
        out.setdefault(r["record_id"], []).append(
            SpanRow(r["record_id"], r["start"], r["end"], r["type"], r["confidence"]))
    return out


def pii_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {r[0]: r[1] for r in conn.execute("SELECT type, COUNT(*) FROM pii_spans GROUP BY type")}
