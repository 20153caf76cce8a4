"""The Filters page: a live count over stored signals, a bad rule as an error, keep/drop."""

from __future__ import annotations

from pipelines.filters import FilterConfig, run_quality_filters
from pipelines.store import NewRecord, upsert_record, utcnow
from pipelines.store.filters import read_signals


def _ws(fresh_ws, monkeypatch):
    rows = [("Write a poem.", "I'm sorry, but I cannot write poems."),
            ("Name a colour.", "Red."),
            ("Summarise the note please.", "A water leak in the basement was reported.")]
    with fresh_ws.transaction() as conn:
        for i, (p, r) in enumerate(rows):
            upsert_record(conn, NewRecord(id=f"r{i}", kind="instruction", text=f"{p}\n\n{r}",
                                          prompt=p, response=r, file="x", row=i + 1), utcnow())
    run_quality_filters(fresh_ws, FilterConfig(rules=["refusal"]))
    monkeypatch.setenv("CURATE_WORKSPACE", str(fresh_ws.path))
    return fresh_ws


def test_live_count_hits_and_override(fresh_ws, monkeypatch, page):
    ws = _ws(fresh_ws, monkeypatch)
    at = page("filters")
    at.text_area(key="filter_rules").set_value("refusal\nresponse_words < 2").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Would exclude"] == "2" and metrics["refusal"] == "1"
    assert metrics["response_words < 2"] == "1"
    at.selectbox(key="filter_rule_hits").set_value("refusal").run()
    at.segmented_control(key="fovr_r0").set_value("keep").run()
    assert not at.exception
    with ws.connect() as conn:
        assert read_signals(conn)["r0"]["excluded"] is False


def test_a_bad_rule_is_an_error_message(fresh_ws, monkeypatch, page):
    _ws(fresh_ws, monkeypatch)
    at = page("filters")
    at.text_area(key="filter_rules").set_value("lenght < 3").run()
    assert at.error and "unknown signal 'lenght'" in at.error[0].value
