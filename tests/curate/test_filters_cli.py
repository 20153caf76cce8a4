"""`curate filter`, `curate pii`, `curate records` filters column, `curate export --pii`."""

from __future__ import annotations

import json

import pytest

from curate.cli import main
from pipelines.store import NewRecord, Workspace, upsert_record, utcnow
from pipelines.store.exports import put_label


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    ws.config_path.write_text("schema: instruction\nschemes:\n  q: {classes: [ACCEPT, REJECT]}\n")
    rows = [("Write a poem about rain.", "I'm sorry, but I cannot write poems."),
            ("Summarise: Jennifer Campbell reports a leak.", "Leak reported by Jennifer Campbell.")]
    rows += [(f"Summarise note {i}: pipe burst in the kitchen.", f"Kitchen pipe burst, note {i}.")
             for i in range(10)]
    with ws.transaction() as conn:
        for i, (p, r) in enumerate(rows):
            upsert_record(conn, NewRecord(id=f"r{i:03d}", kind="instruction", text=f"{p}\n\n{r}",
                                          prompt=p, response=r, file="x.jsonl", row=i + 1), utcnow())
            put_label(conn, f"r{i:03d}", "q", "ACCEPT", 0.99)
    return ws


def _runs(ws):
    with ws.connect() as conn:
        return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


@pytest.mark.parametrize("rule, why", [
    ("bogus < 1", "unknown signal 'bogus'"),
    ("length_words 3", "malformed"),
    ("lang != zz", "unknown language code 'zz'"),
])
def test_bad_rules_are_one_line_and_store_nothing(capsys, ws, rule, why):
    code, out, err = run(capsys, "filter", "-w", str(ws.path), "--rule", rule)
    assert code == 2 and why in err and len(err.strip().splitlines()) == 1
    assert _runs(ws) == 0


def test_missing_phrase_file_is_one_line(capsys, ws):
    ws.config_path.write_text(ws.config_path.read_text() + "filter:\n  refusal_phrases_file: gone.txt\n")
    code, _, err = run(capsys, "filter", "-w", str(ws.path))
    assert code == 2 and "refusal_phrases_file: no such file" in err and "gone.txt" in err
    assert _runs(ws) == 0


def test_filter_preview_then_run_then_records_and_export(capsys, ws):
    code, out, _ = run(capsys, "filter", "-w", str(ws.path), "--preview", "--json")
    s = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and s["fired"]["refusal"] == 1 and s["run_id"] is None
    code, out, _ = run(capsys, "filter", "-w", str(ws.path), "--json")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["excluded"] == 1
    code, out, _ = run(capsys, "records", "-w", str(ws.path), "--format", "jsonl")
    rows = {json.loads(line)["id"]: json.loads(line) for line in out.strip().splitlines()}
    assert rows["r000"]["filters"] == "refusal" and rows["r000"]["excluded"]
    code, out, _ = run(capsys, "filter", "keep", "r000", "-w", str(ws.path), "--json")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["excluded"] is False

    code, _, err = run(capsys, "export", "-w", str(ws.path), "--format", "alpaca", "--pii", "none")
    assert code == 2 and "export refused" in err and "PERSON 2" in err
    code, out, _ = run(capsys, "export", "-w", str(ws.path), "--format", "alpaca", "--json")
    s = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and s["pii"]["mode"] == "placeholder" and s["pii"]["redacted"] == {"PERSON": 2}


def test_pii_command(capsys, ws):
    code, out, _ = run(capsys, "pii", "-w", str(ws.path), "--json")
    s = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and s["with_pii"] == 1 and s["spans"] == {"PERSON": 2}
    code, _, err = run(capsys, "pii", "-w", str(ws.path), "--types", "NAME")
    assert code == 2 and "unknown type(s) NAME" in err
