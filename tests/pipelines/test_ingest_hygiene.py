"""Ingest hardening: the bad-input catalogue (issue 16) and text hygiene.

Each bad row is an `InputError` of one line naming file, row and field; the workspace is
byte-identical afterwards; `--skip-invalid` skips the row and stores the rest.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from pipelines.errors import InputError
from pipelines.ingest import IngestConfig, ingest
from pipelines.ingest.hygiene import strip_controls
from pipelines.store import iter_records
from tests.pipelines.test_ingest import snapshot

GOOD = '{"text": "a fine row"}\n'
DEEP = "[" * 100_000 + "]" * 100_000


def _jsonl(bad_line: str) -> bytes:
    return (GOOD + bad_line + "\n" + '{"text": "another fine row"}\n').encode("utf-8")


def _json(bad_item: str) -> bytes:
    return ('[{"text": "a fine row"}, ' + bad_item + ', {"text": "another fine row"}]').encode()


def _csv(cells: list[list[str]]) -> bytes:
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["text", "gold_q"])
    w.writerows([["a fine row", ""], *cells, ["another fine row", ""]])
    return buf.getvalue().encode("utf-8")


# name -> (file name, bytes, the bad row, the field named, words the message holds)
CATALOGUE = {
    "surrogate in text": ("s.jsonl", _jsonl('{"text": "bad \\ud800 half"}'), 2, "text",
                          "lone surrogate"),
    "surrogate in metadata": ("m.jsonl", _jsonl('{"text": "t", "note": ["x", "\\udc00"]}'), 2,
                              "note", "lone surrogate"),
    "surrogate in a key": ("k.jsonl", _jsonl('{"text": "t", "bad\\ud800key": 1}'), 2,
                           "bad\\ud800key", "lone surrogate"),
    "100,000-deep array (jsonl)": ("d.jsonl", _jsonl('{"text": "t", "x": ' + DEEP + '}'), 2,
                                   None, "nested too deeply"),
    "100,000-deep array (json)": ("d.json", _json('{"text": "t", "x": ' + DEEP + '}'), 2, None,
                                  "nested too deeply"),
    "100-deep metadata": ("e.jsonl", _jsonl('{"text": "t", "x": ' + "[" * 100 + "]" * 100 + '}'),
                          2, "x", "nested more than"),
    "record over max_record_chars": ("b.jsonl", _jsonl(json.dumps({"text": "x" * 2000})), 2,
                                     "text", "max_record_chars"),
    "CSV field over max_record_chars": ("b.csv", _csv([["y" * 2000, ""]]), 2, "text",
                                        "max_record_chars"),
    "gold label outside the classes": ("g.csv", _csv([["t", "MAYBE"]]), 2, "gold_q",
                                       "'MAYBE' is not a class of scheme 'q' (ACCEPT, REJECT)"),
}


def _config(**kw) -> IngestConfig:
    return IngestConfig(max_record_chars=1000, gold_classes={"q": ["ACCEPT", "REJECT"]}, **kw)


@pytest.mark.parametrize("case", list(CATALOGUE))
def test_bad_input_is_one_line_naming_the_row_and_leaves_the_workspace_identical(
        case, fresh_ws, tmp_path):
    name, data, row, fname, words = CATALOGUE[case]
    path = tmp_path / name
    path.write_bytes(data)
    before = snapshot(fresh_ws)
    with pytest.raises(InputError) as info:
        ingest(fresh_ws, [path], _config())
    msg = str(info.value)
    assert "\n" not in msg and words in msg, msg
    assert info.value.file == str(path) and info.value.row == row, msg
    if fname is not None:
        assert info.value.field == fname, msg
    msg.encode("utf-8")   # printable: no lone surrogate reaches the terminal
    assert snapshot(fresh_ws) == before

    res = ingest(fresh_ws, [path], _config(skip_invalid=True))
    assert (res.added, res.rejected) == (2, 1)


def test_a_200000_character_csv_field_ingests(fresh_ws, tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(_csv([["z" * 200_000, ""]]))
    res = ingest(fresh_ws, [path])
    assert res.added == 3
    with fresh_ws.connect() as conn:
        assert max(len(r.text) for r in iter_records(conn)) == 200_000


def test_controls_and_ansi_escapes_are_stripped_and_counted_per_field(fresh_ws, tmp_path):
    path = tmp_path / "c.jsonl.gz"
    rows = [{"text": "red \x1b[31malert\x1b[0m here", "note": "nul\x00byte"},
            {"text": "tab\tand\nnewline stay", "note": "c1\x85 and bell\x07"},
            {"text": "clean", "note": "clean"}]
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    res = ingest(fresh_ws, [path])
    assert res.cleaned == {"text": 1, "note": 2} and res.files[0].cleaned == res.cleaned
    with fresh_ws.connect() as conn:
        recs = {r.text: r for r in iter_records(conn)}
    assert set(recs) == {"red alert here", "tab\tand\nnewline stay", "clean"}
    assert recs["red alert here"].meta == {"note": "nulbyte"}
    assert recs["tab\tand\nnewline stay"].meta == {"note": "c1 and bell"}


@pytest.mark.parametrize("dirty, clean", [
    ("\x1b]0;title\x07after", "after"), ("a\x1b[1;32;40mb", "ab"), ("x\x7fy\x9bz", "xyz"),
    ("kept: é ü 日本 \t\r\n", "kept: é ü 日本 \t\r\n"),
])
def test_strip_controls(dirty, clean):
    assert strip_controls(dirty) == clean


def test_records_table_never_prints_raw_escapes(tmp_path):
    """Data stored before hygiene existed (or a file name) can still hold escapes."""
    from typer.testing import CliRunner

    from curate.cli import app
    from pipelines.store import NewRecord, Workspace, upsert_record, utcnow

    ws = Workspace.create(tmp_path / "ws")
    with ws.transaction() as conn:
        upsert_record(conn, NewRecord(id="r1", kind="text", text="\x1b[2Jwiped", file="f\x1b.csv",
                                      row=1, line=1, file_sha256="0"), utcnow())
    out = CliRunner().invoke(app, ["records", "--workspace", str(ws.path)])
    assert out.exit_code == 0, out.output
    assert "\x1b" not in out.output and "\\x1b[2Jwiped" in out.output
