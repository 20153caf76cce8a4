"""Lineage that cannot lie: every run row ends `done`, `failed` or `interrupted`.

A step that commits its `running` row before long work (label, train, review push, roi) ends it
with `finish_run` on success and `end_run` on every other exit (an exception, Ctrl-C, SIGTERM
turned into `Terminated` by `raise_on_sigterm`). What no handler sees (SIGKILL, power loss, a full
disk while writing the end) is caught when the workspace next opens: `reap_stale_runs` marks a
`running` row whose process (`pid` on `host`, recorded by `start_run`) is gone `interrupted`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import threading
import types
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from pipelines.errors import StudioError

if TYPE_CHECKING:
    from pipelines.store.workspace import Workspace

__all__ = ["Terminated", "raise_on_sigterm", "end_run", "ended_status", "reap_stale_runs",
           "process_alive", "run_owner"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that `finally` blocks and `end_run` still run."""


@contextlib.contextmanager
def raise_on_sigterm() -> Iterator[types.SimpleNamespace]:
    """While the block runs, SIGTERM raises `Terminated` (a no-op outside the main thread).
    Yields a state whose `signalled` tells afterwards whether SIGTERM came (a caller such as
    click may have turned the exception into an exit code on the way)."""
    state = types.SimpleNamespace(signalled=False)
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def on_sigterm(signum, frame):
        state.signalled = True
        raise Terminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield state
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_owner() -> tuple[int, str]:
    """(pid, host) stored with a run row."""
    return os.getpid(), socket.gethostname()


def ended_status(exc: BaseException | None) -> str:
    """How a run ended, from the exception that ended it (None: it finished)."""
    if exc is None:
        return "done"
    if isinstance(exc, KeyboardInterrupt):   # Ctrl-C and Terminated (SIGTERM)
        return "interrupted"
    return "failed"


def end_run(ws: "Workspace", run_id: int, exc: BaseException, metrics: dict | None = None) -> None:
    """Mark a still-`running` run `failed` or `interrupted` by `exc`. Never raises: it runs on
    the way out of an exception that must stay the one the user sees; if the row cannot be
    written now (disk full, lock held), the next open of the workspace marks it."""
    status = ended_status(exc)
    info = {**(metrics or {}), "error": f"{type(exc).__name__}: {exc}"[:500]}
    with contextlib.suppress(StudioError, sqlite3.Error, OSError):
        with ws.transaction() as conn:
            row = conn.execute("SELECT metrics FROM runs WHERE id = ? AND status = 'running'",
                               (run_id,)).fetchone()
            if row is None:
                return
            merged = {**json.loads(row["metrics"] or "{}"), **info}
            conn.execute("UPDATE runs SET status = ?, metrics = ?, finished_at = ? WHERE id = ?",
                         (status, json.dumps(merged, sort_keys=True, default=str),
                          _now(), run_id))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _proc_start(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), from /proc; None where /proc cannot say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] == "Z":          # a zombie has ended; only its exit status is left
            return float("inf")
        ticks = int(fields[19])
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def process_alive(pid: int, started_at: str | None = None) -> bool:
    """Whether `pid` is still the process that started a run at `started_at` (ISO time): a pid
    that now belongs to a process started later (pid reuse) counts as gone."""
    from pipelines.launch import pid_alive

    if pid <= 0 or not pid_alive(pid):
        return False
    begun = _proc_start(pid)
    if begun == float("inf"):
        return False
    if begun is not None and started_at:
        with contextlib.suppress(ValueError):
            run_t = datetime.fromisoformat(started_at).timestamp()
            if begun > run_t + 2:            # started after the run began: not the run's process
                return False
    return True


def reap_stale_runs(ws: "Workspace") -> list[int]:
    """Mark `interrupted` each `running` run of this host whose process is gone. Returns their
    ids. Cheap when there are none (one read); a busy workspace is left for the next open."""
    host = socket.gethostname()
    with contextlib.suppress(StudioError, sqlite3.Error):
        with ws.connect() as conn:
            cols = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
            if "pid" not in cols:
                return []
            rows = conn.execute("SELECT id, pid, host, started_at FROM runs "
                                "WHERE status = 'running' AND pid IS NOT NULL").fetchall()
        stale = [r["id"] for r in rows if r["host"] == host and r["pid"] != os.getpid()
                 and not process_alive(r["pid"], r["started_at"])]
        if not stale:
            return []
        with ws.transaction() as conn:
            for run_id in stale:
                row = conn.execute("SELECT metrics, pid FROM runs WHERE id = ? AND "
                                   "status = 'running'", (run_id,)).fetchone()
                if row is None:
                    continue
                merged = {**json.loads(row["metrics"] or "{}"),
                          "error": f"process {row['pid']} ended without recording how "
                                   f"(killed, or the disk was full); marked when the workspace "
                                   f"was next opened"}
                conn.execute("UPDATE runs SET status = 'interrupted', metrics = ?, "
                             "finished_at = ? WHERE id = ?",
                             (json.dumps(merged, sort_keys=True), _now(), run_id))
        return stale
    return []


def note_writer(conn: sqlite3.Connection, step: str, run_id: int) -> None:
    """Inside a write transaction, add the step and run to the writer note (see workspace.py)
    so that a writer waiting for the lock can say what it waits for."""
    if not conn.in_transaction:
        return
    with contextlib.suppress(sqlite3.Error, OSError, ValueError):
        db = next(r[2] for r in conn.execute("PRAGMA database_list") if r[1] == "main")
        from pipelines.store.workspace import WRITER_NAME

        note = Path(db).with_name(WRITER_NAME)
        info = json.loads(note.read_text(encoding="utf-8"))
        if info.get("pid") != os.getpid():
            return
        info.update(step=step, run_id=run_id)
        tmp = note.with_name(f".{WRITER_NAME}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(info))
        os.replace(tmp, note)
