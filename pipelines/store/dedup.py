"""SQL for deduplication and similarity filtering.

Three inputs, one output:
- ``dedup_members`` (v2): what the last dedup run found, per record in a cluster of two or more:
  its cluster, rank (0 = the centre the cluster was built around), method and the scores of the
  pair (record, centre) that put it there.
- ``filter_flags`` (v2): the last ``curate filter`` run: each record's best similarity to the
  on-topic exemplars and whether it falls below the bar.
- ``dedup_overrides`` (v1): a person's keep/drop.
- ``dedup`` (v1) is *derived* from those three by `write_decisions` (the dedup package decides,
  this module stores): the effective representative and ``excluded`` per record, which export and
  ``list_records`` read. Rewriting it whole keeps it consistent after any of the inputs changes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Iterable

from pipelines.store.workspace import utcnow

__all__ = [
    "V2_SQL", "ensure_dedup_tables", "MemberRow", "DecisionRow", "dedup_inputs", "record_texts",
    "replace_members", "write_decisions", "read_members", "read_overrides", "set_override_row",
    "read_filter_flags", "replace_filter_flags", "clear_filter_flags", "cluster_sizes",
    "cluster_records", "dedup_decision", "record_exists", "stored_unchanged", "stamp_run",
]

from pipelines.store.schema import _V2 as V2_SQL  # noqa: E402  (the one copy of the SQL)


def ensure_dedup_tables(conn: sqlite3.Connection) -> None:
    """Create the v2 tables if missing (idempotent).

    Also guards a workspace that reached a later schema version before migration 2 existed:
    `Workspace.migrate` skips versions below the current one.
    """
    from pipelines.store.workspace import _split_sql

    for stmt in _split_sql(V2_SQL):
        conn.execute(stmt)


@dataclass
class MemberRow:
    record_id: str
    cluster_id: str
    rank: int
    method: str
    similarity: float | None = None
    lexical: float | None = None
    facts: str | None = None
    shared_facts: int | None = None
    rule: str | None = None


@dataclass
class DecisionRow:
    record_id: str
    cluster_id: str | None
    representative_id: str | None
    similarity: float | None
    method: str
    excluded: bool
    reason: str
    run_id: int | None = None


def dedup_inputs(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every record's id, kind, text, prompt, meta (JSON text), first source file and source
    count, in ingestion order."""
    rows = conn.execute(
        "SELECT r.rowid AS pos, r.id, r.kind, r.text, r.prompt, r.response, r.meta,"
        " (SELECT s.file FROM record_sources s WHERE s.record_id = r.id"
        "   ORDER BY s.ingested_at, s.file, s.row LIMIT 1) AS file,"
        " (SELECT COUNT(*) FROM record_sources s WHERE s.record_id = r.id) AS n_sources"
        " FROM records r ORDER BY r.rowid")
    return [dict(r) for r in rows]


def record_exists(conn: sqlite3.Connection, record_id: str) -> bool:
    return conn.execute("SELECT 1 FROM records WHERE id = ?", (record_id,)).fetchone() is not None


def record_texts(conn: sqlite3.Connection, ids: Iterable[str]) -> dict[str, str]:
    """`{id: text}` for the given ids (unknown ids are absent)."""
    ids = list(ids)
    out: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        out.update((r[0], r[1]) for r in conn.execute(
            f"SELECT id, text FROM records WHERE id IN ({','.join('?' * len(part))})", part))
    return out


def replace_members(conn: sqlite3.Connection, rows: list[MemberRow], run_id: int | None) -> None:
    ensure_dedup_tables(conn)
    conn.execute("DELETE FROM dedup_members")
    conn.executemany(
        "INSERT INTO dedup_members (record_id, cluster_id, rank, method, similarity, lexical,"
        " facts, shared_facts, rule, run_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [(m.record_id, m.cluster_id, m.rank, m.method, m.similarity, m.lexical, m.facts,
          m.shared_facts, m.rule, run_id) for m in rows])


def read_members(conn: sqlite3.Connection) -> list[MemberRow]:
    ensure_dedup_tables(conn)
    return [MemberRow(r["record_id"], r["cluster_id"], r["rank"], r["method"], r["similarity"],
                      r["lexical"], r["facts"], r["shared_facts"], r["rule"])
            for r in conn.execute("SELECT * FROM dedup_members ORDER BY cluster_id, rank")]


def read_overrides(conn: sqlite3.Connection) -> dict[str, str]:
    return {r[0]: r[1] for r in conn.execute("SELECT record_id, decision FROM dedup_overrides")}


_OVERRIDE_TABLES = ("dedup_overrides", "quality_overrides")


def write_override(conn: sqlite3.Connection, table: str, record_id: str,
                   decision: str | None) -> None:
    """Store a person's keep/drop in one of the override tables (None removes it)."""
    if table not in _OVERRIDE_TABLES:
        raise ValueError(f"not an override table: {table!r}")
    if decision is None:
        conn.execute(f"DELETE FROM {table} WHERE record_id = ?", (record_id,))
    else:
        conn.execute(
            f"INSERT INTO {table} (record_id, decision, decided_at) VALUES (?,?,?)"
            " ON CONFLICT(record_id) DO UPDATE SET decision = excluded.decision,"
            " decided_at = excluded.decided_at", (record_id, decision, utcnow()))


def set_override_row(conn: sqlite3.Connection, record_id: str, decision: str | None) -> None:
    """Store a keep/drop (None removes the override)."""
    write_override(conn, "dedup_overrides", record_id, decision)


def read_filter_flags(conn: sqlite3.Connection) -> dict[str, tuple[float, bool]]:
    ensure_dedup_tables(conn)
    return {r[0]: (r[1], bool(r[2])) for r in
            conn.execute("SELECT record_id, similarity, flagged FROM filter_flags")}


def replace_filter_flags(conn: sqlite3.Connection, flags: dict[str, tuple[float, bool]],
                         run_id: int | None) -> None:
    ensure_dedup_tables(conn)
    conn.execute("DELETE FROM filter_flags")
    conn.executemany("INSERT INTO filter_flags (record_id, similarity, flagged, run_id)"
                     " VALUES (?,?,?,?)",
                     [(rid, float(s), int(f), run_id) for rid, (s, f) in flags.items()])


def clear_filter_flags(conn: sqlite3.Connection) -> int:
    ensure_dedup_tables(conn)
    return conn.execute("DELETE FROM filter_flags").rowcount


def write_decisions(conn: sqlite3.Connection, rows: list[DecisionRow]) -> None:
    """Replace the derived `dedup` table (what export and `list_records` read)."""
    conn.execute("DELETE FROM dedup")
    conn.executemany(
        "INSERT INTO dedup (record_id, cluster_id, representative_id, similarity, method,"
        " excluded, reason, run_id) VALUES (?,?,?,?,?,?,?,?)",
        [(d.record_id, d.cluster_id, d.representative_id, d.similarity, d.method,
          int(d.excluded), d.reason, d.run_id) for d in rows])


def _member_tuple(m: MemberRow) -> tuple:
    return (m.record_id, m.cluster_id, m.rank, m.method, m.similarity, m.lexical, m.facts,
            m.shared_facts, m.rule)


def _decision_tuple(d: DecisionRow) -> tuple:
    return (d.record_id, d.cluster_id, d.representative_id, d.similarity, d.method,
            bool(d.excluded), d.reason)


def stored_unchanged(conn: sqlite3.Connection, members: list[MemberRow],
                     decisions: list[DecisionRow]) -> bool:
    """Whether `dedup_members` and `dedup` already hold exactly these rows (run ids aside): a
    re-run on unchanged data then only stamps its run id (`stamp_run`) instead of rewriting."""
    ensure_dedup_tables(conn)
    n_members, n_decisions = (conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                              for t in ("dedup_members", "dedup"))
    if n_members != len(members) or n_decisions != len(decisions):
        return False
    if {_member_tuple(m) for m in read_members(conn)} != {_member_tuple(m) for m in members}:
        return False
    stored = {(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6]) for r in conn.execute(
        "SELECT record_id, cluster_id, representative_id, similarity, method, excluded, reason"
        " FROM dedup")}
    return stored == {_decision_tuple(d) for d in decisions}


def stamp_run(conn: sqlite3.Connection, run_id: int) -> None:
    """Mark the stored members and decisions as (re)confirmed by `run_id`."""
    conn.execute("UPDATE dedup_members SET run_id = ?", (run_id,))
    conn.execute("UPDATE dedup SET run_id = ?", (run_id,))


def dedup_decision(conn: sqlite3.Connection, record_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM dedup WHERE record_id = ?", (record_id,)).fetchone()
    return dict(row) if row else None


def cluster_sizes(conn: sqlite3.Connection, top: int | None = None) -> list[tuple[str, int]]:
    """(cluster id, size), largest first, then by cluster id (stable)."""
    ensure_dedup_tables(conn)
    rows = conn.execute(
        "SELECT cluster_id, COUNT(*) AS n FROM dedup_members GROUP BY cluster_id"
        " ORDER BY n DESC, cluster_id LIMIT ?", (-1 if top is None else top,))
    return [(r[0], r[1]) for r in rows]


def cluster_records(conn: sqlite3.Connection, cluster_ids: list[str]) -> list[dict[str, Any]]:
    """Members of the given clusters with their text, scores and current decision."""
    ensure_dedup_tables(conn)
    if not cluster_ids:
        return []
    q = ",".join("?" * len(cluster_ids))
    rows = conn.execute(
        f"SELECT m.*, r.text, r.prompt, r.response, r.kind, d.representative_id,"
        f" COALESCE(d.excluded, 0) AS excluded, d.reason, o.decision AS override,"
        f" (SELECT s.file || ':' || s.row FROM record_sources s WHERE s.record_id = r.id"
        f"   ORDER BY s.ingested_at, s.file, s.row LIMIT 1) AS source"
        f" FROM dedup_members m JOIN records r ON r.id = m.record_id"
        f" LEFT JOIN dedup d ON d.record_id = m.record_id"
        f" LEFT JOIN dedup_overrides o ON o.record_id = m.record_id"
        f" WHERE m.cluster_id IN ({q}) ORDER BY m.cluster_id, m.rank", cluster_ids)
    return [dict(r) for r in rows]
