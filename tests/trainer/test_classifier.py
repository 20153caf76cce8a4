"""Classifier micro-model head on the packaged MiniLM: learns a separable toy task."""

from __future__ import annotations

import json

import pytest

from pipelines.export import export_dataset
from trainer import TrainConfig, train

from tests.trainer.conftest import make_toy_ws


def test_classification_metrics_keep_the_eval_json_keys_and_add_per_class():
    from trainer.evaluate import classification_metrics

    # fire: tp 1, predicted 1, true 2 -> P 1, R 0.5, F1 2/3; water: tp 1, predicted 2, true 1
    m = classification_metrics(["fire", "fire", "water"], ["fire", "water", "water"],
                               ["water", "fire"])
    assert (m["n"], m["accuracy"], m["macro_f1"]) == (3, 0.6667, 0.6667)
    assert m["per_class"]["fire"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert m["confusion"] == [[1, 0], [1, 1]]   # rows true water, fire; columns predicted
    empty = classification_metrics([], [], ["water", "fire"])
    assert (empty["n"], empty["accuracy"], empty["macro_f1"]) == (0, None, None)


@pytest.mark.slow
def test_classifier_learns_separable_task_and_reports_before_after(tmp_path):
    toy_ws = make_toy_ws(tmp_path / "ws", n=40)
    exp = export_dataset(toy_ws, scheme="topic", format="classification", eval_fraction=0.4)
    assert exp.train >= 16 and exp.eval >= 8
    cfg = TrainConfig(head="classifier", max_steps=24, batch_size=8, learning_rate=2e-3,
                      lora_r=8, max_seq_length=64, save_steps=100, logging_steps=4)
    res = train(toy_ws, exp.version, cfg, progress=False, echo=lambda m: None)
    ev = json.loads((toy_ws.path / "runs" / res["run_id"] / "eval.json").read_text())
    assert ev["classes"] == ["water", "fire"]
    assert ev["tuned"]["accuracy"] >= 0.8            # chance is 0.5
    assert ev["tuned"]["accuracy"] >= ev["base"]["accuracy"]
    assert ev["base"]["majority_accuracy"] is not None and ev["tuned"]["n"] == exp.eval
    assert list(ev["tuned"]["per_class"]) == ev["classes"]
    assert sum(map(sum, ev["tuned"]["confusion"])) == exp.eval
    assert res["status"] == "done" and res["steps"] == 24
    assert (toy_ws.path / "runs" / res["run_id"] / "adapter" / "adapter_config.json").exists()


@pytest.mark.slow
def test_an_all_gold_set_exports_and_trains(tmp_path):
    """Every record gold, no label model: a gold holdout goes to eval, the rest trains."""
    from pipelines.store import NewRecord, Workspace, upsert_record, utcnow
    from tests.trainer.conftest import CURATION, toy_rows

    ws = Workspace.create(tmp_path / "ws")
    ws.config_path.write_text(CURATION, encoding="utf-8")
    with ws.transaction() as conn:
        for rid, topic, note, summary in toy_rows(30):
            upsert_record(conn, NewRecord(id=rid, kind="instruction", text=f"{note}\n{summary}",
                                          prompt=note, response=summary, gold={"topic": topic},
                                          file="gold", row=int(rid[1:])), utcnow())
    exp = export_dataset(ws, scheme="topic", format="classification")
    assert exp.gold["trains"] and exp.train == exp.gold["train"] > 0 and exp.eval == exp.gold["eval"] > 0
    cfg = TrainConfig(head="classifier", max_steps=4, batch_size=8, learning_rate=2e-3,
                      lora_r=8, max_seq_length=64, save_steps=100, logging_steps=2)
    res = train(ws, exp.version, cfg, progress=False, echo=lambda m: None)
    ev = json.loads((ws.path / "runs" / res["run_id"] / "eval.json").read_text())
    assert res["status"] == "done" and ev["tuned"]["n"] == exp.eval
