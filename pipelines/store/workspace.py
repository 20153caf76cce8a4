"""The workspace: a folder with `studio.db` (SQLite, WAL) and the artefact subfolders.

This module owns the connection and the transaction discipline; the SQL for each table lives in
the sibling modules of `pipelines.store`. Every write goes through `Workspace.transaction()`:
`BEGIN IMMEDIATE` ... `COMMIT`, rolled back on any exception, so a failed step leaves the
database exactly as it was.

Lock model (docs/architecture.md): one writer at a time (SQLite's write lock, taken by
`BEGIN IMMEDIATE`), any number of readers (WAL). A writer that finds the lock taken says who holds
it and waits up to `lock_timeout()` seconds, then raises `WorkspaceBusyError`. SQLite failures
that have a known cause (not a database, corrupt, read-only, disk full) become `WorkspaceError`s
that name the file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import sqlite3
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from pipelines.errors import WorkspaceBusyError, WorkspaceError
from pipelines.paths import resolve_path
from pipelines.store.schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["Workspace", "SUBFOLDERS", "utcnow", "lock_timeout", "disk_full_error"]

DB_NAME = "studio.db"
CONFIG_NAME = "curation.yaml"
SUBFOLDERS = ("embeddings", "indexes", "labels", "lfs", "exports", "runs", "rejects", "labelstudio")
# Who holds the write lock (pid, host, since, and the step and run once `start_run` names them):
# a writer that has to wait reads it to say what it waits for. Best effort, never trusted for
# locking itself (SQLite's lock is the lock).
WRITER_NAME = "studio.db-writer"
LOCK_TIMEOUT_ENV = "CURATE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_S = 60.0
_DIR_MODE, _DB_MODE = 0o700, 0o600
_SQLITE_MAGIC = b"SQLite format 3\x00"


def lock_timeout() -> float:
    """Seconds a writer waits for the workspace lock: $CURATE_LOCK_TIMEOUT (`curate
    --lock-timeout`), default 60."""
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise WorkspaceError(f"{LOCK_TIMEOUT_ENV} must be a number of seconds >= 0, got {raw!r}")
    return value


def _mount_point(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def disk_full_error(path: str | os.PathLike) -> WorkspaceError:
    """A one-line error for a full file system, naming the one that holds `path`."""
    mount = _mount_point(Path(path))
    try:
        free = f", {shutil.disk_usage(mount).free // 2**20} MiB free"
    except OSError:
        free = ""
    return WorkspaceError(f"disk full: no space left on the file system mounted at {mount} "
                          f"(writing {path}{free}); free some space and run the step again "
                          f"(nothing was half-written)")


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL"


def _is_busy(exc: BaseException) -> bool:
    return (isinstance(exc, sqlite3.OperationalError)
            and getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")))


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
        root = resolve_path(path, what="workspace path", error=WorkspaceError)
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"workspace path {root} exists and is not a folder")
        db = root / DB_NAME
        fresh = not db.exists() or (db.is_file() and db.stat().st_size == 0)   # 0: a crashed create
        try:
            # New folders are private (0700); the database is created 0600 before SQLite opens
            # it, and SQLite gives -wal and -shm the mode of the database.
            root.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
            for sub in SUBFOLDERS:
                (root / sub).mkdir(mode=_DIR_MODE, exist_ok=True)
            if fresh:
                os.close(os.open(root / DB_NAME, os.O_WRONLY | os.O_CREAT, _DB_MODE))
                _make_private(root)
        except OSError as exc:
            if _is_disk_full(exc):
                raise disk_full_error(root) from None
            raise WorkspaceError(f"cannot create workspace {root}: {exc.strerror or exc}") from None
        ws = cls(root)
        if not fresh:
            ws._check_file()
        ws._open_checks()
        return ws

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Workspace":
        """Open an existing workspace; raise `WorkspaceError` if there is none at `path`."""
        root = resolve_path(path, what="workspace path", error=WorkspaceError)
        if not (root / DB_NAME).is_file():
            raise WorkspaceError(
                f"no workspace at {root} (no {DB_NAME}); create one with "
                f"`curate init --workspace {path}` or ingest a file into it"
            )
        ws = cls(root)
        ws._check_file()
        ws._open_checks()
        return ws

    def _check_file(self) -> None:
        """Refuse a `studio.db` that is not an SQLite database or is shorter than its header says
        (truncated): cheap (the 100-byte header), so every open can afford it."""
        db = self.db_path
        try:
            with open(db, "rb") as fh:
                header = fh.read(100)
            size = db.stat().st_size
        except OSError as exc:
            raise WorkspaceError(f"cannot read {db}: {exc.strerror or exc}") from None
        if not header:
            raise WorkspaceError(f"{db} is empty (0 bytes), not a workspace database; restore it "
                                 f"from a backup or remove it and ingest again")
        if not header.startswith(_SQLITE_MAGIC):
            raise WorkspaceError(f"{db} is not an SQLite database (first bytes "
                                 f"{header[:16]!r}); restore it from a backup")
        if len(header) < 100:
            raise WorkspaceError(f"{db} is truncated ({size} bytes, shorter than the header)")
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(header[28:32], "big")
        valid = header[24:28] == header[92:96]   # the in-header size is valid only then
        if valid and pages and size < pages * page_size:
            raise WorkspaceError(f"{db} is truncated ({size} bytes; its header says "
                                 f"{pages} pages of {page_size} bytes); restore it from a backup")

    def _open_checks(self) -> None:
        self.migrate()
        from pipelines.store.runs import reap_stale_runs

        reap_stale_runs(self)

    @property
    def db_path(self) -> Path:
        return self.path / DB_NAME

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME

    def subdir(self, name: str) -> Path:
        d = self.path / name
        d.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        return d

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = None
        try:
            conn = sqlite3.connect(self.db_path, isolation_level=None, timeout=lock_timeout(),
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {int(lock_timeout() * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":  # pragma: no cover - e.g. a network file system
                raise WorkspaceError(f"{self.db_path}: SQLite refused WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException as exc:
            if conn is not None:
                conn.close()
            known = self._known(exc)
            if known is exc:
                raise
            raise known from None
        return conn

    def _known(self, exc: BaseException) -> BaseException:
        """`exc` as a one-line `WorkspaceError` when its cause is known, else `exc` itself."""
        if isinstance(exc, (WorkspaceError, sqlite3.IntegrityError, sqlite3.ProgrammingError,
                            sqlite3.InterfaceError)):
            return exc
        if _is_disk_full(exc):
            return disk_full_error(getattr(exc, "filename", None) or self.db_path)
        if not isinstance(exc, sqlite3.Error):
            return exc
        name = getattr(exc, "sqlite_errorname", "") or ""
        db = self.db_path
        if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or name.startswith("SQLITE_CORRUPT"):
            return WorkspaceError(f"{db} is not a usable SQLite database ({exc}); restore it "
                                  f"from a backup")
        if name.startswith("SQLITE_READONLY") or name == "SQLITE_PERM":
            return WorkspaceError(f"{db} is read-only ({exc}): check the permissions of the file, "
                                  f"its -wal/-shm files and {db.parent}")
        if name.startswith("SQLITE_CANTOPEN"):
            return WorkspaceError(f"cannot open {db} ({exc}): check that the folder exists and is "
                                  f"writable")
        if name.startswith("SQLITE_IOERR"):
            return WorkspaceError(f"I/O error on {db} ({exc})")
        if _is_busy(exc):
            return WorkspaceBusyError(f"{db}: workspace busy ({exc}) after waiting "
                                      f"{lock_timeout():g} s; set {LOCK_TIMEOUT_ENV} or "
                                      f"`curate --lock-timeout` to wait longer")
        return exc

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads (autocommit). Use `transaction()` for writes."""
        conn = self._connect()
        try:
            yield conn
        except sqlite3.Error as exc:
            known = self._known(exc)
            if known is exc:
                raise
            raise known from None
        finally:
            conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed if the block returns, rolled back if it raises.

        Waits for the write lock as the lock model says (`_begin`). An error whose cause is known
        (disk full, read-only, corrupt) leaves as a `WorkspaceError` naming the file; SQLite may
        already have rolled back by itself (e.g. on SQLITE_FULL), so ROLLBACK runs only when a
        transaction is still open and can never mask the real error.
        """
        conn = self._connect()
        try:
            self._begin(conn)
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                known = self._known(exc)
                if known is exc:
                    raise
                raise known from None
            finally:
                self._release_writer()
        finally:
            conn.close()

    # -- the write lock ----------------------------------------------------------------------
    def _begin(self, conn: sqlite3.Connection) -> None:
        """`BEGIN IMMEDIATE`: at once if the lock is free, else say who holds it and wait up to
        `lock_timeout()` seconds, then raise `WorkspaceBusyError` (one line, never SQLite's
        `database is locked`)."""
        limit = lock_timeout()
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise self._known(exc) from None
            holder = self.lock_holder(conn)
            sys.stderr.write(f"workspace busy: waiting for {holder} (up to {limit:g} s; "
                             f"{LOCK_TIMEOUT_ENV} / --lock-timeout)\n")
            sys.stderr.flush()
            conn.execute(f"PRAGMA busy_timeout = {int(limit * 1000)}")
            t0 = time.monotonic()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc2:
                if not _is_busy(exc2):
                    raise self._known(exc2) from None
                raise WorkspaceBusyError(
                    f"workspace {self.path} still busy after {time.monotonic() - t0:.0f} s: "
                    f"{self.lock_holder(conn)} holds the write lock; run again when it ends, or "
                    f"wait longer with {LOCK_TIMEOUT_ENV}=SECONDS / `curate --lock-timeout`"
                ) from None
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.execute(f"PRAGMA busy_timeout = {int(limit * 1000)}")
        self.claim_writer()

    @property
    def _writer_path(self) -> Path:
        return self.path / WRITER_NAME

    def claim_writer(self, **about) -> None:
        """Note who holds the write lock (best effort: a full disk must not fail the step)."""
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": utcnow(),
                "argv": " ".join(os.path.basename(a) if i == 0 else a
                                 for i, a in enumerate(sys.argv[:3])), **about}
        if about:
            with contextlib.suppress(OSError, ValueError):
                info = {**json.loads(self._writer_path.read_text(encoding="utf-8")), **about}
        tmp = self._writer_path.with_name(f".{WRITER_NAME}.{os.getpid()}")
        with contextlib.suppress(OSError):
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _DB_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(info))
            os.replace(tmp, self._writer_path)

    def _release_writer(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(self._writer_path.read_text(encoding="utf-8"))
            if info.get("pid") == os.getpid():
                self._writer_path.unlink()

    def lock_holder(self, conn: sqlite3.Connection | None = None) -> str:
        """Words for whoever holds the write lock: '<step> run <id> started at <time>, pid N' when
        known, from the writer note or else the newest `running` run."""
        info: dict = {}
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(self._writer_path.read_text(encoding="utf-8"))
        if not info.get("step") and conn is not None:
            with contextlib.suppress(sqlite3.Error):
                row = conn.execute("SELECT * FROM runs WHERE status = 'running' "
                                   "ORDER BY id DESC LIMIT 1").fetchone()
                if row is not None:
                    keys = row.keys()
                    info = {"step": row["step"], "run_id": row["id"],
                            "since": row["started_at"],
                            "pid": row["pid"] if "pid" in keys else info.get("pid")}
        if info.get("step"):
            text = f"{info['step']} run {info.get('run_id', '?')} started at {info.get('since')}"
        elif info:
            text = f"a writer ({info.get('argv') or 'another process'}) since {info.get('since')}"
        else:
            return "another writer (unknown process)"
        return text + (f", pid {info['pid']}" if info.get("pid") else "")

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
                self._begin(conn)
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
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
                finally:
                    self._release_writer()
            if pending:
                _make_private(self.path)   # a workspace from before private modes: once
            return current


def _make_private(root: Path) -> None:
    """Folders 0700, the database files 0600 (best effort: a file we do not own stays)."""
    for p in [root, *(root / s for s in SUBFOLDERS)]:
        with contextlib.suppress(OSError):
            if p.is_dir() and p.stat().st_mode & 0o077:
                os.chmod(p, _DIR_MODE)
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
        with contextlib.suppress(OSError):
            if (root / name).stat().st_mode & 0o077:
                os.chmod(root / name, _DB_MODE)


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
