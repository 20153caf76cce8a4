"""SFT head on the tiny Llama: every LoRA parameter changes, loss falls, the adapter reloads."""

from __future__ import annotations

import pytest
import torch

from trainer.config import TrainConfig
from trainer.device import Plan

pytestmark = pytest.mark.slow

ROWS = [{"messages": [{"role": "system", "content": "Summarise the claim."},
                      {"role": "user", "content": "a pipe burst and water flooded the kitchen"},
                      {"role": "assistant", "content": "water damage claim"}]},
        {"instruction": "lightning set the garage on fire", "input": "", "output": "fire claim"}]


def cpu_plan(method: str = "lora") -> Plan:
    return Plan(device="cpu", method=method, bf16=False, gradient_checkpointing=False, notices=[])


def test_prompt_completion_conversion():
    from trainer.sft import to_prompt_completion

    chat = to_prompt_completion(ROWS[0], "chat")
    assert [m["role"] for m in chat["prompt"]] == ["system", "user"]
    assert chat["completion"] == [{"role": "assistant", "content": "water damage claim"}]
    alp = to_prompt_completion(ROWS[1], "alpaca")
    assert alp["prompt"][0]["content"] == "lightning set the garage on fire"


def test_lora_params_all_change_loss_falls_and_adapter_reloads(tiny_model, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from trainer.sft import build_sft_trainer

    # One repeated batch: the loss must go down on data the model sees again and again.
    rows = [ROWS[0]] * 4
    cfg = TrainConfig(max_steps=12, batch_size=4, learning_rate=5e-3, max_seq_length=64,
                      logging_steps=1, save_steps=100, lora_dropout=0.0)
    trainer, tok, _ = build_sft_trainer(cfg, tiny_model, cpu_plan(), rows, [], "chat",
                                        tmp_path / "ckpt", progress=False)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert before and all("lora_" in n for n in before)
    trainer.train()
    after = dict(trainer.model.named_parameters())
    unchanged = [n for n, p in before.items() if torch.equal(p, after[n].detach())]
    assert unchanged == []
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 12 and losses[-1] < losses[0] * 0.8

    trainer.save_model(str(tmp_path / "adapter"))
    enc = tok.apply_chat_template(ROWS[0]["messages"], return_tensors="pt", return_dict=True)
    trainer.model.eval()
    with torch.no_grad():
        want = trainer.model(**enc).logits
        reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model),
                                             str(tmp_path / "adapter")).eval()
        got = reloaded(**enc).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_model).eval()(**enc).logits
    assert torch.allclose(want, got, atol=1e-5)
    assert not torch.allclose(base, got, atol=1e-3)   # the adapter does something


def test_qlora_on_cpu_quantizes_and_trains(tiny_model, tmp_path):
    import bitsandbytes as bnb

    from trainer.sft import build_sft_trainer

    cfg = TrainConfig(method="qlora", max_steps=3, batch_size=2, max_seq_length=64,
                      learning_rate=5e-3, save_steps=100)
    trainer, _, _ = build_sft_trainer(cfg, tiny_model, cpu_plan("qlora"), [ROWS[0]] * 2, [],
                                      "chat", tmp_path / "ckpt", progress=False)
    n4 = sum(isinstance(m, bnb.nn.Linear4bit) for m in trainer.model.modules())
    assert n4 >= 4 * 7   # every attention/MLP projection of the 4 layers is 4-bit
    lora_b = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_B" in n}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert all(not torch.equal(p, after[n].detach()) for n, p in lora_b.items())
    assert trainer.state.global_step == 3
