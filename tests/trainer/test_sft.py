"""SFT head on the tiny Llama: every assistant turn trained (mask checked token by token),
lengths fitted keeping the answer, every LoRA parameter changes, loss falls, the adapter reloads."""

from __future__ import annotations

import pytest
import torch

from trainer.config import TrainConfig
from trainer.device import Plan

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
    hist = to_prompt_completion({**ROWS[1], "system": "Be brief.", "history": [["q1", "a1"]]},
                                "alpaca")
    assert [m["role"] for m in hist["prompt"]] == ["system", "user", "assistant", "user"]
    assert to_prompt_completion({"messages": [{"role": "user", "content": "hi"}]}, "chat") is None


# -- whole conversations: the mask and the length -------------------------------------------
CHAT3 = [{"role": "system", "content": "You answer claims."},
         {"role": "user", "content": "a pipe burst"}, {"role": "assistant", "content": "water claim"},
         {"role": "user", "content": "and the roof leaked"},
         {"role": "assistant", "content": "also water"},
         {"role": "user", "content": "then a fire"}, {"role": "assistant", "content": "fire claim"}]


@pytest.fixture(scope="module")
def tok():
    from trainer.tiny import train_tokenizer

    texts = [m["content"] for m in CHAT3] * 20 + ["storm flood kitchen fire garage"] * 20
    return train_tokenizer(texts, vocab_size=300)


def _runs(tok, ids, mask):
    """The decoded text of each maximal run of trained (mask 1) tokens."""
    runs, cur = [], []
    for t, k in zip(ids, mask):
        if k:
            cur.append(t)
        elif cur:
            runs.append(tok.decode(cur)), cur.clear()
    if cur:
        runs.append(tok.decode(cur))
    return runs


def test_every_assistant_turn_is_trained_and_nothing_else(tok):
    from trainer.sft_data import tokenize_chat

    tc = tokenize_chat(tok, CHAT3)
    full = tok.apply_chat_template(CHAT3, tokenize=False)
    assert tc.ids == tok(full, add_special_tokens=False)["input_ids"]
    # Token by token: 1 exactly on the three answers (with their end-of-turn), 0 on the rest.
    assert _runs(tok, tc.ids, tc.mask) == ["water claim</s>\n", "also water</s>\n",
                                           "fire claim</s>\n"]
    for i, m in enumerate(CHAT3):
        a, b = tc.spans[i]
        text = tok.decode(tc.ids[a:b])
        assert m["content"] in text
        trained = [tc.mask[j] for j in range(a, b)]
        if m["role"] == "assistant":
            assert trained[-1] == 1 and 0 in trained   # the role header is not trained
            assert tok.decode([t for t, k in zip(tc.ids[a:b], trained) if k]).startswith(m["content"])
        else:
            assert set(trained) == {0}


def test_sft_dataset_labels_follow_the_mask(tok):
    from trainer.sft_data import prepare_examples, tokenize_chat

    examples, report = prepare_examples(tok, [{"messages": CHAT3}], "chat", None, 1024)
    tc = tokenize_chat(tok, CHAT3)
    assert examples == [{"input_ids": tc.ids,
                         "labels": [t if k else -100 for t, k in zip(tc.ids, tc.mask)]}]
    assert report.n == 1 and report.completions_cut == 0


def test_truncation_drops_oldest_turns_first_and_keeps_the_answer(tok):
    from trainer.sft_data import fit_to_length, tokenize_chat

    long = [dict(m) for m in CHAT3]
    long[1]["content"] = "a pipe burst " * 30
    whole = tokenize_chat(tok, long)
    later = tokenize_chat(tok, [long[0]] + long[3:])   # system + the last two exchanges
    fitted, dropped, cut = fit_to_length(tok, long, len(later) + 2)
    assert len(whole) > len(later) + 2 and not cut and dropped == 2   # the first exchange went
    assert tok.decode(fitted.ids).startswith("<|system|>\nYou answer claims.")
    assert "pipe burst" not in tok.decode(fitted.ids)
    assert _runs(tok, fitted.ids, fitted.mask) == ["also water</s>\n", "fire claim</s>\n"]

    # The final exchange alone is too long: the prompt's oldest tokens go, the answer is whole.
    fitted, _, cut = fit_to_length(tok, long, 12)
    assert len(fitted) == 12 and not cut
    assert _runs(tok, fitted.ids, fitted.mask)[-1] == "fire claim</s>\n"
    # An answer longer than the limit is cut, and says so.
    _, _, cut = fit_to_length(tok, long, 3)
    assert cut


def test_default_length_comes_from_the_data_and_explicit_wins(tok):
    from trainer.sft import cut_warning
    from trainer.sft_data import default_max_seq_length, prepare_examples

    assert default_max_seq_length(list(range(1, 101)), None) == 128       # p95 95 -> 128
    assert default_max_seq_length(list(range(1, 101)), 100) == 100        # the model's positions
    assert default_max_seq_length([5000] * 10, 8192) == 2048              # the memory cap
    assert default_max_seq_length([3], None) == 64

    rows = [{"messages": CHAT3}] * 19 + [{"messages": CHAT3[:2] + [
        {"role": "assistant", "content": "fire " * 200}]}]
    _, auto = prepare_examples(tok, rows, "chat", None, 1024)
    assert auto.max_seq_length % 64 == 0 and auto.source.startswith("from the data")
    assert auto.completions_cut == 1 and cut_warning(auto) is None       # 1 of 20 = 5%: quiet
    ex, fixed = prepare_examples(tok, rows, "chat", 16, 1024)
    assert fixed.max_seq_length == 16 and fixed.source == "set in the config"
    assert len(ex) == 19 and all(len(e["input_ids"]) <= 16 for e in ex)   # cut to no answer: out
    assert fixed.completions_cut == 1 and fixed.prompt_cut == 19
    _, tiny = prepare_examples(tok, rows, "chat", 3, 1024)
    assert "20 of 20 conversations (100%) would lose part of their final answer" in cut_warning(tiny)


@pytest.mark.slow
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
    labels = trainer.train_dataset[0]["labels"]   # TRL kept our mask: only the answer trains
    assert tok.decode([t for t in labels if t != -100]) == "water damage claim</s>\n"
    assert trainer.length_report.max_seq_length == 64
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


@pytest.mark.slow
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
