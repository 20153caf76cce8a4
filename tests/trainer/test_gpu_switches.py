"""Per-layer checkpointing and the liger on/off switch on a live (tiny, CPU) Llama."""

from __future__ import annotations

import types

import pytest
import torch

from trainer.gpu import LigerSwitch, checkpoint_positions, lora_compute_in_bf16, set_checkpoint_layers
from trainer.gpu.switches import decoder_layers


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=64, max_position_embeddings=64, use_cache=False)
    cfg._attn_implementation = "sdpa"
    return LlamaForCausalLM(cfg)


def test_checkpoint_positions_spread_and_bounds():
    assert checkpoint_positions(32, 0) == []
    assert checkpoint_positions(32, 32) == list(range(32))
    pos = checkpoint_positions(32, 8)
    assert len(pos) == 8 and pos == [0, 4, 8, 12, 16, 20, 24, 28]
    for n in range(33):
        assert len(checkpoint_positions(32, n)) == n
    with pytest.raises(ValueError):
        checkpoint_positions(4, 5)


def _grads(model, ids):
    model.zero_grad(set_to_none=True)
    model(input_ids=ids, labels=ids).loss.backward()
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_partial_checkpointing_sets_flags_and_keeps_gradients(tiny_llama):
    model = tiny_llama.train()
    ids = torch.randint(0, 64, (2, 16))
    ref = _grads(model, ids)
    chosen = set_checkpoint_layers(model, 2)
    assert chosen == [0, 2]
    assert [layer.gradient_checkpointing for layer in decoder_layers(model)] == [True, False, True, False]
    for g, r in zip(_grads(model, ids), ref):
        torch.testing.assert_close(g, r)
    set_checkpoint_layers(model, 0)
    assert not any(layer.gradient_checkpointing for layer in decoder_layers(model))


def test_liger_switch_restores_everything(tiny_llama, fake_liger):
    """A stand-in for liger's patch that rebinds what the real one rebinds (module globals,
    instance forwards and _get_name, the CausalLM forward): off() must restore the model."""
    from transformers.models.llama import modeling_llama

    def fake_apply(model=None, **_):
        modeling_llama.apply_rotary_pos_emb = lambda *a, **k: (_ for _ in ()).throw(AssertionError)
        modeling_llama.LlamaMLP = object
        for layer in model.model.layers:
            mlp = layer.mlp
            mlp.__dict__["forward"] = types.MethodType(lambda self, x: torch.zeros_like(x), mlp)
            mlp.__dict__["_get_name"] = types.MethodType(lambda self: "LigerSwiGLUMLP", mlp)
        type(model.model.norm).__name__ = "LigerRMSNorm"

    fake_liger(fake_apply)

    model = tiny_llama.eval()
    ids = torch.randint(0, 64, (1, 8))
    rope, mlp_cls = modeling_llama.apply_rotary_pos_emb, modeling_llama.LlamaMLP
    with torch.no_grad():
        before = model(input_ids=ids).logits
        sw = LigerSwitch.for_model(model)
        assert LigerSwitch.for_model(model) is sw  # one switch per model
        sw.on()
        assert model.model.layers[0].mlp._get_name() == "LigerSwiGLUMLP"
        sw.off()
        after = model(input_ids=ids).logits
    assert modeling_llama.apply_rotary_pos_emb is rope and modeling_llama.LlamaMLP is mlp_cls
    assert type(model.model.norm).__name__ == "LlamaRMSNorm"
    assert model.model.layers[0].mlp._get_name() == "LlamaMLP"
    torch.testing.assert_close(after, before)


def test_lora_compute_in_bf16_turns_off_peft_input_casts(tiny_llama):
    from peft import LoraConfig, get_peft_model

    import copy

    pm = get_peft_model(copy.deepcopy(tiny_llama), LoraConfig(r=4, target_modules=["q_proj", "down_proj"]))
    assert lora_compute_in_bf16(pm) == 8
    assert all(not m.cast_input_dtype_enabled for m in pm.modules() if hasattr(m, "cast_input_dtype_enabled"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_autotune_model_on_cuda_tiny():
    pytest.importorskip("bitsandbytes")
    from trainer.gpu import autotune_model
    from trainer.gpu.runtime import build_qlora_base, fixed_rows, train_steps, tuned_recipe

    model = tuned_recipe(build_qlora_base("tiny", seq_len=64, device="cuda"))
    rows = fixed_rows(256, 64)
    choice = autotune_model(model, rows, budget_bytes=2 * 1024**3, effective_batch=4, log=None)
    c = choice.candidate
    assert c.micro_batch * c.grad_accum == 4 and choice.peak_bytes <= 2 * 1024**3
    r = train_steps(model, rows, micro_batch=c.micro_batch, grad_accum=c.grad_accum, steps=2,
                    warmup=1, device="cuda")
    assert r.tokens_per_s > 0 and all(torch.isfinite(torch.tensor(r.losses)))
