"""The `models` table: the registry of trained adapters and routers (see `trainer.registry`).

Rows are plain dicts keyed by `MODEL_COLUMNS`; `classes` and `evaluation` are JSON text, `path`
is stored relative to the workspace when it lies inside it (the registry does that mapping).
"""

from __future__ import annotations

import sqlite3
from typing import Any

__all__ = ["MODEL_COLUMNS", "model_rows", "put_model", "delete_model"]

MODEL_COLUMNS = ("name", "kind", "head", "scheme", "base_model", "export", "run_id", "path",
                 "size_bytes", "classes", "evaluation", "created_at")


def model_rows(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    cur = conn.execute(f"SELECT {', '.join(MODEL_COLUMNS)} FROM models "
                       f"ORDER BY created_at, run_id, name")
    return [dict(zip(MODEL_COLUMNS, r)) for r in cur.fetchall()]


def put_model(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    conn.execute(f"INSERT OR REPLACE INTO models ({', '.join(MODEL_COLUMNS)}) VALUES "
                 f"({', '.join('?' * len(MODEL_COLUMNS))})", tuple(row[c] for c in MODEL_COLUMNS))


def delete_model(conn: sqlite3.Connection, name: str) -> None:
    conn.execute("DELETE FROM models WHERE name = ?", (name,))
