"""Preference data sets in: TRL standard/conversational, UltraFeedback-binarized and HH-RLHF rows
become two records and an imported pair, and come back out of the preference export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from curate.cli import main as curate
from pipelines.config import FieldMap
from pipelines.errors import ExportError, InputError
from pipelines.export import export_dataset, load_manifest, read_split
from pipelines.ingest import IngestConfig, ingest, preview
from pipelines.store import NewRecord, Workspace, iter_records, upsert_record, utcnow
from pipelines.store.exports import put_dedup, put_label, put_review
from pipelines.store.pairs import (PairJudgment, StoredPair, add_pairs, imported_pairs,
                                   resolve_pair_batch, store_pair_judgments)

CURATION = """
schemes:
  quality: {classes: [ACCEPT, REJECT]}
"""


def write_jsonl(path: Path, objs: list) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")
    return path


@pytest.fixture
def ws(tmp_path) -> Workspace:
    ws = Workspace.create(tmp_path / "ws")
    ws.config_path.write_text(CURATION, encoding="utf-8")
    return ws


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def hh(*turns: str) -> str:
    return "".join(f"\n\n{'Human' if i % 2 == 0 else 'Assistant'}: {t}"
                   for i, t in enumerate(turns))


# Each shape: its rows, the layout, the record kind, and the pairs expected back in TRL's
# conversational form as (prompt messages, chosen, rejected).
SHAPES = {
    "standard": (
        [{"prompt": "Summarise: a pipe burst in the kitchen.", "chosen": "Water damage, kitchen.",
          "rejected": "Fire damage, garage.", "score_chosen": 9.0, "score_rejected": 2.0,
          "id": "p1", "source": "argilla"},
         {"prompt": "Summarise: lightning hit the garage.", "chosen": "Fire damage, garage.",
          "rejected": "Water damage, kitchen.", "score_chosen": 8.0, "score_rejected": 3.0,
          "id": "p2", "source": "argilla"}],
        "preference", "instruction",
        [([user("Summarise: a pipe burst in the kitchen.")], "Water damage, kitchen.",
          "Fire damage, garage."),
         ([user("Summarise: lightning hit the garage.")], "Fire damage, garage.",
          "Water damage, kitchen.")]),
    "conversational": (
        [{"prompt": [{"role": "system", "content": "Be brief."}, user("What burst?")],
          "chosen": [assistant("The kitchen pipe.")],
          "rejected": [{"role": "assistant",
                        "content": [{"type": "text", "text": "The garage"},
                                    {"type": "text", "text": "door."}]}]}],
        "preference", "chat",
        [([{"role": "system", "content": "Be brief."}, user("What burst?")], "The kitchen pipe.",
          "The garage\ndoor.")]),
    "ultrafeedback": (
        [{"prompt": "What burst?", "prompt_id": "u1",
          "chosen": [user("What burst?"), assistant("The kitchen pipe.")],
          "rejected": [user("What burst?"), assistant("Nothing did.")],
          "messages": [user("What burst?"), assistant("The kitchen pipe.")],
          "score_chosen": 9.0, "score_rejected": 1.0}],
        "preference", "chat",
        [([user("What burst?")], "The kitchen pipe.", "Nothing did.")]),
    "hh_transcript": (
        [{"chosen": hh("My pipe burst.", "Turn the water off.", "Then what?", "Call a plumber."),
          "rejected": hh("My pipe burst.", "Turn the water off.", "Then what?", "Ignore it.")}],
        "preference_implicit", "chat",
        [([user("My pipe burst."), assistant("Turn the water off."), user("Then what?")],
          "Call a plumber.", "Ignore it.")]),
    "hh_messages": (
        [{"chosen": [{"from": "human", "value": "My pipe burst."},
                     {"from": "gpt", "value": "Call a plumber."}],
          "rejected": [{"from": "human", "value": "My pipe burst."},
                       {"from": "gpt", "value": "Ignore it."}]}],
        "preference_implicit", "chat",
        [([user("My pipe burst.")], "Call a plumber.", "Ignore it.")]),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_shape_comes_back_out_of_the_preference_export(ws, tmp_path, shape):
    from datasets import load_dataset

    rows, layout, kind, expected = SHAPES[shape]
    f = write_jsonl(tmp_path / f"{shape}.jsonl", rows)
    res = ingest(ws, [f])
    assert res.files[0].layout == layout
    assert (res.rows, res.added, res.pairs, res.rejected) == (len(rows), 2 * len(rows),
                                                             len(rows), 0)
    with ws.connect() as conn:
        recs = list(iter_records(conn))
    assert {r.kind for r in recs} == {kind}
    extra = set(rows[0]) - {"prompt", "chosen", "rejected"}
    assert all(set(r.meta) - {"conditions"} == extra for r in recs)   # extra columns kept

    conv = export_dataset(ws, scheme="quality", format="preference", eval_fraction=0.0,
                          pii="none", allow_pii=True)
    got = [(r["prompt"], r["chosen"], r["rejected"]) for r in read_split(ws, conv.version, "train")]
    assert got == [(p, [assistant(c)], [assistant(r)]) for p, c, r in expected]
    assert conv.labels["train"] == {"imported": len(rows)}
    assert {e["label_source"] for e in load_manifest(ws, conv.version)["records"]} == {f.name}
    ds = load_dataset("json", data_files=str(conv.path / "train.jsonl"), split="train")
    assert ds[0]["chosen"] == [assistant(expected[0][1])]

    std = export_dataset(ws, scheme="quality", format="preference", eval_fraction=0.0,
                         pii="none", allow_pii=True, preference_style="standard")
    got = [(r["prompt"], r["chosen"], r["rejected"]) for r in read_split(ws, std.version, "train")]
    assert got == [("\n\n".join(m["content"] for m in p if m["role"] != "system"), c, r)
                   for p, c, r in expected]


def test_renamed_columns_and_a_csv_of_json_messages(ws, tmp_path):
    f = write_jsonl(tmp_path / "renamed.jsonl", [
        {"question": "What burst?", "better": "The pipe.", "worse": "The door."}])
    cfg = IngestConfig(fields=FieldMap(prompt="question", chosen="better", rejected="worse"))
    assert ingest(ws, [f], cfg).pairs == 1
    c = tmp_path / "conv.csv"
    with open(c, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", "chosen", "rejected"])
        w.writerow([json.dumps([user("Who called?")]), json.dumps([assistant("Ann.")]),
                    json.dumps([assistant("Bob.")])])
    res = ingest(ws, [c])
    assert (res.files[0].layout, res.pairs) == ("preference", 1)
    out = export_dataset(ws, scheme="quality", format="preference", eval_fraction=0.0,
                         pii="none", allow_pii=True, preference_style="standard")
    got = {(r["prompt"], r["chosen"], r["rejected"]) for r in read_split(ws, out.version, "train")}
    assert got == {("What burst?", "The pipe.", "The door."), ("Who called?", "Ann.", "Bob.")}


def test_malformed_rows_are_one_line_each_and_the_rest_ingests(ws, tmp_path):
    f = write_jsonl(tmp_path / "bad.jsonl", [
        {"prompt": "P1", "chosen": "good one", "rejected": "bad one"},
        {"prompt": "P2", "chosen": "only chosen"},                               # row 2
        {"prompt": "P3", "chosen": "Same  answer.", "rejected": "Same answer."},  # row 3
        {"prompt": [user("P4")], "chosen": [assistant("ok")],                     # row 4
         "rejected": [{"role": "assistant", "content": [{"type": "image_url", "image_url": {}}]}]},
        {"prompt": "P5", "chosen": [user("P5"), assistant("a"), user("more?")],   # row 5
         "rejected": "b"},
        {"prompt": "P6", "chosen": "fine", "rejected": "also fine"},
    ])
    with pytest.raises(InputError) as err:
        ingest(ws, [f])
    assert str(err.value) == f"{f}, row 2 (line 2), field 'rejected': missing required field"
    res = ingest(ws, [f], IngestConfig(skip_invalid=True, max_reject_share=0.9))
    assert (res.rows, res.pairs, res.rejected) == (2, 2, 4)
    with open(res.reject_report, newline="") as fh:
        report = [(int(r["row"]), r["field"], r["reason"]) for r in csv.DictReader(fh)]
    assert [(row, field) for row, field, _ in report] == [
        (2, "rejected"), (3, "rejected"), (4, "rejected[0].content[0]"), (5, "chosen")]
    assert "no preference" in report[1][2] and "'image_url' content part" in report[2][2]
    assert "one assistant answer" in report[3][2]

    h = write_jsonl(tmp_path / "hh.jsonl", [
        {"chosen": hh("Hi", "Hello"), "rejected": hh("Hi", "Go away")},
        {"chosen": hh("Hi", "Hello"), "rejected": hh("Bye", "Hello")},   # no shared prompt
        {"chosen": "Just an answer.", "rejected": hh("Hi", "Hello")},    # not a transcript
    ])
    res = ingest(ws, [h], IngestConfig(skip_invalid=True, max_reject_share=0.9))
    assert (res.pairs, res.rejected) == (1, 2)
    with open(res.reject_report, newline="") as fh:
        report = [(int(r["row"]), r["field"], r["reason"]) for r in csv.DictReader(fh)]
    assert report[0][:2] == (2, "rejected") and "shares no prompt" in report[0][2]
    assert report[1][:2] == (3, "chosen") and "whole conversation" in report[1][2]


def test_reingest_adds_nothing(ws, tmp_path):
    rows = SHAPES["standard"][0]
    f = write_jsonl(tmp_path / "a.jsonl", rows)
    first = ingest(ws, [f])
    again = ingest(ws, [f])
    assert (again.added, again.duplicates, again.unchanged, again.pairs) == (0, 0, 4, 0)
    copy = write_jsonl(tmp_path / "copy.jsonl", rows)
    folded = ingest(ws, [copy])
    assert (folded.added, folded.duplicates, folded.pairs) == (0, 4, 0)
    with ws.connect() as conn:
        assert len(imported_pairs(conn)) == first.pairs == 2
        assert conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 4
        assert conn.execute("SELECT COUNT(*) FROM runs WHERE step = 'ingest'").fetchone()[0] == 2


def _ids(ws) -> dict[str, tuple[str, str]]:
    """prompt -> (chosen id, rejected id) of every imported pair."""
    with ws.connect() as conn:
        prompts = {r.id: r.prompt for r in iter_records(conn)}
        return {prompts[p.chosen_id]: (p.chosen_id, p.rejected_id) for p in imported_pairs(conn)}


def test_rejected_sides_never_train_as_good_examples(ws, tmp_path):
    ingest(ws, [write_jsonl(tmp_path / "a.jsonl", SHAPES["standard"][0])])
    with pytest.raises(ExportError, match="rejected side: 2.*--format preference"):
        export_dataset(ws, scheme="quality", format="chat", eval_fraction=0.0)
    (_, bad), _ = _ids(ws).values()
    with ws.transaction() as conn:   # a private copy of a rejected side (pipelines.synth.private)
        upsert_record(conn, NewRecord(
            id="rcopy", kind="instruction", text="x", prompt="Summarise: a pipe burst.",
            response="Fire damage, shed.", meta={"synthetic": {"method": "private",
                                                               "source_id": bad}}), utcnow())
    with ws.transaction() as conn:   # the label model accepts every record, rejected sides too
        for rid in conn.execute("SELECT id FROM records").fetchall():
            put_label(conn, rid[0], "quality", "ACCEPT", 0.99)
    for fmt in ("chat", "classification"):
        res = export_dataset(ws, scheme="quality", format=fmt, eval_fraction=0.0)
        rows = read_split(ws, res.version, "train")
        text = json.dumps(rows)
        assert res.skipped["preference: rejected side"] == 3 and len(rows) == 2
        assert "Water damage, kitchen." in text and "Fire damage, garage." in text
    res = export_dataset(ws, scheme="quality", format="alpaca", eval_fraction=0.0)
    outputs = {r["instruction"]: r["output"] for r in read_split(ws, res.version, "train")}
    assert outputs == {"Summarise: a pipe burst in the kitchen.": "Water damage, kitchen.",
                       "Summarise: lightning hit the garage.": "Fire damage, garage."}
    with ws.transaction() as conn:   # a reviewer who accepts a rejected side has the last word
        put_review(conn, bad, "quality", human_label="ACCEPT")
    res = export_dataset(ws, scheme="quality", format="chat", eval_fraction=0.0)
    assert res.skipped["preference: rejected side"] == 2 and res.train == 3


def test_pairs_of_one_prompt_share_a_split(ws, tmp_path):
    rows = [{"prompt": f"Summarise claim {i}.", "chosen": f"Good summary {i}{k}.",
             "rejected": f"Bad summary {i}{k}."} for i in range(30) for k in "ab"]
    ingest(ws, [write_jsonl(tmp_path / "many.jsonl", rows)])
    res = export_dataset(ws, scheme="quality", format="preference", eval_fraction=0.5,
                         pii="none", allow_pii=True, preference_style="standard")
    side: dict[str, set[str]] = {}
    for split in ("train", "eval"):
        for r in read_split(ws, res.version, split):
            side.setdefault(r["prompt"], set()).add(split)
    assert len(side) == 30 and all(len(s) == 1 for s in side.values())
    assert res.train and res.eval and res.train + res.eval == 60


def test_quality_exclusion_drops_a_pair_dedup_does_not(ws, tmp_path):
    ingest(ws, [write_jsonl(tmp_path / "a.jsonl", SHAPES["standard"][0])])
    pairs = _ids(ws)
    pipe, garage = pairs["Summarise: a pipe burst in the kitchen."], \
        pairs["Summarise: lightning hit the garage."]
    with ws.transaction() as conn:
        conn.execute("INSERT INTO quality_signals (record_id, fired, excluded, reason)"
                     " VALUES (?, '[\"refusal\"]', 1, 'filter: refusal')", (pipe[1],))
        put_dedup(conn, pipe[1], excluded=True)      # dedup too: the rule's reason still counts
        put_dedup(conn, garage[1], excluded=True)    # near-identical sides: the pair stays
    res = export_dataset(ws, scheme="quality", format="preference", eval_fraction=0.0,
                         pii="none", allow_pii=True, preference_style="standard")
    assert res.skipped == {"imported: a side excluded": 1}
    assert [r["prompt"] for r in read_split(ws, res.version, "train")] == [
        "Summarise: lightning hit the garage."]


def test_people_win_over_the_imported_preference(ws, tmp_path):
    rows = SHAPES["standard"][0] + [{"prompt": "Summarise: a car was stolen.",
                                     "chosen": "Theft of a car.", "rejected": "Car damage."}]
    ingest(ws, [write_jsonl(tmp_path / "a.jsonl", rows)])
    pairs = _ids(ws)
    pipe, garage, car = (pairs[p] for p in ("Summarise: a pipe burst in the kitchen.",
                                            "Summarise: lightning hit the garage.",
                                            "Summarise: a car was stolen."))
    judged = StoredPair(f"{pipe[0]}~{pipe[1]}", pipe[0], pipe[1], "same_prompt", False)
    with ws.transaction() as conn:   # two annotators pick the imported rejected side
        add_pairs(conn, [judged], 1, "B", utcnow())
        resolve_pair_batch(conn, "B", {judged.pair_id: 100})
        store_pair_judgments(conn, 1, {100: [
            PairJudgment(i, 100, judged.pair_id, who, "right", pipe[1], False, None, utcnow(),
                         f"2026-01-01T00:00:0{i}Z") for i, who in ((1, "ann"), (2, "bob"))]},
            utcnow())
        put_review(conn, garage[0], "quality", human_label="REJECT")   # reviewers reverse it
        put_review(conn, garage[1], "quality", human_label="ACCEPT")
        put_review(conn, car[1], "quality", human_label="ACCEPT")      # both fine: pair stays
    res = export_dataset(ws, scheme="quality", format="preference", eval_fraction=0.0,
                         pii="none", allow_pii=True, preference_style="standard")
    assert res.labels["train"] == {"pairwise": 1, "imported": 1}
    assert res.skipped == {"imported: judged in pairwise review": 1,
                           "imported: reviewers preferred the rejected side": 1}
    got = {r["prompt"]: (r["chosen"], r["rejected"]) for r in read_split(ws, res.version, "train")}
    assert got == {"Summarise: a pipe burst in the kitchen.": ("Fire damage, garage.",
                                                              "Water damage, kitchen."),
                   "Summarise: a car was stolen.": ("Theft of a car.", "Car damage.")}


def test_a_pair_ranked_both_ways_is_left_out(ws, tmp_path):
    row = {"prompt": "Which?", "chosen": "This one.", "rejected": "That one."}
    flipped = {**row, "chosen": row["rejected"], "rejected": row["chosen"]}
    ingest(ws, [write_jsonl(tmp_path / "a.jsonl", [row, flipped,
                                                   {**row, "prompt": "Other?"}])])
    res = export_dataset(ws, scheme="quality", format="preference", eval_fraction=0.0,
                         pii="none", allow_pii=True)
    assert res.skipped == {"imported: ranked both ways": 2} and res.train == 1


def test_dry_run_names_the_layout_and_shows_the_first_pair(ws, tmp_path, capsys):
    rows, *_ = SHAPES["hh_transcript"]
    f = write_jsonl(tmp_path / "hh.jsonl", rows)
    p = preview(f)
    assert p.layout.name == "preference_implicit" and p.pair is not None
    assert (p.pair.chosen.response, p.pair.rejected.response) == ("Call a plumber.", "Ignore it.")
    assert curate(["ingest", str(f), "--workspace", str(ws.path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "layout: preference_implicit -> pairs of chat records" in out
    assert "prompt <- the turns both share" in out
    assert "  | user: Then what?" in out and "  | Call a plumber." in out
    assert "  | Ignore it." in out
    renamed = write_jsonl(tmp_path / "renamed.jsonl", [
        {"question": "What burst?", "better": "The pipe.", "worse": "The door."}])
    assert curate(["ingest", str(renamed), "--workspace", str(ws.path), "--dry-run", "--json",
                   "--prompt-field", "question", "--chosen-field", "better",
                   "--rejected-field", "worse"]) == 0
    (shown,) = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["files"]
    assert shown["layout"] == "preference" and shown["fields"]["chosen"] == "better"
    assert shown["first_pair"]["rejected"]["response"] == "The door."
    with ws.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 0
