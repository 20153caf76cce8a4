"""Quality filters: each signal on tiny inline text, rules, stored flags, overrides, export."""

from __future__ import annotations

import hashlib
import json

import pytest

from pipelines.errors import ConfigError
from pipelines.filters import (
    FilterConfig, compute_signals, parse_rule, repetition, run_quality_filters,
    set_filter_override, signals_for,
)
from pipelines.filters.signals import content_text, language, markup_count
from pipelines.records import Record, Turn
from pipelines.store import NewRecord, list_records, upsert_record, utcnow
from pipelines.store.exports import iter_export_candidates
from pipelines.store.filters import read_signals

ALL = FilterConfig().enabled_signals()


def sig(rec: Record, **kw):
    return compute_signals(rec, enabled=ALL, refusal=FilterConfig().refusal_phrases,
                           boilerplate=FilterConfig().boilerplate_phrases, **kw)


def text(t: str) -> Record:
    return Record(id="x", kind="text", text=t)


def test_length_signals_hand_counted():
    v = sig(text("Hello, world! Two words.")).values
    assert v["length_chars"] == 24
    assert v["length_words"] == 4
    # Hello , world ! Two words .
    assert v["length_tokens"] == 7
    assert v["turns"] == 1
    rec = Record(id="i", kind="instruction", text="", prompt="Say hi", response="Hi")
    v = sig(rec).values
    assert (v["turns"], v["length_words"], v["response_words"]) == (2, 3, 1)


def test_words_of_scripts_without_spaces_are_counted_per_character(fresh_ws):
    # Whitespace makes a whole Chinese or Japanese sentence one word: the default rule
    # `length_words < 3` excluded every such record before.
    zh = "我家厨房的水管昨天晚上突然爆裂，地板都被水泡坏了。"
    v = sig(text(zh)).values
    assert v["length_words"] == 23                      # 23 Han characters; punctuation stays
    assert sig(text("台所の水道管が破裂しました")).values["length_words"] == 13
    assert sig(text("Pipe burst 水管 twice")).values["length_words"] == 5
    r = repetition("水管爆裂水管爆裂水管爆裂")     # 4-gram 水管爆裂 x3 covers all 12 characters
    assert (r["top2_frac"], r["top4_frac"]) == (0.5, 1.0)   # (was 0: one "word", no n-grams)
    with fresh_ws.connect() as conn:
        for i, t in enumerate([zh, "台所の水道管が破裂しました", "ok go", "你好"]):
            upsert_record(conn, NewRecord(id=f"r{i}", kind="text", text=t), utcnow())
    res = run_quality_filters(fresh_ws, FilterConfig(), commit=False)
    assert res.excluded == 2          # "ok go" (2 words) and 你好 (2); not the two sentences


def test_gopher_repetition_hand_checked():
    r = repetition("same line\nsame line\nother\nsame line")
    assert r["dup_line_frac"] == 0.5                      # 2 of 4 lines repeat an earlier one
    r = repetition("a b a b a b")
    assert r["top2_frac"] == 1.0                          # "a b" x3 covers all 6 characters
    r = repetition("aa bb cc aa bb dd")                   # "aa bb" x2 = 8 of 12 characters
    assert r["top2_frac"] == round(8 / 12, 4)
    assert r["top3_frac"] == 0.0                          # no 3-gram occurs twice
    assert repetition("one two three four")["top2_frac"] == 0.0


def test_refusal_boilerplate_markup_and_mojibake():
    rec = Record(id="i", kind="instruction", text="", prompt="Write a poem",
                 response="I\u2019m sorry, but I cannot write that.")
    s = sig(rec)
    assert s.values["refusal"] is True and s.details["refusal"] == "i'm sorry, but i cannot"
    # a refusal phrase in the prompt is not a refusal
    assert sig(Record(id="j", kind="instruction", text="", prompt="As an AI language model, ...",
                      response="Sure.")).values["refusal"] is False
    assert sig(text("Lorem ipsum dolor sit amet")).values["boilerplate"] is True
    assert markup_count("<p>Hi&nbsp;there</p> [b]x[/b] plain < 3") == 5
    s = sig(text("The caf\u00c3\u00a9 was closed"))
    assert s.values["mojibake"] is True
    assert s.details["mojibake_fix"] == "The caf\u00e9 was closed"
    assert sig(text("The caf\u00e9 was closed")).values["mojibake"] is False


def test_language_per_turn_and_chat_conditions():
    assert language("The weather is lovely today and we are going to the park.")[0] == "en"
    assert language("Das Wetter ist heute sehr schön und wir gehen in den Park.")[0] == "de"
    assert language("12345 ---") == ("und", 0.0)
    rec = Record(id="c", kind="chat", text="", turns=(
        Turn("user", "Bonjour, pouvez-vous m'aider avec ma facture d'électricité ?"),
        Turn("assistant", "Of course, I can help you with your electricity bill today.")),
        meta={"conditions": {"ends_on_user": True}})
    s = sig(rec)
    assert s.details["lang_turns"] == ["fr", "en"]
    assert s.values["lang_mixed"] is True
    assert s.values["ends_on_user"] is True and s.values["assistant_first"] is False
    assert content_text(rec).startswith("Bonjour")      # role prefixes are not content


@pytest.mark.parametrize("bad, why", [
    ("lenght_words < 3", "unknown signal 'lenght_words'"),
    ("length_words <", "malformed"),
    ("length_words < many", "is a number"),
    ("lang != xx", "unknown language code 'xx'"),
    ("refusal > 1", "only be compared with == or !="),
    ("", "empty rule"),
])
def test_bad_rules_are_one_line_config_errors(bad, why):
    with pytest.raises(ConfigError) as e:
        FilterConfig(rules=[bad])
    assert why in str(e.value) and "\n" not in str(e.value)


def test_rules_hold_or_not():
    v = {"length_words": 2, "lang": "de", "refusal": False}
    assert parse_rule("length_words < 3").holds(v)
    assert parse_rule("lang != en").holds(v)
    assert not parse_rule('lang == "en"').holds(v)
    assert not parse_rule("refusal").holds(v) and parse_rule("not refusal").holds(v)
    assert not parse_rule("markup > 0").holds(v)          # not computed: never holds
    with pytest.raises(ConfigError, match="disabled filter"):
        FilterConfig(rules=["mojibake"], disabled=["mojibake"])


def test_missing_phrase_file_names_it(fresh_ws):
    cfg = FilterConfig(refusal_phrases_file="nope.txt")
    with pytest.raises(ConfigError, match="refusal_phrases_file: no such file .*nope.txt"):
        run_quality_filters(fresh_ws, cfg)
    with fresh_ws.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    (fresh_ws.path / "extra.txt").write_text("# comment\nI refuse\n", encoding="utf-8")
    refusal, _ = FilterConfig(refusal_phrases_file="extra.txt").phrase_lists(fresh_ws.path)
    assert refusal[-1] == "i refuse"


def _rid(t: str) -> str:
    return "r" + hashlib.sha256(t.encode()).hexdigest()[:16]


def _add(ws, rows):
    with ws.transaction() as conn:
        for n, (p, r) in enumerate(rows, 1):
            upsert_record(conn, NewRecord(id=_rid(p + r), kind="instruction", text=f"{p}\n\n{r}",
                                          prompt=p, response=r, file="inline.jsonl", row=n),
                          utcnow())
    return [_rid(p + r) for p, r in rows]


def test_run_stores_signals_flags_and_overrides_survive_a_rerun(fresh_ws):
    ids = _add(fresh_ws, [
        ("Summarise the claim note please.", "Water leak in the basement, $1,200 claimed."),
        ("Write a limerick about cats.", "I'm sorry, but I cannot write limericks."),
        ("Name a colour.", "Red."),
    ])
    res = run_quality_filters(fresh_ws, FilterConfig(rules=["refusal", "response_words < 2"]))
    assert res.fired == {"refusal": 1, "response_words < 2": 1} and res.excluded == 2
    with fresh_ws.connect() as conn:
        stored = read_signals(conn)
        rows = {r["id"]: r for r in list_records(conn)}
        state = {c.id: c.state for c in iter_export_candidates(conn, "s")}
    assert stored[ids[1]]["fired"] == ["refusal"] and stored[ids[0]]["fired"] == []
    assert stored[ids[2]]["signals"]["response_words"] == 1
    assert rows[ids[1]]["excluded"] and rows[ids[1]]["filter_fired"] == ["refusal"]
    assert not rows[ids[0]]["excluded"]
    assert state[ids[1]].excluded and state[ids[1]].excluded_by == "filter: refusal"

    set_filter_override(fresh_ws, ids[1], "keep")
    set_filter_override(fresh_ws, ids[0], "drop")
    res = run_quality_filters(fresh_ws, FilterConfig(rules=["refusal", "response_words < 2"]))
    with fresh_ws.connect() as conn:
        stored = read_signals(conn)
    assert not stored[ids[1]]["excluded"] and stored[ids[1]]["reason"].startswith("kept by a person")
    assert stored[ids[0]]["excluded"]
    assert res.excluded == 2 and res.overrides == 2
    set_filter_override(fresh_ws, ids[1], None)          # reset: the rule decides again
    with fresh_ws.connect() as conn:
        assert read_signals(conn, [ids[1]])[ids[1]]["excluded"]


def test_preview_stores_nothing(fresh_ws):
    _add(fresh_ws, [("Hi", "Hello there.")])
    res = run_quality_filters(fresh_ws, FilterConfig(), commit=False)
    assert res.records == 1 and res.run_id is None
    with fresh_ws.connect() as conn:
        assert read_signals(conn) == {}


def test_signals_for_a_stored_chat_record_match_ingest_conditions():
    rec = Record(id="c", kind="chat", text="", turns=(Turn("assistant", "Hello!"),),
                 meta={"conditions": {"assistant_first": True, "empty_turn": 1}})
    row = signals_for([rec], FilterConfig(rules=["assistant_first", "empty_turn"]), ".")[0]
    assert row.fired == ["assistant_first", "empty_turn"]
    json.dumps(row.signals)    # stored as JSON


def test_every_filter_computes_exactly_its_declared_signals():
    from pipelines.filters import FILTERS, SIGNAL_TYPES

    assert set(SIGNAL_TYPES) == {s for sigs in FILTERS.values() for s in sigs}
    rec = Record(id="c", kind="chat", text="", turns=(Turn("user", "Hello there, how are you?"),))
    for name, sigs in FILTERS.items():
        cfg = FilterConfig(rules=[], disabled=[f for f in FILTERS if f != name])
        values = compute_signals(rec, enabled=cfg.enabled_signals(), refusal=[], boilerplate=[]).values
        assert set(values) == set(sigs), name
        assert all(isinstance(values[k], SIGNAL_TYPES[k]) for k in sigs), name
