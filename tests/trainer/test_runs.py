"""Run folders: events file parsing, status, corrupted-checkpoint fallback, and the detached
launch (config first, then `python -m trainer`), all without training."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pipelines.errors import ExportError, TrainError
from pipelines.export import export_dataset
from trainer import runs
from trainer.config import TrainConfig
from trainer.runs import (EventWriter, RunDir, latest_checkpoint, read_events,
                          recent_tokens_per_s, resume_config, run_summary, start_detached)


def test_events_roundtrip_and_partial_last_line(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    (rd.path / "config.yaml").write_text("head: sft\n")
    w = EventWriter(rd.events)
    w.write("start", head="sft", export="v0001", max_steps=4)
    w.write("log", step=1, max_steps=4, loss=2.5, lr=1e-3, tokens_per_s=10.0, eta_s=3.0)
    with open(rd.events, "a") as fh:
        fh.write('{"event": "log", "step": 2')          # a half-written line of a live run
    events = read_events(rd.path)
    assert [e["event"] for e in events] == ["start", "log"]
    s = run_summary(rd)
    assert (s["status"], s["steps"], s["loss"], s["head"]) == ("running", 1, 2.5, "sft")
    with open(rd.events, "a") as fh:
        fh.write("\n")
    w.write("end", status="done", error=None)
    assert run_summary(rd)["status"] == "done"


def test_dead_process_reads_as_interrupted(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    EventWriter(rd.events).write("start", head="sft")
    (rd.path / "pid").write_text("999999999")
    assert run_summary(rd)["status"] == "interrupted"


def test_corrupted_checkpoint_falls_back_to_earlier(tmp_path):
    import torch
    from safetensors.torch import save_file

    rd = RunDir(tmp_path / "run")
    for step in (2, 4, 6):
        ck = rd.checkpoints / f"checkpoint-{step}"
        ck.mkdir(parents=True)
        (ck / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        save_file({"w": torch.ones(2)}, str(ck / "adapter_model.safetensors"))
    (rd.checkpoints / "checkpoint-6" / "adapter_model.safetensors").write_bytes(b"\x00garbage")
    (rd.checkpoints / "checkpoint-4" / "trainer_state.json").write_text("{not json")
    notices: list[str] = []
    assert latest_checkpoint(rd, notices).name == "checkpoint-2"
    assert len(notices) == 2 and "checkpoint-6" in notices[0] and "checkpoint-4" in notices[1]


def test_recent_rate_leaves_warm_up_out():
    # 100 tokens per step; the first step took 10 s (warm-up), later ones 1 s each
    logs = [{"step": 1, "time": 10.0, "tokens": 100, "tokens_per_s": 10.0}]
    logs += [{"step": s, "time": 10.0 + (s - 1), "tokens": 100 * s,
              "tokens_per_s": 100 * s / (10.0 + (s - 1))} for s in range(2, 12)]
    assert recent_tokens_per_s(logs) == 100.0
    assert logs[-1]["tokens_per_s"] < 60          # the run average is dragged down by warm-up
    assert recent_tokens_per_s(logs[:1]) == 10.0  # one step: the average is all there is
    old = [{k: v for k, v in e.items() if k != "tokens"} for e in logs]
    assert recent_tokens_per_s(old) == old[-1]["tokens_per_s"]   # events without `tokens`
    assert recent_tokens_per_s([]) is None


class _Started:
    pid = 4242


def test_detached_start_writes_the_config_then_starts_the_trainer(toy_ws, monkeypatch):
    specs = []
    monkeypatch.setattr(runs, "start", lambda spec: specs.append(spec) or _Started())
    version = export_dataset(toy_ws, scheme="quality", format="alpaca").version
    cfg = TrainConfig(max_steps=3, lora_r=4, base_model="/models/m")
    info = start_detached(toy_ws, "v1", cfg)             # "v1" names export v0001
    rd = RunDir(Path(info["path"]))
    assert info["pid"] == 4242 and rd.id.endswith(f"-sft-{version}")
    assert TrainConfig.from_yaml(rd.config_yaml) == cfg   # one encoder: the dataclass's YAML
    (spec,) = specs
    assert spec.argv[-5:] == ("-m", "trainer", str(rd.path), "--export", version)
    assert spec.detach and spec.log == rd.log and spec.pid_file == rd.path / "pid"
    assert not any("curate" in a for a in spec.argv)      # the trainer never calls the CLI

    with pytest.raises(ExportError, match="unknown export version"):
        start_detached(toy_ws, "v9", cfg)
    EventWriter(rd.events).write("start", head="sft", export=version)   # started: not twice
    with pytest.raises(TrainError, match="already exists"):
        start_detached(toy_ws, version, cfg, run_id=rd.id)
    assert len(specs) == 1

    resumed = start_detached(toy_ws, version, TrainConfig(max_steps=9), resume=True)
    assert resumed["run_id"] == rd.id and specs[-1].argv[-1] == "--resume"
    saved = TrainConfig.from_yaml(rd.config_yaml)         # the run's own config, steps extended
    assert (saved.lora_r, saved.base_model, saved.max_steps) == (4, "/models/m", 9)
    assert resume_config(rd, TrainConfig()).max_steps == 9


def test_a_detached_child_that_refuses_the_export_says_why(toy_ws):
    """A real `python -m trainer` child: the export is in the wrong format for the head, so
    it stops before training, and the run's status carries the message (not 'failed to start')."""
    version = export_dataset(toy_ws, scheme="topic", format="classification").version
    info = start_detached(toy_ws, version, TrainConfig(head="sft", max_steps=3))
    rd = RunDir(Path(info["path"]))
    assert int((rd.path / "pid").read_text()) == info["pid"]
    deadline = time.time() + 120
    while run_summary(rd)["status"] in ("starting", "running") and time.time() < deadline:
        time.sleep(0.5)
    s = run_summary(rd)
    assert s["status"] == "failed" and "needs chat or alpaca" in s["error"], rd.log.read_text()
    assert "error: export" in rd.log.read_text()
