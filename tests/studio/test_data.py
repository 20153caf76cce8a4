"""The Data page: filters, search and pagination answer from SQL."""

import pytest


def test_data_page_lists_a_page_and_opens_a_record(studio_ws, page):
    at = page("data")
    df = at.dataframe[0].value
    assert len(df) == 50
    assert at.selectbox(key="data_record").value == df["id"][0]
    assert any("Prompt" in m.value for m in at.markdown)


def test_text_search_filters_rows(studio_ws, page):
    at = page("data")
    at.text_input(key="data_query").input("water").run()
    df = at.dataframe[0].value
    assert 0 < len(df) <= 50
    assert all("water" in t.lower() for t in df["text"])


def test_pagination_moves_the_window(studio_ws, page):
    at = page("data")
    first = list(at.dataframe[0].value["id"])
    at.number_input(key="data_page").set_value(2).run()
    second = list(at.dataframe[0].value["id"])
    assert len(second) == 50 and not set(first) & set(second)


def test_no_match_says_so(studio_ws, page):
    at = page("data")
    at.text_input(key="data_query").input("zzqx-no-such-text").run()
    assert not at.dataframe
    assert any("No records match" in c.value for c in at.caption)


@pytest.mark.slow
def test_semantic_search_ranks_the_nearest_records(tiny_ws, page):
    at = page("data")
    at.radio(key="data_mode").set_value("Semantic").run()
    at.text_input(key="data_query").input("a stolen bicycle").run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    df = at.dataframe[0].value
    assert list(df.columns[:2]) == ["score", "id"]
    assert "bikes" in df["text"][0] and df["score"].is_monotonic_decreasing


def test_a_conversation_shows_every_turn(studio_ws, page):
    from pipelines.records import Turn, render_turns
    from pipelines.store import NewRecord, upsert_record, utcnow

    turns = [Turn("system", "You answer claims."), Turn("user", "a pipe burst"),
             Turn("assistant", "water claim"), Turn("user", "and the roof?"),
             Turn("assistant", "also water"), Turn("user", "then a fire"),
             Turn("assistant", "fire claim zq")]
    with studio_ws.transaction() as conn:
        upsert_record(conn, NewRecord(id="chat-1", kind="chat", text=render_turns(turns),
                                      messages=[t.to_dict() for t in turns],
                                      meta={"conditions": {"empty_turn": 1}},
                                      file="chat.jsonl", row=1), utcnow())
    at = page("data")
    at.text_input(key="data_query").input("fire claim zq").run()
    assert at.selectbox(key="data_record").value == "chat-1"
    shown = [(m.name, m.markdown[-1].value) for m in at.chat_message]
    assert shown == [(t.role, t.content) for t in turns]   # all 7 turns, not the last pair
    assert any("1 empty turn(s) dropped" in c.value for c in at.caption)


def _add_record(ws, rid: str, text: str, **meta) -> None:
    from pipelines.store import NewRecord, upsert_record, utcnow

    with ws.transaction() as conn:
        upsert_record(conn, NewRecord(id=rid, kind="text", text=text, meta=meta,
                                      file="pii.jsonl", row=1), utcnow())


def test_a_record_shows_its_pii_highlighted_and_the_rules_that_fired(studio_ws, page):
    from pipelines.filters import FilterConfig, run_quality_filters
    from pipelines.pii import PiiConfig, run_pii

    _add_record(studio_ws, "pii-1", "Write to ana.ruiz@example.com <b>now</b> about $5 zqpii.")
    run_pii(studio_ws, PiiConfig(types=["EMAIL"]))
    run_quality_filters(studio_ws, FilterConfig(rules=["length_words < 12"]))
    at = page("data")
    at.text_input(key="data_query").input("zqpii").run()
    assert at.selectbox(key="data_record").value == "pii-1"
    marked = [m.value for m in at.markdown if "<mark" in m.value]
    assert len(marked) == 1
    assert '<mark title="EMAIL 0.95">ana.ruiz@example.com <sup>EMAIL</sup></mark>' in marked[0]
    assert "&#60;b&#62;now" in marked[0] and "<b>" not in marked[0]   # the record's own text is escaped
    assert any("PII detected** (1 span(s): EMAIL" in m.value for m in at.markdown)
    assert any(c.value.startswith("Filters: fired: length_words < 12") for c in at.caption)


def test_a_record_without_pii_has_no_highlight(studio_ws, page):
    from pipelines.pii import PiiConfig, run_pii

    _add_record(studio_ws, "pii-0", "Nothing personal here at all zqnone.")
    run_pii(studio_ws, PiiConfig())
    at = page("data")
    at.text_input(key="data_query").input("zqnone").run()
    assert at.selectbox(key="data_record").value == "pii-0"
    assert not [m for m in at.markdown if "<mark" in m.value]
    assert not [c for c in at.caption if c.value.startswith("Filters:")]   # no filter run yet
