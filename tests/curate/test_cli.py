"""The `curate` CLI: JSON summaries, formats, exit codes, and documented commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from curate.cli import app, main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def csv_file(tmp_path) -> Path:
    f = tmp_path / "notes.csv"
    f.write_text("body,label\nPipe burst in kitchen.,water\nCar hit a fence.,auto\n"
                 "Pipe burst in kitchen.,water\n", encoding="utf-8")
    return f


def test_ingest_json_keys_and_idempotence(capsys, tmp_path, csv_file):
    ws = str(tmp_path / "ws")
    code, out, _ = run(capsys, "ingest", str(csv_file), "-w", ws, "--text-field", "body", "--json")
    assert code == 0
    summary = last_json(out)
    assert (summary["added"], summary["unchanged"], summary["rejected"]) == (2, 0, 0)
    assert summary["duplicates"] == 1
    code, out, _ = run(capsys, "ingest", str(csv_file), "-w", ws, "--text-field", "body", "--json")
    assert (last_json(out)["added"], last_json(out)["unchanged"]) == (0, 3)


def test_records_formats(capsys, tmp_path, csv_file):
    ws = str(tmp_path / "ws")
    run(capsys, "ingest", str(csv_file), "-w", ws, "--text-field", "body")
    code, out, _ = run(capsys, "records", "-w", ws, "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 2
    for key in ("id", "text", "source", "cluster_id", "excluded", "label", "confidence",
                "review_status"):
        assert key in rows[0]
    assert rows[0]["text"] == "Pipe burst in kitchen." and rows[0]["source"].endswith("notes.csv:1")
    code, out, _ = run(capsys, "records", "-w", ws, "--format", "csv")
    assert out.splitlines()[0].startswith("id,source,text") and len(out.splitlines()) == 3
    code, out, _ = run(capsys, "records", "-w", ws)
    assert "notes.csv:1 (+1)" in out  # the folded duplicate shows as a second source


def test_status_json(capsys, tmp_path, csv_file):
    ws = str(tmp_path / "ws")
    run(capsys, "ingest", str(csv_file), "-w", ws, "--text-field", "body")
    code, out, _ = run(capsys, "status", "-w", ws, "--json")
    s = last_json(out)
    assert code == 0 and s["records"] == 2 and s["folded_duplicates"] == 1


def test_user_errors_exit_2_with_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": 3}\n')
    code, out, err = run(capsys, "ingest", str(bad), "-w", str(tmp_path / "ws"))
    assert code == 2
    assert err.strip().count("\n") == 0 and "bad.jsonl, row 2 (line 2), field 'text'" in err
    code, _, err = run(capsys, "status", "-w", str(tmp_path / "nowhere"))
    assert code == 2 and "no workspace" in err
    code, _, err = run(capsys, "records", "-w", str(tmp_path / "ws"), "--format", "xml")
    assert code == 2 and "--format" in err


def test_ingest_dry_run_shows_the_layout_and_creates_nothing(capsys, tmp_path):
    f = tmp_path / "sharegpt.json"
    f.write_text(json.dumps([{"id": "1", "conversations": [
        {"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."}]}]))
    ws = tmp_path / "ws"
    code, out, _ = run(capsys, "ingest", str(f), "-w", str(ws), "--dry-run", "--json")
    assert code == 0 and not ws.exists()
    assert "layout: sharegpt -> chat records" in out and "messages <- 'conversations'" in out
    assert "  | user: Hi?\n  | assistant: Hello." in out
    assert last_json(out)["files"][0]["layout"] == "sharegpt"


def test_ingest_rejecting_most_rows_exits_2_and_stores_nothing(capsys, tmp_path):
    f = tmp_path / "wrong.jsonl"
    f.write_text("".join(json.dumps({"conversations": [{"from": "narrator", "value": "x"}]}) + "\n"
                         for _ in range(3)))
    ws = tmp_path / "ws"
    code, out, err = run(capsys, "ingest", str(f), "-w", str(ws), "--skip-invalid")
    assert code == 2 and err.strip().count("\n") == 0 and "rejected 3 of 3 rows" in err
    code, out, _ = run(capsys, "status", "-w", str(ws), "--json")
    assert last_json(out)["records"] == 0
    code, _, err = run(capsys, "ingest", str(f), "-w", str(ws), "--skip-invalid",
                       "--max-reject-share", "1")
    assert code == 0


def test_installed_console_script_exit_code(tmp_path):
    curate = Path(sys.executable).parent / "curate"
    proc = subprocess.run([str(curate), "status", "-w", str(tmp_path / "none")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_init_sample_loads_and_reports(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    code, out, _ = run(capsys, "init", "-w", ws, "--sample", "--json")
    s = last_json(out)
    assert code == 0 and s["added"] > 2000 and s["duplicates"] > 0 and s["rejected"] > 0
    assert (tmp_path / "ws" / "curation.yaml").is_file()
    code, out, _ = run(capsys, "init", "-w", ws, "--sample", "--json")
    assert last_json(out)["added"] == 0  # running it again changes nothing


def _commands(group, prefix=()):
    import typer.main

    click_group = typer.main.get_command(group) if not hasattr(group, "commands") else group
    for name, cmd in click_group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


def test_every_command_is_documented_with_an_example():
    missing = [" ".join(path) for path, cmd in _commands(app)
               if "Example:" not in (cmd.help or "")]
    assert not missing, f"commands without an 'Example:' in their help: {missing}"


def test_every_command_takes_json():
    missing = [" ".join(path) for path, cmd in _commands(app)
               if not any("--json" in p.opts for p in cmd.params)]
    assert not missing, f"commands without --json: {missing}"


# -- hardening: the top level ----------------------------------------------------------------
def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(capsys, tmp_path,
                                                                       csv_file, monkeypatch):
    import curate.cli.core as core

    ws = str(tmp_path / "ws")
    run(capsys, "ingest", str(csv_file), "-w", ws, "--text-field", "body")

    def broken(*a, **k):
        raise ZeroDivisionError("a bug\nover two lines")
    monkeypatch.setattr(core, "stage_counts", broken)
    monkeypatch.delenv("CURATE_DEBUG", raising=False)
    code, _, err = run(capsys, "status", "-w", ws)
    assert code == 1
    assert err == ("error: ZeroDivisionError: a bug over two lines (run with --debug for the "
                   "traceback)\n")
    code, _, err = run(capsys, "--debug", "status", "-w", ws)
    assert code == 1 and "Traceback (most recent call last)" in err and "ZeroDivisionError" in err
    monkeypatch.setenv("CURATE_DEBUG", "1")
    code, _, err = run(capsys, "status", "-w", ws)
    assert code == 1 and "Traceback" in err


def test_bad_paths_are_one_line(capsys, tmp_path):
    loop = tmp_path / "loop.csv"
    loop.symlink_to(tmp_path / "loop2.csv")
    (tmp_path / "loop2.csv").symlink_to(loop)
    ws = str(tmp_path / "ws")
    code, _, err = run(capsys, "ingest", str(loop), "-w", ws)
    assert code == 2 and err.count("\n") == 1 and "symbolic link loop" in err
    code, _, err = run(capsys, "ingest", "a\x00b.csv", "-w", ws)   # click's usage error
    assert code == 2 and "Traceback" not in err and "null byte" in err
    from pipelines.errors import InputError
    from pipelines.ingest import ingest
    from pipelines.store import Workspace

    with pytest.raises(InputError, match="input file 'a.x00b.csv' contains a NUL byte"):
        ingest(Workspace.create(ws), ["a\x00b.csv"])
    code, _, err = run(capsys, "status", "-w", str(loop))
    assert code == 2 and err.count("\n") == 1 and "symbolic link loop" in err
    code, _, err = run(capsys, "status", "-w", "w\x00s")
    assert code == 2 and err.count("\n") == 1 and "NUL byte" in err


def test_a_corrupt_db_is_one_line_for_every_command(capsys, tmp_path, csv_file):
    ws = tmp_path / "ws"
    run(capsys, "ingest", str(csv_file), "-w", str(ws), "--text-field", "body")
    (ws / "studio.db").write_bytes(b"garbage" * 100)
    for argv in (["status"], ["records"], ["ingest", str(csv_file)]):
        code, _, err = run(capsys, *argv, "-w", str(ws))
        assert code == 2 and err.count("\n") == 1 and "is not an SQLite database" in err, argv


def test_busy_workspace_fails_in_one_line_after_the_lock_timeout(capsys, tmp_path, csv_file):
    import sqlite3

    ws = tmp_path / "ws"
    run(capsys, "ingest", str(csv_file), "-w", str(ws), "--text-field", "body")
    other = tmp_path / "more.csv"
    other.write_text("body\nHail dented the roof.\n", encoding="utf-8")
    holder = sqlite3.connect(ws / "studio.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        code, _, err = run(capsys, "--lock-timeout", "0.2", "ingest", str(other), "-w", str(ws),
                           "--text-field", "body")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 2, err
    assert lines[0].startswith("workspace busy: waiting for")
    assert lines[1].startswith("error: workspace") and "still busy" in lines[1]
    assert "database is locked" not in err


def test_two_skip_invalid_ingests_in_one_second_keep_both_reports(capsys, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": 3}\n', encoding="utf-8")
    bad2 = tmp_path / "bad2.jsonl"
    bad2.write_text('{"text": "fine"}\n{"nope": 1}\n', encoding="utf-8")
    ws = str(tmp_path / "ws")
    reports = []
    for f in (bad, bad2):
        code, out, _ = run(capsys, "ingest", str(f), "-w", ws, "--skip-invalid", "--json")
        reports.append(last_json(out)["reject_report"])
    assert code == 0 and reports[0] != reports[1]
    assert all(Path(r).is_file() for r in reports)


def test_export_removes_what_a_killed_export_left(tmp_path):
    import os as _os

    from tests.pipelines.test_export import make_ws
    from pipelines.export import export_dataset

    ws = make_ws(tmp_path, n=12)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = ws.path / "exports" / f".tmp-v0001-{dead.pid}"
    left.mkdir(parents=True)
    (left / "train.jsonl").write_text("half", encoding="utf-8")
    alive = ws.path / "exports" / f".tmp-v0001-{_os.getppid()}"   # a live process: kept
    alive.mkdir()
    assert export_dataset(ws, scheme="quality").version == "v0001"
    assert not left.exists() and alive.exists()


_LABEL_LF = '''
import time
from snorkel.labeling import labeling_function

@labeling_function()
def lf_slow(x):
    time.sleep(120)
    return 0
'''


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_killed_curate_label_ends_interrupted(tmp_path, csv_file, sig):
    import os
    import signal
    import sqlite3
    import time

    ws = tmp_path / "ws"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cli = [sys.executable, "-c", "from curate.cli import _entry; _entry()"]
    subprocess.run([*cli, "ingest", str(csv_file), "-w", str(ws), "--text-field", "body"],
                   env=env, check=True, capture_output=True)
    (ws / "curation.yaml").write_text("schemes:\n  claim: {classes: [water, auto]}\n",
                                      encoding="utf-8")
    (ws / "lfs" / "slow.py").write_text(_LABEL_LF, encoding="utf-8")
    proc = subprocess.Popen([*cli, "label", "-w", str(ws)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    def status():
        conn = sqlite3.connect(ws / "studio.db")
        try:
            return conn.execute("SELECT id, status FROM runs WHERE step = 'label'").fetchall()
        finally:
            conn.close()

    deadline = time.monotonic() + 240
    while not status() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert status() == [(status()[0][0], "running")], proc.communicate()
    time.sleep(0.5)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    if sig == "SIGTERM":
        assert proc.returncode == 143 and "Traceback" not in err, err
        assert status()[0][1] == "interrupted"
    else:
        assert status()[0][1] == "running"
        subprocess.run([*cli, "status", "-w", str(ws)], env=env, check=True, capture_output=True)
        assert status()[0][1] == "interrupted"


class _CtrlC:
    """A tqdm stand-in whose second update is the user's Ctrl-C (mid-ingest)."""

    def __init__(self, *a, **k):
        self.n = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, k=1):
        self.n += 1
        if self.n >= 2:
            raise KeyboardInterrupt


_QUICK_LF = '''
from snorkel.labeling import labeling_function

@labeling_function()
def lf_pipe(x):
    return 0 if "Pipe" in x.text else -1
'''


def test_ctrl_c_in_ingest_label_export_exits_130_and_keeps_the_workspace(capsys, tmp_path,
                                                                        csv_file, monkeypatch):
    import sqlite3

    ws = tmp_path / "ws"

    def n_rows(table):
        conn = sqlite3.connect(ws / "studio.db")
        try:
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            conn.close()

    with monkeypatch.context() as m:
        m.setattr("curate.cli.core.tqdm", _CtrlC)
        code, _, err = run(capsys, "ingest", str(csv_file), "-w", str(ws), "--text-field", "body")
    assert code == 130 and "interrupted: nothing was ingested" in err and "as it was" in err
    assert n_rows("records") == 0
    assert run(capsys, "ingest", str(csv_file), "-w", str(ws), "--text-field", "body")[0] == 0
    (ws / "curation.yaml").write_text("schemes:\n  claim: {classes: [water, auto]}\n",
                                      encoding="utf-8")
    (ws / "lfs" / "quick.py").write_text(_QUICK_LF, encoding="utf-8")

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr("pipelines.weak_supervision.run.replace_labels", ctrl_c)
        code, _, err = run(capsys, "label", "-w", str(ws))
    assert code == 130 and "interrupted: no labels changed" in err
    assert n_rows("labels") == 0
    assert run(capsys, "label", "-w", str(ws))[0] == 0
    with monkeypatch.context() as m:
        m.setattr("pipelines.export.export._write_manifest", ctrl_c)
        code, _, err = run(capsys, "export", "-w", str(ws), "--min-confidence", "0")
    assert code == 130 and "interrupted: no export version was written" in err
    assert not [p for p in (ws / "exports").iterdir()]


def test_every_dedup_setting_is_a_dedup_option():
    import dataclasses

    import typer

    from pipelines.dedup import DedupConfig

    group = typer.main.get_command(app).commands["dedup"]
    options = {p.name for p in group.params}
    fields = {f.name for f in dataclasses.fields(DedupConfig)} - {"verify"}   # --no-verify
    assert fields - options == set()
    assert "no_verify" in options


def test_cli_start_does_not_load_the_heavy_libraries():
    # every `curate` command pays the CLI's imports: the labeling stack (snorkel, sklearn) and
    # torch load when a command needs them, not at start (they were 5-10 s of each re-run)
    code = ("import sys, curate.cli; "
            "print(sorted(m for m in ('snorkel', 'sklearn', 'torch', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
