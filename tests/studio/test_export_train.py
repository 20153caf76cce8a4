"""The Export & Train page: preview counts, export, manifest and downloads."""

import json
import os
import signal
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
    at.button(key="btn_export").click().run()          # the same data again: no second copy
    assert any("Unchanged: **v0001**" in s.value for s in at.info), [i.value for i in at.info]
    assert [v["version"] for v in list_exports(labelled_ws)] == ["v0001"]


def test_preference_format_previews_pairs_and_picks_the_dpo_head(labelled_ws, page):
    from pipelines.store.exports import put_review

    with labelled_ws.connect() as conn:
        rid, response = conn.execute("SELECT id, response FROM records LIMIT 1").fetchone()
    with labelled_ws.transaction() as conn:
        put_review(conn, rid, "summary_quality", human_label="ACCEPT",
                   edited_response=response + " (corrected)")
    at = page("export_train")
    at.selectbox(key="exp_scheme").set_value("summary_quality").run()
    at.selectbox(key="exp_format").set_value("preference").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Train examples"]) + int(metrics["Eval examples"]) == 1   # the correction
    assert at.selectbox(key="train_head_dpo").value == "dpo"
    at.selectbox(key="exp_synthetic").set_value("exclude").run()
    assert not at.exception


def test_export_error_is_shown_and_nothing_is_written(studio_ws, page):
    # No labels yet, and gold may not train (gold_train: never; the default `auto` would let an
    # all-gold export train on all but a holdout): train would be empty.
    cfg = studio_ws.config_path.read_text(encoding="utf-8")
    studio_ws.config_path.write_text(cfg.replace("export:\n", "export:\n  gold_train: never\n", 1),
                                     encoding="utf-8")
    at = page("export_train")
    at.button(key="btn_export").click().run()
    assert not at.exception
    assert at.error and "empty train split" in at.error[0].value
    assert "held out for eval (gold_train: never)" in at.error[0].value
    assert list_exports(studio_ws) == []
    assert not any(p.name.startswith(".tmp") for p in (studio_ws.path / "exports").iterdir())


@pytest.mark.slow
def test_export_and_train_starts_a_detached_run(labelled_ws, page):
    from trainer.runs import list_train_runs

    at = page("export_train")
    at.selectbox(key="exp_scheme").set_value("claim_type").run()
    assert at.selectbox(key="train_head_probe").value == "probe"   # the fast head first
    at.selectbox(key="exp_format").set_value("chat").run()  # chat data -> the SFT head
    assert at.selectbox(key="train_head_sft").value == "sft"
    at.number_input(key="train_max_steps").set_value(4).run()
    at.button(key="btn_export_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("started" in s.value for s in at.success), [e.value for e in at.error]
    runs = list_train_runs(labelled_ws)
    try:
        assert len(runs) == 1 and runs[0]["export"] in (None, "v0001")
        assert runs[0]["status"] in ("starting", "running", "pending")
        assert at.selectbox(key="train_run_select").value == runs[0]["run_id"]
        config = (labelled_ws.path / "runs" / runs[0]["run_id"] / "config.yaml")
        deadline = time.time() + 120
        while not config.exists() and time.time() < deadline:
            time.sleep(1)
        assert "max_steps: 4" in config.read_text()  # the form's value reached the run
    finally:
        # The full run is the browser test's job: stop this one (its own process group).
        pid = int((labelled_ws.path / "runs" / runs[0]["run_id"] / "pid").read_text())
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            pass


def test_a_finished_run_shows_its_loss_curve_and_eval_table(studio_ws, page):
    from trainer.config import TrainConfig
    from trainer.runs import EventWriter, run_dir

    rd = run_dir(studio_ws, "20260101-000000-sft-v0001", must_exist=False)
    rd.path.mkdir(parents=True)
    TrainConfig(max_steps=5).save_yaml(rd.config_yaml)
    events = EventWriter(rd.events)
    events.write("start", head="sft", export="v0001", max_steps=5)
    for step, loss in enumerate([2.0, 1.7, 1.5, 1.4, 1.3], start=1):
        events.write("log", step=step, max_steps=5, epoch=step / 5, loss=loss, lr=1e-4,
                     tokens_per_s=900.0, eta_s=5 - step)
    ev = {"base": {"eval_loss": 2.1, "perplexity": 8.17},
          "tuned": {"eval_loss": 1.4, "perplexity": 4.06, "train_loss": 1.58},
          "generations": [{"prompt": "note", "reference": "ref", "base": "b", "tuned": "t"}]}
    rd.eval_json.write_text(json.dumps(ev))
    events.write("eval", base=ev["base"], tuned=ev["tuned"])
    events.write("end", status="done", error=None)

    at = page("export_train")
    assert any("done: step 5 of 5, loss 1.3000" in str(p.proto) for p in at.get("progress"))
    table = next(d.value for d in at.dataframe if list(d.value.columns)[:3] == ["metric", "base",
                                                                                  "tuned"])
    rows = {r["metric"]: r for r in table.to_dict("records")}
    assert rows["eval_loss"]["base"] == 2.1 and rows["eval_loss"]["tuned"] == 1.4
    assert rows["eval_loss"]["change"] == pytest.approx(-0.7)
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")  # the loss curve


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


def test_did_curation_pay_compares_runs_of_one_head(studio_ws, page):
    from trainer.config import TrainConfig
    from trainer.runs import EventWriter, run_dir

    for run_id, export, acc in (("20260101-000000-classifier-v0001", "v0001", 0.74),
                                ("20260101-000100-classifier-v0002", "v0002", 0.98)):
        rd = run_dir(studio_ws, run_id, must_exist=False)
        rd.path.mkdir(parents=True)
        TrainConfig(head="classifier", max_steps=5).save_yaml(rd.config_yaml)
        events = EventWriter(rd.events)
        events.write("start", head="classifier", export=export, max_steps=5)
        events.write("end", status="done", error=None)
        rd.eval_json.write_text(json.dumps({
            "head": "classifier", "run_id": run_id, "export": export, "n_eval": 50,
            "base": {"accuracy": 0.2, "macro_f1": 0.1},
            "tuned": {"accuracy": acc, "macro_f1": acc - 0.01}}))

    at = page("export_train")
    table = next(d.value for d in at.dataframe if "delta_accuracy" in d.value.columns)
    rows = table.to_dict("records")
    assert [r["export"] for r in rows] == ["v0001", "v0002"]
    assert rows[1]["delta_accuracy"] == pytest.approx(0.24)


SFT_REPORT = {
    "n_eval": 12, "seeds": 2, "budget": {"max_steps": 8, "batch_size": 2,
                                         "base_model": "smollm2-135m"},
    "delta_accuracy_curated_vs_raw": 0.0, "intervals_apart": False,
    "arms": [{"name": "base", "n_train": 0, "accuracy": 0.0, "ci": [0.0, 0.0],
              "rouge_l": 0.2287, "rouge_l_ci": [0.2287, 0.2287]},
             {"name": "raw", "n_train": 2138, "accuracy": 0.05, "ci": [0.0, 0.1],
              "rouge_l": 0.4043, "rouge_l_ci": [0.3471, 0.4615]},
             {"name": "curated", "n_train": 1480, "accuracy": 0.0417, "ci": [0.0, 0.09],
              "rouge_l": 0.3553, "rouge_l_ci": [0.2918, 0.4188]}]}


def test_did_curation_pay_shows_the_summary_accuracy_benchmark(studio_ws, page):
    (studio_ws.path / "sft_roi.json").write_text(json.dumps(SFT_REPORT))
    at = page("export_train")
    table = next(d.value for d in at.dataframe if "summary_accuracy" in d.value.columns)
    rows = table.to_dict("records")
    assert [r["arm"] for r in rows] == ["base", "raw", "curated"]
    assert rows[1]["summary_accuracy"] == pytest.approx(0.05)
    assert rows[1]["accuracy_ci"] == "[0.000, 0.100]" and rows[2]["rouge_l"] == pytest.approx(0.3553)
    caption = next(c.value for c in at.caption if c.value.startswith("Budget:"))
    assert "8 LoRA steps at batch 2" in caption and "**not shown** at this budget" in caption
    assert "sft_roi.json" in caption


def test_a_summary_report_that_is_not_one_is_named(studio_ws, page):
    (studio_ws.path / "sft_roi.json").write_text("{not json")
    at = page("export_train")
    assert any("sft_roi.json: not a JSON report" in e.value for e in at.error)
