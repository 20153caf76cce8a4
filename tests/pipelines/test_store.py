"""The workspace store: schema, migrations, transactions."""

import sqlite3

import pytest

from pipelines.errors import WorkspaceError
from pipelines.store import SCHEMA_VERSION, Workspace, count_records, stage_counts
from pipelines.store import schema as schema_mod
from pipelines.store.schema import Migration


def test_create_makes_folders_and_wal_db(tmp_path):
    ws = Workspace.create(tmp_path / "w")
    assert ws.db_path.is_file()
    for sub in ("embeddings", "indexes", "exports", "runs", "lfs"):
        assert (ws.path / sub).is_dir()
    with ws.connect() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ws.schema_version() == SCHEMA_VERSION


def test_open_missing_workspace_names_the_path(tmp_path):
    with pytest.raises(WorkspaceError, match="no workspace at .*nowhere"):
        Workspace.open(tmp_path / "nowhere")


def test_transaction_rolls_back_on_error(tmp_path):
    ws = Workspace.create(tmp_path / "w")
    with pytest.raises(RuntimeError):
        with ws.transaction() as conn:
            conn.execute("INSERT INTO records (id, kind, text, ingested_at) VALUES ('a','text','x','t')")
            raise RuntimeError("boom")
    with ws.connect() as conn:
        assert count_records(conn) == 0
    with ws.transaction() as conn:
        conn.execute("INSERT INTO records (id, kind, text, ingested_at) VALUES ('a','text','x','t')")
    with ws.connect() as conn:
        assert count_records(conn) == 1


def test_migrations_apply_in_order_and_once(tmp_path, monkeypatch):
    ws = Workspace.create(tmp_path / "w")
    extra = Migration(SCHEMA_VERSION + 1, "test table", "CREATE TABLE t_extra (x INTEGER);")
    monkeypatch.setattr(schema_mod, "MIGRATIONS", [*schema_mod.MIGRATIONS, extra])
    import pipelines.store.workspace as wmod

    monkeypatch.setattr(wmod, "MIGRATIONS", schema_mod.MIGRATIONS)
    monkeypatch.setattr(wmod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    assert ws.migrate() == SCHEMA_VERSION + 1
    assert ws.migrate() == SCHEMA_VERSION + 1  # idempotent: the table is not created twice
    with ws.connect() as conn:
        conn.execute("SELECT x FROM t_extra")


def test_failed_migration_leaves_previous_version(tmp_path, monkeypatch):
    ws = Workspace.create(tmp_path / "w")
    bad = Migration(SCHEMA_VERSION + 1, "broken", "CREATE TABLE ok_t (x INTEGER);\nCREATE TABLE (;")
    import pipelines.store.workspace as wmod

    monkeypatch.setattr(wmod, "MIGRATIONS", [*schema_mod.MIGRATIONS, bad])
    monkeypatch.setattr(wmod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(sqlite3.Error):
        ws.migrate()
    assert ws.schema_version() == SCHEMA_VERSION
    with ws.connect() as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "ok_t" not in names  # the half of the migration that ran was rolled back


def test_newer_database_is_refused(tmp_path):
    ws = Workspace.create(tmp_path / "w")
    with ws.connect() as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 50}")
    with pytest.raises(WorkspaceError, match="newer"):
        Workspace.open(ws.path)


def test_stage_counts_on_empty_workspace(tmp_path):
    ws = Workspace.create(tmp_path / "w")
    with ws.connect() as conn:
        counts = stage_counts(conn)
    assert counts["records"] == 0 and counts["excluded"] == 0 and counts["labelled"] == {}


def test_a_late_lower_migration_is_still_applied(tmp_path, monkeypatch):
    """A migration numbered below the database's version but never applied runs on open."""
    import pipelines.store.workspace as wmod

    base = [m for m in schema_mod.MIGRATIONS if m.version == 1]
    high = Migration(90, "high", "CREATE TABLE t_high (x INTEGER);")
    monkeypatch.setattr(wmod, "MIGRATIONS", [*base, high])
    monkeypatch.setattr(wmod, "SCHEMA_VERSION", 90)
    ws = Workspace.create(tmp_path / "w")
    assert ws.schema_version() == 90
    low = Migration(50, "late", "CREATE TABLE t_low (x INTEGER);")
    monkeypatch.setattr(wmod, "MIGRATIONS", [*base, low, high])
    assert ws.migrate() == 90
    with ws.connect() as conn:
        conn.execute("SELECT x FROM t_low")
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [1, 50, 90]
