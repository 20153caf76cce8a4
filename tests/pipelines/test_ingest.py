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
from pipelines.errors import ConfigError, InputError
from pipelines.ingest import IngestConfig, ingest, record_id
from pipelines.store import Turn, get_record, iter_records, list_records, render_turns


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
    assert [r.text for r in recs] == ["Water came through the ceiling.", "Car hit a pole."]
    assert recs[0].raw_label == "water"
    assert recs[0].gold == {"topic": "property_water"} and recs[1].gold == {}
    assert recs[0].meta == {"author": "ann"}  # gold and mapped fields are not meta
    # what labeling functions see carries no gold
    assert no_gold[0].gold is None and "gold" not in no_gold[0].to_dict()


def test_instruction_schema_jsonl(fresh_ws, tmp_path):
    f = write_jsonl(tmp_path / "i.jsonl", [
        {"prompt": "Summarise: the roof leaked.", "response": "Roof leak.", "system": "Be brief."},
        {"prompt": "Summarise: a car was stolen.", "response": "Car theft."},
    ])
    ingest(fresh_ws, [f])
    with fresh_ws.connect() as conn:
        recs = list(iter_records(conn))
    assert recs[0].kind == "instruction"
    assert recs[0].system == "Be brief." and recs[1].system is None
    assert "the roof leaked" in recs[0].text and "Roof leak." in recs[0].text


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
    assert recs[0].messages == msgs
    assert recs[0].turns == tuple(Turn(m["role"], m["content"]) for m in msgs)
    # the one rendering of turns: the stored text LFs and embeddings read
    assert recs[0].text == render_turns(recs[0].turns) == \
        "system: You help.\nuser: Hi?\nassistant: Hello."
    assert recs[0].prompt == "Hi?" and recs[0].response == "Hello."
    assert recs[0].system == "You help."


def test_parquet(fresh_ws, tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"body": ["alpha text", "beta text"], "n": [1, 2]}), path)
    res = ingest(fresh_ws, [path], IngestConfig(schema="text", fields=FieldMap(text="body")))
    assert res.added == 2
    with fresh_ws.connect() as conn:
        recs = list(iter_records(conn))
    assert recs[1].meta == {"n": 2}


def test_field_mapping(fresh_ws, tmp_path):
    f = write_csv(tmp_path / "m.csv", ["question", "answer", "cat"], [["Q1?", "A1.", "x"]])
    cfg = IngestConfig(schema="instruction", fields=FieldMap(prompt="question", response="answer",
                                                             label="cat"))
    ingest(fresh_ws, [f], cfg)
    with fresh_ws.connect() as conn:
        (rec,) = list(iter_records(conn))
    assert (rec.prompt, rec.response, rec.raw_label) == ("Q1?", "A1.", "x")


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
    assert [(Path(s.file).name, s.row) for s in rec.sources] == \
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
    assert rec.gold == {"q": "ACCEPT"}


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
    with pytest.raises(InputError, match="cannot tell the schema.*'body'.*fields.text"):
        ingest(fresh_ws, [f])


def test_ingest_is_recorded_for_lineage(fresh_ws, tmp_path):
    from pipelines.store import list_runs

    f = write_csv(tmp_path / "a.csv", ["text"], [["x"]])
    ingest(fresh_ws, [f])
    ingest(fresh_ws, [f])  # nothing new: no run recorded
    with fresh_ws.connect() as conn:
        runs = list_runs(conn, "ingest")
    assert len(runs) == 1 and runs[0]["metrics"]["added"] == 1


# -- real-world formats ----------------------------------------------------------------------
SHAREGPT = [
    {"id": "a", "conversations": [
        {"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi?"},
        {"from": "gpt", "value": "Hello."}, {"from": "human", "value": "  "},
        {"from": "chatgpt", "value": "Anything else?"}]},
    {"id": "b", "conversations": [{"from": "bing", "value": "I speak first."},
                                  {"from": "user", "value": "Then me."}]},
    {"id": "c", "conversations": [{"from": "Human", "value": "Call it."},
                                  {"from": "function", "value": "{\"ok\": true}"},
                                  {"from": "model", "value": "Done."}]},
]


def write_json(path: Path, obj, *, indent=1) -> Path:
    path.write_text(json.dumps(obj, indent=indent), encoding="utf-8")
    return path


def test_sharegpt_json_array_is_detected_and_normalised(fresh_ws, tmp_path):
    f = write_json(tmp_path / "sharegpt.json", SHAREGPT)
    res = ingest(fresh_ws, [f])
    assert (res.added, res.rejected, res.files[0].layout) == (3, 0, "sharegpt")
    assert res.conditions == {"empty_turn": 1, "assistant_first": 1, "ends_on_user": 1}
    with fresh_ws.connect() as conn:
        a, b, c = [r.to_dict() for r in iter_records(conn)]
    assert [m["role"] for m in a["messages"]] == ["system", "user", "assistant", "assistant"]
    assert a["text"] == "system: Be brief.\nuser: Hi?\nassistant: Hello.\nassistant: Anything else?"
    assert a["meta"] == {"id": "a", "conditions": {"empty_turn": 1}}
    assert b["meta"]["conditions"] == {"assistant_first": True, "ends_on_user": True}
    assert [m["role"] for m in c["messages"]] == ["user", "tool", "assistant"]
    assert "conditions" not in c["meta"]


def test_sharegpt_with_messages_field_flag_and_role_content_keys(fresh_ws, tmp_path):
    f = write_jsonl(tmp_path / "conv.jsonl", [
        {"conversations": [{"role": "human", "content": "Q?"}, {"role": "gpt", "content": "A."}]}])
    res = ingest(fresh_ws, [f], IngestConfig(schema="chat", fields=FieldMap(
        messages="conversations")))
    assert res.added == 1
    with fresh_ws.connect() as conn:
        (rec,) = [r.to_dict() for r in iter_records(conn)]
    assert (rec["prompt"], rec["response"]) == ("Q?", "A.")


def test_content_parts_keep_their_text(fresh_ws, tmp_path):
    # OpenAI chat / Responses parts and Gemini's `parts` (role "model"): text parts joined
    f = write_jsonl(tmp_path / "parts.jsonl", [
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Look:"},
                                                   {"type": "input_text", "text": "2+2?"}]},
                      {"role": "assistant", "content": [{"type": "output_text", "text": "4"}]}]},
        {"messages": [{"role": "user", "parts": [{"text": "Hi?"}]},
                      {"role": "model", "parts": [{"text": "Hello."}, {"text": " "}]}]}])
    res = ingest(fresh_ws, [f])
    assert res.added == 2
    with fresh_ws.connect() as conn:
        one, two = [r.to_dict() for r in iter_records(conn)]
    assert (one["prompt"], one["response"]) == ("Look:\n2+2?", "4")
    assert [(m["role"], m["content"]) for m in two["messages"]] == [("user", "Hi?"),
                                                                  ("assistant", "Hello.")]


def test_semicolon_csv_and_tsv_are_read_with_their_delimiter(fresh_ws, tmp_path):
    from pipelines.ingest.readers import describe_source

    semi = tmp_path / "excel.csv"   # a European spreadsheet's CSV: semicolons, a BOM, decimal commas
    semi.write_bytes("\ufefftext;label;amount\n\"Pipe burst, kitchen\";water;1,5\n".encode())
    tsv = tmp_path / "glue.tsv"
    tsv.write_text("sentence\tlabel\na film, and a good one\t1\n", encoding="utf-8")
    comma = tmp_path / "plain.csv"  # commas in the header win over semicolons in the data
    comma.write_text('text,label\n"a; b; c",x\n', encoding="utf-8")
    assert describe_source(semi) == "csv, semicolon-separated"
    assert (describe_source(tsv), describe_source(comma)) == ("tsv", "csv")
    res = ingest(fresh_ws, [semi, comma])
    res_tsv = ingest(fresh_ws, [tsv], IngestConfig(fields=FieldMap(text="sentence")))
    assert (res.added, res_tsv.added) == (2, 1)
    with fresh_ws.connect() as conn:
        texts = {r.to_dict()["text"]: r.to_dict()["meta"] for r in iter_records(conn)}
    assert texts["Pipe burst, kitchen"]["amount"] == "1,5"
    assert set(texts) == {"Pipe burst, kitchen", "a; b; c", "a film, and a good one"}


def test_a_json_object_that_wraps_the_rows_in_one_list(fresh_ws, tmp_path):
    wrapped = write_json(tmp_path / "squad_like.json", {"version": "1.1", "data": [
        {"text": "first wrapped row"}, {"text": "second wrapped row"}, 7]})
    one_chat = write_json(tmp_path / "one_chat.json", {"id": "c1", "conversations": [
        {"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."}]})
    res = ingest(fresh_ws, [wrapped, one_chat], IngestConfig(skip_invalid=True))
    assert (res.added, res.rejected) == (3, 1)   # two rows of 'data' + the chat; 7 refused
    with fresh_ws.connect() as conn:
        recs = [r.to_dict() for r in iter_records(conn)]
    assert {r["text"] for r in recs if r["kind"] == "text"} == {"first wrapped row",
                                                               "second wrapped row"}
    assert [r["meta"] for r in recs if r["kind"] == "chat"] == [{"id": "c1"}]
    with pytest.raises(InputError, match=r"squad_like.json, row 3.*expected a JSON object in "
                                         r"'data', got int"):
        ingest(fresh_ws, [wrapped])


def test_encodings_other_than_utf8(fresh_ws, tmp_path):
    win = tmp_path / "excel.csv"       # what Excel on Windows writes: cp1252, the euro as 0x80
    win.write_bytes('text,label\n"Café crème, 5€",pos\n'.encode("cp1252"))
    with pytest.raises(InputError, match=r"row 1 \(line 2\).*invalid UTF-8.*--encoding cp1252"):
        ingest(fresh_ws, [win])
    u16 = tmp_path / "unicode.tsv"     # Excel's "Unicode text": UTF-16 with a byte-order mark
    u16.write_text("text\tlabel\r\nZürich 水管\tneg\r\n", encoding="utf-16")
    res = ingest(fresh_ws, [win, u16], IngestConfig(encoding="cp1252"))
    assert res.added == 2
    with fresh_ws.connect() as conn:
        assert {r.text: r.raw_label for r in iter_records(conn)} == {
            "Café crème, 5€": "pos", "Zürich 水管": "neg"}
    with pytest.raises(ConfigError, match="unknown text encoding 'klingon'"):
        IngestConfig(encoding="klingon")


def test_excel_unicode_text_saved_as_txt_is_a_table(fresh_ws, tmp_path):
    """Excel's "Save as Unicode text" writes `.txt`: UTF-16, tab-separated, a header row. Read
    as lines it became one record per row with the tabs inside; now it is read as TSV. A UTF-16
    `.txt` without tabs in its first line stays plain text lines, as does a UTF-8 one with tabs."""
    from pipelines.ingest.readers import describe_source

    sheet = tmp_path / "sheet.txt"
    sheet.write_text("text\tlabel\r\nBurst pipe in Zürich\tneg\r\nAll fine\tpos\r\n",
                     encoding="utf-16")
    lines16 = tmp_path / "notes16.txt"
    lines16.write_text("first note\nsecond note\n", encoding="utf-16")
    tabbed = tmp_path / "tabbed.txt"
    tabbed.write_text("a\tb\nc\td\n", encoding="utf-8")
    assert describe_source(sheet).startswith("tsv (UTF-16")
    assert describe_source(lines16) == describe_source(tabbed) == "text"
    res = ingest(fresh_ws, [sheet, lines16, tabbed])
    assert res.added == 6
    with fresh_ws.connect() as conn:
        got = {r.text: r.raw_label for r in iter_records(conn)}
    assert got == {"Burst pipe in Zürich": "neg", "All fine": "pos", "first note": None,
                   "second note": None, "a\tb": None, "c\td": None}


def test_openai_messages_jsonl_gz(fresh_ws, tmp_path):
    import gzip

    path = tmp_path / "chat.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"messages": [{"role": "user", "content": "Q?"},
                                          {"role": "assistant", "content": "A."}]}) + "\n")
    res = ingest(fresh_ws, [path])
    assert (res.added, res.files[0].layout) == (1, "openai")


def test_alpaca_input_joins_the_prompt_and_history_makes_a_chat(fresh_ws, tmp_path):
    f = write_json(tmp_path / "alpaca.json", [
        {"instruction": "Translate.", "input": "Bonjour", "output": "Hello", "system": "Be exact."},
        {"instruction": "Add one.", "input": "", "output": "3",
         "history": [["What is 1+1?", "2"], ["", "Nothing asked."]]},
    ])
    res = ingest(fresh_ws, [f])
    assert (res.added, res.files[0].layout) == (2, "alpaca")
    with fresh_ws.connect() as conn:
        one, two = [r.to_dict() for r in iter_records(conn)]
    assert one["kind"] == "instruction" and one["prompt"] == "Translate.\n\nBonjour"
    assert one["system"] == "Be exact." and one["meta"] == {}
    assert two["kind"] == "chat"
    assert [(m["role"], m["content"]) for m in two["messages"]] == [
        ("user", "What is 1+1?"), ("assistant", "2"), ("assistant", "Nothing asked."),
        ("user", "Add one."), ("assistant", "3")]
    assert two["meta"]["conditions"] == {"empty_turn": 1}


def test_plain_text_file_one_record_per_line(fresh_ws, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("first note\n\nsecond note\n", encoding="utf-8")
    res = ingest(fresh_ws, [f])
    with fresh_ws.connect() as conn:
        recs = [r.to_dict() for r in iter_records(conn)]
        second = get_record(conn, recs[1]["id"]).to_dict()
    assert res.added == 2 and [r["text"] for r in recs] == ["first note", "second note"]
    assert (second["sources"][0]["row"], second["sources"][0]["line"]) == (2, 3)


def test_json_file_holding_json_lines(fresh_ws, tmp_path):
    f = tmp_path / "lines.json"   # what datasets' to_json writes
    f.write_text('{"text": "one"}\n{"text": "two"}\n', encoding="utf-8")
    assert ingest(fresh_ws, [f]).added == 2


def test_json_array_streams_across_chunk_boundaries(fresh_ws, tmp_path, monkeypatch):
    from pipelines.ingest import readers

    monkeypatch.setattr(readers, "_CHUNK", 5)   # every item, string and é spans reads
    items = [{"text": f"caf\u00e9 n\u00b0{i} " + "x" * i, "n": i} for i in range(40)]
    f = write_json(tmp_path / "many.json", items, indent=None)
    res = ingest(fresh_ws, [f])
    with fresh_ws.connect() as conn:
        recs = [r.to_dict() for r in iter_records(conn)]
    assert res.added == 40 and [r["meta"]["n"] for r in recs] == list(range(40))
    data = f.read_bytes()
    cut = tmp_path / "cut.json"
    cut.write_bytes(data[:-30])
    rows = list(readers.read_rows(cut))
    assert rows[-1].error is not None and f"cut off at byte {len(data) - 30}" in str(rows[-1].error)
    end_39 = data.index(b"}", data.index(b'"n": 38')) + 1
    assert f"last complete item is item 39 (ending at byte {end_39})" in str(rows[-1].error)


def test_truncated_sharegpt_dump_names_offset_and_skip_invalid_keeps_items(fresh_ws, tmp_path):
    data = json.dumps(SHAREGPT, indent=1).encode()
    cut_at = data.index(b'"Call it."') + 4      # mid-object, inside a string
    f = tmp_path / "dump.json"
    f.write_bytes(data[:cut_at])
    before = snapshot(fresh_ws)
    with pytest.raises(InputError) as err:
        ingest(fresh_ws, [f])
    msg = str(err.value)
    for piece in ["dump.json", f"cut off at byte {cut_at}", "inside item 3",
                  "last complete item is item 2", "--skip-invalid"]:
        assert piece in msg, (piece, msg)
    assert snapshot(fresh_ws) == before
    res = ingest(fresh_ws, [f], IngestConfig(skip_invalid=True))
    assert (res.added, res.rejected) == (2, 1)
    with open(res.reject_report, newline="") as fh:
        (report,) = list(csv.DictReader(fh))
    assert report["row"] == "3" and "cut off" in report["reason"]


def test_array_missing_its_closing_bracket_keeps_every_item(fresh_ws, tmp_path):
    f = tmp_path / "open.json"
    f.write_text('[{"text": "a"}, {"text": "b"},\n', encoding="utf-8")
    res = ingest(fresh_ws, [f], IngestConfig(skip_invalid=True))
    assert (res.added, res.rejected) == (2, 1)


def test_broken_array_stops_with_the_byte_offset_even_with_skip_invalid(fresh_ws, tmp_path):
    f = tmp_path / "broken.json"
    f.write_text('[{"text": "a"}, {"text": "b" "c"}, {"text": "d"}]', encoding="utf-8")
    with pytest.raises(InputError, match=r"broken.json, row 2: invalid JSON at byte 29 .*item 2"
                                         r".*last complete item is item 1"):
        ingest(fresh_ws, [f], IngestConfig(skip_invalid=True))


def test_zstd_reads_or_names_the_package(fresh_ws, tmp_path):
    path = tmp_path / "t.jsonl.zst"
    try:
        import zstandard
    except ImportError:
        path.write_bytes(b"\x28\xb5\x2f\xfd whatever")
        with pytest.raises(InputError, match="t.jsonl.zst.*needs the 'zstandard' package"):
            ingest(fresh_ws, [path])
        return
    path.write_bytes(zstandard.ZstdCompressor().compress(b'{"text": "z"}\n'))
    assert ingest(fresh_ws, [path]).added == 1


def test_datasets_save_to_disk_folder(fresh_ws, tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list([
        {"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": f"a{i}"}],
         "source": "web"} for i in range(3)])
    ds.save_to_disk(str(tmp_path / "saved"), num_shards=2)
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(tmp_path / "dd"))
    res = ingest(fresh_ws, [tmp_path / "saved"])
    assert (res.added, res.files[0].layout) == (3, "sharegpt")
    with fresh_ws.connect() as conn:
        rec = get_record(conn, list(iter_records(conn))[2].id).to_dict()
    assert rec["meta"] == {"source": "web"}
    assert rec["sources"][0]["file"].endswith(".arrow") and rec["sources"][0]["row"] == 1
    res = ingest(fresh_ws, [tmp_path / "dd"])
    assert (res.added, res.unchanged, res.duplicates) == (0, 0, 4)


def test_datasets_class_labels_are_read_as_their_names(fresh_ws, tmp_path):
    # `datasets` stores a ClassLabel as 0..k-1 with the names in the file's schema metadata
    features = {"text": {"dtype": "string", "_type": "Value"},
                "label": {"names": ["neg", "pos"], "_type": "ClassLabel"},
                "gold_sentiment": {"names": ["neg", "pos"], "_type": "ClassLabel"}}
    table = pa.table({"text": ["good film", "bad film", "unlabelled", "odd"],
                      "label": [1, 0, -1, 7], "gold_sentiment": [1, 0, 1, 0]})
    table = table.replace_schema_metadata(
        {b"huggingface": json.dumps({"info": {"features": features}}).encode()})
    pq.write_table(table, tmp_path / "hub.parquet")
    with pa.OSFile(str(tmp_path / "saved.arrow"), "wb") as sink, \
            pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    res = ingest(fresh_ws, [tmp_path / "hub.parquet"])
    assert res.added == 4
    with fresh_ws.connect() as conn:
        recs = {r.text: r for r in iter_records(conn, with_gold=True)}
    assert {t: r.raw_label for t, r in recs.items()} == {
        "good film": "pos", "bad film": "neg", "unlabelled": None, "odd": "7"}
    assert recs["good film"].gold == {"sentiment": "pos"}
    from pipelines.ingest.readers import read_rows

    assert [r.values["label"] for r in read_rows(tmp_path / "saved.arrow")] == [
        "pos", "neg", None, 7]


def test_folder_of_parquet_and_jsonl_shards(fresh_ws, tmp_path):
    shards = tmp_path / "hub" / "data"
    shards.mkdir(parents=True)
    for i in range(2):
        pq.write_table(pa.table({"text": [f"shard {i} row {j}" for j in range(2)]}),
                       shards / f"train-0000{i}-of-00002.parquet")
    (tmp_path / "hub" / "README.md").write_text("# card")
    res = ingest(fresh_ws, [tmp_path / "hub"])
    assert res.added == 4
    jl = tmp_path / "jl"
    jl.mkdir()
    write_jsonl(jl / "part-0.jsonl", [{"text": "j0"}])
    write_jsonl(jl / "part-1.jsonl", [{"body": "j1"}])   # another shape: rejected, named
    with pytest.raises(InputError, match=r"part-1.jsonl, row 1 \(line 1\), field 'text': missing"):
        ingest(fresh_ws, [jl])


def test_shard_folder_with_mixed_schemas_or_types_is_refused(fresh_ws, tmp_path):
    good = write_csv(tmp_path / "good.csv", ["text"], [["kept record"]])
    ingest(fresh_ws, [good])
    before = snapshot(fresh_ws)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    pq.write_table(pa.table({"text": ["a"]}), mixed / "0.parquet")
    pq.write_table(pa.table({"body": ["b"]}), mixed / "1.parquet")
    with pytest.raises(InputError, match=r"1.parquet, row 1, field 'body': the shards of a folder "
                                         r"must share one schema"):
        ingest(fresh_ws, [mixed])
    types = tmp_path / "types"
    types.mkdir()
    write_jsonl(types / "a.jsonl", [{"text": "a"}])
    write_csv(types / "b.csv", ["text"], [["b"]])
    with pytest.raises(InputError, match="types: the folder mixes file types"):
        ingest(fresh_ws, [types])
    assert snapshot(fresh_ws) == before


NEW_BAD_CASES = [
    ("keys.json", b'[{"conversations": [{"speaker": "human", "text": "hi"}]}]',
     ["keys.json", "row 1", "field 'conversations[0]'", "no 'role' (or 'from') key",
      "'speaker'"]),
    ("alias.jsonl", b'{"conversations": [{"from": "narrator", "value": "hi"}]}\n',
     ["row 1 (line 1)", "field 'conversations[0].from'", "unknown role 'narrator'", "human, gpt"]),
    ("nested.jsonl", b'{"messages": [{"role": "user", "content": {"text": "hi"}}]}\n',
     ["row 1", "field 'messages[0].content'", "expected text, got object"]),
    ("textless.jsonl", b'{"messages": [{"role": "user", "content": [{"type": "text"}]}]}\n',
     ["row 1", "field 'messages[0].content[0]'", "'text' content part", "a 'text' string"]),
    ("image.jsonl", b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, '
                    b'{"type": "image_url", "image_url": {"url": "x"}}]}]}\n',
     ["row 1", "field 'messages[0].content[1]'", "'image_url' content part",
      "only text parts"]),
    ("cut.json", b'[{"text": "one"}, {"text": "tw', ["cut.json", "row 2", "cut off at byte 30",
                                                     "last complete item is item 1"]),
    ("dupkey.json", b'[{"text": "a", "text": "b"}]', ["row 1 (line 1)", "field 'text'",
                                                      "duplicate key"]),
    ("notgz.jsonl.gz", b'{"text": "plain"}\n', ["notgz.jsonl.gz", "not a gzip file"]),
    ("badgz.jsonl.gz", b"\x1f\x8b\x08\x00garbage", ["badgz.jsonl.gz", "corrupt or cut off"]),
    ("scalar.json", b'"just a string"', ["scalar.json", "expected a JSON array"]),
    ("history.json", b'[{"instruction": "a", "output": "b", "history": [["only one"]]}]',
     ["row 1", "field 'history[0]'", "[user, assistant] pair"]),
    ("pq.parquet.gz", b"\x1f\x8b", ["pq.parquet.gz", "compressed parquet file cannot be read"]),
]


@pytest.mark.parametrize("name,data,pieces", NEW_BAD_CASES, ids=[c[0] for c in NEW_BAD_CASES])
def test_bad_real_world_input_names_file_row_field(fresh_ws, tmp_path, name, data, pieces):
    good = write_csv(tmp_path / "good.csv", ["text"], [["kept record"]])
    ingest(fresh_ws, [good])
    before = snapshot(fresh_ws)
    bad = tmp_path / name
    bad.write_bytes(data)
    other = write_csv(tmp_path / "other.csv", ["text"], [["would be new"]])
    with pytest.raises(InputError) as err:
        ingest(fresh_ws, [other, bad])
    assert "\n" not in str(err.value)
    for piece in pieces:
        assert piece in str(err.value), (piece, str(err.value))
    assert snapshot(fresh_ws) == before


def test_unknown_shape_names_keys_and_flags(fresh_ws, tmp_path):
    f = write_json(tmp_path / "x.json", [{"question": "q", "answer": "a"}])
    with pytest.raises(InputError) as err:
        ingest(fresh_ws, [f])
    for piece in ["'question', 'answer'", "fields.prompt", "fields.messages", "ShareGPT"]:
        assert piece in str(err.value)


def test_too_many_rejects_store_nothing(fresh_ws, tmp_path):
    before = snapshot(fresh_ws)
    f = write_jsonl(tmp_path / "wrong.jsonl", [{"conversations": [{"from": "?", "value": "x"}]}
                                               for _ in range(3)] + [{"conversations": [{"from": "gpt", "value": "fine"}]}])
    cfg = IngestConfig(schema="chat", fields=FieldMap(messages="conversations"), skip_invalid=True)
    with pytest.raises(InputError, match=r"rejected 3 of 4 rows \(75%\), more than "
                                         r"max_reject_share 50%.*wrong.jsonl row 1 field "
                                         r"'conversations\[0\].from'"):
        ingest(fresh_ws, [f], cfg)
    assert snapshot(fresh_ws) == before
    cfg.max_reject_share = 0.8
    res = ingest(fresh_ws, [f], cfg)
    assert (res.added, res.rejected) == (1, 3)


def test_max_reject_share_is_validated():
    from pipelines.errors import ConfigError

    with pytest.raises(ConfigError, match="max_reject_share"):
        IngestConfig(max_reject_share=1.5)


# -- folding and conflicting labels ----------------------------------------------------------
def test_folded_rows_with_conflicting_gold_keep_no_gold_and_are_reported(fresh_ws, tmp_path):
    f = write_csv(tmp_path / "g.csv", ["text", "gold_topic", "label"],
                  [["Same text.", "fire", "x"], ["Other.", "auto", "y"], ["Same text.", "water", "x"],
                   ["Same  text.", "fire", "z"]])
    res = ingest(fresh_ws, [f])
    assert (res.added, res.duplicates) == (2, 2)
    assert res.conditions == {"gold_conflict": 1, "label_conflict": 1}
    assert {(c["field"], tuple(c["values"])) for c in res.conflicts} == {
        ("gold_topic", ("fire", "water")), ("label", ("x", "z"))}
    rid = record_id("text", {"text": "Same text."})
    with fresh_ws.connect() as conn:
        rec = get_record(conn, rid, with_gold=True).to_dict()
        other = get_record(conn, record_id("text", {"text": "Other."}), with_gold=True).to_dict()
    assert rec["gold"] == {}          # neither label is trusted: not in the gold set
    assert rec["raw_label"] == "x"    # the first raw label stays; the conflict is marked
    assert rec["meta"]["conditions"] == {"gold_conflict": {"topic": ["fire", "water"]},
                                         "label_conflict": ["x", "z"]}
    assert other["gold"] == {"topic": "auto"} and "conditions" not in other["meta"]
    again = ingest(fresh_ws, [f])     # re-ingest: nothing new, nothing reported
    assert again.conflicts == [] and again.conditions == {}
    g2 = write_jsonl(tmp_path / "g2.jsonl", [{"text": "Same text.", "gold_topic": "theft"}])
    res = ingest(fresh_ws, [g2])
    assert res.conflicts[0]["values"] == ["fire", "theft", "water"]
    with fresh_ws.connect() as conn:
        assert get_record(conn, rid, with_gold=True).to_dict()["gold"] == {}


def test_conflicting_gold_is_not_exported_as_gold(fresh_ws, tmp_path):
    from pipelines.export.select import final_label
    from pipelines.records import Candidate

    f = write_csv(tmp_path / "g.csv", ["text", "gold_q"], [["t", "ACCEPT"], ["t", "REJECT"]])
    ingest(fresh_ws, [f])
    with fresh_ws.connect() as conn:
        (rec,) = list(iter_records(conn, with_gold=True))
    assert final_label(Candidate(rec), "q") == (None, "none")


def test_input_column_named_conditions_is_kept(fresh_ws, tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", [{"conversations": [
        {"from": "gpt", "value": "hi"}], "conditions": "sunny"}])
    ingest(fresh_ws, [f])
    with fresh_ws.connect() as conn:
        (rec,) = [r.to_dict() for r in iter_records(conn)]
    assert rec["meta"] == {"conditions_input": "sunny", "conditions": {"assistant_first": True}}


# -- dry run ---------------------------------------------------------------------------------
def test_preview_detects_and_stores_nothing(fresh_ws, tmp_path):
    from pipelines.ingest import preview

    f = write_json(tmp_path / "sharegpt.json", SHAREGPT)
    before = snapshot(fresh_ws)
    p = preview(f)
    assert (p.source, p.layout.name, p.layout.fields["messages"]) == ("json", "sharegpt",
                                                                      "conversations")
    assert p.record.text.startswith("system: Be brief.\nuser: Hi?")
    assert snapshot(fresh_ws) == before
