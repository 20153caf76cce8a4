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
