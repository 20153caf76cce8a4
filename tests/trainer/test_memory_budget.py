"""`memory_budget` / `--memory-budget`: config validation, the device plan, and the wiring of the
trainer.gpu autotuner into the SFT run (a fake CUDA plan with a fixed choice, and the real
autotuner on CPU, whose memory then comes from the saved-tensor meter)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from pipelines.errors import ConfigError, TrainError
from pipelines.export import export_dataset
from trainer import TrainConfig, read_events, train
from trainer.device import Plan, plan_device
from trainer.gpu import GIB, Candidate, MemoryModel, TuneChoice
from trainer.runs import RunDir


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def tiny_cfg(tiny_model: str, **kw) -> TrainConfig:
    base = dict(base_model=tiny_model, batch_size=4, max_seq_length=64, learning_rate=5e-3,
                generations=1, max_new_tokens=4, eval_max_examples=4, save_steps=100)
    return TrainConfig(**{**base, **kw})


def chat_rows(n: int) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"claim {i}: a pipe burst and water "
                                                      f"flooded the kitchen floor"},
                          {"role": "assistant", "content": f"water damage claim number {i}"}]}
            for i in range(n)]


def fixed_choice(micro: int, accum: int, effective: int) -> TuneChoice:
    return TuneChoice(candidate=Candidate(micro, accum, 1), tokens_per_s=1234.0,
                      peak_bytes=3 * GIB, predicted_peak_bytes=2.9 * GIB, budget_bytes=24 * GIB,
                      num_layers=4, effective_batch=effective,
                      memory_model=MemoryModel(4, GIB, GIB // 8, GIB // 64),
                      why=f"micro-batch {micro} x accumulation {accum} (fixed by the test)")


def test_config_field_validates():
    assert TrainConfig(memory_budget="24GiB").memory_budget == "24GiB"
    assert TrainConfig().apply_overrides(["memory_budget=22.5 GB"]).memory_budget == "22.5 GB"
    for bad in ("lots", "0GiB", "-3GB"):
        with pytest.raises(ConfigError, match=r"train\.memory_budget.*" + bad):
            TrainConfig(memory_budget=bad)
    spec = {s["name"]: s for s in TrainConfig.field_specs()}["memory_budget"]
    assert spec["type"] == "str" and "24GiB" in spec["help"]


def test_plan_uses_the_budget_only_on_cuda_in_bf16(monkeypatch):
    cpu = plan_device(TrainConfig(memory_budget="24GiB", device="cpu"))
    assert cpu.budget_bytes is None
    assert any("CUDA only; ignored on CPU" in n for n in cpu.notices)
    assert not any("memory budget" in n for n in plan_device(TrainConfig(device="cpu")).notices)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    gpu = plan_device(TrainConfig(memory_budget="24GiB", method="lora"))
    assert gpu.device == "cuda" and gpu.bf16 and gpu.budget_bytes == 24 * 2**30
    assert gpu.gradient_checkpointing is False   # the autotuner decides per layer
    assert plan_device(TrainConfig(method="lora")).gradient_checkpointing is True
    no_bf16 = plan_device(TrainConfig(memory_budget="24GiB", bf16=False))
    assert no_bf16.budget_bytes is None and any("bf16" in n for n in no_bf16.notices)
    cls = plan_device(TrainConfig(head="classifier", memory_budget="24GiB"))
    assert cls.budget_bytes is None and any("sft head only" in n for n in cls.notices)


def test_apply_tune_choice_sets_micro_batch_and_keeps_effective_batch(tmp_path):
    from transformers import TrainingArguments

    from trainer.sft import apply_tune_choice

    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                             per_device_train_batch_size=16, gradient_accumulation_steps=1,
                             gradient_checkpointing=True)
    fake = SimpleNamespace(args=args, _train_batch_size=16)
    apply_tune_choice(fake, fixed_choice(4, 4, 16))
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (4, 4)
    assert fake._train_batch_size == 4
    assert args.activation_checkpointing is False and args.gradient_checkpointing is False
    with pytest.raises(TrainError, match="effective batch 16"):
        apply_tune_choice(fake, fixed_choice(4, 2, 16))


def test_cpu_run_with_budget_notices_and_trains(toy_ws, tiny_model, capsys):
    """`curate train --memory-budget` on CPU: a clear notice, then the unchanged run."""
    from curate.cli import main as curate

    export_dataset(toy_ws, scheme="quality", format="chat", eval_fraction=0.25)
    w = str(toy_ws.path)
    common = ["train", "--workspace", w, "--export", "v1", "--device", "cpu", "--max-steps", "2",
              "--batch-size", "4", "--max-seq-length", "64", "--set", f"base_model={tiny_model}",
              "--set", "generations=1", "--set", "max_new_tokens=4", "--set",
              "eval_max_examples=4", "--set", "save_steps=100"]
    assert curate([*common, "--memory-budget", "lots"]) == 2
    assert "train.memory_budget" in capsys.readouterr().err
    assert curate([*common, "--memory-budget", "24GiB", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    res = json.loads(out[-1])
    assert res["status"] == "done" and res["steps"] == 2
    assert "notice: memory budget 24GiB applies on CUDA only; ignored on CPU" in out
    assert "memory budget 24GiB applies on CUDA only; ignored on CPU" in res["notices"]
    rd = RunDir(toy_ws.path / "runs" / res["run_id"])
    assert "autotune" not in json.loads(rd.eval_json.read_text())
    assert not [e for e in read_events(rd.events) if e["event"] == "autotune"]
    assert TrainConfig.from_yaml(rd.config_yaml).memory_budget == "24GiB"


def test_fake_cuda_budget_applies_the_choice_and_records_it(toy_ws, tiny_model, monkeypatch):
    """The CUDA path with the device faked: plan has a budget, autotune_model returns a fixed
    choice; the run must train micro-batches of 2 x 4 accumulation (effective batch 8 kept)."""
    import importlib

    from transformers import TrainerCallback

    import trainer.gpu

    train_mod = importlib.import_module("trainer.train")   # `trainer.train` the attribute is the function

    real_plan = train_mod.plan_device

    def plan_with_budget(cfg):
        p = real_plan(cfg)
        p.budget_bytes = 24 * GIB
        p.notices = [n for n in p.notices if "memory budget" not in n]
        return p

    seen = {}

    def fake_autotune(model, batches, *, budget_bytes, effective_batch, device, log=None, **kw):
        inputs, real = batches(0, 3)   # the trainer's own rows through its collator
        seen.update(budget=budget_bytes, effective=effective_batch, device=device,
                    rows=inputs["input_ids"].shape[0], real=real)
        return fixed_choice(2, 4, effective_batch)

    monkeypatch.setattr(train_mod, "plan_device", plan_with_budget)
    monkeypatch.setattr(trainer.gpu, "autotune_model", fake_autotune)

    class CountForwards(TrainerCallback):
        sizes: list[int] = []
        begin: tuple = ()

        def on_train_begin(self, args, state, control, model=None, **kw):
            CountForwards.begin = (args.per_device_train_batch_size,
                                   args.gradient_accumulation_steps, state.train_batch_size,
                                   args.gradient_checkpointing)
            model.register_forward_pre_hook(
                lambda m, a, k: CountForwards.sizes.append(k["input_ids"].shape[0])
                if m.training else None, with_kwargs=True)

    exp = export_dataset(toy_ws, scheme="quality", format="chat", eval_fraction=0.25)
    said: list[str] = []
    cfg = tiny_cfg(tiny_model, max_steps=1, batch_size=8, grad_accum=1, memory_budget="24GiB",
                   device="cpu")
    res = train(toy_ws, exp.version, cfg, progress=False, echo=said.append,
                callbacks=[CountForwards()])
    assert res["status"] == "done" and res["steps"] == 1
    assert seen["budget"] == 24 * GIB and seen["effective"] == 8 and seen["device"] == "cpu"
    assert seen["rows"] == 3 and 0 < seen["real"] <= 3 * 64
    assert CountForwards.begin == (2, 4, 2, False)
    n_train = read_events(RunDir(toy_ws.path / "runs" / res["run_id"]).events)[0]["n_train"]
    assert n_train >= 8
    assert CountForwards.sizes == [2] * 4          # 1 optimizer step = 4 micro-batches of 2
    assert any(s.startswith("notice: autotune within 24GiB: micro-batch 2 x accumulation 4")
               for s in said)
    rd = RunDir(toy_ws.path / "runs" / res["run_id"])
    ev = json.loads(rd.eval_json.read_text())
    assert ev["autotune"]["micro_batch"] == 2 and ev["autotune"]["grad_accum"] == 4
    assert ev["autotune"]["effective_batch"] == 8
    (evt,) = [e for e in read_events(rd.events) if e["event"] == "autotune"]
    assert evt["micro_batch"] == 2 and evt["why"].startswith("micro-batch 2")
    with toy_ws.connect() as conn:
        (metrics,) = conn.execute("SELECT metrics FROM runs WHERE step = 'train'").fetchone()
    assert json.loads(metrics)["autotune"]["grad_accum"] == 4


def test_real_autotuner_on_cpu_tunes_a_built_sft_trainer(tiny_model, tmp_path):
    """No mocks: the real autotune_model over the SFT trainer's rows and PEFT model (memory from
    the CPU saved-tensor meter); the chosen shape keeps the effective batch and then trains."""
    from trainer.sft import autotune_sft, build_sft_trainer

    rows = chat_rows(8)
    cfg = TrainConfig(max_steps=2, batch_size=4, grad_accum=1, max_seq_length=64,
                      learning_rate=5e-3, save_steps=100, memory_budget="10MiB")
    # On this tiny model b4 without checkpointing measured ~14 MiB and b1 fully checkpointed
    # ~5 MiB (saved-tensor meter), so a 10 MiB budget forces a smaller or checkpointed shape.
    budget = 10 * 2**20
    plan = Plan(device="cpu", method="lora", bf16=False, gradient_checkpointing=False,
                notices=[], budget_bytes=budget)
    trainer, _, _ = build_sft_trainer(cfg, tiny_model, plan, rows, [], "chat", tmp_path / "ck",
                                      progress=False)
    lines: list[str] = []
    choice = autotune_sft(trainer, cfg, plan, log=lines.append)
    c = choice.candidate
    assert c.micro_batch * c.grad_accum == 4 and choice.peak_bytes <= budget
    assert c.micro_batch < 4 or c.ckpt_layers > 0
    assert any("b4x1" in line for line in lines)   # the largest micro-batch was considered
    assert choice.tokens_per_s > 0 and any("trial" in line for line in lines)
    assert (trainer.args.per_device_train_batch_size, trainer.args.gradient_accumulation_steps) \
        == (c.micro_batch, c.grad_accum)
    assert json.loads(json.dumps(choice.to_dict()))["effective_batch"] == 4
    lora = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_B" in n}
    trainer.train()
    assert trainer.state.global_step == 2
    after = dict(trainer.model.named_parameters())
    assert all(not torch.equal(p, after[n].detach()) for n, p in lora.items())

    tiny = Plan(device="cpu", method="lora", bf16=False, gradient_checkpointing=False,
                notices=[], budget_bytes=2**20)   # below b1 fully checkpointed (~5 MiB)
    with pytest.raises(TrainError, match="memory_budget '10MiB' is too small.*max_seq_length"):
        autotune_sft(trainer, cfg, tiny, log=None)


def test_autotune_keeps_trls_fused_head_with_liger(tiny_model, tmp_path, monkeypatch, fake_liger):
    """Found on the H200: liger's fused cross-entropy rebinds the model's forward, dropping the
    fused LM head TRL's SFTTrainer bound there, and `compute_loss` then failed on
    `outputs.log_probs`. A stand-in liger that rebinds the forward as the real one does (only when
    asked for its fused cross-entropy): the autotuner must keep TRL's head, its trials must run the
    trainer's own loss, and evaluate/train must work afterwards."""
    import types

    import trainer.gpu
    from trainer.sft import autotune_sft, build_sft_trainer

    calls: list[dict] = []

    def fake_apply(model=None, **kw):
        calls.append(kw)
        if kw.get("fused_linear_cross_entropy", True):   # liger's default, as in liger-kernel 0.8
            model.__dict__["forward"] = types.MethodType(
                lambda self, **k: types.SimpleNamespace(loss=torch.zeros((), requires_grad=True)), model)

    fake_liger(fake_apply)
    monkeypatch.setattr(trainer.gpu, "liger_available", lambda: True)

    rows = chat_rows(8)
    cfg = TrainConfig(max_steps=1, batch_size=2, grad_accum=1, max_seq_length=64,
                      learning_rate=5e-3, save_steps=100, memory_budget="1GiB")
    plan = Plan(device="cpu", method="lora", bf16=False, gradient_checkpointing=False,
                notices=[], budget_bytes=2**30)
    trainer, _, _ = build_sft_trainer(cfg, tiny_model, plan, rows, rows[:2], "chat",
                                      tmp_path / "ck", progress=False)
    inner = trainer.model.get_base_model()
    fused_forward = inner.__dict__["forward"]          # TRL's fused LM head, bound per instance
    losses = []
    real_compute_loss = trainer.compute_loss
    monkeypatch.setattr(trainer, "compute_loss",
                        lambda *a, **k: losses.append(1) or real_compute_loss(*a, **k))

    choice = autotune_sft(trainer, cfg, plan, log=None)

    assert calls and all(kw["fused_linear_cross_entropy"] is False for kw in calls)
    # liger was timed on (calls); kept or not is down to timing, and either way the head stays
    assert any(t.candidate.liger and t.tokens_per_s for t in choice.trials)
    assert not [t.error for t in choice.trials if t.error]
    assert inner.__dict__["forward"] is fused_forward
    assert losses, "trials did not run the trainer's compute_loss"
    assert trainer._total_train_tokens == 0 and not trainer._metrics["train"].get("entropy")
    assert "eval_loss" in trainer.evaluate()            # the call that failed on the H200
    trainer.train()
    assert trainer.state.global_step == 1
