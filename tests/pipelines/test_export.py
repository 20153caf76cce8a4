"""Export: selection rules, formats readable by `datasets`/TRL, split determinism, atomicity, diff."""

from __future__ import annotations

import json

import pytest

from curate.cli import main as curate
from pipelines.errors import ConfigError, ExportError
from pipelines.export import (
    ExportConfig, diff_exports, export_dataset, list_exports, load_manifest, preview_export,
    read_split, split_of,
)
from pipelines.store import NewRecord, Workspace, stage_counts, upsert_record, utcnow
from pipelines.store.exports import put_dedup, put_label, put_review

CURATION = """
schema: instruction
schemes:
  quality: {classes: [ACCEPT, REJECT]}
  topic: {classes: [water, fire, theft]}
export:
  system_prompt: "You summarise claims."
"""
TOPICS = ("water", "fire", "theft")


def make_ws(tmp_path, n: int = 40, gold_every: int = 0) -> Workspace:
    """n instruction records; record i is ACCEPT unless i % 4 == 3, topic TOPICS[i % 3]."""
    ws = Workspace.create(tmp_path / "ws")
    ws.config_path.write_text(CURATION, encoding="utf-8")
    now = utcnow()
    with ws.transaction() as conn:
        for i in range(n):
            gold = {"topic": TOPICS[i % 3], "quality": "ACCEPT"} if gold_every and i % gold_every == 0 else {}
            rec = NewRecord(id=f"r{i:04d}", kind="instruction", text=f"note {i} / summary {i}",
                            prompt=f"claim note number {i}", response=f"summary {i}", gold=gold,
                            file="inline.jsonl", row=i + 1)
            upsert_record(conn, rec, now)
            put_label(conn, rec.id, "quality", "REJECT" if i % 4 == 3 else "ACCEPT",
                      0.9 if i % 5 else 0.5)
            put_label(conn, rec.id, "topic", TOPICS[i % 3], 0.95)
    return ws


def test_selection_rules_human_over_model_and_exclusion(tmp_path):
    ws = make_ws(tmp_path, n=20)
    with ws.transaction() as conn:
        put_dedup(conn, "r0001", excluded=True)                       # ACCEPT 0.9, excluded
        put_review(conn, "r0003", "quality", human_label="ACCEPT",    # model REJECT, human ACCEPT
                   edited_response="a better summary")
        put_review(conn, "r0002", "quality", human_label="REJECT")    # model ACCEPT, human REJECT
        put_review(conn, "r0005", "quality", human_label="ACCEPT")    # model conf 0.5, human wins
    res = export_dataset(ws, scheme="quality", format="alpaca", eval_fraction=0.0)
    rows = read_split(ws, res.version, "train")
    outputs = {r["instruction"]: r["output"] for r in rows}
    assert "claim note number 1" not in outputs          # excluded
    assert "claim note number 2" not in outputs          # human REJECT beats model ACCEPT
    assert outputs["claim note number 3"] == "a better summary"  # human edit replaces response
    assert "claim note number 5" in outputs              # human label needs no confidence
    assert "claim note number 10" not in outputs         # model ACCEPT at 0.5 < 0.8
    assert "claim note number 7" not in outputs          # model REJECT
    expected = {f"claim note number {i}" for i in range(20)
                if i not in (1, 2) and (i in (3, 5) or (i % 4 != 3 and i % 5 != 0))}
    assert set(outputs) == expected
    assert res.skipped["excluded"] == 1


def test_formats_load_with_datasets_and_trl(tmp_path):
    from datasets import load_dataset
    from trl.data_utils import is_conversational

    ws = make_ws(tmp_path, n=30)
    chat = export_dataset(ws, scheme="quality", format="chat", eval_fraction=0.3)
    alpaca = export_dataset(ws, scheme="quality", format="alpaca", eval_fraction=0.3)
    cls = export_dataset(ws, scheme="topic", format="classification", eval_fraction=0.3)
    ds = load_dataset("json", data_files={s: str(chat.path / f"{s}.jsonl") for s in ("train", "eval")})
    first = ds["train"][0]
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert first["messages"][0]["content"] == "You summarise claims."
    assert is_conversational(first)
    assert len(ds["train"]) == chat.train and len(ds["eval"]) == chat.eval
    ds = load_dataset("json", data_files=str(alpaca.path / "train.jsonl"))["train"]
    assert set(ds.column_names) == {"instruction", "input", "output", "system"}
    ds = load_dataset("json", data_files=str(cls.path / "train.jsonl"))["train"]
    assert set(ds.column_names) == {"text", "label"} and set(ds["label"]) <= set(TOPICS)


def test_split_is_deterministic_across_versions_and_gold_never_trains(tmp_path):
    ws = make_ws(tmp_path, n=60, gold_every=5)
    v1 = export_dataset(ws, scheme="topic", format="classification", eval_fraction=0.25)
    with ws.transaction() as conn:   # a later version with more records and one exclusion
        for i in range(60, 90):
            upsert_record(conn, NewRecord(id=f"r{i:04d}", kind="instruction", text=f"t{i}",
                                          prompt=f"p{i}", response=f"s{i}", file="b", row=i), utcnow())
            put_label(conn, f"r{i:04d}", "topic", "fire", 0.99)
        put_dedup(conn, "r0011", excluded=True)
    v2 = export_dataset(ws, scheme="topic", format="classification", eval_fraction=0.25)
    m1, m2 = load_manifest(ws, v1.version), load_manifest(ws, v2.version)
    side1 = {e["id"]: e["split"] for e in m1["records"]}
    side2 = {e["id"]: e["split"] for e in m2["records"]}
    common = side1.keys() & side2.keys()
    assert len(common) >= 55 and all(side1[i] == side2[i] for i in common)
    assert all(split_of(i, 0.25) == side2[i] for i in side2 if int(i[1:]) % 5 or int(i[1:]) >= 60)
    gold_ids = {f"r{i:04d}" for i in range(0, 60, 5)}
    assert gold_ids <= {i for i, s in side2.items() if s == "eval"}
    assert all(e["label_source"] == "gold" for e in m2["records"] if e["id"] in gold_ids)
    # both sides get a share close to the fraction among non-gold ids
    non_gold = [s for i, s in side2.items() if i not in gold_ids]
    assert 0.05 < non_gold.count("eval") / len(non_gold) < 0.5
    d = diff_exports(ws, "v1", 2)
    assert d["removed"] == ["r0011"] and len(d["added"]) == 30 and d["changed"] == []


def test_manifest_hashes_counts_and_lineage(tmp_path):
    import hashlib

    ws = make_ws(tmp_path, n=25)
    res = export_dataset(ws, scheme="quality", format="chat")
    m = load_manifest(ws, res.version)
    for name in ("train.jsonl", "eval.jsonl"):
        assert m["files"][name]["sha256"] == hashlib.sha256((res.path / name).read_bytes()).hexdigest()
    assert m["counts"]["train"] == res.train == sum(m["counts"]["labels"]["train"].values())
    assert len(m["records"]) == res.train + res.eval
    lines = (res.path / "train.jsonl").read_text().splitlines()
    first_train = next(e for e in m["records"] if e["split"] == "train" and e["line"] == 1)
    assert first_train["sha256"] == hashlib.sha256(lines[0].encode()).hexdigest()
    assert m["sources"][0]["file"] == "inline.jsonl" and m["tool"]["name"] == "curation-studio"
    with ws.connect() as conn:
        assert stage_counts(conn)["exports"] == 1


def test_crash_mid_export_leaves_no_version(tmp_path, monkeypatch):
    import pipelines.export.export as mod

    ws = make_ws(tmp_path, n=20)
    def boom(*a, **k):
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(mod, "_write_manifest", boom)
    with pytest.raises(OSError):
        export_dataset(ws, scheme="quality")
    assert list((ws.path / "exports").iterdir()) == []
    assert list_exports(ws) == []
    monkeypatch.undo()
    assert export_dataset(ws, scheme="quality").version == "v0001"


def test_bad_input_errors(tmp_path):
    ws = make_ws(tmp_path, n=8)
    with pytest.raises(ExportError, match="empty train split.*below min_confidence: .*lower min_confidence"):
        export_dataset(ws, scheme="quality", min_confidence=1.0)
    with pytest.raises(ConfigError, match="eval_fraction"):
        ExportConfig(eval_fraction=1.5)
    with pytest.raises(ConfigError, match="format"):
        ExportConfig(format="parquet")
    with pytest.raises(ExportError, match="unknown export version"):
        load_manifest(ws, "v7")
    assert preview_export(ws, scheme="quality")["train"] > 0


def test_cli_export_list_diff(tmp_path, capsys):
    ws = make_ws(tmp_path, n=30)
    w = str(ws.path)
    assert curate(["export", "--workspace", w, "--scheme", "quality", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["version"] == "v0001" and out["train"] + out["eval"] > 0 and out["format"] == "chat"
    assert curate(["export", "--workspace", w, "--scheme", "quality", "--min-confidence", "0.4",
                   "--json"]) == 0
    capsys.readouterr()
    assert curate(["export", "diff", "v1", "v2", "--workspace", w, "--json"]) == 0
    d = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert d["n_added"] > 0 and d["n_removed"] == 0
    assert curate(["export", "list", "--workspace", w, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["exports"]) == 2
    assert curate(["export", "diff", "v1", "v9", "--workspace", w]) == 2
    assert "unknown export version" in capsys.readouterr().err


def test_preview_uses_supplied_candidates(tmp_path):
    """The studio passes its cached candidates: the preview must select from those, not re-read."""
    from pipelines.store.exports import iter_export_candidates

    ws = make_ws(tmp_path, n=20)
    with ws.connect() as conn:
        every = list(iter_export_candidates(conn, "topic"))
    asked: list[str] = []

    def cached(scheme: str):
        asked.append(scheme)
        return [c for c in every if c.id < "r0010"]   # half the records

    full = preview_export(ws, scheme="topic", eval_fraction=0.0)
    half = preview_export(ws, scheme="topic", eval_fraction=0.0, candidates=cached)
    assert asked == ["topic"]
    assert full["train"] == 20 and half["train"] == 10


def test_unchanged_data_reuses_the_latest_version(tmp_path, capsys):
    ws = make_ws(tmp_path, n=20)
    v1 = export_dataset(ws, scheme="quality", format="chat")
    again = export_dataset(ws, scheme="quality", format="chat")
    assert (again.version, again.unchanged, again.train) == (v1.version, True, v1.train)
    assert [e["version"] for e in list_exports(ws)] == ["v0001"]
    assert not [p for p in (ws.path / "exports").iterdir() if p.name.startswith(".tmp")]
    assert export_dataset(ws, scheme="quality", format="alpaca").version == "v0002"  # other format
    assert export_dataset(ws, scheme="quality", format="alpaca", force=True).version == "v0003"
    with ws.transaction() as conn:                      # one changed label: a new version
        put_review(conn, "r0007", "quality", human_label="ACCEPT")
    changed = export_dataset(ws, scheme="quality", format="alpaca")
    assert (changed.version, changed.unchanged) == ("v0004", False)
    assert curate(["export", "--workspace", str(ws.path), "--scheme", "quality", "--format",
                   "alpaca", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("unchanged: v0004") and json.loads(out[-1])["unchanged"] is True


def test_conversations_keep_every_turn_and_conditions_are_counted(tmp_path):
    from pipelines.records import Turn, render_turns

    ws = make_ws(tmp_path, n=0)
    convs = {
        "c_whole": [("system", "Be brief."), ("user", "q1"), ("assistant", "a1"), ("user", "q2"),
                    ("assistant", "a2"), ("user", "q3"), ("assistant", "a3")],
        "c_asst_first": [("assistant", "hello, how can I help?"), ("user", "q1"),
                         ("assistant", "a1")],
        "c_ends_user": [("user", "q1"), ("assistant", "b1"), ("user", "thanks!")],
        "c_nothing": [("assistant", "hi"), ("user", "bye")],
    }
    with ws.transaction() as conn:
        for i, (rid, turns) in enumerate(convs.items()):
            ts = [Turn(r, c) for r, c in turns]
            meta = {"conditions": {"empty_turn": 1}} if rid == "c_whole" else {}
            upsert_record(conn, NewRecord(id=rid, kind="chat", text=render_turns(ts),
                                          messages=[t.to_dict() for t in ts], meta=meta,
                                          file="chat.jsonl", row=i + 1), utcnow())
            put_label(conn, rid, "quality", "ACCEPT", 0.99)
    res = export_dataset(ws, scheme="quality", format="chat", eval_fraction=0.0)
    rows = {r["messages"][-1]["content"]: r["messages"] for r in read_split(ws, res.version, "train")}
    assert [(m["role"], m["content"]) for m in rows["a3"]] == convs["c_whole"]   # every turn
    for repaired in ("a1", "b1"):   # the leading assistant turn, the trailing user turn: gone
        assert [m["role"] for m in rows[repaired]] == ["system", "user", "assistant"]
    assert res.train == 3
    assert res.conditions == {"assistant_first": 2, "ends_on_user": 2, "no_assistant_turn": 1,
                              "empty_turn": 1}
    assert res.skipped["no user -> assistant exchange"] == 1
    manifest = load_manifest(ws, res.version)
    assert manifest["counts"]["conditions"] == res.conditions
    assert manifest["lengths"]["n"] == 3 and manifest["lengths"]["max"] > 0

    alp = export_dataset(ws, scheme="quality", format="alpaca", eval_fraction=0.0)
    row = next(r for r in read_split(ws, alp.version, "train") if r["output"] == "a3")
    assert row == {"system": "Be brief.", "instruction": "q3", "input": "", "output": "a3",
                   "history": [["q1", "a1"], ["q2", "a2"]]}


def make_gold_ws(tmp_path, n: int = 30) -> Workspace:
    """n instruction records, every one with gold for both schemes and no label-model label."""
    ws = Workspace.create(tmp_path / "gold_ws")
    ws.config_path.write_text(CURATION, encoding="utf-8")
    with ws.transaction() as conn:
        for i in range(n):
            upsert_record(conn, NewRecord(id=f"g{i:04d}", kind="instruction", text=f"g {i}",
                                          prompt=f"claim {i}", response=f"summary {i}",
                                          gold={"topic": TOPICS[i % 3], "quality": "ACCEPT"},
                                          file="gold.jsonl", row=i + 1), utcnow())
    return ws


def test_all_gold_set_exports_with_a_gold_holdout(tmp_path):
    ws = make_gold_ws(tmp_path, n=30)
    res = export_dataset(ws, scheme="topic", format="classification")
    m = load_manifest(ws, res.version)
    side = {e["id"]: e["split"] for e in m["records"]}
    assert res.train > 0 and res.train + res.eval == 30
    # eval is exactly the stable gold holdout (gold_eval_share 0.2 by record-id hash)
    assert {i for i, s in side.items() if s == "eval"} == {i for i in side if split_of(i, 0.2) == "eval"}
    assert m["counts"]["gold"] == {"policy": "auto", "eval_share": 0.2, "trains": True,
                                   "train": res.train, "eval": res.eval}
    assert all(e["label_source"] == "gold" for e in m["records"])
    # never: the old rule, and the error names the real reason
    with pytest.raises(ExportError, match=r"30 gold record\(s\) held out for eval.*--gold-train"):
        export_dataset(ws, scheme="topic", format="classification", gold_train="never")
    with pytest.raises(ConfigError, match="gold_eval_share"):
        ExportConfig(gold_eval_share=1.0)
    with pytest.raises(ConfigError, match="gold_train"):
        ExportConfig(gold_train="sometimes")


def test_gold_stays_in_eval_when_other_records_train_unless_always(tmp_path):
    ws = make_ws(tmp_path, n=60, gold_every=5)
    auto = export_dataset(ws, scheme="topic", format="classification", eval_fraction=0.25)
    assert auto.gold["trains"] is False and auto.gold["train"] == 0 and auto.gold["eval"] == 12
    always = export_dataset(ws, scheme="topic", format="classification", eval_fraction=0.25,
                            gold_train="always", gold_eval_share=0.5)
    m = load_manifest(ws, always.version)
    gold_sides = [e["split"] for e in m["records"] if int(e["id"][1:]) % 5 == 0]
    assert always.gold["trains"] and "train" in gold_sides and "eval" in gold_sides
