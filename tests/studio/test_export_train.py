"""The Export & Train page: preview counts, export, manifest and downloads."""

import time

import pytest

from pipelines.export import list_exports


def test_preview_then_export_writes_a_version(labelled_ws, page):
    at = page("export_train")
    at.selectbox(key="exp_scheme").set_value("claim_type").run()
    metrics = {m.label: m.value for m in at.metric}
    train = int(metrics["Train examples"].replace(",", ""))
    assert train > 0  # the sample's gold labels alone make an export possible
    at.button(key="btn_export").click().run()
    assert not at.exception
    assert any("Exported **v0001**" in s.value for s in at.success), [e.value for e in at.error]
    versions = list_exports(labelled_ws)
    assert [v["version"] for v in versions] == ["v0001"]
    assert versions[0]["train"] == train
    assert at.selectbox(key="exp_version").value == "v0001"


def test_export_error_is_shown_and_nothing_is_written(studio_ws, page):
    at = page("export_train")  # no labels yet: gold records go to eval, train would be empty
    at.button(key="btn_export").click().run()
    assert not at.exception
    assert at.error and "empty train split" in at.error[0].value
    assert list_exports(studio_ws) == []
    assert not any(p.name.startswith(".tmp") for p in (studio_ws.path / "exports").iterdir())


@pytest.mark.slow
def test_export_and_train_runs_to_the_eval_table(labelled_ws, page):
    pytest.importorskip("trainer.runs")
    from trainer.runs import list_train_runs

    at = page("export_train")
    at.selectbox(key="exp_scheme").set_value("claim_type").run()
    assert at.selectbox(key="train_head_classifier").value == "classifier"
    at.number_input(key="train_max_steps").set_value(4).run()
    at.number_input(key="train_batch_size").set_value(4).run()
    at.number_input(key="train_eval_max_examples").set_value(24).run()
    at.number_input(key="train_max_seq_length").set_value(64).run()
    at.button(key="btn_export_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("started" in s.value for s in at.success), [e.value for e in at.error]
    runs = list_train_runs(labelled_ws)
    assert len(runs) == 1
    deadline = time.time() + 400
    while time.time() < deadline and list_train_runs(labelled_ws)[0]["status"] in (
            "running", "starting", "pending"):
        time.sleep(2)
    run = list_train_runs(labelled_ws)[0]
    log = (labelled_ws.path / "runs" / run["run_id"] / "train.log").read_text()[-2000:]
    assert run["status"] == "done", log
    at.run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if list(d.value.columns)[:3] == ["metric", "base",
                                                                                  "tuned"])
    assert "accuracy" in set(table["metric"])


@pytest.mark.parametrize("options", [
    {"scheme": "claim_type"},
    {"scheme": "claim_type", "min_confidence": 0.99, "eval_fraction": 0.3,
     "accept_labels": ["theft", "property_fire"]},
    {"scheme": "summary_quality", "format": "alpaca"},
])
def test_page_preview_agrees_with_the_library(labelled_ws, options):
    from pipelines.export import preview_export
    from studio import _data

    assert _data.export_preview(**options) == preview_export(labelled_ws, **options)
