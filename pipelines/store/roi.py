"""SQL the ROI benchmark reads: each record's source rows and its dedup decision."""

from __future__ import annotations

import sqlite3

__all__ = ["record_source_rows", "dedup_flags"]


def record_source_rows(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """(record id, file, row) for every source row of every record."""
    return [(r[0], r[1], int(r[2])) for r in conn.execute(
        "SELECT record_id, file, row FROM record_sources ORDER BY record_id, file, row")]


def dedup_flags(conn: sqlite3.Connection) -> dict[str, tuple[str | None, bool]]:
    """{record id: (cluster id, excluded)} for records the dedup step has decided on."""
    return {r[0]: (r[1], bool(r[2])) for r in conn.execute(
        "SELECT record_id, cluster_id, excluded FROM dedup")}
