"""The Models page: the registry with evaluations, the router's confusion matrix, and the
playground answering through the routed adapter."""

import shutil

import pytest

pytestmark = pytest.mark.slow   # loads a tiny Llama, MiniLM and three adapters


@pytest.fixture
def models_ws(micro_ws, tmp_path, monkeypatch):
    from pipelines.store import Workspace
    from trainer.router import RouterConfig, train_router

    dst = tmp_path / "ws"
    shutil.copytree(micro_ws.path, dst)
    ws = Workspace.open(dst)
    train_router(ws, RouterConfig(models=["summary-sft-v0001", "extract-sft-v0002"]))
    monkeypatch.setenv("CURATE_WORKSPACE", str(dst))
    return ws


def test_registry_router_and_playground(models_ws, page):
    at = page("models", timeout=180)
    table = at.dataframe[0].value
    assert set(table["name"]) == {"summary-sft-v0001", "extract-sft-v0002", "topic-classifier-v0003"}
    assert "summary/sft" in set(table["task"])
    confusion = at.dataframe[1].value
    assert list(confusion.columns) == ["summary-sft-v0001", "extract-sft-v0002"]
    assert int(confusion.values.trace()) == int(confusion.values.sum()) > 0
    at.selectbox[0].set_value("auto")
    at.text_area[0].input("Return JSON with amount and state. Claim text: a lost ring, amount 9 "
                          "dollars, state CA.")
    next(b for b in at.button if b.label == "Run").click()
    at.run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    shown = {m.label: m.value for m in at.metric}
    assert shown["Answered by"] == "extract-sft-v0002" and float(shown["Router confidence"]) > 0.5
    assert at.code   # the answer
    at.selectbox[0].set_value("topic-classifier-v0003")
    at.text_area[0].input("a kitchen fire")
    next(b for b in at.button if b.label == "Run").click()
    at.run(timeout=180)
    assert any(m.value.startswith("Class: **") for m in at.markdown)
