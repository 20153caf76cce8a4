"""The Dedup page: preview changes nothing, commit stores clusters, keep/drop overrides."""

import pytest

from pipelines.store import stage_counts

pytestmark = pytest.mark.slow  # loads the embedding model


def _excluded(ws):
    with ws.connect() as conn:
        return stage_counts(conn)["excluded"]


def test_preview_then_commit_then_override(tiny_ws, page):
    at = page("dedup")
    assert any("No clusters stored" in c.value for c in at.caption)
    at.slider(key="dedup_threshold").set_value(0.85).run()
    at.button(key="dedup_preview").click().run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Would exclude"]) >= 1
    assert _excluded(tiny_ws) == 0  # a preview stores nothing

    at.button(key="dedup_commit").click().run(timeout=180)
    assert any("Stored" in s.value for s in at.success), [e.value for e in at.error]
    excluded = _excluded(tiny_ws)
    assert excluded == int(metrics["Would exclude"])

    cluster = at.selectbox(key="dedup_cluster")
    assert cluster.value is not None
    # Keep an excluded member: it comes back, and the count drops by one.
    dropped = [k for k in at.session_state if str(k).startswith("ovr_")]
    assert dropped
    with tiny_ws.connect() as conn:
        rid = conn.execute("SELECT record_id FROM dedup WHERE excluded = 1 AND cluster_id = ?",
                           (cluster.value,)).fetchone()[0]
    at.button_group(key=f"ovr_{rid}").set_value("keep").run()
    assert not at.exception, [e.value for e in at.exception]
    assert _excluded(tiny_ws) == excluded - 1


def test_every_setting_has_a_control_and_a_run_shows_its_stages(tiny_ws, page):
    import dataclasses

    from pipelines.dedup import PROGRESS_STAGES, DedupConfig

    at = page("dedup")
    keys = {str(k) for k in at.session_state}
    fields = {f.name for f in dataclasses.fields(DedupConfig)}
    assert {f for f in fields if f"dedup_{f}" not in keys} == set()
    at.button(key="dedup_commit").click().run(timeout=180)
    assert any("Stored" in s.value for s in at.success), [e.value for e in at.error]
    bars = at.get("progress")
    assert len(bars) == 1
    assert bars[0].proto.value == 100   # the bar ends full, on the last stage
    assert bars[0].proto.text.startswith(f"{len(PROGRESS_STAGES)}/{len(PROGRESS_STAGES)} write")


def test_the_page_warns_before_a_run_on_mostly_non_english_records(fresh_ws, page, monkeypatch):
    from pipelines.store import NewRecord, upsert_record, utcnow

    texts = ["我家厨房的水管昨天晚上突然爆裂，地板和橱柜都被水泡坏了。",
             "昨天下午我的汽车在高速公路上被后面的卡车追尾，后保险杠撞碎了。",
             "The insured reported a water leak in the kitchen on Monday."]
    with fresh_ws.transaction() as conn:
        for i, t in enumerate(texts):
            upsert_record(conn, NewRecord(id=f"r{i:016x}", kind="text", text=t), utcnow())
    monkeypatch.setenv("CURATE_WORKSPACE", str(fresh_ws.path))
    at = page("dedup")
    assert any("67% of a 3-record sample is not English" in w.value for w in at.warning), \
        [w.value for w in at.warning]
