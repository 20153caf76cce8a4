"""TrainConfig: help on every field, validation naming field and value, YAML and --set."""

from __future__ import annotations

import dataclasses

import pytest

from pipelines.errors import ConfigError
from trainer.config import TrainConfig


def test_every_field_has_help_and_specs_cover_fields():
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f.name
    specs = {s["name"]: s for s in TrainConfig.field_specs()}
    assert specs.keys() == {f.name for f in dataclasses.fields(TrainConfig)}
    assert specs["method"]["choices"] == ("auto", "lora", "qlora", "full") and specs["lora_r"]["type"] == "int"
    assert specs["bf16"]["type"] == "bool"


@pytest.mark.parametrize("kwargs, field", [
    ({"method": "full"}, "train.method"), ({"method": "ful"}, "train.method"),
    ({"head": "dpo", "method": "full", "init_adapter": "run-1"}, "train.init_adapter"),
    ({"lora_r": 0}, "train.lora_r"),
    ({"max_steps": 0}, "train.max_steps"), ({"learning_rate": 2.0}, "train.learning_rate"),
    ({"lora_dropout": 1.0}, "train.lora_dropout"), ({"head": "rm"}, "train.head"),
    ({"class_weight": "inverse"}, "train.class_weight"), ({"probe_c": 0}, "train.probe_c"),
    ({"probe_words": "yes"}, "train.probe_words"),
    ({"batch_size": 0}, "train.batch_size"), ({"eval_max_examples": -1}, "train.eval_max_examples"),
])
def test_validation_names_field_and_value(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**kwargs)


def test_head_chosen_fields_default_to_null():
    cfg = TrainConfig(head="probe")
    assert (cfg.learning_rate, cfg.epochs, cfg.batch_size, cfg.max_seq_length,
            cfg.eval_max_examples) == (None, None, None, None, None)
    assert cfg.apply_overrides(["batch_size=4", "learning_rate="]).batch_size == 4
    assert "probe" in TrainConfig.field_specs()[0]["choices"]


def test_yaml_roundtrip_and_overrides(tmp_path):
    cfg = TrainConfig(head="classifier", lora_r=4, packing=True, target_modules="q_proj,v_proj")
    path = tmp_path / "train.yaml"
    cfg.save_yaml(path)
    assert TrainConfig.from_yaml(path) == cfg
    assert cfg.lora_targets() == ["q_proj", "v_proj"]
    (tmp_path / "curation.yaml").write_text("train:\n  lora_r: 32\n  bf16: 'false'\n")
    loaded = TrainConfig.from_yaml(tmp_path / "curation.yaml", max_steps=7)
    assert loaded.lora_r == 32 and loaded.bf16 is False and loaded.max_steps == 7
    over = cfg.apply_overrides(["lora_r=16", "learning-rate=1e-3", "gradient_checkpointing=true"])
    assert (over.lora_r, over.learning_rate, over.gradient_checkpointing) == (16, 1e-3, True)
    with pytest.raises(ConfigError, match="overrides: unknown key"):
        cfg.apply_overrides(["lora_rank=3"])
    with pytest.raises(ConfigError, match="expects key=value, got 'lora_r'"):
        cfg.apply_overrides(["lora_r"])
    with pytest.raises(ConfigError, match="expected int"):
        cfg.apply_overrides(["lora_r=abc"])
    (tmp_path / "bad.yaml").write_text("lr: [")
    with pytest.raises(ConfigError, match="invalid YAML"):
        TrainConfig.from_yaml(tmp_path / "bad.yaml")
