"""The Review page: server status, push/pull against a real Label Studio, progress counts."""

import pytest

from tests.studio.conftest import add_fake_labels


def test_without_a_server_the_page_says_so_and_push_explains(studio_ws, page, monkeypatch):
    monkeypatch.delenv("CURATE_LABELSTUDIO_URL", raising=False)
    monkeypatch.delenv("CURATE_LABELSTUDIO_TOKEN", raising=False)
    at = page("review")
    assert any("not running" in w.value for w in at.warning)
    assert at.button(key="ls_start")
    assert [m.value for m in at.metric] == ["0", "0", "0", "0"]
    at.button(key="review_push").click().run()
    assert not at.exception
    assert at.error and "curate labelstudio start" in at.error[0].value


def test_pairwise_section_counts_and_push_without_a_server_explains(studio_ws, page,
                                                                    monkeypatch):
    monkeypatch.delenv("CURATE_LABELSTUDIO_URL", raising=False)
    monkeypatch.delenv("CURATE_LABELSTUDIO_TOKEN", raising=False)
    at = page("review")
    assert any("0 pairs pushed, 0 judged" in m.value for m in at.markdown)
    at.button(key="pairs_push").click().run()
    assert not at.exception
    assert at.error and "curate labelstudio start" in at.error[0].value


@pytest.mark.labelstudio
@pytest.mark.slow
def test_push_and_pull_with_a_real_server(studio_ws, page, labelstudio_server, monkeypatch):
    monkeypatch.setenv("CURATE_LABELSTUDIO_URL", labelstudio_server.url)
    monkeypatch.setenv("CURATE_LABELSTUDIO_TOKEN", labelstudio_server.token)
    add_fake_labels(studio_ws, "claim_type", confidence=0.6)
    at = page("review")
    at.selectbox(key="review_scheme").set_value("claim_type").run()
    at.number_input(key="review_budget").set_value(5).run()
    at.button(key="review_push").click().run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    assert any("5 tasks created" in s.value for s in at.success), [e.value for e in at.error]
    assert {m.label: m.value for m in at.metric}["Pushed"] == "5"
    at.button(key="review_pull").click().run(timeout=120)
    assert any("0 new" in s.value for s in at.success), [e.value for e in at.error]
