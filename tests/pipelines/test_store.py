"""The workspace store: schema, migrations, transactions."""

import os
import signal
import sqlite3
import time

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


# -- hardening: files that are not a workspace database ------------------------------------------
def _ws_with_row(tmp_path):
    ws = Workspace.create(tmp_path / "w")
    with ws.transaction() as conn:
        conn.execute("INSERT INTO records (id, kind, text, ingested_at) VALUES ('a','text','x','t')")
    return ws


def test_db_that_is_not_sqlite_is_one_workspace_error(tmp_path):
    ws = _ws_with_row(tmp_path)
    ws.db_path.write_bytes(b"this is a text file, not a database\n" * 10)
    with pytest.raises(WorkspaceError, match=r"studio\.db is not an SQLite database"):
        Workspace.open(ws.path)
    ws.db_path.write_bytes(b"")
    with pytest.raises(WorkspaceError, match=r"studio\.db is empty"):
        Workspace.open(ws.path)


def test_truncated_db_is_one_workspace_error(tmp_path):
    ws = _ws_with_row(tmp_path)
    with ws.connect() as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = ws.db_path.read_bytes()
    assert len(data) > 4096
    ws.db_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WorkspaceError, match=r"studio\.db is truncated"):
        Workspace.open(ws.path)
    ws.db_path.write_bytes(data[:60])
    with pytest.raises(WorkspaceError, match=r"truncated"):
        Workspace.open(ws.path)


def test_corrupt_page_becomes_workspace_error_at_first_read(tmp_path):
    ws = _ws_with_row(tmp_path)
    with ws.connect() as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(ws.db_path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)          # page 1's b-tree (sqlite_master)
    ws.db_path.write_bytes(bytes(data))
    with pytest.raises(WorkspaceError, match=r"studio\.db is not a usable SQLite database"):
        Workspace.open(ws.path)


def test_read_only_db_is_one_workspace_error(tmp_path, monkeypatch):
    ws = _ws_with_row(tmp_path)
    real_connect = sqlite3.connect
    import pipelines.store.workspace as wsmod

    # Root ignores file modes, so open the file the way a read-only mount or file gives it.
    monkeypatch.setattr(wsmod.sqlite3, "connect", lambda path, **kw: real_connect(
        f"file:{path}?mode=ro", uri=True, **kw))
    with ws.connect() as conn:
        assert count_records(conn) == 1
    with pytest.raises(WorkspaceError, match=r"studio\.db is read-only"):
        with ws.transaction() as conn:
            conn.execute("INSERT INTO records (id, kind, text, ingested_at) "
                         "VALUES ('b','text','y','t')")


def test_full_disk_is_the_real_error_not_a_failed_rollback(tmp_path):
    ws = _ws_with_row(tmp_path)
    with pytest.raises(WorkspaceError, match=r"disk full: no space left on the file system "
                                             r"mounted at /"):
        with ws.transaction() as conn:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages}")   # SQLITE_FULL, as a full disk
            conn.execute("INSERT INTO records (id, kind, text, ingested_at) VALUES "
                         "('b','text',?,'t')", ("x" * 100_000,))
    # SQLite may end the transaction itself: the block's own error must still be the one seen.
    with pytest.raises(WorkspaceError, match="disk full"):
        with ws.transaction() as conn:
            conn.execute("ROLLBACK")
            raise OSError(28, "No space left on device")
    with pytest.raises(ValueError, match="the real one"):
        with ws.transaction() as conn:
            conn.execute("ROLLBACK")
            raise ValueError("the real one")
    with ws.connect() as conn:
        assert count_records(conn) == 1


# -- hardening: private files ----------------------------------------------------------------
def test_workspace_files_are_private(tmp_path):
    ws = _ws_with_row(tmp_path)
    with ws.connect() as conn:   # an open connection: -wal and -shm exist
        conn.execute("SELECT 1").fetchone()
        for p in [ws.path, *ws.path.rglob("*")]:
            mode = p.stat().st_mode & 0o777
            if p.is_dir() or p.name.startswith("studio.db"):
                assert mode & 0o077 == 0, (p, oct(mode))
        assert (ws.path / "studio.db-wal").exists()


def test_an_old_world_readable_workspace_is_tightened_by_the_upgrade(tmp_path):
    ws = _ws_with_row(tmp_path)
    os.chmod(ws.path, 0o755)
    os.chmod(ws.db_path, 0o644)
    with ws.transaction() as conn:   # as a workspace from schema version 4
        conn.execute("DELETE FROM schema_migrations WHERE version = 5")
        conn.execute("ALTER TABLE runs DROP COLUMN host")
        conn.execute("ALTER TABLE runs DROP COLUMN pid")
    Workspace.open(ws.path)
    assert ws.path.stat().st_mode & 0o077 == 0 and ws.db_path.stat().st_mode & 0o077 == 0


# -- hardening: the write lock ---------------------------------------------------------------
def test_a_busy_workspace_says_who_holds_it_then_fails_in_one_line(tmp_path, monkeypatch, capsys):
    from pipelines.errors import WorkspaceBusyError
    from pipelines.store import start_run

    ws = _ws_with_row(tmp_path)
    with ws.transaction() as conn:
        run_id = start_run(conn, "label")
    holder = sqlite3.connect(ws.db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    monkeypatch.setenv("CURATE_LOCK_TIMEOUT", "0.5")
    try:
        t0 = time.monotonic()
        with pytest.raises(WorkspaceBusyError) as info:
            with ws.transaction():
                pass
        assert 0.4 < time.monotonic() - t0 < 5
        err = capsys.readouterr().err
        assert f"workspace busy: waiting for label run {run_id} started at " in err
        assert f"pid {os.getpid()}" in err
        assert "still busy" in str(info.value) and "\n" not in str(info.value)
        with ws.connect() as conn:    # readers never wait (WAL)
            assert count_records(conn) == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with ws.transaction() as conn:   # free again: no wait, no message
        conn.execute("SELECT 1")
    assert capsys.readouterr().err == ""


_HOLD = """
import sys, time
from pipelines.store import Workspace, start_run
ws = Workspace.open(sys.argv[1])
with ws.transaction() as conn:
    run = start_run(conn, "ingest")
    print(run, flush=True)
    time.sleep(60)
"""


def test_a_waiting_writer_names_the_step_inside_another_process_transaction(tmp_path,
                                                                             monkeypatch, capsys):
    from pipelines.errors import WorkspaceBusyError

    ws = _ws_with_row(tmp_path)
    child = _spawn(_HOLD, ws)
    try:
        run_id = int(child.stdout.readline())
        monkeypatch.setenv("CURATE_LOCK_TIMEOUT", "0.3")
        with pytest.raises(WorkspaceBusyError, match=f"ingest run {run_id} .*pid {child.pid}"):
            with ws.transaction():
                pass
        assert f"waiting for ingest run {run_id} started at" in capsys.readouterr().err
    finally:
        child.kill()
        child.wait()
    with ws.connect() as conn:   # killed inside its transaction: its run row never existed
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


# -- hardening: lineage that cannot lie ------------------------------------------------------
_RUN = """
import sys, time
from pipelines.store import Workspace, end_run, raise_on_sigterm, start_run
ws = Workspace.open(sys.argv[1])
with raise_on_sigterm():      # as `curate` does: before any run starts
    with ws.transaction() as conn:
        run = start_run(conn, "label", scheme="claim")
    try:
        print(run, flush=True)
        time.sleep(60)
    except BaseException as exc:
        end_run(ws, run, exc)
        raise
"""


def _spawn(code, ws):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-c", code, str(ws.path)], stdout=subprocess.PIPE,
                            text=True, env=env)


def _status(ws, run_id):
    conn = sqlite3.connect(ws.db_path)     # raw: no reaping on this read
    try:
        return conn.execute("SELECT status, pid, finished_at FROM runs WHERE id = ?",
                            (run_id,)).fetchone()
    finally:
        conn.close()


def test_sigterm_marks_the_run_interrupted(tmp_path):
    ws = _ws_with_row(tmp_path)
    child = _spawn(_RUN, ws)
    run_id = int(child.stdout.readline())
    assert _status(ws, run_id)[:2] == ("running", child.pid)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) != 0
    status, _, finished = _status(ws, run_id)
    assert status == "interrupted" and finished


def test_sigkill_leaves_running_until_the_workspace_opens_then_interrupted(tmp_path):
    ws = _ws_with_row(tmp_path)
    child = _spawn(_RUN, ws)
    run_id = int(child.stdout.readline())
    child.kill()
    child.wait(timeout=30)
    assert _status(ws, run_id)[0] == "running"
    Workspace.open(ws.path)
    assert _status(ws, run_id)[0] == "interrupted"
    from pipelines.store import list_runs

    with ws.connect() as conn:
        (run,) = list_runs(conn, "label")
    assert f"process {child.pid} ended" in run["metrics"]["error"]


def test_a_live_run_is_not_reaped_and_a_reused_pid_is(tmp_path):
    from pipelines.store import reap_stale_runs, start_run

    ws = _ws_with_row(tmp_path)
    with ws.transaction() as conn:
        mine = start_run(conn, "train")
        other = start_run(conn, "label")
        # pid 1 is alive but started long before this run: it is not the run's process
        conn.execute("UPDATE runs SET pid = 1, started_at = '2099-01-01T00:00:00+00:00' "
                     "WHERE id = ?", (other,))
        far = start_run(conn, "label")
        conn.execute("UPDATE runs SET host = 'elsewhere', pid = 999999999 WHERE id = ?", (far,))
    assert reap_stale_runs(ws) == []      # pid 1 started before 2099: could be it
    with ws.transaction() as conn:
        conn.execute("UPDATE runs SET started_at = '2000-01-01T00:00:00+00:00' WHERE id = ?",
                     (other,))
    assert reap_stale_runs(ws) == [other]
    assert _status(ws, mine)[0] == "running" and _status(ws, far)[0] == "running"


def test_end_run_never_overwrites_a_finished_run_and_names_the_status(tmp_path):
    from pipelines.store import Terminated, end_run, finish_run, start_run

    ws = _ws_with_row(tmp_path)
    with ws.transaction() as conn:
        a, b, c = (start_run(conn, "label") for _ in range(3))
        finish_run(conn, c, {"ok": 1})
    end_run(ws, a, ValueError("bad"))
    end_run(ws, b, Terminated("signal 15"))
    end_run(ws, c, ValueError("late"))
    assert [_status(ws, i)[0] for i in (a, b, c)] == ["failed", "interrupted", "done"]
