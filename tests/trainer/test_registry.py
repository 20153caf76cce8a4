"""The model registry: finished runs' adapters are listed with task, base, export, size and
evaluation; unfinished runs are not; remove deletes the adapter folder and the row."""

import shutil

import pytest

from pipelines.errors import ModelError
from trainer.registry import get_model, list_models, remove_model

pytestmark = pytest.mark.slow   # the micro_ws fixture builds a tiny Llama and three adapters


def test_finished_runs_are_registered_with_their_task(micro_ws):
    entries = {e.name: e for e in list_models(micro_ws)}
    assert set(entries) >= {"summary-sft-v0001", "extract-sft-v0002", "topic-classifier-v0003"}
    s = entries["summary-sft-v0001"]
    assert (s.kind, s.head, s.scheme, s.export, s.task) == ("adapter", "sft", "summary", "v0001",
                                                            "summary/sft")
    assert s.size_bytes > 1000 and s.evaluation["tuned"]["eval_loss"] == 5.0
    assert entries["topic-classifier-v0003"].classes == ["water", "fire"]
    # listing again registers nothing twice
    assert [e.name for e in list_models(micro_ws)] == [e.name for e in entries.values()]


def test_unfinished_run_is_not_registered_and_remove_deletes_the_adapter(micro_ws, tmp_path):
    ws_dir = tmp_path / "ws"
    shutil.copytree(micro_ws.path, ws_dir)
    from pipelines.store import Workspace

    ws = Workspace.open(ws_dir)
    running = ws.subdir("runs") / "20260102-000000-sft-v0001"
    shutil.copytree(ws_dir / "runs" / "20260101-000001-sft-v0001", running)
    (running / "events.jsonl").write_text((running / "events.jsonl").read_text().splitlines()[0] + "\n")
    assert "20260102-000000-sft-v0001" not in {e.run_id for e in list_models(ws)}
    gone = remove_model(ws, "extract-sft-v0002")
    assert not (ws_dir / "runs" / gone.run_id / "adapter").exists()
    assert (ws_dir / "runs" / gone.run_id / "eval.json").exists()
    assert "extract-sft-v0002" not in {e.name for e in list_models(ws)}
    with pytest.raises(ModelError, match="no model 'extract-sft-v0002'.*summary-sft-v0001"):
        get_model(ws, "extract-sft-v0002")


def test_a_real_finished_run_is_registered(toy_ws, tiny_model):
    from pipelines.export import export_dataset
    from trainer import TrainConfig, train

    version = export_dataset(toy_ws, scheme="quality", format="chat", eval_fraction=0.25).version
    out = train(toy_ws, version, TrainConfig(head="sft", base_model=tiny_model, max_steps=2,
                                             generations=0), progress=False, echo=lambda *_: None)
    (entry,) = list_models(toy_ws)
    assert (entry.name, entry.run_id, entry.base_model) == (f"quality-sft-{version}",
                                                            out["run_id"], tiny_model)
    assert entry.evaluation["tuned"]["eval_loss"] == out["eval"]["tuned"]["eval_loss"]
