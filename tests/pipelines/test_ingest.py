"""Ingest: schemas, field mapping, stable ids, idempotence, and every bad-input case."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.config import FieldMap
from pipelines.errors import InputError
from pipelines.ingest import IngestConfig, ingest, record_id
from pipelines.store import get_record, iter_records, list_records


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_jsonl(path: Path, objs: list) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")
    return path


def snapshot(ws) -> dict[str, str]:
    """Hash of every file in the workspace (the database closed and checkpointed)."""
    return {
        str(p.relative_to(ws.path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(ws.path.rglob("*")) if p.is_file()
    }


# -- schemas ---------------------------------------------------------------------------------
def test_text_schema_with_label_gold_and_meta(fresh_ws, tmp_path):
    f = write_csv(tmp_path / "t.csv", ["text", "label", "gold_topic", "author"],
                  [["Water came through the ceiling.", "water", "property_water", "ann"],
                   ["Car hit a pole.", "auto", "", "bob"]])
    res = ingest(fresh_ws, [f])
    assert (res.added, res.duplicates, res.unchanged, res.rejected) == (2, 0, 0, 0)
    with fresh_ws.connect() as conn:
        recs = list(iter_records(conn, with_gold=True))
        no_gold = list(iter_records(conn))
    assert [r["text"] for r in recs] == ["Water came through the ceiling.", "Car hit a pole."]
    assert recs[0]["raw_label"] == "water"
    assert recs[0]["gold"] == {"topic": "property_water"} and recs[1]["gold"] == {}
    assert recs[0]["meta"] == {"author": "ann"}  # gold and mapped fields are not meta
    assert "gold" not in no_gold[0]  # what labeling functions see carries no gold


def test_instruction_schema_jsonl(fresh_ws, tmp_path):
    f = write_jsonl(tmp_path / "i.jsonl", [
        {"prompt": "Summarise: the roof leaked.", "response": "Roof leak.", "system": "Be brief."},
        {"prompt": "Summarise: a car was stolen.", "response": "Car theft."},
    ])
    ingest(fresh_ws, [f])
    with fresh_ws.connect() as conn:
        recs = list(iter_records(conn))
    assert recs[0]["kind"] == "instruction"
    assert recs[0]["system"] == "Be brief." and recs[1]["system"] is None
    assert "the roof leaked" in recs[0]["text"] and "Roof leak." in recs[0]["text"]


def test_chat_schema_from_jsonl_and_csv(fresh_ws, tmp_path):
    msgs = [{"role": "system", "content": "You help."}, {"role": "user", "content": "Hi?"},
            {"role": "assistant", "content": "Hello."}]
    f1 = write_jsonl(tmp_path / "c.jsonl", [{"messages": msgs}])
    f2 = write_csv(tmp_path / "c.csv", ["messages"],
                   [[json.dumps([{"role": "user", "content": "Other?"},
                                 {"role": "assistant", "content": "Yes."}])]])
    res = ingest(fresh_ws, [f1, f2])
    assert res.added == 2
    with fresh_ws.connect() as conn:
        recs = list(iter_records(conn))
    assert recs[0]["messages"] == msgs
    assert recs[0]["prompt"] == "Hi?" and recs[0]["response"] == "Hello."
    assert recs[0]["system"] == "You help."


def test_parquet(fresh_ws, tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"body": ["alpha text", "beta text"], "n": [1, 2]}), path)
    res = ingest(fresh_ws, [path], IngestConfig(schema="text", fields=FieldMap(text="body")))
    assert res.added == 2
    with fresh_ws.connect() as conn:
        recs = list(iter_records(conn))
    assert recs[1]["meta"] == {"n": 2}


def test_field_mapping(fresh_ws, tmp_path):
    f = write_csv(tmp_path / "m.csv", ["question", "answer", "cat"], [["Q1?", "A1.", "x"]])
    cfg = IngestConfig(schema="instruction", fields=FieldMap(prompt="question", response="answer",
                                                             label="cat"))
    ingest(fresh_ws, [f], cfg)
    with fresh_ws.connect() as conn:
        (rec,) = list(iter_records(conn))
    assert (rec["prompt"], rec["response"], rec["raw_label"]) == ("Q1?", "A1.", "x")


# -- ids, duplicates, idempotence ------------------------------------------------------------
def test_id_is_stable_and_ignores_whitespace_and_metadata():
    a = record_id("text", {"text": "hello world"})
    assert a == record_id("text", {"text": "hello world"})
    assert a != record_id("text", {"text": "hello worlds"})
    assert a != record_id("instruction", {"text": "hello world"})
    assert a.startswith("r") and len(a) == 17


def test_exact_duplicates_fold_and_remember_every_source(fresh_ws, tmp_path):
    f1 = write_csv(tmp_path / "a.csv", ["text", "k"],
                   [["Same  claim\ttext.", "1"], ["Other.", "2"], ["Same claim text.", "3"]])
    f2 = write_jsonl(tmp_path / "b.jsonl", [{"text": "Same claim text.", "k": "4"},
                                           {"text": "caf\u0065\u0301 note"}])
    f3 = write_jsonl(tmp_path / "c.jsonl", [{"text": "caf\u00e9 note"}])  # NFC-equal to b row 2
    res = ingest(fresh_ws, [f1, f2, f3])
    assert (res.rows, res.added, res.duplicates) == (6, 3, 3)
    rid = record_id("text", {"text": "Same claim text."})
    with fresh_ws.connect() as conn:
        rec = get_record(conn, rid)
    assert [(Path(s["file"]).name, s["row"]) for s in rec["sources"]] == \
        [("a.csv", 1), ("a.csv", 3), ("b.jsonl", 1)]


def test_reingest_adds_nothing(fresh_ws, tmp_path):
    f = write_csv(tmp_path / "a.csv", ["text"], [["one"], ["two"], ["one"]])
    first = ingest(fresh_ws, [f])
    again = ingest(fresh_ws, [f])
    assert (first.added, first.duplicates) == (2, 1)
    assert (again.added, again.duplicates, again.unchanged) == (0, 0, 3)
    with fresh_ws.connect() as conn:
        assert len(list_records(conn)) == 2


def test_gold_from_a_folded_copy_is_kept(fresh_ws, tmp_path):
    f = write_csv(tmp_path / "a.csv", ["text", "gold_q"], [["t", ""], ["t", "ACCEPT"]])
    ingest(fresh_ws, [f])
    with fresh_ws.connect() as conn:
        (rec,) = list(iter_records(conn, with_gold=True))
    assert rec["gold"] == {"q": "ACCEPT"}


def test_big_file_streams_in_one_transaction(fresh_ws, tmp_path):
    rows = [[f"claim number {i} for the fire at lot {i * 7}"] for i in range(5000)]
    f = write_csv(tmp_path / "big.csv", ["text"], rows)
    res = ingest(fresh_ws, [f], IngestConfig(batch_size=100))
    assert res.added == 5000


# -- bad input -------------------------------------------------------------------------------
BAD_CASES = [
    # (file name, bytes, expected message pieces)
    ("missing.csv", b"body,x\nhello,1\n", ["missing.csv", "row 1", "field 'text'", "missing"]),
    ("empty_text.csv", b"text,n\nfine,1\n   ,2\n", ["row 2 (line 3)", "field 'text'", "empty text"]),
    ("type.jsonl", b'{"text": "ok"}\n{"text": 42}\n', ["row 2 (line 2)", "field 'text'",
                                                        "expected text, got number"]),
    ("badjson.jsonl", b'{"text": "ok"}\n{"text": "unterminated}\n', ["line 2", "invalid JSON"]),
    ("utf8.csv", b"text\nfine\nbad \xff byte\n", ["row 2 (line 3)", "invalid UTF-8", "0xff"]),
    ("role.jsonl", b'{"messages": [{"role": "robot", "content": "hi"}]}\n',
     ["row 1", "field 'messages[0].role'", "unknown role 'robot'"]),
    ("notes.docx", b"some text\n", ["notes.docx", "unsupported file type '.docx'"]),
    ("zero.csv", b"", ["zero.csv", "empty (0 bytes)"]),
    ("header_only.csv", b"text\n", ["header_only.csv", "no data rows"]),
    ("blank.jsonl", b"\n\n", ["blank.jsonl", "no records"]),
    ("dupcols.csv", b"text,text\na,b\n", ["line 1", "field 'text'", "duplicate column"]),
    ("dupkeys.jsonl", b'{"text": "a", "text": "b"}\n', ["row 1", "field 'text'", "duplicate key"]),
    ("ragged.csv", b"text,x\na,b,c\n", ["row 1 (line 2)", "3 fields but the header has 2"]),
    ("fake.parquet", b"this is not parquet", ["fake.parquet", "not a valid Parquet file"]),
    ("array.jsonl", b'["text"]\n', ["row 1", "expected a JSON object"]),
]


@pytest.mark.parametrize("name,data,pieces", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_is_rejected_whole_and_workspace_unchanged(fresh_ws, tmp_path, name, data,
                                                            pieces):
    good = write_csv(tmp_path / "good.csv", ["text"], [["kept record"]])
    ingest(fresh_ws, [good])
    before = snapshot(fresh_ws)
    bad = tmp_path / name
    bad.write_bytes(data)
    schema = "chat" if name == "role.jsonl" else "text"
    if schema == "chat":
        other = write_jsonl(tmp_path / "other.jsonl", [{"messages": [
            {"role": "user", "content": "would be new"}]}])
    else:
        other = write_csv(tmp_path / "other.csv", ["text"], [["would be new"]])
    with pytest.raises(InputError) as err:
        ingest(fresh_ws, [other, bad], IngestConfig(schema=schema))
    for piece in pieces:
        assert piece in str(err.value), (piece, str(err.value))
    assert snapshot(fresh_ws) == before  # byte-identical: nothing of `other` or `bad` stored


def test_skip_invalid_keeps_valid_rows_and_writes_a_report(fresh_ws, tmp_path):
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(b'{"text": "good one"}\n{"text": ""}\nnot json\n{"text": 7}\n'
                  b'{"text": "good two"}\n{"text": "bad \xfe"}\n')
    res = ingest(fresh_ws, [f], IngestConfig(skip_invalid=True, max_reject_share=0.7))
    assert (res.added, res.rejected) == (2, 4)
    with open(res.reject_report, newline="") as fh:
        report = list(csv.DictReader(fh))
    assert [int(r["row"]) for r in report] == [2, 3, 4, 6]
    assert report[0]["field"] == "text" and "empty" in report[0]["reason"]
    assert "invalid JSON" in report[1]["reason"] and "UTF-8" in report[3]["reason"]


def test_undetectable_schema_names_the_columns(fresh_ws, tmp_path):
    f = write_csv(tmp_path / "x.csv", ["body", "n"], [["a", "1"]])
    with pytest.raises(InputError, match="cannot tell the schema.*'body'"):
        ingest(fresh_ws, [f])


def test_ingest_is_recorded_for_lineage(fresh_ws, tmp_path):
    from pipelines.store import list_runs

    f = write_csv(tmp_path / "a.csv", ["text"], [["x"]])
    ingest(fresh_ws, [f])
    ingest(fresh_ws, [f])  # nothing new: no run recorded
    with fresh_ws.connect() as conn:
        runs = list_runs(conn, "ingest")
    assert len(runs) == 1 and runs[0]["metrics"]["added"] == 1
