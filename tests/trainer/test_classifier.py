"""Classifier micro-model head on the packaged MiniLM: learns a separable toy task."""

from __future__ import annotations

import json

import pytest

from pipelines.export import export_dataset
from trainer import TrainConfig, train

from tests.trainer.conftest import make_toy_ws

pytestmark = pytest.mark.slow


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
    assert res["status"] == "done" and res["steps"] == 24
    assert (toy_ws.path / "runs" / res["run_id"] / "adapter" / "adapter_config.json").exists()
