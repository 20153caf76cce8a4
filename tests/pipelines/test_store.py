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


def test_records_come_back_typed_with_gold_only_when_asked(tmp_path):
    from dataclasses import FrozenInstanceError

    from pipelines.store import (NewRecord, Record, Turn, get_record, iter_records,
                                 render_turns, upsert_record, utcnow)
    from pipelines.store.exports import iter_export_candidates, put_label

    ws = Workspace.create(tmp_path / "ws")
    msgs = [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]
    turns = tuple(Turn(m["role"], m["content"]) for m in msgs)
    with ws.transaction() as conn:
        for row in (1, 2):
            upsert_record(conn, NewRecord(id="rc", kind="chat", text=render_turns(turns),
                                          prompt="Hi?", response="Hello.", messages=msgs,
                                          gold={"q": "ACCEPT"}, meta={"k": 1}, file="f.jsonl",
                                          row=row), utcnow())
        put_label(conn, "rc", "q", "ACCEPT", 0.8)
    with ws.connect() as conn:
        (plain,) = iter_records(conn)
        (with_gold,) = iter_records(conn, with_gold=True)
        one = get_record(conn, "rc")
        (cand,) = iter_export_candidates(conn, "q")
    assert isinstance(plain, Record) and plain.turns == turns
    assert plain.text == "user: Hi?\nassistant: Hello."
    assert plain.gold is None and with_gold.gold == {"q": "ACCEPT"}
    d = plain.to_dict()
    assert d["messages"] == msgs and d["meta"] == {"k": 1} and "gold" not in d
    assert Record.from_row(d) == plain   # decoded JSON columns read back the same
    assert [(s.file, s.row) for s in one.sources] == [("f.jsonl", 1), ("f.jsonl", 2)]
    assert cand.record.gold == {"q": "ACCEPT"} and cand.state.label == "ACCEPT"
    assert cand.state.excluded is False and cand.to_dict()["confidence"] == 0.8
    with pytest.raises(FrozenInstanceError):
        plain.text = "changed"  # type: ignore[misc]
