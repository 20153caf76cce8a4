"""The workspace: a folder with `studio.db` (SQLite, WAL) and the artefact subfolders.

This module owns the connection and the transaction discipline; the SQL for each table lives in
the sibling modules of `pipelines.store`. Every write goes through `Workspace.transaction()`:
`BEGIN IMMEDIATE` ... `COMMIT`, rolled back on any exception, so a failed step leaves the
database exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from pipelines.errors import WorkspaceError
from pipelines.store.schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["Workspace", "SUBFOLDERS", "utcnow"]

DB_NAME = "studio.db"
CONFIG_NAME = "curation.yaml"
SUBFOLDERS = ("embeddings", "indexes", "labels", "lfs", "exports", "runs", "rejects", "labelstudio")


def utcnow() -> str:
    """An ISO-8601 UTC timestamp with seconds, the format stored everywhere."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Workspace:
    """A handle on a workspace folder. Cheap to create; connections are opened per use."""

    path: Path

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike) -> "Workspace":
        """Create (or open) a workspace at `path`, migrating its database to the current schema."""
        root = Path(path).expanduser().resolve()
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"workspace path {root} exists and is not a folder")
        root.mkdir(parents=True, exist_ok=True)
        for sub in SUBFOLDERS:
            (root / sub).mkdir(exist_ok=True)
        ws = cls(root)
        ws.migrate()
        return ws

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Workspace":
        """Open an existing workspace; raise `WorkspaceError` if there is none at `path`."""
        root = Path(path).expanduser().resolve()
        if not (root / DB_NAME).is_file():
            raise WorkspaceError(
                f"no workspace at {root} (no {DB_NAME}); create one with "
                f"`curate init --workspace {path}` or ingest a file into it"
            )
        ws = cls(root)
        ws.migrate()
        return ws

    @property
    def db_path(self) -> Path:
        return self.path / DB_NAME

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME

    def subdir(self, name: str) -> Path:
        d = self.path / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.db_path, isolation_level=None, timeout=30.0,
                                   check_same_thread=False)
        except sqlite3.Error as exc:  # pragma: no cover - depends on the file system
            raise WorkspaceError(f"cannot open {self.db_path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 30000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":  # pragma: no cover - e.g. a network file system
            conn.close()
            raise WorkspaceError(f"{self.db_path}: SQLite refused WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads (autocommit). Use `transaction()` for writes."""
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed if the block returns, rolled back if it raises."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
        finally:
            conn.close()

    # -- schema ------------------------------------------------------------------------------
    def schema_version(self) -> int:
        with self.connect() as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> int:
        """Apply every migration not yet applied, each in its own transaction, in version order.

        Applied versions are recorded one by one in `schema_migrations` (not only as a high-water
        mark), so a migration that landed after a higher-numbered one is still applied.
        `PRAGMA user_version` mirrors the highest applied version. Returns it.
        """
        with self.connect() as conn:
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise WorkspaceError(
                    f"{self.db_path} has schema version {current}, newer than this curation-studio "
                    f"understands ({SCHEMA_VERSION}); upgrade curation-studio"
                )
            has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND "
                                     "name='schema_migrations'").fetchone()
            if has_table:
                applied = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            else:
                # A database from before the journal: user_version was a high-water mark.
                applied = {m.version for m in MIGRATIONS if m.version <= current}
            pending = [m for m in sorted(MIGRATIONS, key=lambda m: m.version)
                       if m.version not in applied]
            if not pending and has_table:
                return current
            for m in pending or [None]:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER "
                                 "PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)")
                    if not has_table:
                        conn.executemany(
                            "INSERT OR IGNORE INTO schema_migrations VALUES (?, ?, ?)",
                            [(x.version, x.description, utcnow()) for x in MIGRATIONS
                             if x.version in applied])
                        has_table = True
                    if m is not None:
                        # executescript would COMMIT implicitly; run statement by statement.
                        for stmt in _split_sql(m.sql):
                            conn.execute(stmt)
                        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                                     (m.version, m.description, utcnow()))
                        current = max(current, m.version)
                        conn.execute(f"PRAGMA user_version = {int(current)}")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            return current


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (complete_statement copes with ';' in strings)."""
    statements, buf = [], ""
    for line in script.splitlines(keepends=True):
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("--")):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements
